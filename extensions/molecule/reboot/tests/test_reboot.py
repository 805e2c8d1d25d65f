"""Verify the end state of the reboot scenario on the guest itself.

converge ended with two kexec reboots (marker appended) after a firmware
reboot: one started late (pre_reboot_delay, a delay inhibitor, KillUserProcesses=yes),
one behind a limit on new SSH connections; the guest must now run the marked command
line in a new boot, with the limit gone.
"""

MARKER = "kexec_reboot_marker=1"


def read(host, path):
    return host.file(path).content_string.strip()


def test_marker_is_on_the_running_command_line(host):
    assert MARKER in read(host, "/proc/cmdline").split()


def test_boot_id_changed_by_the_kexec_reboot(host):
    assert read(host, "/proc/sys/kernel/random/boot_id") != read(host, "/var/tmp/kexec-molecule-boot-id")


def test_kexec_enabled_again_after_reboots(host):
    # kexec_load_disabled is one-way for a boot only: the reboots cleared it.
    assert read(host, "/proc/sys/kernel/kexec_load_disabled") == "0"


def test_booted_image_is_consumed(host):
    assert read(host, "/sys/kernel/kexec_loaded") == "0"
    assert not host.file("/run/kernel-kexec/default.json").exists


def test_shutdown_was_clean(host):
    # systemctl kexec stops services and unmounts: the root fs was not left dirty.
    assert "recovery complete" not in host.check_output("journalctl -b -k --no-pager | grep -i ext4 || true")


def test_late_reboot_settings_died_with_the_old_boot(host):
    # The logind drop-in lived in /run and the inhibitor was a transient unit: later scenarios on this
    # guest get logind's defaults back.
    assert not host.file("/run/systemd/logind.conf.d/kexec-late.conf").exists
    assert host.check_output("busctl get-property org.freedesktop.login1 /org/freedesktop/login1 "
                             "org.freedesktop.login1.Manager KillUserProcesses") == "b false"
    assert not host.file("/run/kernel-kexec-reboot").exists  # the status files died with the old boot too


def test_the_limit_on_new_ssh_connections_is_gone(host):
    # The next scenario reuses this guest: neither the unit nor its table may load again.
    assert not host.file("/etc/systemd/system/kexec-ratelimit.service").exists
    assert not host.file("/etc/kexec-ratelimit.nft").exists
    assert "kexec_ratelimit" not in host.check_output("nft list tables")
