"""Verify, on the guest, what the systemd-boot scenario's converge left behind: the reservation kept in
systemd-boot's entry and /etc/kernel/cmdline, and the kexec reboot into that entry came up with it."""

import json


def read(host, path):
    return host.file(path).content_string


def test_the_boot_of_the_entry_reserved_crash_memory(host):
    assert "crashkernel=256M" in read(host, "/proc/cmdline").split()
    assert read(host, "/sys/kernel/kexec_crash_size").strip() == str(256 << 20)


def test_entry_and_kernel_cmdline_hold_the_reservation(host):
    release = host.check_output("uname -r")
    entry = read(host, "/boot/efi/loader/entries/debian-%s.conf" % release)
    options = next(line for line in entry.splitlines() if line.split()[:1] == ["options"])
    assert "crashkernel=256M" in options.split()
    assert "crashkernel=256M" in read(host, "/etc/kernel/cmdline").split()


def test_the_kexec_reboot_was_a_new_boot(host):
    facts = json.loads(read(host, "/var/tmp/kexec-systemd-boot.json"))
    assert facts["kexec_boot_id"] != facts["first_boot_id"]
    assert read(host, "/proc/sys/kernel/random/boot_id").strip() == facts["kexec_boot_id"]
