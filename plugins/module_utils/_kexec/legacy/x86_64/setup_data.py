# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What follows the command line in the boot_params segment: the EFI memory map and the setup_data list.

Private to the kernel.kexec collection.

A boot loader hands the kernel extra data as a singly linked list of
``struct setup_data {u64 next; u32 type; u32 len; u8 data[len]}``
(arch/x86/include/uapi/asm/bootparam.h, boot protocol 2.09+): the zero
page's ``hdr.setup_data`` holds the physical address of the first node, each
``next`` that of the following one, 0 ends the list. The kernel walks it
early (arch/x86/kernel/setup.c ``parse_setup_data``), and so does the
decompressor, to keep its KASLR choice off every node (``mem_avoid_overlap``
in arch/x86/boot/compressed/kaslr.c). The nodes written here:

* ``SETUP_E820_EXT`` (1): the memory map's entries past the 128 the zero page
  holds, packed as in ``e820_table`` (``e820__memory_setup_extended`` appends
  them). kexec-tools writes it; the kernel's own kexec_file still cuts the map
  at 128 (kexec-bzimage64.c ``setup_e820_entries``, "TODO: Pass entries more
  than E820_MAX_ENTRIES_ZEROPAGE in bootparams setup data");
* ``SETUP_EFI`` (4): see efi.py.

:class:`Tail` lays the EFI memory map (where there is one) and the nodes out
one after the other. kexec_file starts the area after the command line and
its first node on 16-byte boundaries and packs the rest back to back; here
every node starts on one, because a node is as long as its payload (20 bytes
an e820 entry): the bytes up to the boundary are zero padding, and ``next``
points at where the padding ends.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<QII")  # struct setup_data: next, type, len; the payload follows at once
SETUP_E820_EXT = 1
SETUP_EFI = 4
ALIGN = 16
NAMES = {SETUP_E820_EXT: "SETUP_E820_EXT", SETUP_EFI: "SETUP_EFI"}


def align(offset):
    return (offset + ALIGN - 1) & ~(ALIGN - 1)


class Tail:
    """The EFI memory map, then the setup_data nodes, each 16-byte aligned from the tail's start.

    ``nodes`` are (type, payload) pairs, listed in the order the kernel will
    walk them. The tail's own start must be 16-byte aligned too.
    """

    def __init__(self, efi_map=b"", nodes=()):
        self.efi_map = efi_map
        self.nodes = list(nodes)
        self.offsets = []  # of each node, from the tail's start
        end = len(efi_map)
        for _kind, payload in self.nodes:
            self.offsets.append(align(end))
            end = self.offsets[-1] + HEADER.size + len(payload)
        self.size = end

    def first(self, address):
        """``hdr.setup_data`` for the tail placed at ``address``: its first node, 0 without one."""
        return address + self.offsets[0] if self.nodes else 0

    def data(self, address):
        """The tail's bytes for a tail placed at the physical ``address``."""
        out = bytearray(self.efi_map)
        nexts = [address + offset for offset in self.offsets[1:]] + [0]
        for (kind, payload), offset, following in zip(self.nodes, self.offsets, nexts):
            out += bytes(offset - len(out))
            out += HEADER.pack(following, kind, len(payload)) + payload
        return bytes(out)

    def describe(self):
        """The nodes' names, in list order, for the segment table."""
        return " and ".join(NAMES.get(kind, str(kind)) for kind, _payload in self.nodes)


__all__ = ("ALIGN", "HEADER", "SETUP_E820_EXT", "SETUP_EFI", "Tail", "align")
