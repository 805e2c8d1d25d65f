"""Crash kernels that stay right when CPUs or memory are added after the load, behind the mocked syscall.

Where the kernel has crash hotplug (Linux 6.6 on) it rewrites the ELF core header itself: method legacy asks it
to with KEXEC_UPDATE_ELFCOREHDR and gives the header the room crash_elfcorehdr_size says, and a rerun is
"already loaded". Elsewhere the record says what the header was built from, and a rerun that finds the CPUs or
the System RAM changed loads again.
"""

import struct

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.segments import page_align
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec, LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import read_record, write_record
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES, KEXEC_ON_CRASH

from ...fakes import host as fakes
from ...fakes.host import BOOT_ID
from .legacy import legacy_fakes

X86_64 = ARCHES["x86_64"]
KEXEC_UPDATE_ELFCOREHDR = 0x4
KEXEC_CRASH_HOTPLUG_SUPPORT = 0x8
# A 1 GiB DIMM plugged above 4 GiB, as ACPI memory hot-add shows it once onlined.
DIMM = "100000000-13fffffff : System RAM\n"


def crash_request(host, method):
    return LoadRequest(kernel=host.kernel(), initrd=host.initrd(), cmdline="root=/dev/vda1 ro", kind="crash",
                       method=method)


def kernel_of(host, fake_syscall, version):
    """The fake kernel of Linux ``version`` ("6.1", "6.6" or "6.10"): its kexec_load flags, and for 6.6 on the
    crash hotplug sysfs files."""
    if version != "6.1":
        fakes.crash_hotplug_kernel(host)
    flags = {"6.1": fakes.KEXEC_FLAGS_6_1, "6.6": fakes.KEXEC_FLAGS_6_6, "6.10": fakes.KEXEC_FLAGS_6_10}[version]
    return fakes.FakeKernel(host, fake_syscall, X86_64, kexec_flags=flags)


def add_cpu(host, cpu=2):
    """A CPU hot-added and brought online: its sysfs directory with crash notes appears."""
    legacy_fakes.write(host.root, "sys/devices/system/cpu/cpu%d/crash_notes" % cpu, "%x\n" % (0x7dc1d000 + cpu * 0x1000))
    legacy_fakes.write(host.root, "sys/devices/system/cpu/cpu%d/crash_notes_size" % cpu, "368\n")


def add_memory(host):
    host.write("proc/iomem", host.read("proc/iomem") + DIMM)


CHANGES = {"cpu": add_cpu, "memory": add_memory}


@pytest.fixture
def kexec(legacy_host):
    return Kexec(root=legacy_host.root, arch=X86_64, euid=0)


@pytest.mark.parametrize("version", ["6.6", "6.10"])
def test_legacy_asks_the_kernel_to_update_the_header_where_it_can(kexec, legacy_host, fake_syscall, version):
    kernel = kernel_of(legacy_host, fake_syscall, version)
    result = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    flags = kernel.loads[0]["flags"]
    assert flags == X86_64.kexec_arch | KEXEC_ON_CRASH | KEXEC_UPDATE_ELFCOREHDR
    assert not flags & KEXEC_CRASH_HOTPLUG_SUPPORT  # 6.6 to 6.9 refuse it with EINVAL
    assert result["loaded"]["crash_hotplug"] == "kernel" and "crash_header" not in result["loaded"]
    assert read_record(legacy_host.root, "crash", BOOT_ID)["crash_hotplug"] == "kernel"
    assert legacy_host.read(fakes.CRASH_HOTPLUG_FILES[0]) == "1\n"  # the fake kernel's answer for the image


def test_legacy_on_a_kernel_without_crash_hotplug_passes_no_flag_it_would_refuse(kexec, legacy_host, fake_syscall):
    kernel = kernel_of(legacy_host, fake_syscall, "6.1")
    result = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    assert kernel.loads[0]["flags"] == X86_64.kexec_arch | KEXEC_ON_CRASH
    assert result["loaded"]["crash_hotplug"] == "reload"
    assert result["loaded"]["crash_header"]["cpus"] == "0-1"


def elfcorehdr(result, load):
    table = next(seg for seg in result["segments"]["segments"] if seg["name"] == "elfcorehdr")
    data = next(data for data, mem, _memsz in load["segments"] if mem == int(table["mem"], 16))
    return table, data


def test_the_header_segment_has_room_for_crash_elfcorehdr_size(kexec, legacy_host, fake_syscall):
    kernel = kernel_of(legacy_host, fake_syscall, "6.6")
    result = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    table, data = elfcorehdr(result, kernel.loads[0])
    assert data[:4] == b"\x7fELF"  # how the kernel finds the segment at the first hotplug event
    assert table["memsz"] == page_align(len(data) + fakes.CRASH_ELFCOREHDR_SIZE)
    assert "crash_elfcorehdr_size %d" % fakes.CRASH_ELFCOREHDR_SIZE in table["holds"]
    assert result["segments"]["cmdline"].startswith("elfcorehdr=%s " % table["mem"])


def test_without_crash_hotplug_the_header_segment_is_the_header(kexec, legacy_host, fake_syscall):
    kernel = kernel_of(legacy_host, fake_syscall, "6.1")
    result = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    table, data = elfcorehdr(result, kernel.loads[0])
    assert table["memsz"] == page_align(len(data)) == 4096 and "crash_elfcorehdr_size" not in table["holds"]
    assert result["loaded"]["crash_hotplug"] == "reload"


@pytest.mark.parametrize("method", ["legacy", "file"])
@pytest.mark.parametrize("change", ["cpu", "memory"])
def test_a_rerun_after_a_hot_add_reloads_where_the_kernel_does_not_update(
        kexec, legacy_host, fake_syscall, method, change):
    kernel = kernel_of(legacy_host, fake_syscall, "6.1")
    kexec.ensure_loaded(crash_request(legacy_host, method))
    CHANGES[change](legacy_host)
    checked = kexec.ensure_loaded(crash_request(legacy_host, method), check_mode=True)
    assert checked["changed"] and len(kernel.recorder.calls) == 1
    assert "loading it again" in checked["reload_reason"]
    result = kexec.ensure_loaded(crash_request(legacy_host, method))
    assert result["changed"] and len(kernel.loads) == 2
    described = {"cpu": "CPUs 0-1 and", "memory": "in 2 ranges, the host has"}[change]
    assert described in result["reload_reason"] and "does not keep its ELF core header current" in result["reload_reason"]
    after = {"cpu": "CPUs 0-2", "memory": "in 3 ranges"}[change]
    assert after in result["reload_reason"].split("the host has")[1]
    assert read_record(legacy_host.root, "crash", BOOT_ID)["crash_header"] == result["loaded"]["crash_header"]
    again = kexec.ensure_loaded(crash_request(legacy_host, method))
    assert not again["changed"] and "reload_reason" not in again and len(kernel.loads) == 2


@pytest.mark.parametrize("method", ["legacy", "file"])
@pytest.mark.parametrize("change", ["cpu", "memory"])
def test_a_rerun_after_a_hot_add_is_already_loaded_where_the_kernel_updates(
        kexec, legacy_host, fake_syscall, method, change):
    kernel = kernel_of(legacy_host, fake_syscall, "6.6")
    assert kexec.ensure_loaded(crash_request(legacy_host, method))["loaded"]["crash_hotplug"] == "kernel"
    CHANGES[change](legacy_host)
    for check_mode in (True, False):
        result = kexec.ensure_loaded(crash_request(legacy_host, method), check_mode=check_mode)
        assert not result["changed"] and "reload_reason" not in result
        assert result["method_reason"].startswith("already loaded")
    assert len(kernel.loads) == 1


def test_the_file_syscall_gets_no_hotplug_flag(kexec, legacy_host, fake_syscall):
    kernel = kernel_of(legacy_host, fake_syscall, "6.6")
    result = kexec.ensure_loaded(crash_request(legacy_host, "file"))
    assert kernel.loads[0]["flags"] == 0x2  # KEXEC_FILE_ON_CRASH alone: the kernel keeps file loads current itself
    assert result["loaded"]["crash_hotplug"] == "kernel"


def test_a_crash_record_that_does_not_say_what_its_header_describes_is_loaded_again(
        kexec, legacy_host, fake_syscall):
    kernel = kernel_of(legacy_host, fake_syscall, "6.1")
    first = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    older = dict(first["loaded"])
    del older["crash_hotplug"], older["crash_header"]
    write_record(legacy_host.root, "crash", older)  # as an older kernel.kexec wrote it
    result = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    assert result["changed"] and len(kernel.loads) == 2
    assert "does not say which CPUs and memory" in result["reload_reason"]


def test_the_diff_shows_what_the_header_describes(kexec, legacy_host, fake_syscall):
    kernel_of(legacy_host, fake_syscall, "6.1")
    after = kexec.ensure_loaded(crash_request(legacy_host, "legacy"), check_mode=True)["diff"]["after"]
    assert "crash_hotplug: reload\n" in after
    assert "crash_header: CPUs 0-1 and 2047 MiB of System RAM in 2 ranges" in after


def capture_ram(params):
    """The E820_RAM entries (start, end exclusive) of a boot_params segment's zero page."""
    count = params[0x1e8]
    entries = [struct.unpack_from("<QQI", params, 0x2d0 + 20 * index) for index in range(count)]
    return [(addr, addr + size) for addr, size, kind in entries if kind == 1]


def test_the_capture_kernel_keeps_off_the_whole_header_segment(kexec, legacy_host, fake_syscall):
    """The kernel may write the rebuilt header anywhere in the segment: the capture kernel must not use it as RAM."""
    kernel = kernel_of(legacy_host, fake_syscall, "6.6")
    result = kexec.ensure_loaded(crash_request(legacy_host, "legacy"))
    table, data = elfcorehdr(result, kernel.loads[0])
    assert table["memsz"] == page_align(len(data) + fakes.CRASH_ELFCOREHDR_SIZE)
    start = int(table["mem"], 16)
    end = start + table["memsz"]
    params = next(data for data, mem, _memsz in kernel.loads[0]["segments"]
                  if mem == int(next(seg["mem"] for seg in result["segments"]["segments"]
                                     if seg["name"] == "boot_params"), 16))
    ram = capture_ram(params)
    assert ram and not [span for span in ram if span[0] < end and start < span[1]]
    assert any(span[1] == start for span in ram)  # the crash region right below the header stays usable


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_malformed_crash_elfcorehdr_size_is_refused_before_the_syscall(kexec, legacy_host, fake_syscall, check_mode):
    kernel_of(legacy_host, fake_syscall, "6.6")
    legacy_host.set_sys("sys/kernel/crash_elfcorehdr_size", "0x70070")
    with pytest.raises(KexecError, match="crash_elfcorehdr_size is '0x70070', not a number of bytes"):
        kexec.ensure_loaded(crash_request(legacy_host, "legacy"), check_mode=check_mode)
    assert fake_syscall.calls == [] and not legacy_host.exists("run/kernel-kexec/crash.json")
