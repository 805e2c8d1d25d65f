"""Verify, on the guest, what the kdump scenario's converge left: kdump-tools armed with the reservation the
role chose, and the dump of the test crash, read back (the crashed kernel's sysrq panic in its log)."""

import json
import os

import pytest

RESULT = "/var/tmp/kdump-test-result.json"
AUTO = "2G-64G:256M,64G-:512M"  # size auto on a 2 GiB x86_64 guest (kdump_reserve: 256M)


@pytest.fixture(scope="module")
def result(host):
    return json.loads(host.file(RESULT).content_string)


def test_reservation_is_auto_and_active(host):
    assert "crashkernel=%s" % AUTO in host.file("/proc/cmdline").content_string.split()
    assert host.file("/sys/kernel/kexec_crash_size").content_string.strip() == str(256 << 20)


def test_kdump_tools_is_armed(host):
    assert host.file("/sys/kernel/kexec_crash_loaded").content_string.strip() == "1"
    service = host.service("kdump-tools")
    assert service.is_enabled and service.is_running
    config = host.file("/etc/default/kdump-tools").content_string
    assert "USE_KDUMP=1" in config.splitlines()
    assert 'KDUMP_COREDIR="/var/crash"' in config.splitlines()


def test_the_crash_was_a_new_boot(result):
    assert result["boot_id_after"] != result["boot_id_before"]
    assert 0 < float(result["seconds_to_answer"]) < 900


def test_dump_is_in_the_target_as_reported(host, result):
    dump = host.file(result["dump"])
    assert dump.exists and dump.size == int(result["size"]) > 1 << 20
    assert os.path.dirname(result["dump"]).startswith("/var/crash/")
    # kdump-tools always adds -F: makedumpfile's flattened stream, which starts with its signature.
    assert host.check_output("head -c 12 %s" % result["dump"]) == "makedumpfile"
    assert result["format"] == "flattened"


def test_crashed_kernels_log_beside_the_dump(host, result):
    log = host.file(result["log_source"]).content_string
    assert result["log_source"] == os.path.join(os.path.dirname(result["dump"]), "dmesg." + result["dump"][-12:])
    assert "sysrq: Trigger a crash" in log
    assert "Kernel panic - not syncing: sysrq triggered crash" in log
    assert any("sysrq triggered crash" in line for line in result["log"])


def test_dump_directory_is_private(host):
    assert host.file("/var/crash").mode == 0o700
