# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An initrd the target cannot hold, refused by its size before anything reads it.

Private to the kernel.kexec collection. (Not initrd.py: .gitignore keeps initrd* images out of the tree.)

Every load puts the initrd in one kexec segment of its own size, page-aligned:
the initrd buffer of bzImage64_load (arch/x86/kernel/kexec-bzimage64.c) and of
the arm64 and RISC-V image loaders for kexec_file_load, the initrd segment of
the legacy plan for kexec_load. The kernel refuses both syscalls with EINVAL
when one segment takes more than half of the RAM it manages:
``PAGE_COUNT(memsz) > totalram_pages() / 2`` in sanity_check_segment_list()
(kernel/kexec_core.c, since Linux 4.10), which kexec_load and kexec_file_load
both call before they copy anything. A crash load's segments must moreover lie
inside the crash kernel region, crashk_res (the same function; for
kexec_file_load kexec_locate_mem_hole() searches nothing else).

totalram_pages() is what /proc/meminfo shows as ``MemTotal``. The rule is made
in bytes without the kernel's rounding: an initrd larger than half of MemTotal
is refused by the kernel whatever its page size, so this never refuses an
initrd the kernel would take (a false refusal is worse than a late one). A
crash load's initrd must also fit in the largest ``Crash kernel`` range of
/proc/iomem (crashk_res is one of them; the low range, where there is one, is
the other). Where /proc/meminfo or the addresses in /proc/iomem cannot be read
(not root), that limit is not applied here: the kernel still applies it.
"""

from __future__ import annotations

import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import memmap
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState

MIB = 1 << 20


def _mib(size):
    return "%.1f MiB" % (size / float(MIB))


def limits(root, crash):
    """[(most bytes an initrd may have, why)] on the host at ``root``: what is known of it."""
    found = []
    total = memmap.mem_total(root)
    if total:
        found.append((total // 2, "the kernel refuses a kexec segment larger than half of its RAM (MemTotal %s, "
                                  "so at most %s: sanity_check_segment_list)" % (_mib(total), _mib(total // 2))))
    if crash:
        sizes = [region.size for region in KernelState(root).crash_regions() if not region.hidden]
        if sizes:
            found.append((max(sizes), "a crash load's segments must lie in the crash kernel region, and the largest "
                                      "'Crash kernel' range of /proc/iomem is %s" % _mib(max(sizes))))
    return found


def check(root, path, handle, crash):
    """Refuse the open initrd ``handle`` (``path``) when the target cannot hold it; reads none of it."""
    size = os.fstat(handle.fileno()).st_size
    for limit, why in sorted(limits(root, crash)):  # the tightest first
        if size > limit:
            raise KexecError("initrd %s is %s (%d bytes), more than this host can load: %s; refused before reading "
                             "it (is it the right file?)" % (path, _mib(size), size, why))


__all__ = ("check", "limits")
