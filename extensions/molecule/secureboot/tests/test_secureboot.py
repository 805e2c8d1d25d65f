"""Verify, on the guest, what the secureboot scenario's converge left behind: the crashkernel role's
kexec reboot of the signed kernel, then a crash (the capture's log and dump are checked by the converge's crash
tasks), and Secure Boot and lockdown on again after the firmware reboot that ends a capture."""

import json


def read(host, path):
    return host.file(path).content_string


def test_secure_boot_and_lockdown_are_on_again_after_the_firmware_reboot(host):
    variable = host.check_output("od -An -tx1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
    assert variable.split()[-1] == "01"
    assert "[integrity]" in read(host, "/sys/kernel/security/lockdown") or \
        "[confidentiality]" in read(host, "/sys/kernel/security/lockdown")


def test_the_kexec_reboot_was_a_new_boot(host):
    facts = json.loads(read(host, "/var/tmp/kexec-secureboot.json"))
    assert facts["kexec_boot_id"] != facts["first_boot_id"]
