# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The zero page (struct boot_params) a boot loader hands to an x86 kernel.

Private to the kernel.kexec collection. Offsets from
arch/x86/include/uapi/asm/bootparam.h and Documentation/arch/x86/zero-page.rst
(Linux 6.1). What goes in, and from where:

* the setup header, copied from the new kernel's file (boot.rst: 0x1f1 to the
  header's end), then the loader's fields: type_of_loader, code32_start,
  cmd_line_ptr, ramdisk_image/size with their ext_ high halves;
* the e820 table the new kernel will trust for its memory: its first 128
  entries (what the zero page holds); :func:`e820_extension` packs the rest
  for a SETUP_E820_EXT setup_data node (setup_data.py);
* from the running boot (``/sys/kernel/boot_params/data``): acpi_rsdp_addr, so
  the kernel finds ACPI without scanning (on EFI hosts it could not); the first
  0x40 bytes of screen_info (console geometry, or the EFI framebuffer); and
  hardware_subarch;
* on EFI hosts, what efi.py found: the RSDP (from systab where the running
  value is 0), and where EFI runtime can be handed on, efi_info and
  secure_boot, pointing at the EFI memory map that plan.py places after the
  command line, so the new kernel keeps EFI runtime services as after
  kexec_file;
* hdr.setup_data: the first node of the setup_data list plan.py places after
  the command line (setup_data.Tail), or 0.
"""

from __future__ import annotations

import os
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.bzimage import HEADER_START

SIZE = 0x1000
SCREEN_INFO = 0x000
SCREEN_INFO_SIZE = 0x40
ACPI_RSDP_ADDR = 0x070
EXT_RAMDISK_IMAGE = 0x0c0
EXT_RAMDISK_SIZE = 0x0c4
EXT_CMD_LINE_PTR = 0x0c8
EFI_INFO = 0x1c0  # struct efi_info, 32 bytes
E820_ENTRIES = 0x1e8
SECURE_BOOT = 0x1ec
SENTINEL = 0x1ef
TYPE_OF_LOADER = 0x210
CODE32_START = 0x214
RAMDISK_IMAGE = 0x218
RAMDISK_SIZE = 0x21c
CMD_LINE_PTR = 0x228
HARDWARE_SUBARCH = 0x23c
SETUP_DATA = 0x250  # hdr.setup_data: the physical address of the first struct setup_data
E820_TABLE = 0x2d0
E820_ENTRY = struct.Struct("<QQI")  # addr, size, type: 20 bytes, packed
E820_MAX_ENTRIES_ZEROPAGE = 128
LOADER_KEXEC = 0xD0  # boot.rst: loader ID 0xD, kexec-tools; version 0


def _lo_hi(value):
    return value & 0xffffffff, value >> 32


def e820_extension(e820):
    """SETUP_E820_EXT's payload: the ``e820`` entries past the zero page's 128, packed; b"" when all fit."""
    return b"".join(E820_ENTRY.pack(*entry) for entry in e820[E820_MAX_ENTRIES_ZEROPAGE:])


def build(header, e820, cmd_line_ptr, initrd_address=0, initrd_size=0, kernel_address=0, running=None,
          firmware=None, efi_map_address=0, setup_data=0):
    """boot_params bytes (4096) for ``header`` (a bzimage.SetupHeader).

    ``e820``: (address, size, type) triples; the first 128 go into the page.
    ``running``: the running boot's zero page, or None where it is not
    exposed. ``firmware``: an efi.Firmware on EFI hosts, whose EFI memory map
    the caller places at the physical ``efi_map_address``; None on BIOS hosts.
    ``setup_data``: the physical address of the first setup_data node, or 0.
    """
    page = bytearray(SIZE)
    copied = header.header_bytes()
    page[HEADER_START:HEADER_START + len(copied)] = copied
    page[TYPE_OF_LOADER] = LOADER_KEXEC
    struct.pack_into("<I", page, CODE32_START, kernel_address & 0xffffffff)
    lo, hi = _lo_hi(cmd_line_ptr)
    struct.pack_into("<I", page, CMD_LINE_PTR, lo)
    struct.pack_into("<I", page, EXT_CMD_LINE_PTR, hi)
    lo, hi = _lo_hi(initrd_address)
    struct.pack_into("<I", page, RAMDISK_IMAGE, lo)
    struct.pack_into("<I", page, EXT_RAMDISK_IMAGE, hi)
    lo, hi = _lo_hi(initrd_size)
    struct.pack_into("<I", page, RAMDISK_SIZE, lo)
    struct.pack_into("<I", page, EXT_RAMDISK_SIZE, hi)
    in_page = e820[:E820_MAX_ENTRIES_ZEROPAGE]
    page[E820_ENTRIES] = len(in_page)
    for index, entry in enumerate(in_page):
        E820_ENTRY.pack_into(page, E820_TABLE + index * E820_ENTRY.size, *entry)
    if running is not None and len(running) >= SIZE:
        page[SCREEN_INFO:SCREEN_INFO + SCREEN_INFO_SIZE] = running[SCREEN_INFO:SCREEN_INFO + SCREEN_INFO_SIZE]
        page[ACPI_RSDP_ADDR:ACPI_RSDP_ADDR + 8] = running[ACPI_RSDP_ADDR:ACPI_RSDP_ADDR + 8]
        page[HARDWARE_SUBARCH:HARDWARE_SUBARCH + 4] = running[HARDWARE_SUBARCH:HARDWARE_SUBARCH + 4]
    if firmware is not None:
        struct.pack_into("<Q", page, ACPI_RSDP_ADDR, firmware.rsdp)
    if firmware is not None and firmware.runtime is not None:
        efi_info = firmware.runtime.efi_info(efi_map_address)
        page[EFI_INFO:EFI_INFO + len(efi_info)] = efi_info
        page[SECURE_BOOT] = firmware.runtime.secure_boot
    struct.pack_into("<Q", page, SETUP_DATA, setup_data)
    # sentinel stays 0: a non-zero sentinel makes the kernel wipe fields it thinks a loader forgot.
    return bytes(page)


def read_running(root):
    """The running kernel's zero page (/sys/kernel/boot_params/data), or None where it does not exist.

    Read as efi.py reads sysfs, through _io.read_regular: anything but a
    regular file in its place is refused at once, never read.
    """
    path = os.path.join(root, "sys/kernel/boot_params/data")
    if not os.path.lexists(path):
        return None
    return read_regular(path, "the running kernel's zero page", SIZE)


__all__ = (
    "ACPI_RSDP_ADDR", "E820_MAX_ENTRIES_ZEROPAGE", "EFI_INFO", "LOADER_KEXEC", "SECURE_BOOT", "SETUP_DATA", "SIZE",
    "build", "e820_extension", "read_running",
)
