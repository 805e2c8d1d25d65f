from ansible_collections.kernel.kexec.plugins.module_utils._info import gather
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.facts import NONE, add_service_state, kdump_facts

from ...fakes import host as fakes
from .kdump_fakes import MIB, debian_kdump_tools, write_dump

ACTIVE = "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"


def test_debian_host_with_a_dump(tmp_path):
    host = debian_kdump_tools(tmp_path)
    write_dump(host, "/var/crash/202512011200", "dump.202512011200", mtime=2000, log="dmesg.202512011200")
    facts = gather(host.root, machine="x86_64")
    kdump = facts["kdump"]
    assert facts["crash_reserved"] == 256 * MIB
    assert {key: kdump[key] for key in ("service", "provider", "config", "config_enabled", "target", "location",
                                        "path", "dumps", "active", "enabled")} == {
        "service": "kdump-tools", "provider": "kdump-tools", "config": "/etc/default/kdump-tools",
        "config_enabled": True, "target": "local", "location": None, "path": "/var/crash", "dumps": 1,
        "active": None, "enabled": None}
    assert kdump["newest_dump"] == {"path": "/var/crash/202512011200/dump.202512011200", "size": 16, "mtime": 2000,
                                    "dmesg": "/var/crash/202512011200/dmesg.202512011200"}
    assert kdump["capture"]["fits"] is True
    assert kdump["capture"]["reserved"] == 256 * MIB
    assert kdump["capture"]["kernel"] == "/boot/vmlinuz-%s" % fakes.RELEASE


def test_service_state_is_added_through_the_runner(tmp_path):
    host = debian_kdump_tools(tmp_path)
    calls = []

    def runner(argv):
        calls.append(argv)
        return 0, ACTIVE, ""
    info = add_service_state(gather(host.root, machine="x86_64"), runner)
    assert (info["kdump"]["active"], info["kdump"]["enabled"], info["kdump"]["installed"]) == (True, True, True)
    assert calls[0][-1] == "kdump-tools.service"


def test_nothing_configured_runs_nothing(tmp_path):
    host = fakes.fake_host(tmp_path)

    def runner(argv):
        raise AssertionError("no capture service: systemctl must not run")
    info = add_service_state(gather(host.root, machine="x86_64"), runner)
    assert info["kdump"] == NONE
    assert add_service_state({"kdump": dict(NONE, service="kdump")}, None)["kdump"]["active"] is None


def test_remote_target_lists_no_dumps(tmp_path):
    host = debian_kdump_tools(tmp_path, config='USE_KDUMP=1\nSSH="kdump@dumps"\n', crash_size=96 * MIB)
    facts = kdump_facts(host.root, fakes.RELEASE, 96 * MIB)
    assert (facts["target"], facts["dumps"], facts["newest_dump"]) == ("ssh", None, None)
    # Without KDUMP_KERNEL: the running kernel and /boot's stock initrd (GZIP_INITRD, a few KiB) are what it loads.
    assert facts["capture"]["initrd"] == "/boot/initrd.img-%s" % fakes.RELEASE
    assert facts["capture"]["fits"] is False and "too small" in facts["capture"]["explanation"]
