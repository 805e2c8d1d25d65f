"""Verify kexec_load and kexec_info on the real guest kernel (run by molecule verify).

converge left the default kernel loaded with a marker; these tests check the
kernel's own view, then exercise check mode and unload through the modules.
The tests run in file order: the unload comes last.
"""

import json

MARKER = "kexec_molecule_marker=1"
RECORD = "/run/kernel-kexec/default.json"


def sysfs(host, name):
    return host.file("/sys/kernel/%s" % name).content_string.strip()


def record(host):
    return json.loads(host.file(RECORD).content_string)


def test_kernel_reports_image_loaded(host):
    assert sysfs(host, "kexec_loaded") == "1"


def test_record_matches_files_and_this_boot(host):
    loaded = record(host)
    assert loaded["cmdline"].split()[-1] == MARKER
    assert loaded["boot_id"] == host.file("/proc/sys/kernel/random/boot_id").content_string.strip()
    for name in ("kernel", "initrd"):
        digest = host.check_output("sha256sum %s" % loaded[name]).split()[0]
        assert loaded[name + "_sha256"] == digest


def test_no_kexec_tools_used(host):
    # The module must not shell out: the record says kexec_file_load did it.
    assert record(host)["method"] == "file"


def test_check_mode_reports_but_changes_nothing(host):
    before = host.file(RECORD).content_string
    result = host.ansible("kernel.kexec.kexec_load", "append=other_marker=1", check=True)
    assert result["changed"] is True
    assert "other_marker=1" in result["cmdline"]
    assert host.file(RECORD).content_string == before
    assert sysfs(host, "kexec_loaded") == "1"


def test_unload_then_nothing_to_do(host):
    first = host.ansible("kernel.kexec.kexec_load", "state=unloaded", check=False)
    assert first["changed"] is True
    assert sysfs(host, "kexec_loaded") == "0"
    assert not host.file(RECORD).exists
    second = host.ansible("kernel.kexec.kexec_load", "state=unloaded", check=False)
    assert second["changed"] is False
    info = host.ansible("kernel.kexec.kexec_info", check=False)
    assert info["loaded"] is False and info["loaded_image"] is None
