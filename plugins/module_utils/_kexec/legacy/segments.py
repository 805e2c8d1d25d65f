# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Segments for kexec_load(2): where each goes, and the kernel's own checks made first.

Private to the kernel.kexec collection. Nothing here is x86-specific.

kexec_load takes a list of ``struct kexec_segment {buf, bufsz, mem, memsz}``:
``bufsz`` bytes from ``buf`` are copied to physical ``mem``, and the rest of
``memsz`` is zeroed. :class:`MemoryHoles` places segments top-down in free
RAM as the kernel's own kexec_file loader does (kexec_locate_mem_hole with
``top_down``), and :func:`check_segments` ports ``sanity_check_segment_list()``
(kernel/kexec_core.c, Linux 6.1) and the entry check of ``kimage_alloc_init()``
(kernel/kexec.c) rule by rule, in the kernel's order, so a bad plan is refused
with the segment and the rule named instead of a bare EINVAL or EADDRNOTAVAIL.
"""

from __future__ import annotations

import errno

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import KEXEC_SEGMENT_MAX

PAGE_SIZE = 4096
# x86_64: KEXEC_DESTINATION_MEMORY_LIMIT is MAXMEM - 1, MAXMEM 1 << 46 with 4-level paging
# (arch/x86/include/asm/kexec.h, page_64_types.h). 5-level hosts allow more; no RAM lies there in practice.
DESTINATION_LIMIT = (1 << 46) - 1


def page_align(value):
    return (value + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class Segment:
    """One kexec segment: ``data`` copied to ``mem``, zero-filled up to ``memsz``."""

    def __init__(self, name, data, mem, memsz, holds=""):
        self.name = name
        self.data = data
        self.mem = mem
        self.memsz = memsz
        self.holds = holds

    @property
    def bufsz(self):
        return len(self.data)

    @property
    def end(self):
        """One past the last byte (the kernel's ``mend``)."""
        return self.mem + self.memsz

    def as_dict(self):
        return {"name": self.name, "mem": "%#x" % self.mem, "memsz": self.memsz, "bufsz": self.bufsz,
                "end": "%#x" % (self.end - 1), "holds": self.holds}

    def __repr__(self):
        return "Segment(%r, mem=%#x, memsz=%#x, bufsz=%#x)" % (self.name, self.mem, self.memsz, self.bufsz)


class MemoryHoles:
    """Free physical memory as sorted ``[start, end)`` holes, handed out top-down."""

    def __init__(self, ranges):
        """``ranges``: (start, end_inclusive) pairs of usable RAM."""
        self.holes = sorted((start, end + 1) for start, end in ranges if end >= start)

    def take(self, name, size, align=PAGE_SIZE, minimum=0, maximum=DESTINATION_LIMIT):
        """The highest ``align``-aligned start of ``size`` bytes in [minimum, maximum]; removes it."""
        align = max(align, PAGE_SIZE)
        for index in range(len(self.holes) - 1, -1, -1):
            start, end = self.holes[index]
            top = min(end, maximum + 1)
            mem = (top - size) & ~(align - 1)
            if top - size < 0 or mem < max(start, minimum):
                continue
            self.holes[index:index + 1] = [hole for hole in ((start, mem), (mem + size, end)) if hole[1] > hole[0]]
            return mem
        raise KexecError("no room for the %s: %d bytes, %#x-aligned, between %#x and %#x, in the free memory %s"
                         % (name, size, align, minimum, maximum, self.describe()), errno_name="ENOMEM")

    def describe(self):
        return ", ".join("%#x-%#x" % (start, end - 1) for start, end in self.holes) or "(none)"


def _refuse(call_errno, segment, index, rule):
    name = "segment %d (%s)" % (index, segment.name) if segment is not None else "the entry point"
    return KexecError("the kernel would refuse this kexec_load plan with %s: %s %s"
                      % (errno.errorcode[call_errno], name, rule), errno_name=errno.errorcode[call_errno])


def check_segments(segments, entry, total_ram_pages, crash_region=None, limit=DESTINATION_LIMIT):
    """Refuse what ``sanity_check_segment_list()`` and ``kimage_alloc_init()`` refuse, in their order.

    ``crash_region`` is (start, end_inclusive) of ``crashk_res`` for KEXEC_ON_CRASH loads.
    """
    if len(segments) > KEXEC_SEGMENT_MAX:
        # kexec_load(): nr_segments > KEXEC_SEGMENT_MAX -> -EINVAL, before anything else.
        raise KexecError("the kernel would refuse this kexec_load plan with EINVAL: %d segments, at most %d"
                         % (len(segments), KEXEC_SEGMENT_MAX), errno_name="EINVAL")
    # 1. Good destination addresses: no wrap, page aligned, below the destination limit.
    for index, seg in enumerate(segments):
        mstart, mend = seg.mem, seg.mem + seg.memsz
        if mend > (1 << 64) - 1:  # C: mstart > mend, the unsigned sum wrapped
            raise _refuse(errno.EADDRNOTAVAIL, seg, index, "wraps past the end of the address space")
        if mstart % PAGE_SIZE or mend % PAGE_SIZE:  # C: (mstart & ~PAGE_MASK) || (mend & ~PAGE_MASK)
            raise _refuse(errno.EADDRNOTAVAIL, seg, index, "is not page aligned (%#x-%#x)" % (mstart, mend))
        if mend >= limit:  # C: mend >= KEXEC_DESTINATION_MEMORY_LIMIT
            raise _refuse(errno.EADDRNOTAVAIL, seg, index, "ends at %#x, past the destination limit %#x"
                          % (mend, limit))
    # 2. Destinations must not overlap (each against the ones before it).
    for index, seg in enumerate(segments):
        for other in range(index):
            prev = segments[other]
            if seg.end > prev.mem and seg.mem < prev.end:  # C: (mend > pstart) && (mstart < pend)
                raise _refuse(errno.EINVAL, seg, index, "overlaps segment %d (%s)" % (other, prev.name))
    # 3. bufsz must not exceed memsz.
    for index, seg in enumerate(segments):
        if seg.bufsz > seg.memsz:
            raise _refuse(errno.EINVAL, seg, index, "has %d bytes of data for %d bytes of memory"
                          % (seg.bufsz, seg.memsz))
    # 4. No segment, and not all of them together, may take more than half of RAM.
    total = 0
    for index, seg in enumerate(segments):
        pages = page_align(seg.memsz) // PAGE_SIZE  # C: PAGE_COUNT(memsz)
        if pages > total_ram_pages // 2:
            raise _refuse(errno.EINVAL, seg, index, "takes %d pages, more than half of the %d pages of RAM"
                          % (pages, total_ram_pages))
        total += pages
    if total > total_ram_pages // 2:
        raise KexecError("the kernel would refuse this kexec_load plan with EINVAL: the segments take %d pages, "
                         "more than half of the %d pages of RAM" % (total, total_ram_pages), errno_name="EINVAL")
    # 5. Crash loads: every segment inside crashk_res (C: mend = mstart + memsz - 1).
    if crash_region is not None:
        low, high = crash_region
        for index, seg in enumerate(segments):
            if seg.mem < low or seg.mem + seg.memsz - 1 > high:
                raise _refuse(errno.EADDRNOTAVAIL, seg, index, "(%#x-%#x) is outside the crash kernel region "
                              "%#x-%#x" % (seg.mem, seg.end - 1, low, high))
        # kimage_alloc_init(): the entry must lie in crashk_res too.
        if entry < low or entry > high:
            raise _refuse(errno.EADDRNOTAVAIL, None, None, "%#x is outside the crash kernel region %#x-%#x"
                          % (entry, low, high))


def describe(table):
    """A segment table (``{"entry", "segments"}`` as plans and load records hold it) as lines of text."""
    lines = ["entry: %s" % table["entry"]]
    lines += ["segment %d: %s-%s %10d bytes (%d of data)  %s" % (
        index, seg["mem"], seg["end"], seg["memsz"], seg["bufsz"], seg["holds"])
        for index, seg in enumerate(table["segments"])]
    return "\n".join(lines)


__all__ = ("DESTINATION_LIMIT", "KEXEC_SEGMENT_MAX", "MemoryHoles", "PAGE_SIZE", "Segment", "check_segments",
           "describe", "page_align")
