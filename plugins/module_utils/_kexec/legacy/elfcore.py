# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ELF core header a capture kernel reads to build /proc/vmcore.

Private to the kernel.kexec collection. Nothing here is x86-specific but the
machine number the caller passes.

A capture kernel finds the crashed kernel's memory through ``elfcorehdr=``:
an ELF64 ET_CORE header whose program headers point at physical memory of
the crashed kernel. kexec_file_load builds it inside the kernel
(kernel/crash_core.c crash_prepare_elf64_headers, arch/x86/kernel/crash.c);
with kexec_load userspace builds it, as here, with the same content:

* one PT_NOTE per CPU: the per-CPU ``crash_notes`` buffer the panicking
  kernel fills with each CPU's registers (``/sys/devices/system/cpu/cpuN/crash_notes``);
* one PT_NOTE for ``vmcoreinfo`` (``/sys/kernel/vmcoreinfo``): symbol
  addresses and structure offsets that makedumpfile and crash need;
* one PT_LOAD for the kernel text mapping (virtual ``_text``, physical
  ``__pa_symbol(_text)``), which tools use to translate kernel addresses;
* one PT_LOAD per range of System RAM to dump, ``p_offset = p_paddr``
  (the capture kernel reads old memory at that physical address) and
  ``p_vaddr`` its direct-map address.

/proc/vmcore (fs/proc/vmcore.c) checks the identification bytes, ET_CORE,
the machine, EV_CURRENT and the header sizes, then merges the notes.
"""

from __future__ import annotations

import struct

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr, 64 bytes
PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")     # Elf64_Phdr, 56 bytes
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_CORE = 4
EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4
PF_RWX = 7


class Note:
    """A PT_NOTE: ``size`` bytes of notes at physical ``address``."""

    def __init__(self, address, size, what):
        self.address = address
        self.size = size
        self.what = what


class Load:
    """A PT_LOAD: ``size`` bytes of old memory at physical ``paddr``, mapped at ``vaddr``."""

    def __init__(self, paddr, vaddr, size, what):
        self.paddr = paddr
        self.vaddr = vaddr
        self.size = size
        self.what = what


def identification():
    return b"\x7fELF" + bytes((ELFCLASS64, ELFDATA2LSB, EV_CURRENT)) + bytes(9)


def build(notes, loads, machine=EM_X86_64):
    """The header bytes: ELF header, then the notes' and the loads' program headers."""
    count = len(notes) + len(loads)
    out = bytearray(ELF_HEADER.pack(
        identification(), ET_CORE, machine, EV_CURRENT,
        0,                      # e_entry
        ELF_HEADER.size,        # e_phoff: program headers follow at once
        0, 0,                   # e_shoff, e_flags
        ELF_HEADER.size, PROGRAM_HEADER.size, count,
        0, 0, 0))               # no section headers
    for note in notes:
        out += PROGRAM_HEADER.pack(PT_NOTE, 0, note.address, 0, note.address, note.size, note.size, 0)
    for load in loads:
        out += PROGRAM_HEADER.pack(PT_LOAD, PF_RWX, load.paddr, load.vaddr, load.paddr, load.size, load.size, 0)
    return bytes(out)


def size_for(count):
    """Bytes of a header with ``count`` program headers."""
    return ELF_HEADER.size + count * PROGRAM_HEADER.size


__all__ = ("EM_X86_64", "ET_CORE", "Load", "Note", "PT_LOAD", "PT_NOTE", "build", "size_for")
