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
"""

from __future__ import annotations

import os
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular

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
MIN_LEGACY_PROTOCOL = 0x020c  # 64-bit entry, xloadflags (boot.rst, protocol 2.12)
ENTRY_64_OFFSET = 0x200       # the 64-bit entry: load address + 0x200


class SetupHeader:
    """One bzImage's setup header, its size and where its protected-mode part starts."""

    def __init__(self, path, raw, file_size):
        self.path = path
        self.raw = raw
        self.file_size = file_size
        for name, (offset, fmt) in FIELDS.items():
            setattr(self, name, struct.unpack_from("<" + fmt, raw, offset)[0])

    @property
    def is_bzimage(self):
        return self.header == b"HdrS" and self.boot_flag == 0xAA55

    @property
    def setup_size(self):
        """Bytes before the protected-mode kernel: (setup_sects, 0 meaning 4, + 1) sectors."""
        return ((self.setup_sects or 4) + 1) * SECTOR

    @property
    def kernel_size(self):
        """Bytes of the protected-mode kernel in the file."""
        return self.file_size - self.setup_size

    @property
    def header_end(self):
        """End of the setup header in the file: 0x202 plus the jump's offset byte (boot.rst)."""
        return 0x202 + (self.jump >> 8)

    def header_bytes(self):
        """The setup header as the boot loader copies it into boot_params (0x1f1 up to its end)."""
        return self.raw[HEADER_START:min(self.header_end, len(self.raw))]

    def protocol_text(self):
        return "%d.%02d" % (self.version >> 8, self.version & 0xff)


def read_header(path):
    """The setup header of ``path``; KexecError when it is not a complete bzImage."""
    with open_regular(path, "kernel") as handle:
        size = os.fstat(handle.fileno()).st_size
        raw = handle.read(HEADER_READ)
    if len(raw) < HEADER_READ:
        raise KexecError("%s is %d bytes: too short for an x86 boot header" % (path, len(raw)))
    header = SetupHeader(path, raw, size)
    if not header.is_bzimage:
        raise KexecError("%s is not an x86 bzImage (no 'HdrS' setup header with the 0xAA55 boot flag)" % path)
    check_complete(header)
    return header


def check_complete(header):
    """Refuse a truncated image: the header says how long its protected-mode part is.

    ``syssize`` counts 16-byte paragraphs of the protected-mode kernel. A
    truncated bzImage that a kernel accepted would decompress garbage at the
    kexec and crash (on hardware, often hang) the machine.
    """
    want = header.syssize * 16
    if header.kernel_size < want:
        raise KexecError("%s is truncated: its setup header says %d bytes of kernel follow the %d-byte setup, "
                         "the file has %d" % (header.path, want, header.setup_size, max(header.kernel_size, 0)))


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
    "ENTRY_64_OFFSET", "FIELDS", "MIN_LEGACY_PROTOCOL", "SetupHeader", "check_complete", "check_legacy_loadable",
    "read_header",
)
