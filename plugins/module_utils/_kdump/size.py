# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the crash reservation large enough for the capture kernel? Answered before anything crashes.

Private to the kernel.kexec collection. The rule, a floor rather than a proof
(a test crash is the proof)::

    required = kernel footprint + 4 x capture initrd + 64 MiB

- kernel footprint: the memory the kernel needs while it decompresses and boots,
  which the crash load reserves for it in the region: the x86 boot header's
  ``init_size`` (PAGE_ALIGN(init_size) is the kernel segment's memsz in
  kexec_file_load's bzImage64 loader), or the arm64 Image header's
  ``image_size``. Other formats: unknown, the check is skipped and says so.
- 4 x the initrd file: the compressed image loaded into the region, plus about
  three times as much once the capture kernel unpacks it into its rootfs.
- 64 MiB: what the capture kernel then needs to run: page tables, struct pages
  for the region, slab, the capture user space (systemd and udev where the
  distribution boots its own root, dracut's initramfs elsewhere) and
  makedumpfile's buffers.

A Debian 6.1 amd64 kernel has an init_size of 63.6 MiB: with a 12 MiB capture
initrd the rule asks for 176 MiB, so Debian's own ``384M-:128M`` (128M) is
reported too small, and the 256M of ``auto`` on a 2 GiB host fits.
"""

from __future__ import annotations

import os
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage

MIB = 1 << 20
PAGE_SIZE = 4096
MARGIN = 64 * MIB
INITRD_FACTOR = 4
ARM64_MAGIC = b"ARM\x64"  # at offset 56 of an arm64 Image (Documentation/arch/arm64/booting.rst)


def _page_align(size):
    return (size + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE


def mib(size):
    """Bytes as whole MiB, rounded up: '64M'."""
    return "%dM" % ((size + MIB - 1) // MIB)


def kernel_footprint(path):
    """(bytes, where the number comes from) for the kernel file ``path``; (None, why) when unknown."""
    # One open: the first bytes tell the format, and a bzImage's header is checked on the same descriptor
    # (a truncated one is said so, not called an unknown format).
    try:
        with open_regular(path, "kernel") as handle:
            head = handle.read(bzimage.HEADER_READ)
            header = bzimage.complete_header(path, handle, head)
    except KexecError as exc:
        return None, exc.msg
    if header is not None and header.init_size:
        return _page_align(header.init_size), "init_size of its x86 boot header"
    if len(head) >= 64 and head[56:60] == ARM64_MAGIC:
        image_size = struct.unpack_from("<Q", head, 16)[0]
        if image_size:
            return _page_align(image_size), "image_size of its arm64 Image header"
    return None, "%s is neither an x86 bzImage nor an arm64 Image: its memory footprint is unknown" % path


def _below(root, path):
    return os.path.join(root, path.lstrip("/"))


def capture_check(root, reserved, kernel, initrd, margin=MARGIN):
    """Whether ``reserved`` bytes of crash memory hold the capture kernel ``kernel`` with ``initrd``.

    ``kernel`` and ``initrd`` are host paths (None when the service has not found
    or built them); ``fits`` is None when the rule cannot be applied, with the
    reason in ``explanation``.
    """
    result = {"kernel": kernel, "kernel_memsz": None, "initrd": initrd, "initrd_size": None, "margin": margin,
              "required": None, "reserved": reserved, "fits": None, "explanation": ""}
    if not reserved:
        result.update(fits=False, explanation="no crash memory is reserved: the running kernel was booted without "
                                              "crashkernel= (or it did not fit in RAM)")
        return result
    if kernel is None:
        result["explanation"] = "the capture kernel was not found: the size check is skipped"
        return result
    memsz, source = kernel_footprint(_below(root, kernel))
    if memsz is None:
        result["explanation"] = "%s; the size check is skipped" % source
        return result
    result["kernel_memsz"] = memsz
    if initrd is None:
        result["explanation"] = ("the capture initrd does not exist yet (the service builds it when it first loads "
                                 "the crash kernel): the size check is skipped")
        return result
    initrd_size = os.path.getsize(_below(root, initrd))
    required = memsz + INITRD_FACTOR * initrd_size + margin
    fits = reserved >= required
    result.update(initrd_size=initrd_size, required=required, fits=fits)
    rule = ("kernel %s (%s) + %d x initrd %s (the image and its unpacked content) + %s margin = %s"
            % (mib(memsz), source, INITRD_FACTOR, mib(initrd_size), mib(margin), mib(required)))
    if fits:
        result["explanation"] = "%s of crash memory holds the capture kernel: %s" % (mib(reserved), rule)
    else:
        result["explanation"] = ("%s of crash memory is too small for the capture kernel, which needs %s: %s; "
                                 "reserve at least %s (crashkernel=)" % (mib(reserved), mib(required), rule,
                                                                         mib(required)))
    return result


__all__ = ("INITRD_FACTOR", "MARGIN", "capture_check", "kernel_footprint", "mib")
