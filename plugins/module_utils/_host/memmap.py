# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The machine's physical memory map, as the firmware gave it and as the kernel uses it.

Private to the kernel.kexec collection. Host state, read-only.

A loader that builds its own segments needs two views of memory:

* ``firmware_memmap`` is the table the firmware handed to the running kernel
  (``/sys/firmware/memmap/N/{start,end,type}``, CONFIG_FIRMWARE_MEMMAP). It is
  what the next kernel must be told (its e820 table) and where free RAM is.
  Where the directory is missing, the top-level lines of ``/proc/iomem`` stand in.
* ``top_level_iomem`` is the running kernel's own view: the ``System RAM`` it
  manages, which a crash dump must cover.

Both are lists of :class:`Region` (``end`` inclusive, as the kernel prints it).
"""

from __future__ import annotations

import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import Region

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
SYSTEM_RAM = "System RAM"


def _read_text(path):
    try:
        with open(path, "r") as handle:
            return handle.read().strip()
    except PermissionError:
        raise KexecError("%s cannot be read: run as root (become: true)" % path)


def firmware_memmap(root="/"):
    """The firmware memory map, sorted by start; ``/proc/iomem`` top level if sysfs lacks it."""
    base = os.path.join(root, FIRMWARE_MEMMAP)
    try:
        names = os.listdir(base)
    except (FileNotFoundError, NotADirectoryError):
        return top_level_iomem(root)
    regions = []
    for name in names:
        entry = os.path.join(base, name)
        try:
            start = int(_read_text(os.path.join(entry, "start")), 16)
            end = int(_read_text(os.path.join(entry, "end")), 16)
            kind = _read_text(os.path.join(entry, "type"))
        except (FileNotFoundError, NotADirectoryError, ValueError):
            raise KexecError("%s is not a firmware memory map entry (start, end, type)" % entry)
        regions.append(Region(start, end, kind))
    return sorted(regions, key=lambda region: region.start)


def top_level_iomem(root="/"):
    """The unindented lines of ``/proc/iomem``: RAM, reserved ranges, PCI windows.

    Addresses are shown only to root: without it every range reads 0-0, which
    this refuses rather than plan memory on zeros.
    """
    path = os.path.join(root, "proc/iomem")
    try:
        with open(path, "r") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise KexecError("neither /sys/firmware/memmap nor /proc/iomem exists: cannot read the memory map")
    regions = []
    for line in lines:
        if not line or line[0].isspace():
            continue
        span, sep, name = line.partition(" : ")
        start, dash, end = span.partition("-")
        if not (sep and dash):
            continue
        regions.append(Region(int(start, 16), int(end, 16), name.strip()))
    if regions and all(region.hidden for region in regions):
        raise KexecError("/proc/iomem shows no addresses: reading the memory map needs root (become: true)")
    return regions


def system_ram(regions):
    """The ``System RAM`` regions of a map."""
    return [region for region in regions if region.name == SYSTEM_RAM]


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
    except FileNotFoundError:
        raise KexecError("/proc/meminfo is missing: cannot tell how much RAM the host has")
    kib = _mem_total_kib(text)
    if kib is None:
        raise KexecError("/proc/meminfo has no MemTotal line")
    return kib * 1024 // page_size


__all__ = (
    "E820_ACPI", "E820_NVS", "E820_RAM", "E820_RESERVED", "E820_TYPES", "SYSTEM_RAM",
    "e820_type", "firmware_memmap", "mem_total", "system_ram", "top_level_iomem", "total_ram_pages",
)
