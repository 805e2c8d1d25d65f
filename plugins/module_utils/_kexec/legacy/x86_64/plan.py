# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The x86_64 segment plan for kexec_load(2): kernel, initrd, boot_params, entry stub, elfcorehdr.

Private to the kernel.kexec collection.

Placement follows the kernel's own kexec_file bzImage loader
(arch/x86/kernel/kexec-bzimage64.c), top-down in free memory:

* kernel: the compressed protected-mode part of the bzImage as it is, in
  ``PAGE_ALIGN(init_size)`` bytes (room to decompress in place), aligned to
  ``kernel_alignment``, at or above max(1 MiB, ``pref_address``): a kernel
  below ``pref_address`` (LOAD_PHYSICAL_ADDR) would decompress itself there,
  outside a crash region;
* initrd: at or above 16 MiB;
* boot_params with the command line right after it, then 16-aligned (as
  kexec_file lays it out) the EFI memory map on EFI hosts that hand EFI
  runtime on (efi.py) and the setup_data list (setup_data.py): SETUP_E820_EXT
  with the memory map's entries past 128, SETUP_EFI; at or above 0x3000;
* the entry stub (stub.py): one page;
* crash loads only: the ELF core header (elfcore.py), and ``elfcorehdr=`` first
  on the command line (as kexec_file does, so it never lands after ``--``);
  where the kernel has crash hotplug, its segment has room for the kernel to
  rewrite it as CPUs and memory come and go (crash_hotplug.py);
  on EFI hosts that cannot hand EFI runtime on, ``acpi_rsdp=`` right after it,
  as kexec-tools adds it, for capture kernels that do not read acpi_rsdp_addr.

Normal loads take free RAM where the firmware memory map and the running
kernel's /proc/iomem both say System RAM (memmap.kexec_ram: not in a
``memmap=`` region, above ``mem=`` or in driver-managed RAM, as kexec_file);
the segments are copied to their places only at the kexec, when nothing else
runs. The new kernel's e820 is the firmware map, as kexec_file gives it.

Crash loads take everything from the highest ``Crash kernel`` range, leaving
its bottom to the kernel, which allocates its control pages and identity-map
page tables there at load time (kimage_alloc_crash_control_pages, from the
region's start upwards). The capture kernel's e820 holds the low 1 MiB, the
ACPI, NVS and reserved ranges, any low crash range, and the crash region minus
the ELF header (arch/x86/kernel/crash.c crash_setup_memmap_entries), so it
touches no memory the dump needs.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import iomem, memmap
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_whole
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage, crash_hotplug, ramdisk
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy import crash_sources, elfcore
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.segments import (
    PAGE_SIZE, MemoryHoles, Segment, check_segments, describe, page_align,
)
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import boot_params, efi, setup_data, stub

MIN_BOOTPARAM_ADDR = 0x3000
MIN_KERNEL_LOAD_ADDR = 0x100000
MIN_INITRD_LOAD_ADDR = 0x1000000
GIB = 1 << 30


class LegacyPlan:
    """Segments and entry for one kexec_load call, and what to show before making it."""

    def __init__(self, segments, entry, cmdline, crash, notes=(), files=None, header_from=None,
                 update_elfcorehdr=False):
        self.segments = segments
        self.entry = entry
        self.cmdline = cmdline
        self.crash = crash
        self.notes = list(notes)
        # "kernel" and "initrd": the _io.FileRead whose bytes the segments hold, for their digests.
        self.files = dict(files or {})
        # Crash loads: what the ELF core header was built from (crash_hotplug.header_inputs), and whether its
        # segment has the room the kernel needs to keep it current (then kexec_load asks it to).
        self.header_from = header_from
        self.update_elfcorehdr = update_elfcorehdr

    def table(self):
        """The segment table check and diff mode show."""
        return {"entry": "%#x" % self.entry, "segments": [seg.as_dict() for seg in self.segments],
                "cmdline": self.cmdline, "notes": self.notes}

    def describe(self):
        return describe(self.table())

    def syscall_segments(self):
        return [(seg.data, seg.mem, seg.memsz) for seg in self.segments]


def control_reserve(firmware):
    """Bytes to leave free at the crash region's bottom for the kernel's control and page-table pages.

    The kernel identity-maps RAM for the jump: one page-table page per GiB up to
    the top of RAM (the worst case, 2 MiB pages), one per 512 GiB, and 32 more
    for the control code, the top levels, ACPI tables and the vmcoreinfo copy;
    never less than 1 MiB.
    """
    top = max([region.end + 1 for region in iomem.system_ram(firmware)] or [GIB])
    pages = -(-top // GIB) + -(-top // (512 * GIB)) + 32
    return max(1 << 20, page_align(pages * PAGE_SIZE))


def capture_e820(firmware, crash_regions, region, elf_mem, elf_size):
    """The capture kernel's memory map: what it may use, and the firmware ranges it must see."""
    entries = []
    for item in firmware:
        kind = memmap.e820_type(item)
        if kind == memmap.E820_RAM and item.start < crash_sources.LOW_MEMORY_END:
            end = min(item.end, crash_sources.LOW_MEMORY_END - 1)
            entries.append((item.start, end - item.start + 1, memmap.E820_RAM))
        elif kind in (memmap.E820_ACPI, memmap.E820_NVS, memmap.E820_RESERVED):
            entries.append((item.start, item.end - item.start + 1, kind))
    for low_start, low_end in crash_regions[:-1]:
        entries.append((low_start, low_end - low_start + 1, memmap.E820_RAM))
    for start, end in memmap.subtract([region], [(elf_mem, elf_mem + elf_size - 1)]):
        if end - start + 1 >= PAGE_SIZE:
            entries.append((start, end - start + 1, memmap.E820_RAM))
    return sorted(entries)


def params_tail(e820, runtime):
    """What follows the command line: the EFI memory map where EFI runtime is handed on, then setup_data."""
    nodes = []
    extension = boot_params.e820_extension(e820)
    if extension:
        nodes.append((setup_data.SETUP_E820_EXT, extension))
    if runtime:
        nodes.append((setup_data.SETUP_EFI, runtime.setup_efi()))
    return setup_data.Tail(runtime.memory_map() if runtime else b"", nodes)


def describe_params(e820, runtime, tail):
    """What the boot_params segment holds, for the segment table."""
    extra = len(e820) - boot_params.E820_MAX_ENTRIES_ZEROPAGE
    parts = ["boot_params (zero page, %d e820 entries%s)"
             % (len(e820), ", %d of them in SETUP_E820_EXT" % extra if extra > 0 else ""), "the command line"]
    if runtime:
        parts.append("the EFI memory map (%d descriptors)" % len(runtime.descriptors))
    if tail.nodes:
        parts.append("%s setup_data" % tail.describe())
    return "%s and %s" % (", ".join(parts[:-1]), parts[-1])


def plan(root, kernel, initrd, cmdline, crash):
    """A LegacyPlan for ``kernel`` (and ``initrd``) with ``cmdline``; checked as the kernel will check it."""
    # Each file is read once, through one descriptor; the segments hold those very bytes, and
    # plan.files keeps them with that descriptor's identity, so the loader's digest is of them.
    # The cheap checks run on that descriptor before the read: the kernel's setup header (read_image),
    # the initrd's size against what this host can hold (ramdisk.check).
    header, kernel_read = bzimage.read_image(kernel)
    bzimage.check_legacy_loadable(header)
    kernel_data = kernel_read.parts[-1]  # the protected-mode kernel, after the setup sectors
    files = {"kernel": kernel_read}
    if initrd:
        files["initrd"] = read_whole(initrd, "initrd",
                                     check=lambda handle: ramdisk.check(root, initrd, handle, crash))
    initrd_data = files["initrd"].parts[0] if initrd else b""
    if initrd and not initrd_data:
        raise KexecError("initrd %s is empty" % initrd)
    firmware = memmap.firmware_memmap(root)
    running = boot_params.read_running(root)
    host_efi = efi.read(root, running, header)
    notes = ["no digest check: the segments are not verified after the kernel copies them (like kexec -i)"]
    notes += host_efi.notes() if host_efi else []
    if crash:
        regions = crash_sources.crash_regions(root)
        if not regions:
            raise KexecError("no 'Crash kernel' region in /proc/iomem: boot with crashkernel= first "
                             "(kernel.kexec.kdump_reserve)")
        region = regions[-1]
        reserve = control_reserve(firmware)
        holes = MemoryHoles([(region[0] + reserve, region[1])])
        lowest = region[0]
    else:
        holes = MemoryHoles(memmap.kexec_ram(firmware, iomem.read_addresses(root, "placing the segments")))
        lowest = 0
        region = None

    kernel_mem = holes.take("kernel", page_align(max(header.init_size, len(kernel_data))),
                            align=header.kernel_alignment, minimum=max(MIN_KERNEL_LOAD_ADDR, header.pref_address))
    initrd_mem = holes.take("initrd", page_align(len(initrd_data)), minimum=MIN_INITRD_LOAD_ADDR) if initrd else 0

    segments = []
    header_from, room = None, None
    if crash:
        sources = crash_sources.header_sources(root)
        header_from = crash_hotplug.header_inputs(*sources)
        elf_notes, elf_loads = crash_sources.elf_contents(root, regions, sources)
        elf = elfcore.build(elf_notes, elf_loads)
        room = crash_hotplug.elfcorehdr_size(root)
        # The kernel's rebuilt header (a note per possible CPU, the ranges of the moment) must fit in memsz.
        elf_size = page_align(len(elf) + (room or 0))
        elf_mem = holes.take("ELF core header", elf_size, minimum=lowest)
        rsdp = host_efi.capture_rsdp() if host_efi else ""
        cmdline = " ".join(part for part in ("elfcorehdr=%#x" % elf_mem, rsdp, cmdline) if part)
        e820 = capture_e820(firmware, regions, region, elf_mem, elf_size)
        holds = "ELF core header: %d notes, %d memory ranges" % (len(elf_notes), len(elf_loads))
        if room is not None:
            holds += "; room for the kernel to rewrite it on CPU and memory hotplug (crash_elfcorehdr_size %d)" % room
        segments.append(Segment("elfcorehdr", elf, elf_mem, elf_size, holds))
    else:
        e820 = [(item.start, item.end - item.start + 1, memmap.e820_type(item)) for item in firmware]

    line = cmdline.encode("utf-8")
    if len(line) > header.cmdline_size:
        raise KexecError("command line is %d bytes; %s accepts at most %d (its cmdline_size): drop arguments"
                         % (len(line), kernel, header.cmdline_size))
    runtime = host_efi.runtime if host_efi else None
    tail = params_tail(e820, runtime)
    tail_offset = setup_data.align(boot_params.SIZE + len(line) + 1)
    params_size = tail_offset + tail.size
    params_mem = holes.take("boot_params", page_align(params_size), minimum=max(MIN_BOOTPARAM_ADDR, lowest))
    stub_mem = holes.take("entry stub", stub.PAGE, minimum=max(MIN_BOOTPARAM_ADDR, lowest))
    tail_mem = params_mem + tail_offset
    params = boot_params.build(header, e820, params_mem + boot_params.SIZE, initrd_mem, len(initrd_data),
                               kernel_mem, running, host_efi, tail_mem, tail.first(tail_mem))
    params += line + b"\0"
    if tail.size:
        params = params.ljust(tail_offset, b"\0") + tail.data(tail_mem)
    entry = kernel_mem + bzimage.ENTRY_64_OFFSET
    segments += [
        Segment("kernel", kernel_data, kernel_mem, page_align(max(header.init_size, len(kernel_data))),
                "%s: compressed kernel, room to decompress (init_size %#x)" % (kernel, header.init_size)),
        Segment("boot_params", params, params_mem, page_align(params_size), describe_params(e820, runtime, tail)),
        Segment("stub", stub.build(stub_mem, params_mem, entry), stub_mem, stub.PAGE,
                "entry stub: GDT, segments, stack, rsi=%#x, jump to %#x" % (params_mem, entry)),
    ]
    if initrd:
        segments.append(Segment("initrd", initrd_data, initrd_mem, page_align(len(initrd_data)), initrd))
    segments.sort(key=lambda seg: seg.mem)
    result = LegacyPlan(segments, stub_mem, cmdline, crash, notes, files, header_from, room is not None)
    check_segments(segments, result.entry, memmap.total_ram_pages(root), crash_region=region)
    return result


__all__ = ("LegacyPlan", "capture_e820", "control_reserve", "describe_params", "params_tail", "plan")
