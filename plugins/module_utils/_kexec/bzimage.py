# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The x86 boot protocol's setup header of a bzImage, read and checked.

Private to the kernel.kexec collection. Offsets and rules are those of
Documentation/arch/x86/boot.rst and arch/x86/include/uapi/asm/bootparam.h
(Linux 6.1). A bzImage is: ``setup_sects + 1`` sectors of real-mode setup
(sector 0 holds the setup header at 0x1f1), then the protected-mode kernel,
still compressed, which the 64-bit entry at its load address + 0x200
decompresses itself. The legacy loader loads that part as it is.

A kernel built with the EFI stub is also a PE/COFF image: sector 0 starts
with "MZ", 0x3c points at the "PE\\0\\0" header, and its section table (which
the build keeps below 0x1f1) says where each section's bytes lie in the file.
Both headers say how long the file must be; :func:`check_complete` refuses a
file shorter than either (a signed kernel is longer: its signature follows).
:func:`check_plausible` refuses a file longer than kexec_file_load would take
it: the setup sectors plus PAGE_ALIGN(init_size) (bzImage64_load).
"""

from __future__ import annotations

import os
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import FileRead, open_regular

SECTOR = 512
HEADER_START = 0x1f1
HEADER_READ = 0x270  # through init_size (0x260) and handover_offset (0x264)

# Setup header fields: offset in the file (= offset in boot_params), struct format.
FIELDS = {
    "setup_sects": (0x1f1, "B"),
    "syssize": (0x1f4, "I"),       # protected-mode code, in 16-byte paragraphs
    "boot_flag": (0x1fe, "H"),     # 0xAA55
    "jump": (0x200, "H"),          # its second byte + 0x202 is the header's end
    "header": (0x202, "4s"),       # b"HdrS"
    "version": (0x206, "H"),
    "kernel_version": (0x20e, "H"),
    "type_of_loader": (0x210, "B"),
    "loadflags": (0x211, "B"),
    "code32_start": (0x214, "I"),
    "ramdisk_image": (0x218, "I"),
    "ramdisk_size": (0x21c, "I"),
    "cmd_line_ptr": (0x228, "I"),
    "initrd_addr_max": (0x22c, "I"),
    "kernel_alignment": (0x230, "I"),
    "relocatable_kernel": (0x234, "B"),
    "min_alignment": (0x235, "B"),
    "xloadflags": (0x236, "H"),
    "cmdline_size": (0x238, "I"),
    "hardware_subarch": (0x23c, "I"),
    "payload_offset": (0x248, "I"),
    "payload_length": (0x24c, "I"),
    "setup_data": (0x250, "Q"),
    "pref_address": (0x258, "Q"),
    "init_size": (0x260, "I"),
}

LOADED_HIGH = 0x01
XLF_KERNEL_64 = 0x01
XLF_CAN_BE_LOADED_ABOVE_4G = 0x02
XLF_EFI_KEXEC = 0x10  # the kernel takes EFI runtime from a kexec loader (efi_info, SETUP_EFI)
# The 64-bit entry switches paging modes itself, so a kexec under 5-level paging can start it (image.check_paging).
# Its sibling XLF_5LEVEL_ENABLED (0x40) allows a place above 64 TiB, where the legacy plan never puts anything
# (segments.DESTINATION_LIMIT), so that one needs no check.
XLF_5LEVEL = 0x20
MIN_LEGACY_PROTOCOL = 0x020c  # 64-bit entry, xloadflags (boot.rst, protocol 2.12)
INIT_SIZE_PROTOCOL = 0x020a   # init_size is in the header from protocol 2.10 on
PAGE_SIZE = 4096
ENTRY_64_OFFSET = 0x200       # the 64-bit entry: load address + 0x200

# PE/COFF (the EFI stub's header): its offset at 0x3c; after "PE\0\0" the COFF header
# (NumberOfSections at +6, SizeOfOptionalHeader at +20), the optional header from +24,
# then 40-byte section headers: Name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData.
PE_POINTER = 0x3c
PE_SECTION = struct.Struct("<8sIIII")
PE_SECTION_SIZE = 40


class SetupHeader:
    """One bzImage's setup header, its size and where its protected-mode part starts."""

    def __init__(self, path, raw, file_size):
        self.path = path
        self.raw = raw
        self.file_size = file_size
        # A file cut inside its header reads as zeros past its end (check_complete refuses it).
        padded = raw.ljust(HEADER_READ, b"\0")
        for name, (offset, fmt) in FIELDS.items():
            setattr(self, name, struct.unpack_from("<" + fmt, padded, offset)[0])

    @property
    def setup_size(self):
        """Bytes before the protected-mode kernel: (setup_sects, 0 meaning 4, + 1) sectors."""
        return ((self.setup_sects or 4) + 1) * SECTOR

    @property
    def kernel_size(self):
        """Bytes of the protected-mode kernel in the file."""
        return self.file_size - self.setup_size

    @property
    def promised_size(self):
        """Bytes the setup header says the file has: the setup, then ``syssize`` 16-byte paragraphs."""
        return self.setup_size + self.syssize * 16

    @property
    def header_end(self):
        """End of the setup header in the file: 0x202 plus the jump's offset byte (boot.rst)."""
        return 0x202 + (self.jump >> 8)

    def header_bytes(self):
        """The setup header as the boot loader copies it into boot_params (0x1f1 up to its end)."""
        return self.raw[HEADER_START:min(self.header_end, len(self.raw))]

    def protocol_text(self):
        return "%d.%02d" % (self.version >> 8, self.version & 0xff)


def has_setup_header(raw):
    """Whether ``raw``, a file's first bytes, carries the setup header's "HdrS" and the 0xAA55 boot flag."""
    return len(raw) >= 0x206 and raw[0x202:0x206] == b"HdrS" and struct.unpack_from("<H", raw, 0x1fe)[0] == 0xAA55


def complete_header(path, handle, raw):
    """The checked setup header of the open file ``handle`` whose first bytes are ``raw``; None if no bzImage.

    ``raw`` is what the caller read from the start (HEADER_READ bytes, fewer at
    the end of a short file); the file's size comes from fstat of the same
    descriptor, so nothing more is read. KexecError when the file is truncated.
    """
    if not has_setup_header(raw):
        return None
    header = SetupHeader(path, raw, os.fstat(handle.fileno()).st_size)
    check_complete(header)
    check_plausible(header)
    return header


def _bzimage_header(path, handle, raw):
    """complete_header(), or KexecError saying why ``path`` is not a complete bzImage."""
    header = complete_header(path, handle, raw)
    if header is None and len(raw) < HEADER_READ:
        raise KexecError("%s is %d bytes: too short for an x86 boot header" % (path, len(raw)))
    if header is None:
        raise KexecError("%s is not an x86 bzImage (no 'HdrS' setup header with the 0xAA55 boot flag)" % path)
    return header


def read_header(path):
    """The setup header of ``path``; KexecError when it is not a complete bzImage."""
    with open_regular(path, "kernel") as handle:
        return _bzimage_header(path, handle, handle.read(HEADER_READ))


def read_image(path):
    """(setup header, FileRead) of the bzImage ``path``: all its bytes, read once through one descriptor.

    The FileRead's last part is the protected-mode kernel (everything after the
    setup sectors), the legacy loader's kernel segment as it is; the parts
    before it are the setup sectors. KexecError as read_header().
    """
    with open_regular(path, "kernel") as handle:
        read = FileRead(path, handle)
        header = _bzimage_header(path, handle, read.read(HEADER_READ))
        read.read(max(0, header.setup_size - HEADER_READ))
        read.read()
        return header, read.done()


def pe_data_end(raw):
    """(end, section name): where the last section's bytes end in the file, by the PE header in ``raw``.

    None when ``raw`` has no PE header (a kernel without the EFI stub), or its
    section table does not lie within ``raw`` (the kernel's build keeps it in
    sector 0, below the setup header; anything else is not checked). Sections
    without file data (SizeOfRawData 0, an old kernel's .bss) do not count;
    SizeOfImage is the size in memory, not in the file, and is not used.
    """
    if raw[:2] != b"MZ" or len(raw) < PE_POINTER + 4:
        return None
    pe = struct.unpack_from("<I", raw, PE_POINTER)[0]
    if pe + 24 > len(raw) or raw[pe:pe + 4] != b"PE\0\0":
        return None
    count, optional_size = struct.unpack_from("<H", raw, pe + 6)[0], struct.unpack_from("<H", raw, pe + 20)[0]
    table = pe + 24 + optional_size
    if table + count * PE_SECTION_SIZE > len(raw):
        return None
    ends = []
    for index in range(count):
        name, _vsize, _vaddr, raw_size, raw_pointer = PE_SECTION.unpack_from(raw, table + index * PE_SECTION_SIZE)
        if raw_size:
            ends.append((raw_pointer + raw_size, name.rstrip(b"\0").decode("ascii", "replace")))
    return max(ends) if ends else None


def check_complete(header):
    """Refuse a truncated image: its setup header, and its PE header where it has one, say how long it is.

    ``syssize`` counts 16-byte paragraphs of the protected-mode kernel after the
    setup sectors; the PE section table says where the last section's bytes end.
    kexec_file_load without signature enforcement accepts a truncated bzImage,
    and the kexec into it decompresses garbage and crashes (on hardware, often
    hangs) the machine: refused here, before any syscall.
    """
    _refuse_shorter(header, header.promised_size,
                    "its x86 setup header (%d bytes of setup, then syssize %d paragraphs of 16 bytes)"
                    % (header.setup_size, header.syssize))
    pe_end = pe_data_end(header.raw)
    if pe_end is not None:
        _refuse_shorter(header, pe_end[0], "its PE header (section %s ends there)" % pe_end[1])


def check_plausible(header):
    """Refuse a file larger than the kernel its header describes, before anything reads it whole.

    arch/x86/kernel/kexec-bzimage64.c bzImage64_load() makes the file after the
    setup sectors one segment (bufsz), in PAGE_ALIGN(init_size) bytes of memory
    (memsz), and sanity_check_segment_list() (kernel/kexec_core.c) refuses a
    segment whose bufsz exceeds its memsz: kexec_file_load refuses such a file
    with EINVAL, a signed kernel included (its signature is part of the file).
    init_size is a few times the compressed kernel, so a real kernel is far
    below the bound; a disk image or a kernel with gigabytes appended is not.
    Headers before protocol 2.10, or with init_size 0, give no bound.
    """
    if header.version < INIT_SIZE_PROTOCOL or not header.init_size:
        return
    limit = header.setup_size + -(-header.init_size // PAGE_SIZE) * PAGE_SIZE
    if header.file_size > limit:
        raise KexecError("kernel %s is %d bytes, more than its x86 setup header allows: %d bytes of setup and at most "
                         "init_size %d (page-aligned) of kernel, %d bytes, as kexec_file_load takes it; refused before "
                         "reading or hashing it (a disk image, or a kernel with something appended?)"
                         % (header.path, header.file_size, header.setup_size, header.init_size, limit))


def _refuse_shorter(header, want, source):
    if header.file_size < want:
        raise KexecError("kernel %s is truncated: %s promises %d bytes, the file has %d; refused before loading "
                         "(a kexec into it would crash the machine): copy or reinstall the kernel"
                         % (header.path, source, want, header.file_size))


def check_legacy_loadable(header):
    """What a 64-bit kexec_load of the compressed kernel needs from the header (kexec-tools' bzImage64 probe)."""
    problems = []
    if header.version < MIN_LEGACY_PROTOCOL:
        problems.append("boot protocol %s (2.12 or later needed for the 64-bit entry)" % header.protocol_text())
    if not header.loadflags & LOADED_HIGH:
        problems.append("loadflags without LOADED_HIGH (the kernel must run at 1 MiB or above)")
    if header.xloadflags & (XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G) != XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G:
        problems.append("xloadflags %#x (needs XLF_KERNEL_64 and XLF_CAN_BE_LOADED_ABOVE_4G)" % header.xloadflags)
    if not header.relocatable_kernel:
        problems.append("not relocatable")
    if header.version >= MIN_LEGACY_PROTOCOL and not header.init_size:
        problems.append("init_size is 0")
    if header.version >= MIN_LEGACY_PROTOCOL and (header.kernel_alignment & (header.kernel_alignment - 1)):
        problems.append("kernel_alignment %#x is not a power of two" % header.kernel_alignment)
    if problems:
        raise KexecError("%s cannot be loaded by the legacy kexec_load: %s" % (header.path, "; ".join(problems)))


__all__ = (
    "ENTRY_64_OFFSET", "FIELDS", "HEADER_READ", "MIN_LEGACY_PROTOCOL", "SetupHeader", "XLF_5LEVEL", "check_complete",
    "check_legacy_loadable", "check_plausible", "complete_header", "has_setup_header", "pe_data_end", "read_header", "read_image",
)
