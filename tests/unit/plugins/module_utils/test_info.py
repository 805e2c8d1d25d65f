import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._info import gather, usable_methods
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import write_record

from ..fakes import host as fakes
from ..fakes.host import BOOT_ID, RELEASE, ROOT_UUID


def test_gather(tmp_path):
    grub_cfg = fakes.debian_grub_cfg().replace("ro quiet", "ro quiet crashkernel=1G crashkernel=512M", 1)
    host = fakes.fake_host(tmp_path, loaded=1, cmdline="BOOT_IMAGE=/boot/vmlinuz crashkernel=256M ro crashkernel=384M",
                           lockdown="none [integrity] confidentiality", grub_cfg=grub_cfg)
    host.set_sys("proc/sys/kernel/kexec_load_limit_reboot", -1)
    record = {"type": "default", "kernel": host.kernel(), "kernel_sha256": "ab" * 32, "cmdline": "ro",
              "method": "file", "boot_id": BOOT_ID}
    write_record(host.root, "default", record)

    facts = gather(host.root, machine="x86_64")

    low, high = fakes.CRASH_LOW, fakes.CRASH_HIGH
    assert facts["crash_regions"] == [{"start": low[0], "end": low[1], "size": 128 << 20},
                                      {"start": high[0], "end": high[1], "size": 16 << 20}]
    assert facts["crash_reserved"] == 144 << 20
    assert facts["crash_size"] == 0x9000000
    assert facts["crashkernel"] == {"active": "384M", "configured": "512M"}
    assert (facts["loaded"], facts["crash_loaded"]) == (True, False)
    assert (facts["loaded_image"], facts["crash_image"]) == (record, None)
    assert facts["load_limits"] == {"reboot": -1, "panic": None}
    assert (facts["lockdown"], facts["load_disabled"], facts["kexec_supported"]) == ("integrity", False, True)
    assert facts["methods"] == ["file"]
    assert (facts["kernel_release"], facts["boot_id"], facts["arch"]) == (RELEASE, BOOT_ID, "x86_64")
    assert facts["default_entry"] == {
        "kernel": host.kernel(), "initrd": host.initrd(), "source": "/boot/grub/grub.cfg", "title": "Debian GNU/Linux",
        "args": "root=UUID=%s ro quiet crashkernel=1G crashkernel=512M" % ROOT_UUID}


def test_gather_on_a_bare_host(tmp_path):
    facts = gather(str(tmp_path), machine="x86_64")
    assert facts["kexec_supported"] is False and facts["methods"] == []
    assert (facts["crash_regions"], facts["crash_reserved"], facts["crash_size"]) == ([], 0, None)
    assert facts["default_entry"] is None
    assert facts["crashkernel"] == {"active": None, "configured": None}


def test_gather_running_release_entry_has_no_configured_crashkernel(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    facts = gather(host.root, machine="x86_64")
    assert facts["default_entry"]["source"] == "running release %s" % RELEASE
    assert facts["crashkernel"] == {"active": "384M-:128M", "configured": None}


@pytest.mark.parametrize("host_fields, machine, methods", [
    ({}, "x86_64", ["file", "legacy"]),
    ({"config": None}, "x86_64", ["file", "legacy"]),  # no /boot/config-RELEASE: assume a modern kernel
    ({"config": "CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\n"}, "x86_64", ["legacy"]),
    ({"config": "# CONFIG_KEXEC is not set\nCONFIG_KEXEC_FILE=y\n"}, "x86_64", ["file"]),
    ({"lockdown": "none [integrity] confidentiality"}, "x86_64", ["file"]),  # lockdown refuses kexec_load
    ({"load_disabled": 1}, "x86_64", []),
    ({"loaded": None}, "x86_64", []),  # no /sys/kernel/kexec_loaded: no CONFIG_KEXEC_CORE
    ({}, "mips", []),
    ({}, "aarch64", ["file"]),  # legacy segments are built for x86_64 only
    ({"lockdown": "none integrity [confidentiality]"}, "aarch64", ["file"]),
])
def test_usable_methods(tmp_path, host_fields, machine, methods):
    host = fakes.fake_host(tmp_path, **host_fields)
    assert usable_methods(KernelState(host.root), machine) == methods


def test_crash_reserved_without_root_falls_back_to_kexec_crash_size(tmp_path):
    # Non-root readers of /proc/iomem see 0-0 for every range: sizes are unknown, not 1 byte.
    host = fakes.fake_host(tmp_path, crash_size=256 << 20)
    host.write("proc/iomem", "00000000-00000000 : System RAM\n  00000000-00000000 : Crash kernel\n")
    facts = gather(host.root, machine="x86_64")
    assert facts["crash_regions"] == [{"start": 0, "end": 0, "size": None}]
    assert facts["crash_reserved"] == 256 << 20
