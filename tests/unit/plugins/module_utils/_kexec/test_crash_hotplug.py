"""What the running kernel says about crash hotplug, and what a crash header was built from, on fake /sys trees."""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._info import gather
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import crash_hotplug

from ...fakes import host as fakes
from .legacy import legacy_fakes


def crash_kernel_host(tmp_path, hotplug, crash_loaded=0, answer=None):
    """A Debian-like host; ``hotplug``: a 6.6-or-later kernel with CONFIG_CRASH_HOTPLUG; ``answer``: what its
    crash_hotplug files say of the crash image loaded (None: leave them at 0)."""
    host = fakes.fake_host(tmp_path, crash_loaded=crash_loaded)
    if hotplug:
        fakes.crash_hotplug_kernel(host)
    if answer is not None:
        for path in fakes.CRASH_HOTPLUG_FILES:
            host.set_sys(path, answer)
    return host


@pytest.mark.parametrize("hotplug, crash_loaded, answer, fact", [
    (False, 0, None, "reload"),    # Linux 6.1 (Debian 12): none of the three files
    (True, 0, None, "kernel"),     # 6.6 on, nothing loaded: the files read 0, their presence is the capability
    (True, 1, 1, "kernel"),        # a crash image loaded by kexec_file_load, or kexec_load with the flag
    (True, 1, 0, "reload"),        # a crash image loaded without asking (kexec-tools without --hotplug)
    (False, 1, None, "reload"),
], ids=["6.1", "6.6-nothing-loaded", "6.6-loaded-kept-current", "6.6-loaded-without-asking", "6.1-loaded"])
def test_the_fact_says_what_keeps_the_crash_image_right(tmp_path, hotplug, crash_loaded, answer, fact):
    host = crash_kernel_host(tmp_path, hotplug, crash_loaded, answer)
    assert crash_hotplug.fact(host.root, KernelState(host.root)) == fact


def test_the_fact_is_unsupported_without_crash_kernel_support(tmp_path):
    host = fakes.fake_host(tmp_path, crash_loaded=None)
    assert crash_hotplug.fact(host.root, KernelState(host.root)) == "unsupported"


def test_the_fact_is_unknown_when_the_loaded_image_answer_cannot_be_read(tmp_path, monkeypatch):
    """Linux 6.6 to 6.11 made cpu/crash_hotplug root's alone (0400): a non-root reader gets no answer there."""
    host = crash_kernel_host(tmp_path, True, crash_loaded=1, answer=1)
    host.remove(fakes.CRASH_HOTPLUG_FILES[1])
    fakes.deny_reads(monkeypatch, host.path(fakes.CRASH_HOTPLUG_FILES[0]))
    assert crash_hotplug.fact(host.root, KernelState(host.root)) is None


def test_crash_elfcorehdr_size_is_read_and_a_malformed_one_refused(tmp_path):
    host = crash_kernel_host(tmp_path, True)
    assert crash_hotplug.elfcorehdr_size(host.root) == (2 + 8192 + 8192) * 56
    host.set_sys("sys/kernel/crash_elfcorehdr_size", "lots")
    with pytest.raises(KexecError, match="crash_elfcorehdr_size is 'lots', not a number of bytes"):
        crash_hotplug.elfcorehdr_size(host.root)
    assert crash_hotplug.elfcorehdr_size(fakes.fake_host(tmp_path / "old").root) is None


@pytest.mark.parametrize("cpus, text", [([], ""), ([0], "0"), ([0, 1, 2, 3], "0-3"), ([0, 1, 3, 5, 6], "0-1,3,5-6")])
def test_cpu_list_is_the_kernels_cpulist_format(cpus, text):
    assert crash_hotplug.cpu_list(cpus) == text


def test_the_header_inputs_are_the_cpus_with_crash_notes_and_the_system_ram(tmp_path):
    root = legacy_fakes.host(tmp_path, cpus=3)
    legacy_fakes.write(root, "sys/devices/system/cpu/cpufreq/policy0", "")  # not a CPU
    legacy_fakes.write(root, "sys/devices/system/cpu/cpu7/online", "0\n")  # no crash notes: not described
    inputs = crash_hotplug.current_inputs(root)
    assert inputs["cpus"] == "0-2"
    assert (inputs["ram_ranges"], inputs["ram_bytes"]) == (2, (0x9fbff - 0x1000 + 1) + (0x7ffdffff - 0x100000 + 1))
    assert len(inputs["ram_sha256"]) == 64


def test_the_header_inputs_without_iomem_addresses_leave_the_ram_unknown(tmp_path):
    root = legacy_fakes.host(tmp_path)
    legacy_fakes.write(root, "proc/iomem", "00000000-00000000 : System RAM\n")
    inputs = crash_hotplug.current_inputs(root)
    assert inputs == {"cpus": "0-1", "ram_ranges": None, "ram_bytes": None, "ram_sha256": None}


def test_kexec_info_reports_the_fact(tmp_path):
    host = crash_kernel_host(tmp_path, True, crash_loaded=1, answer=1)
    assert gather(host.root, machine="x86_64")["crash_hotplug"] == "kernel"
