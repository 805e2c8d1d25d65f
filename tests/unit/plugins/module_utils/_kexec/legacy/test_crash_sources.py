"""What a crash load reads from the running kernel: crash region, notes, KASLR layout, RAM to dump."""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy import crash_sources

from ....fakes import host as host_fakes
from . import legacy_fakes as fakes


def test_crash_region_is_read_and_the_high_one_is_last(tmp_path):
    root = fakes.host(tmp_path, low_crash=(0x20000000, 0x2fffffff))
    assert crash_sources.crash_regions(root) == [(0x20000000, 0x2fffffff), fakes.CRASH]


def test_hidden_addresses_are_refused(tmp_path):
    root = fakes.host(tmp_path)
    fakes.write(root, "proc/iomem", "00000000-00000000 : System RAM\n  00000000-00000000 : Crash kernel\n")
    with pytest.raises(KexecError, match="needs root"):
        crash_sources.crash_regions(root)


def test_cpu_notes_in_cpu_order(tmp_path):
    root = fakes.host(tmp_path, cpus=12)
    notes = crash_sources.cpu_notes(root)
    assert [note.what for note in notes][:3] == ["crash_notes of cpu0", "crash_notes of cpu1", "crash_notes of cpu2"]
    assert notes[11].address == 0x7dc1d000 + 11 * 0x1000 + 0x4d8 and notes[11].size == 368


def test_no_crash_notes_is_refused(tmp_path):
    root = fakes.host(tmp_path, cpus=0)
    with pytest.raises(KexecError, match="crash_notes"):
        crash_sources.cpu_notes(root)


def test_vmcoreinfo_size_is_hex(tmp_path):
    note = crash_sources.vmcoreinfo_note(fakes.host(tmp_path))
    assert (note.address, note.size) == (0x1f5cd000, 0x1024)


def test_kcore_gives_kaslr_page_offset_and_text(tmp_path):
    mapping = crash_sources.kernel_mapping(fakes.host(tmp_path))
    assert mapping.page_offset == fakes.PAGE_OFFSET
    assert (mapping.text_vaddr, mapping.text_paddr, mapping.text_size) == (
        fakes.TEXT_VADDR, fakes.TEXT_PADDR, fakes.TEXT_SIZE)


def test_kcore_without_text_is_refused(tmp_path):
    root = fakes.host(tmp_path, kcore_data=fakes.kcore(text=None))
    with pytest.raises(KexecError, match="no direct-map RAM or no kernel text"):
        crash_sources.kernel_mapping(root)


def test_dump_ranges_leave_out_low_memory_and_crash_regions(tmp_path):
    root = fakes.host(tmp_path, low_crash=(0x20000000, 0x2fffffff))
    ranges = crash_sources.dump_ranges(root, crash_sources.crash_regions(root))
    assert ranges == [(0x100000, 0x1fffffff), (0x30000000, 0x6effffff), (0x7f000000, 0x7ffdffff)]


def test_elf_contents_map_ram_through_the_direct_map(tmp_path):
    root = fakes.host(tmp_path)
    notes, loads = crash_sources.elf_contents(root, crash_sources.crash_regions(root))
    assert [note.what for note in notes] == ["crash_notes of cpu0", "crash_notes of cpu1", "vmcoreinfo"]
    assert loads[0].what == "kernel text" and loads[0].vaddr == fakes.TEXT_VADDR
    assert [(load.paddr, load.vaddr - load.paddr) for load in loads[1:]] == [
        (0x100000, fakes.PAGE_OFFSET), (0x7f000000, fakes.PAGE_OFFSET)]


# A 2 GiB guest with QEMU's virtio-mem device (256 MiB plugged, in two 128 MiB blocks) at 4 GiB, and CXL
# memory that dax/kmem onlined below a Soft Reserved window: the kernel's walk finds both.
DRIVER_MANAGED = """\
100000000-13fffffff : virtio0
  100000000-107ffffff : System RAM (virtio_mem)
  108000000-10fffffff : System RAM (virtio_mem)
140000000-17fffffff : Soft Reserved
  140000000-17fffffff : dax0.0
    140000000-17fffffff : System RAM (kmem)
"""


def test_dump_ranges_take_driver_managed_ram_below_a_device_or_window(tmp_path):
    root = fakes.host(tmp_path)
    fakes.write(root, "proc/iomem", fakes.iomem() + DRIVER_MANAGED)
    ranges = crash_sources.dump_ranges(root, crash_sources.crash_regions(root))
    assert ranges == [(0x100000, 0x6effffff), (0x7f000000, 0x7ffdffff),
                      (0x100000000, 0x107ffffff), (0x108000000, 0x10fffffff), (0x140000000, 0x17fffffff)]


def test_ram_inside_system_ram_is_not_dumped_twice(tmp_path):
    """Kernel code, Crash kernel and a driver's RAM inside firmware RAM lie in a System RAM parent: the walk
    takes the parent once and goes on after its end."""
    root = fakes.host(tmp_path)
    fakes.write(root, "proc/iomem", fakes.iomem().replace(
        "7ffe0000-7fffffff : Reserved", "  40000000-47ffffff : System RAM (kmem)\n7ffe0000-7fffffff : Reserved"))
    assert crash_sources.dump_ranges(root, crash_sources.crash_regions(root)) == [
        (0x100000, 0x6effffff), (0x7f000000, 0x7ffdffff)]


def test_dump_ranges_need_the_addresses(tmp_path):
    root = fakes.host(tmp_path)
    fakes.write(root, "proc/iomem", "00000000-00000000 : System RAM\n")
    with pytest.raises(KexecError, match="shows no addresses: a crash load needs root"):
        crash_sources.dump_ranges(root, [fakes.CRASH])


def test_crash_notes_that_are_a_fifo_are_one_error_without_hanging(tmp_path, no_hang):
    root = fakes.host(tmp_path)
    path = os.path.join(root, "sys/devices/system/cpu/cpu1/crash_notes")
    host_fakes.no_regular_file(path, "fifo")
    with pytest.raises(KexecError, match="^%s is a FIFO, not a regular file$" % path):
        crash_sources.cpu_notes(root)


def test_a_kcore_that_is_a_directory_is_one_error(tmp_path):
    root = fakes.host(tmp_path)
    path = os.path.join(root, "proc/kcore")
    host_fakes.no_regular_file(path, "directory")
    with pytest.raises(KexecError, match="^kernel core %s is a directory, not a regular file$" % path):
        crash_sources.kernel_mapping(root)


def test_a_kcore_it_may_not_read_asks_for_root_or_method_file(tmp_path, monkeypatch):
    root = fakes.host(tmp_path)
    host_fakes.deny_reads(monkeypatch, os.path.join(root, "proc/kcore"))
    with pytest.raises(Unreadable, match=r"^/proc/kcore cannot be read: a crash load needs root \(become: true\); "
                       "under lockdown use method=file$"):
        crash_sources.kernel_mapping(root)
