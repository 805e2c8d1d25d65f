# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recognise a kernel image before handing it to the kernel.

Private to the kernel.kexec collection. The kernel is the final judge (it
parses the image inside kexec_file_load); this module catches the common
mistakes first with a message that names the file: not a kernel at all, a
truncated bzImage, an x86 kernel that cannot be loaded by kexec_file_load, a
command line longer than the new kernel accepts. The x86 setup header is read
by bzimage.py (Documentation/arch/x86/boot.rst).

Every load (file or legacy, default or crash, and kexec_reboot's) starts with
:func:`inspect` in the loader's plan, so a truncated bzImage is refused there,
before any syscall; other formats are left to the kernel as before.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage

# Bytes bzImage64_load() keeps free in the command line for "elfcorehdr=".
ELFCOREHDR_RESERVE = 30
# Before boot protocol 2.06 the limit was fixed.
OLD_CMDLINE_SIZE = 255

MISSING_KERNEL_HINT = "; give the path of a kernel image (for example /boot/vmlinuz-RELEASE)"
ARM64_MAGIC_OFFSET = 0x38  # b"ARM\x64" in the arm64 Image header


class KernelImage:
    """What the header says about a kernel file."""

    def __init__(self, path, kind, release=None, protocol=None, cmdline_max=None, x86_64_loadable=None):
        self.path = path
        self.kind = kind  # 'bzImage', 'arm64-Image', 'EFI-zboot', 'ELF', 'unknown'
        self.release = release
        self.protocol = protocol
        self.cmdline_max = cmdline_max  # characters, without the trailing NUL
        self.x86_64_loadable = x86_64_loadable

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
    return KernelImage(header.path, "bzImage", _bzimage_release(header, handle), protocol, cmdline_max, loadable)


def inspect(path):
    """Identify ``path``; raise KexecError when it cannot be a kernel, or is a truncated bzImage."""
    with open_regular(path, "kernel", MISSING_KERNEL_HINT) as handle:
        data = handle.read(bzimage.HEADER_READ)
        header = bzimage.complete_header(path, handle, data)
        if header is not None:
            return _bzimage(header, handle)
    if len(data) > ARM64_MAGIC_OFFSET + 4 and data[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == b"ARM\x64":
        return KernelImage(path, "arm64-Image")
    if data[:2] == b"MZ" and data[4:8] == b"zimg":
        return KernelImage(path, "EFI-zboot")
    if data[:4] == b"\x7fELF":
        return KernelImage(path, "ELF")
    if len(data) < 64 or data[:2] in (b"\x1f\x8b",) or data[:3] == b"BZh" or data[:4] == b"\x28\xb5\x2f\xfd":
        raise KexecError("%s is not a kernel image: no x86 boot header, arm64 Image header or ELF header "
                         "(is it an initrd or a compressed file?)" % path)
    return KernelImage(path, "unknown")


def check_for_file_load(image, cmdline, arch_name):
    """Refuse what x86_64's kexec_file_load would refuse, naming the reason."""
    if arch_name != "x86_64":
        return
    if image.kind != "bzImage":
        raise KexecError("%s is not an x86 bzImage (found %s); kexec on x86_64 needs a bzImage such as "
                         "/boot/vmlinuz-RELEASE" % (image.path, image.kind))
    if not image.x86_64_loadable:
        raise KexecError("%s cannot be loaded by kexec_file_load: it needs boot protocol 2.12 or later and a "
                         "64-bit kernel that can be loaded above 4 GiB" % image.path)
    length = len(cmdline.encode("utf-8")) + 1
    if length + ELFCOREHDR_RESERVE > image.cmdline_max:
        raise KexecError("command line is %d bytes; %s accepts at most %d (its cmdline_size %d, less %d kept "
                         "for elfcorehdr= and the NUL): drop arguments"
                         % (length - 1, image.path, image.cmdline_max - ELFCOREHDR_RESERVE - 1,
                            image.cmdline_max, ELFCOREHDR_RESERVE))


__all__ = ("KernelImage", "check_for_file_load", "inspect")
