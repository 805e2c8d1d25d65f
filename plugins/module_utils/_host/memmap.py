# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The machine's physical memory map, as the firmware gave it and as the kernel uses it.

Private to the kernel.kexec collection. Host state, read-only.

A loader that builds its own segments needs two views of memory:

* ``firmware_memmap`` is the table the firmware handed to the running kernel
  (``/sys/firmware/memmap/N/{start,end,type}``, CONFIG_FIRMWARE_MEMMAP: the
  kernel's e820_table_firmware, boot_params' 128 entries and any
  SETUP_E820_EXT ones). It is what the next kernel is told (its e820 table),
  as kexec_file tells it (kexec-bzimage64.c ``setup_e820_entries`` copies
  e820_table_kexec, the same table but for ranges the kernel reserved for
  kexec itself): ``memmap=`` and ``mem=`` change only the running kernel's
  own table, and the new kernel gets them from its own command line. Where
  the directory is missing, the top-level lines of ``/proc/iomem`` stand in.
* /proc/iomem (iomem.py) is the running kernel's own view: the System RAM it
  manages, which a crash dump must cover, and which ``memmap=`` and ``mem=``
  take RAM out of.

:func:`kexec_ram` is where a normal load may put its segments: RAM in both.

Both are lists of :class:`iomem.Region` (``end`` inclusive, as the kernel prints it).
"""

from __future__ import annotations

import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Missing
from ansible_collections.kernel.kexec.plugins.module_utils._host import iomem
from ansible_collections.kernel.kexec.plugins.module_utils._host.iomem import Region
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_text

FIRMWARE_MEMMAP = "sys/firmware/memmap"

# The type names arch/x86/kernel/e820.c (e820_type_to_string) prints, and their e820 numbers.
E820_TYPES = {
    "System RAM": 1,
    "Reserved": 2,
    "reserved": 2,
    "ACPI Tables": 3,
    "ACPI Non-volatile Storage": 4,
    "Unusable memory": 5,
    "Persistent Memory (legacy)": 12,
    "Persistent Memory": 7,
    "Soft Reserved": 0xefffffff,
}
E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4


def _read_text(path):
    """Text of ``path`` stripped; :class:`Missing` where it does not exist, a KexecError where it cannot be read."""
    return read_text(path).strip()


def firmware_memmap(root="/"):
    """The firmware memory map, sorted by start; ``/proc/iomem`` top level if sysfs lacks it."""
    base = os.path.join(root, FIRMWARE_MEMMAP)
    try:
        names = os.listdir(base)
    except (FileNotFoundError, NotADirectoryError):
        return iomem.top_level(iomem.read_addresses(root, "reading the memory map (no /sys/firmware/memmap)"))
    regions = []
    for name in names:
        entry = os.path.join(base, name)
        try:
            start = int(_read_text(os.path.join(entry, "start")), 16)
            end = int(_read_text(os.path.join(entry, "end")), 16)
            kind = _read_text(os.path.join(entry, "type"))
        except (Missing, ValueError):
            raise KexecError("%s is not a firmware memory map entry (start, end, type)" % entry)
        regions.append(Region(start, end, kind))
    return sorted(regions, key=lambda region: region.start)


def spans(regions):
    """(start, end_inclusive) of each region."""
    return [(region.start, region.end) for region in regions]


def subtract(ranges, holes):
    """(start, end_inclusive) ranges minus the holes."""
    out = list(ranges)
    for hole_start, hole_end in holes:
        kept = []
        for start, end in out:
            if hole_end < start or hole_start > end:
                kept.append((start, end))
                continue
            if start < hole_start:
                kept.append((start, hole_start - 1))
            if end > hole_end:
                kept.append((hole_end + 1, end))
        out = kept
    return out


def intersect(ranges, others):
    """The parts of the (start, end_inclusive) ``ranges`` that ``others`` cover too, sorted."""
    return sorted((max(start, other_start), min(end, other_end))
                  for start, end in ranges for other_start, other_end in others
                  if max(start, other_start) <= min(end, other_end))


def kexec_ram(firmware, regions):
    """Where a normal load may place segments: RAM of the firmware map that /proc/iomem's ``regions``
    show as the running kernel's own System RAM, not driver-managed.

    kexec_file places segments in /proc/iomem's System RAM alone and skips
    driver-managed RAM, which the new kernel may not have (kernel/kexec_file.c
    ``locate_mem_hole_callback``). That leaves out ``memmap=`` regions (shown
    as ``Reserved`` or ``Persistent Memory (legacy)``), RAM above ``mem=`` and
    ranges the kernel reserved. Keeping to the firmware map's RAM as well keeps
    segments inside the e820 table the new kernel is given.
    """
    managed = [region for region in iomem.system_ram(regions) if not region.driver_managed]
    return intersect(spans(iomem.system_ram(firmware)), spans(managed))


def e820_type(region):
    """The e820 type number for a region's name (unknown names count as reserved)."""
    return E820_TYPES.get(region.name, E820_RESERVED)


def _mem_total_kib(text):
    """The ``MemTotal`` line of /proc/meminfo's ``text``, in KiB; None without one."""
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        if key == "MemTotal" and value.split() and value.split()[0].isdigit():
            return int(value.split()[0])
    return None


def mem_total(root="/"):
    """``MemTotal`` of /proc/meminfo in bytes (the kernel's totalram_pages() times the page size);
    None where /proc/meminfo is missing, unreadable or has no MemTotal line."""
    try:
        kib = _mem_total_kib(_read_text(os.path.join(root, "proc/meminfo")))
    except (OSError, KexecError):
        return None
    return None if kib is None else kib * 1024


def total_ram_pages(root="/", page_size=4096):
    """``MemTotal`` of /proc/meminfo in pages: the kernel's totalram_pages()."""
    try:
        text = _read_text(os.path.join(root, "proc/meminfo"))
    except Missing:
        raise KexecError("/proc/meminfo is missing: cannot tell how much RAM the host has")
    kib = _mem_total_kib(text)
    if kib is None:
        raise KexecError("/proc/meminfo has no MemTotal line")
    return kib * 1024 // page_size


__all__ = (
    "E820_ACPI", "E820_NVS", "E820_RAM", "E820_RESERVED", "E820_TYPES",
    "e820_type", "firmware_memmap", "intersect", "kexec_ram", "mem_total", "spans", "subtract", "total_ram_pages",
)
