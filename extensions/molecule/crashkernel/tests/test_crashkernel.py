"""Verify the reservation converge made, on the guest itself (before side_effect removes it)."""

SIZE = 256 << 20


def test_running_kernel_has_crashkernel(host):
    assert "crashkernel=256M" in host.file("/proc/cmdline").content_string.split()


def test_iomem_has_the_crash_region(host):
    iomem = host.check_output("cat /proc/iomem")
    regions = [line.strip().split(" : ")[0] for line in iomem.splitlines() if line.strip().endswith(": Crash kernel")]
    assert len(regions) == 1
    start, end = (int(part, 16) for part in regions[0].split("-"))
    assert end - start + 1 == SIZE


def test_kexec_crash_size(host):
    assert host.file("/sys/kernel/kexec_crash_size").content_string.strip() == str(SIZE)


def test_bootloader_files_hold_it(host):
    assert 'crashkernel=256M"' in host.file("/etc/default/grub").content_string
    assert host.check_output("grep -c 'crashkernel=256M' /boot/grub/grub.cfg") != "0"


def test_backups_kept(host):
    backups = host.check_output("ls /etc/default/ | grep -c 'grub.*kexec-bak' || true")
    assert int(backups) >= 1
    # The backup is the file as it was: without crashkernel=.
    first = sorted(host.check_output("ls /etc/default/grub.*.kexec-bak").split())[0]
    assert "crashkernel" not in host.file(first).content_string


def test_other_arguments_untouched(host):
    grub = host.file("/etc/default/grub").content_string
    assert 'GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0 crashkernel=256M"' in grub
