# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recognise a kernel image before handing it to the kernel.

Private to the kernel.kexec collection. The kernel is the final judge (it
parses the image inside kexec_file_load); this module catches the common
mistakes first with a message that names the file: not a kernel at all, a
truncated bzImage, a file far larger than the kernel its header describes, an
x86 kernel that cannot be loaded by kexec_file_load, a command line longer
than the new kernel accepts. The x86 setup header is read by bzimage.py
(Documentation/arch/x86/boot.rst).

Every load (file or legacy, default or crash, check mode, and kexec_reboot's)
starts with :func:`examine` in the loader's plan, on the descriptor the
kernel's digest is then computed from: it reads the first HEADER_READ bytes
(and the version string a bzImage points at), nothing more, so a disk image or
a sparse file of many GiB named as the kernel is refused at once, before
anything reads or hashes it whole.

What is refused by the header alone:

* no header of any kernel format kexec loads: x86 bzImage, arm64 or RISC-V
  Image, EFI zboot or another PE file (the EFI stub), ELF. A file whose first
  bytes are all zero (a sparse or blank file) is refused on every
  architecture; other unknown files everywhere but on s390x, whose
  kexec_file_load takes any file as an image (s390_image_probe accepts all);
* on x86_64, anything but a bzImage: kexec_file_load knows only
  kexec_bzImage64_ops, and the legacy loader builds bzImage segments only;
* a file larger than its header allows, by the rule the kernel applies when it
  loads the image (sanity_check_segment_list() in kernel/kexec_core.c refuses
  a segment whose data is larger than its memory): for a bzImage, the setup
  sectors plus PAGE_ALIGN(init_size) (bzImage64_load in
  arch/x86/kernel/kexec-bzimage64.c: the kernel segment is the file after the
  setup sectors, its memory PAGE_ALIGN(init_size)); for an arm64 Image
  image_size + text_offset, for a RISC-V Image image_size (image_load in
  arch/{arm64,riscv}/kernel/kexec_image.c: the segment is the whole file),
  page-aligned to the largest page size (64 KiB). A signature appended to the
  image counts as the kernel counts it: it is part of the file it loads.
"""

from __future__ import annotations

import os
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage

# Bytes bzImage64_load() keeps free in the command line for "elfcorehdr=".
ELFCOREHDR_RESERVE = 30
# Before boot protocol 2.06 the limit was fixed.
OLD_CMDLINE_SIZE = 255

MISSING_KERNEL_HINT = "; give the path of a kernel image (for example /boot/vmlinuz-RELEASE)"
ARM64_MAGIC_OFFSET = 0x38  # b"ARM\x64" in the arm64 Image header
# The arm64 and RISC-V Image headers (Documentation/arch/arm64/booting.rst,
# Documentation/arch/riscv/boot-image-header.rst): text_offset at 0x08, image_size at 0x10,
# little-endian 64-bit; the magic at 0x38 (RISC-V: "RSC\x05", and "RISCV\0\0\0" at 0x30 before 0.2).
IMAGE_FIELDS = struct.Struct("<QQ")
RISCV_MAGIC = (0x38, b"RSC\x05")
RISCV_OLD_MAGIC = (0x30, b"RISCV\0\0\0")
# The largest page size of arm64 and RISC-V: memsz is page-aligned by kexec_add_buffer().
LARGEST_PAGE = 64 << 10
# Architectures whose kexec_file_load takes a file in no known format: s390's image loader
# probes nothing (arch/s390/kernel/kexec_image.c s390_image_probe returns 0).
ANY_FORMAT_ARCHES = ("s390x",)
# Formats each architecture loads, where that is only one (arch/x86/kernel/machine_kexec_64.c
# kexec_file_loaders[]; the legacy loader builds x86_64 bzImage segments only).
ONLY_FORMAT = {"x86_64": "bzImage"}


class KernelImage:
    """What the header says about a kernel file."""

    def __init__(self, path, kind, release=None, protocol=None, cmdline_max=None, x86_64_loadable=None,
                 xloadflags=0):
        self.path = path
        self.kind = kind  # 'bzImage', 'arm64-Image', 'riscv-Image', 'EFI-zboot', 'PE', 'ELF', 'unknown' (s390x)
        self.release = release
        self.protocol = protocol
        self.cmdline_max = cmdline_max  # characters, without the trailing NUL
        self.x86_64_loadable = x86_64_loadable
        self.xloadflags = xloadflags  # a bzImage's, 0 for other formats

    def as_dict(self):
        return {
            "path": self.path,
            "format": self.kind,
            "release": self.release,
            "boot_protocol": "%d.%02d" % (self.protocol >> 8, self.protocol & 0xff) if self.protocol else None,
            "cmdline_max": self.cmdline_max,
        }


def _bzimage_release(header, handle):
    """The release (first word of the version string) the header points at, read through ``handle``."""
    if not header.kernel_version:
        return None
    handle.seek(header.kernel_version + 0x200)
    raw = handle.read(256).split(b"\0", 1)[0]
    words = raw.decode("ascii", "replace").split()
    return words[0] if words else None


def _bzimage(header, handle):
    protocol = header.version
    cmdline_max = header.cmdline_size if protocol >= 0x206 else OLD_CMDLINE_SIZE
    both = bzimage.XLF_KERNEL_64 | bzimage.XLF_CAN_BE_LOADED_ABOVE_4G
    loadable = (protocol >= bzimage.MIN_LEGACY_PROTOCOL and bool(header.loadflags & bzimage.LOADED_HIGH)
                and header.xloadflags & both == both)
    return KernelImage(header.path, "bzImage", _bzimage_release(header, handle), protocol, cmdline_max, loadable,
                       header.xloadflags)


def inspect(path, arch_name=None):
    """Identify ``path`` by its header (see :func:`examine`)."""
    with open_regular(path, "kernel", MISSING_KERNEL_HINT) as handle:
        return examine(path, handle, arch_name)


def examine(path, handle, arch_name=None):
    """The KernelImage of the open kernel file ``handle``: its first bytes only, then back to its start.

    KexecError when it cannot be a kernel (for ``arch_name``, None for any), is
    a truncated bzImage, or is larger than its header allows (module docstring).
    """
    data = handle.read(bzimage.HEADER_READ)
    header = bzimage.complete_header(path, handle, data)
    image = _bzimage(header, handle) if header is not None else _other_format(path, data, arch_name)
    if image.kind != "bzImage":
        _check_image_size(image, data, os.fstat(handle.fileno()).st_size)
    wanted = ONLY_FORMAT.get(arch_name)
    if wanted and image.kind != wanted:
        raise _not_x86_bzimage(image)
    handle.seek(0)
    return image


def _other_format(path, data, arch_name):
    """The KernelImage of a file without an x86 setup header; KexecError for what is no kernel at all."""
    if _magic(data, (ARM64_MAGIC_OFFSET, b"ARM\x64")):
        return KernelImage(path, "arm64-Image")
    if _magic(data, RISCV_MAGIC) or _magic(data, RISCV_OLD_MAGIC):
        return KernelImage(path, "riscv-Image")
    if data[:2] == b"MZ" and data[4:8] == b"zimg":
        return KernelImage(path, "EFI-zboot")
    if data[:4] == b"\x7fELF":
        return KernelImage(path, "ELF")
    if len(data) < 64 or data[:2] in (b"\x1f\x8b",) or data[:3] == b"BZh" or data[:4] == b"\x28\xb5\x2f\xfd":
        raise KexecError("%s is not a kernel image: no x86 boot header, arm64 Image header or ELF header "
                         "(is it an initrd or a compressed file?)" % path)
    if not data.strip(b"\0"):
        raise KexecError("%s is not a kernel image: its first %d bytes are all zero (a sparse or blank file, a disk "
                         "image?); refused before reading the rest" % (path, len(data)))
    if data[:2] == b"MZ":
        return KernelImage(path, "PE")
    if arch_name in ANY_FORMAT_ARCHES:
        return KernelImage(path, "unknown")
    raise KexecError("%s is not a kernel image: no header of a format kexec loads (x86 bzImage, arm64 or RISC-V "
                     "Image, EFI zboot or PE, ELF) in its first %d bytes; refused before reading the rest"
                     % (path, len(data)))


def _magic(data, where):
    offset, magic = where
    return data[offset:offset + len(magic)] == magic


def _check_image_size(image, data, file_size):
    """Refuse an arm64 or RISC-V Image larger than the segment its header gives it (module docstring)."""
    if image.kind not in ("arm64-Image", "riscv-Image"):
        return
    text_offset, image_size = IMAGE_FIELDS.unpack_from(data, 8)
    if not image_size:
        return  # a kernel before 3.17 (arm64): the kernel refuses it itself, with EINVAL
    memsz = image_size + (text_offset if image.kind == "arm64-Image" else 0)
    limit = -(-memsz // LARGEST_PAGE) * LARGEST_PAGE
    if file_size > limit:
        raise KexecError("kernel %s is %d bytes, more than its %s header allows (image_size %d%s, %d bytes once "
                         "page-aligned): the kernel refuses a segment larger than its memory; refused before "
                         "reading or hashing it (a disk image, or a kernel with something appended?)"
                         % (image.path, file_size, image.kind, image_size,
                            " + text_offset %d" % text_offset if image.kind == "arm64-Image" else "", limit))


def _not_x86_bzimage(image):
    return KexecError("%s is not an x86 bzImage (found %s); kexec on x86_64 needs a bzImage such as "
                      "/boot/vmlinuz-RELEASE" % (image.path, image.kind))


def check_paging(image, arch_name, five_level):
    """Refuse an x86_64 kernel that cannot start under the running kernel's 5-level paging (``five_level``).

    A kexec leaves CR4.LA57 as the running kernel had it (relocate_kernel_64.S), and the
    entry stub and purgatory alike leave paging alone; a kernel's 64-bit entry switches
    to 4-level paging itself only when it has the code XLF_5LEVEL announces.
    kexec_file_load refuses any other with ENOEXEC (bzImage64_probe); by kexec_load it
    would fault as soon as it loads page tables of its own.
    """
    if arch_name != "x86_64" or image.kind != "bzImage" or not five_level or image.xloadflags & bzimage.XLF_5LEVEL:
        return
    raise KexecError("%s cannot start on this host: the running kernel uses 5-level paging (la57 in /proc/cpuinfo), "
                     "which a kexec keeps on, and the image's xloadflags %#x lack XLF_5LEVEL (it cannot switch to "
                     "4-level paging itself); load a newer kernel, or boot the running one with no5lvl"
                     % (image.path, image.xloadflags))


def check_for_file_load(image, cmdline, arch_name):
    """Refuse what x86_64's kexec_file_load would refuse, naming the reason."""
    if arch_name != "x86_64":
        return
    if image.kind != "bzImage":
        raise _not_x86_bzimage(image)
    if not image.x86_64_loadable:
        raise KexecError("%s cannot be loaded by kexec_file_load: it needs boot protocol 2.12 or later and a "
                         "64-bit kernel that can be loaded above 4 GiB" % image.path)
    length = len(cmdline.encode("utf-8")) + 1
    if length + ELFCOREHDR_RESERVE > image.cmdline_max:
        raise KexecError("command line is %d bytes; %s accepts at most %d (its cmdline_size %d, less %d kept "
                         "for elfcorehdr= and the NUL): drop arguments"
                         % (length - 1, image.path, image.cmdline_max - ELFCOREHDR_RESERVE - 1,
                            image.cmdline_max, ELFCOREHDR_RESERVE))


__all__ = ("KernelImage", "check_for_file_load", "check_paging", "examine", "inspect")
