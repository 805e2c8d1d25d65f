"""Verify the faults scenario left the shared guest as it found it (run by molecule verify).

converge recorded the start in /var/tmp/kexec-faults/start.json (files/faults.py save) before the first
fault. The next scenario (reboot, then crashkernel) starts from what this one leaves: GRUB's files
byte for byte as they were, no crashkernel=, no backups or temp files added, nothing mounted, the same
boot and kexec state. The tests run in file order: the last one removes the scratch directory.
"""

import json

SCRATCH = "/var/tmp/kexec-faults"


def start(host):
    return json.loads(host.file(SCRATCH + "/start.json").content_string)


def now(host):
    return json.loads(host.check_output("python3 %s snapshot %s", SCRATCH + "/faults.py", SCRATCH))


def test_bootloader_files_are_as_at_the_start(host):
    assert now(host)["files"] == start(host)["files"]


def test_sha256_by_the_guest_own_tool(host):
    # Not through the helper that recorded them: sha256sum on the guest.
    for path, state in start(host)["files"].items():
        if state["exists"]:
            assert host.check_output("sha256sum -- %s", path).split()[0] == state["sha256"], path
        else:
            assert not host.file(path).exists, path


def test_etc_default_grub_is_a_plain_file_without_crashkernel(host):
    grub = host.file("/etc/default/grub")
    assert grub.is_file and not grub.is_symlink
    assert grub.user == "root" and grub.group == "root"
    assert "crashkernel" not in grub.content_string
    assert "crashkernel" not in host.file("/boot/grub/grub.cfg").content_string
    assert not host.file("/etc/default/grub.real").exists


def test_no_backups_or_temp_files_added(host):
    before, after = start(host), now(host)
    assert after["backups"] == before["backups"]
    assert after["litter"] == before["litter"]


def test_nothing_left_mounted(host):
    assert host.run("mountpoint -q /boot/grub").rc != 0
    assert now(host)["mounts"] == start(host)["mounts"]


def test_no_reboot_and_kexec_state_unchanged(host):
    before, after = start(host)["kexec"], now(host)["kexec"]
    assert after == before
    assert host.file("/proc/sys/kernel/random/boot_id").content_string.strip() == before["boot_id"]


def test_scratch_directory_removed(host):
    assert now(host)["mounts"][SCRATCH] == []
    host.run_expect([0], "rm -rf -- %s", SCRATCH)
    assert not host.file(SCRATCH).exists
