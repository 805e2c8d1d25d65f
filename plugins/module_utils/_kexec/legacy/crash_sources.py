# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a crash load needs to know about the running kernel, read from /proc and /sys.

Private to the kernel.kexec collection. Host state, read-only.

* the crash region the capture kernel is loaded into: the highest
  ``Crash kernel`` range of /proc/iomem (``crashk_res``; with ``,high`` the
  low range is ``crashk_low_res``, which segments may not use);
* the per-CPU ``crash_notes`` and ``vmcoreinfo`` note addresses;
* the direct-map base and the kernel text mapping, both moved by KASLR: read
  from /proc/kcore's program headers (fs/proc/kcore.c gives RAM entries
  ``p_paddr = __pa(vaddr)`` and the text entry ``p_paddr = __pa_symbol(_text)``),
  as kexec-tools does;
* the System RAM to dump: what kexec_file dumps (arch/x86/kernel/crash.c
  ``prepare_elf_headers``): the System RAM of /proc/iomem by the kernel's
  walk (iomem.system_ram: at any depth, driver-managed RAM such as
  ``System RAM (virtio_mem)`` or ``System RAM (kmem)`` included, nothing
  counted twice), minus the low 1 MiB (reserved since Linux 5.x and reused by
  the capture kernel) and minus the crash regions, low and high
  (``elf_header_exclude_ranges``); the ELF header lies in the high one.
"""

from __future__ import annotations

import os
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Missing, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._host.memmap import subtract
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular, read_text
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import crash_hotplug
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.elfcore import Load, Note

LOW_MEMORY_END = 1 << 20
START_KERNEL_MAP = 0xffffffff80000000  # __START_KERNEL_map: the kernel text mapping starts here
KCORE_NO_PADDR = 0xffffffffffffffff
CPU_DIR = "sys/devices/system/cpu"


def _read(root, path):
    """Text of ``root/path`` stripped, or None where it does not exist; KexecError when it cannot be read as text."""
    text = read_text(os.path.join(root, path), missing=None)
    return None if text is None else text.strip()


def crash_regions(root):
    """All ``Crash kernel`` ranges as (start, end_inclusive), sorted; the last is crashk_res."""
    regions = KernelState(root).crash_regions()
    if any(region.hidden for region in regions):
        raise KexecError("/proc/iomem hides the crash region's addresses: a crash load needs root (become: true)")
    return sorted((region.start, region.end) for region in regions)


def cpu_notes(root, cpus=None):
    """A PT_NOTE per CPU that has crash_notes (``cpus``, crash_hotplug.crash_cpus by default), in CPU order."""
    notes = []
    for cpu in crash_hotplug.crash_cpus(root) if cpus is None else cpus:
        address = _read(root, "%s/cpu%d/crash_notes" % (CPU_DIR, cpu))
        if address is None:
            continue
        size = _read(root, "%s/cpu%d/crash_notes_size" % (CPU_DIR, cpu))
        notes.append(Note(int(address, 16), int(size) if size else 1024, "crash_notes of cpu%d" % cpu))
    if not notes:
        raise KexecError("no /sys/devices/system/cpu/cpuN/crash_notes: the running kernel was built without "
                         "CONFIG_CRASH_DUMP support for kexec, a crash load cannot describe its CPUs")
    return notes


def vmcoreinfo_note(root):
    """The PT_NOTE for vmcoreinfo (``/sys/kernel/vmcoreinfo``: "address size", both hex)."""
    text = _read(root, "sys/kernel/vmcoreinfo")
    if not text:
        raise KexecError("/sys/kernel/vmcoreinfo is missing: the running kernel has no CONFIG_CRASH_CORE, "
                         "a dump would not be readable")
    address, size = text.split()[:2]
    return Note(int(address, 16), int(size, 16), "vmcoreinfo")


class KernelMapping:
    """The direct-map base and the kernel text mapping of the running kernel."""

    def __init__(self, page_offset, text_vaddr, text_paddr, text_size):
        self.page_offset = page_offset
        self.text_vaddr = text_vaddr
        self.text_paddr = text_paddr
        self.text_size = text_size


def parse_kcore_headers(data):
    """KernelMapping from the start of /proc/kcore (its ELF and program headers)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2:
        raise KexecError("/proc/kcore does not start with an ELF64 header")
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    page_offset = text = None
    for index in range(phnum):
        at = phoff + index * phentsize
        if at + 56 > len(data):
            raise KexecError("/proc/kcore's program headers are cut short")
        p_type, _flags, _offset, vaddr, paddr, _filesz, memsz, _align = struct.unpack_from("<IIQQQQQQ", data, at)
        if p_type != 1 or paddr == KCORE_NO_PADDR:
            continue
        if vaddr >= START_KERNEL_MAP:
            text = (vaddr, paddr, memsz)
        elif page_offset is None:
            page_offset = vaddr - paddr
    if page_offset is None or text is None:
        raise KexecError("/proc/kcore shows no direct-map RAM or no kernel text: cannot place the dump's memory")
    return KernelMapping(page_offset, *text)


def kernel_mapping(root):
    path = os.path.join(root, "proc/kcore")
    try:
        with open_regular(path, "kernel core") as handle:
            head = handle.read(64)
            if len(head) < 64:
                raise KexecError("/proc/kcore is empty: cannot read the kernel's memory layout")
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            handle.seek(0)
            data = handle.read(phoff + phentsize * phnum)
    except Missing:
        raise KexecError("/proc/kcore is missing (CONFIG_PROC_KCORE): cannot read where KASLR put the kernel")
    except Unreadable:
        raise Unreadable("/proc/kcore", advice="a crash load needs root (become: true); under lockdown use method=file")
    return parse_kcore_headers(data)


def header_sources(root):
    """(CPUs with crash notes, System RAM ranges): what the header is built from, read once, so the load
    record can say what it describes (crash_hotplug.header_inputs)."""
    return crash_hotplug.crash_cpus(root), crash_hotplug.system_ram(root)


def dump_ranges(root, crash, ram=None):
    """System RAM the dump covers (``ram``, read here by default): all of it but the low 1 MiB and the crash
    regions."""
    ram = crash_hotplug.system_ram(root) if ram is None else ram
    return subtract(ram, [(0, LOW_MEMORY_END - 1)] + list(crash))


def elf_contents(root, crash, sources=None):
    """The notes and loads of the crashed kernel's ELF core header, from ``sources`` (header_sources)."""
    cpus, ram = header_sources(root) if sources is None else sources
    mapping = kernel_mapping(root)
    notes = cpu_notes(root, cpus) + [vmcoreinfo_note(root)]
    loads = [Load(mapping.text_paddr, mapping.text_vaddr, mapping.text_size, "kernel text")]
    loads += [Load(start, mapping.page_offset + start, end - start + 1, "System RAM")
              for start, end in dump_ranges(root, crash, ram)]
    return notes, loads


__all__ = ("KernelMapping", "cpu_notes", "crash_regions", "dump_ranges", "elf_contents", "header_sources",
           "kernel_mapping", "parse_kcore_headers", "vmcoreinfo_note")
