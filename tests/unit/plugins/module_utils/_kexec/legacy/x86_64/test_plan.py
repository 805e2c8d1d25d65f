"""The x86_64 segment plan, read back field by field: boot_params, e820, stub, placement, crash layout."""

import os
import re
import struct

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._io import identity
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import plan as x86_plan
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import stub

from .....fakes.files import ReadCounter
from .. import legacy_fakes as fakes
from ..test_elfcore import read_core

CMDLINE = "root=UUID=0b1c ro console=ttyS0,115200 kexec_marker=1"


@pytest.fixture
def files(tmp_path):
    kernel = fakes.bzimage(str(tmp_path / "boot" / "vmlinuz"))
    initrd = fakes.write(tmp_path, "boot/initrd.img", b"\x1f\x8b" + bytes(0x5000))
    return kernel, initrd


def by_name(result):
    return {seg.name: seg for seg in result.segments}


def e820_of(params):
    count = params[0x1e8]
    return [struct.unpack_from("<QQI", params, 0x2d0 + 20 * index) for index in range(count)]


def test_normal_plan_places_top_down_in_ram(tmp_path, files):
    root = fakes.host(tmp_path / "host")
    result = x86_plan.plan(root, files[0], files[1], CMDLINE, crash=False)
    segs = by_name(result)
    assert sorted(segs) == ["boot_params", "initrd", "kernel", "stub"]
    kernel = segs["kernel"]
    assert kernel.mem % 0x200000 == 0 and kernel.mem >= 0x1000000
    assert kernel.memsz == 0x2600000 and kernel.bufsz == 0x9000  # init_size of room, the payload as data
    assert kernel.end <= 0x7ffe0000  # the top of RAM
    assert kernel.data[:4] == struct.pack("<I", 28 * 512)  # the payload starts after the setup sectors
    assert segs["initrd"].mem >= 0x1000000 and segs["initrd"].bufsz == 0x5002
    for seg in result.segments:
        assert seg.mem % 4096 == 0 and seg.memsz % 4096 == 0
        assert any(start <= seg.mem and seg.end - 1 <= end for start, end, kind in fakes.FIRMWARE
                   if kind == "System RAM")
    assert [seg.mem for seg in result.segments] == sorted(seg.mem for seg in result.segments)
    assert result.entry == segs["stub"].mem and not result.crash


def test_nothing_is_placed_above_64_tib_where_a_kernel_without_5_level_paging_could_not_run(tmp_path):
    kernel = fakes.bzimage(str(tmp_path / "boot" / "vmlinuz"), xloadflags=0x3f)  # XLF_5LEVEL, not _ENABLED
    above = ((1 << 46), (1 << 46) + (1 << 30) - 1, "System RAM")  # a 5-level host's RAM past 64 TiB
    root = fakes.host(tmp_path / "host", firmware=fakes.FIRMWARE + (above,))
    result = x86_plan.plan(root, kernel, None, CMDLINE, crash=False)
    assert all(seg.end <= (1 << 46) for seg in result.segments)


def test_boot_params_fields(tmp_path, files):
    root = fakes.host(tmp_path / "host")
    result = x86_plan.plan(root, files[0], files[1], CMDLINE, crash=False)
    segs = by_name(result)
    params = segs["boot_params"].data
    header = open(files[0], "rb").read()
    assert params[0x1f1:0x26c] != header[0x1f1:0x26c]  # loader fields differ from the file ...
    assert params[0x202:0x206] == b"HdrS" and params[0x260:0x264] == header[0x260:0x264]  # ... the rest is copied
    assert params[0x210] == 0xD0  # type_of_loader: kexec
    cmd_ptr = struct.unpack_from("<I", params, 0x228)[0] | struct.unpack_from("<I", params, 0xc8)[0] << 32
    assert cmd_ptr == segs["boot_params"].mem + 4096
    assert params[4096:].split(b"\0")[0].decode() == CMDLINE
    ramdisk = struct.unpack_from("<I", params, 0x218)[0] | struct.unpack_from("<I", params, 0xc0)[0] << 32
    assert ramdisk == segs["initrd"].mem
    assert struct.unpack_from("<I", params, 0x21c)[0] == 0x5002
    assert struct.unpack_from("<Q", params, 0x070)[0] == fakes.RSDP  # acpi_rsdp_addr from the running boot
    assert params[0:0x40] == bytes(range(1, 0x41))  # screen_info
    assert params[0x1ef] == 0  # sentinel
    assert e820_of(params) == [(start, end - start + 1, 1 if kind == "System RAM" else 2)
                               for start, end, kind in fakes.FIRMWARE]


def test_stub_points_at_boot_params_and_the_64_bit_entry(tmp_path, files):
    result = x86_plan.plan(fakes.host(tmp_path / "host"), files[0], files[1], CMDLINE, crash=False)
    segs = by_name(result)
    code = segs["stub"].data
    assert struct.unpack_from("<Q", code, stub.BOOT_PARAMS_PTR)[0] == segs["boot_params"].mem
    assert struct.unpack_from("<Q", code, stub.KERNEL_ENTRY_PTR)[0] == segs["kernel"].mem + 0x200
    assert struct.unpack_from("<Q", code, stub.GDTR + 2)[0] == segs["stub"].mem + stub.GDT


def test_no_initrd_means_no_segment_and_zero_ramdisk(tmp_path, files):
    result = x86_plan.plan(fakes.host(tmp_path / "host"), files[0], None, CMDLINE, crash=False)
    segs = by_name(result)
    assert "initrd" not in segs and segs["boot_params"].data[0x218:0x220] == bytes(8)


@pytest.mark.parametrize("kind", ["default", "crash"])
def test_the_segments_hold_the_bytes_the_plan_read_once(tmp_path, files, kind):
    """plan.files keeps what was read, with who the file was; the kernel and initrd segments are those bytes."""
    result = x86_plan.plan(fakes.host(tmp_path / "host"), files[0], files[1], CMDLINE, crash=kind == "crash")
    segs = by_name(result)
    assert sorted(result.files) == ["initrd", "kernel"]
    assert result.files["kernel"].parts[-1] is segs["kernel"].data
    assert result.files["initrd"].parts == [segs["initrd"].data]
    for name, path in zip(("kernel", "initrd"), files):
        read = result.files[name]
        assert read.path == path and read.whole and b"".join(read.parts) == open(path, "rb").read()
        assert read.identity == identity(os.stat(path))
    assert sorted(x86_plan.plan(fakes.host(tmp_path / "host"), files[0], None, CMDLINE, crash=False).files) == [
        "kernel"]


def test_without_firmware_memmap_iomem_stands_in(tmp_path, files):
    root = fakes.host(tmp_path / "host", memmap=False)
    segs = by_name(x86_plan.plan(root, files[0], files[1], CMDLINE, crash=False))
    assert segs["kernel"].end <= 0x7ffe0000


def test_command_line_longer_than_cmdline_size_is_refused(tmp_path, files):
    with pytest.raises(KexecError, match="accepts at most 2047"):
        x86_plan.plan(fakes.host(tmp_path / "host"), files[0], files[1], "x" * 2048, crash=False)


def test_empty_initrd_is_refused(tmp_path, files):
    empty = fakes.write(tmp_path, "boot/empty", b"")
    with pytest.raises(KexecError, match="is empty"):
        x86_plan.plan(fakes.host(tmp_path / "host"), files[0], empty, CMDLINE, crash=False)


def test_crash_plan_stays_in_the_region_above_the_kernels_control_pages(tmp_path, files):
    root = fakes.host(tmp_path / "host")
    result = x86_plan.plan(root, files[0], files[1], CMDLINE, crash=True)
    low, high = fakes.CRASH
    reserve = x86_plan.control_reserve(x86_plan.memmap.firmware_memmap(root))
    assert reserve >= 1 << 20
    for seg in result.segments:
        assert low + reserve <= seg.mem and seg.end - 1 <= high
    assert low <= result.entry <= high and result.crash


def test_crash_plan_elfcorehdr_on_the_command_line_and_out_of_the_capture_map(tmp_path, files):
    root = fakes.host(tmp_path / "host")
    result = x86_plan.plan(root, files[0], files[1], "root=/dev/vda1 -- init-arg", crash=True)
    segs = by_name(result)
    elf = segs["elfcorehdr"]
    # First on the line, so it never follows "--" into init's arguments.
    assert result.cmdline == "elfcorehdr=%#x root=/dev/vda1 -- init-arg" % elf.mem
    header, phdrs = read_core(elf.data)
    assert header["type"] == 4 and [p["type"] for p in phdrs].count(4) == 3  # 2 CPUs + vmcoreinfo
    e820 = e820_of(segs["boot_params"].data)
    ram = [(addr, addr + size - 1) for addr, size, kind in e820 if kind == 1]
    assert (0x0, 0x9fbff) in ram  # the low 1 MiB the capture kernel may use
    assert all(not (start <= elf.mem <= end) for start, end in ram)
    assert sum(end - start + 1 for start, end in ram if start >= fakes.CRASH[0]) == (
        fakes.CRASH[1] - fakes.CRASH[0] + 1 - elf.memsz)
    # Nothing of the crashed kernel's own RAM is handed to the capture kernel.
    assert all(end < 0x100000 or start >= fakes.CRASH[0] for start, end in ram)
    assert (0xf0000, 0x10000, 2) in e820  # firmware reserved ranges stay visible


def test_crash_plan_without_a_region_is_refused(tmp_path, files):
    with pytest.raises(KexecError, match="no 'Crash kernel' region"):
        x86_plan.plan(fakes.host(tmp_path / "host", crash=None), files[0], files[1], CMDLINE, crash=True)


def test_crash_region_too_small_names_the_segment(tmp_path, files):
    root = fakes.host(tmp_path / "host", crash=(0x7e000000, 0x7effffff))  # 16 MiB, init_size is 38 MiB
    with pytest.raises(KexecError, match="no room for the kernel"):
        x86_plan.plan(root, files[0], files[1], CMDLINE, crash=True)


@pytest.mark.skipif(not os.path.exists(fakes.REAL_KERNEL), reason="no real kernel (roles/qemu_guest/files/build-image.sh)")
def test_real_kernel_plans_for_both_kinds(tmp_path):
    root = fakes.host(tmp_path / "host")
    for crash in (False, True):
        result = x86_plan.plan(root, fakes.REAL_KERNEL, None, CMDLINE, crash=crash)
        kernel = by_name(result)["kernel"]
        assert kernel.memsz >= kernel.bufsz > 1 << 20 and len(result.segments) == (4 if crash else 3)


def test_notes_say_what_is_not_done(tmp_path, files):
    root = fakes.host(tmp_path / "host")
    assert [note.split(":")[0] for note in x86_plan.plan(root, files[0], None, CMDLINE, crash=False).notes] == [
        "no digest check"]
    os.makedirs(os.path.join(root, "sys/firmware/efi"))
    notes = x86_plan.plan(root, files[0], None, CMDLINE, crash=False).notes
    assert any("EFI runtime services are not passed on" in note for note in notes)


def test_the_efi_note_follows_the_host_state(tmp_path, files, monkeypatch):
    """The plan asks KernelState.efi of its root (the check reboot_method uses too)."""
    root = fakes.host(tmp_path / "host")
    monkeypatch.setattr(KernelState, "efi", property(lambda self: self.root == root))
    notes = x86_plan.plan(root, files[0], None, CMDLINE, crash=False).notes
    assert any("EFI runtime services are not passed on" in note for note in notes)


@pytest.mark.parametrize("fields, source", [
    (dict(cut=1), "x86 setup header"),
    (dict(pe=True, syssize=0x8000 // 16, cut=16), "PE header (section .text ends there)"),
])
def test_a_truncated_kernel_is_refused_by_the_plan_itself(tmp_path, files, fields, source):
    """The plan reads the setup header again: it refuses a cut kernel even when called on its own."""
    root = fakes.host(tmp_path / "host")
    kernel = fakes.bzimage(str(tmp_path / "boot" / "vmlinuz-cut"), **fields)
    with pytest.raises(KexecError, match="kernel %s is truncated: its %s" % (re.escape(kernel), re.escape(source))):
        x86_plan.plan(root, kernel, files[1], CMDLINE, crash=False)


@pytest.mark.parametrize("crash, words", [
    (False, "the kernel refuses a kexec segment larger than half of its RAM (MemTotal 1966.4 MiB"),
    (True, "the largest 'Crash kernel' range of /proc/iomem is 256.0 MiB"),
])
def test_an_initrd_the_host_cannot_hold_is_refused_before_the_plan_reads_it(tmp_path, files, monkeypatch, crash,
                                                                            words):
    """The plan reads the initrd whole for its segment: its size is checked on that descriptor first."""
    root = fakes.host(tmp_path / "host")
    with open(files[1], "wb") as handle:
        handle.truncate(8 << 30)  # 8 GiB, sparse, on a 2 GiB host
    reads = ReadCounter(monkeypatch)
    with pytest.raises(KexecError) as info:
        x86_plan.plan(root, files[0], files[1], CMDLINE, crash=crash)
    assert info.value.msg.startswith("initrd %s is 8192.0 MiB" % files[1]) and words in info.value.msg
    assert reads.of(os.stat(files[1])) == [0]


def test_crash_header_covers_plugged_virtio_mem(tmp_path, files):
    """QEMU's virtio-mem with 256 MiB plugged: its System RAM (virtio_mem) lies below the virtio0 device
    and is not in the firmware map; the ELF core header has a PT_LOAD for each plugged block."""
    root = fakes.host(tmp_path / "host")
    fakes.write(root, "proc/iomem", fakes.iomem() + (
        "100000000-13fffffff : virtio0\n"
        "  100000000-107ffffff : System RAM (virtio_mem)\n"
        "  108000000-10fffffff : System RAM (virtio_mem)\n"))
    elf = by_name(x86_plan.plan(root, files[0], files[1], CMDLINE, crash=True))["elfcorehdr"]
    loads = [(p["paddr"], p["paddr"] + p["memsz"] - 1) for p in read_core(elf.data)[1] if p["type"] == 1]
    assert (0x100000000, 0x107ffffff) in loads and (0x108000000, 0x10fffffff) in loads
    assert all(p["vaddr"] == fakes.PAGE_OFFSET + p["paddr"] for p in read_core(elf.data)[1][4:])


# The running kernel's /proc/iomem where the firmware map says RAM up to 0x7ffdffff but the kernel keeps the
# top for something else: each must keep every segment of a normal load out of 0x7c000000-0x7ffdffff.
KEPT_OUT = {
    "memmap=64M$0x7c000000": "7c000000-7ffdffff : Reserved\n",
    "memmap=64M!0x7c000000": "7c000000-7ffdffff : Persistent Memory (legacy)\n  7c000000-7ffdffff : namespace0.0\n",
    "pmem as System RAM (kmem)": ("7c000000-7ffdffff : Persistent Memory (legacy)\n  7c000000-7ffdffff : dax0.0\n"
                                  "    7c000000-7ffdffff : System RAM (kmem)\n"),
    "mem=1984M": "",
}


@pytest.mark.parametrize("kept", sorted(KEPT_OUT))
def test_normal_segments_stay_in_what_the_running_kernel_calls_system_ram(tmp_path, files, kept):
    root = fakes.host(tmp_path / "host")
    text = fakes.iomem().replace("00100000-7ffdffff : System RAM", "00100000-7bffffff : System RAM")
    reserved = "7ffe0000-7fffffff : Reserved"
    fakes.write(root, "proc/iomem", text.replace(reserved, KEPT_OUT[kept] + reserved))
    result = x86_plan.plan(root, files[0], files[1], CMDLINE, crash=False)
    assert all(seg.end <= 0x7c000000 for seg in result.segments), result.describe()
    assert by_name(result)["kernel"].end == 0x7c000000  # top-down, right below the kept range
    # The new kernel is told the firmware's map, as kexec_file tells it; memmap= comes from its command line.
    assert e820_of(by_name(result)["boot_params"].data) == [
        (start, end - start + 1, 1 if kind == "System RAM" else 2) for start, end, kind in fakes.FIRMWARE]


def test_normal_segments_need_the_running_kernels_memory_map(tmp_path, files):
    root = fakes.host(tmp_path / "host")
    fakes.write(root, "proc/iomem", "00000000-00000000 : System RAM\n")
    with pytest.raises(KexecError, match="shows no addresses: placing the segments needs root"):
        x86_plan.plan(root, files[0], files[1], CMDLINE, crash=False)
