"""Verify, on the guest, what the uefi scenario's converge left behind.

A kexec reboot by method legacy that kept EFI runtime services and ACPI, then a
crash whose capture kernel was loaded by method legacy (the capture's log and
dump are checked by the converge's crash tasks, resources/tasks/crash.yml).
"""

import json


def read(host, path):
    return host.file(path).content_string


def test_the_host_is_trixie_on_uefi(host):
    assert host.system_info.codename == "trixie"
    assert host.file("/sys/firmware/efi").is_directory


def test_kexec_tools_is_not_installed(host):
    assert not host.package("kexec-tools").is_installed


def test_legacy_boot_had_efi_runtime_services_and_acpi(host):
    facts = json.loads(read(host, "/var/tmp/kexec-uefi.json"))
    assert facts["legacy_boot_id"] != facts["first_boot_id"]
    lines = facts["legacy_efi"]
    # The SecureBoot variable, read through the firmware's GetVariable: 4 bytes of attributes, then 0 (off).
    assert lines[0].split()[-1] == "00"
    assert any("efi: EFI v" in line for line in lines)
    assert lines[-1] == "/sys/firmware/acpi/tables/DSDT"
