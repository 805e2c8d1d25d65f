# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``crashkernel=`` as the kernel reads it: which value counts, and what it reserves.

Private to the kernel.kexec collection. The kernel is the oracle. The ports
below and in memparse.py follow, function by function, the C read for them:

* kernel/crash_reserve.c of torvalds/linux as stored at commit 35c18f2933c5
  (has the ``,cma`` suffix, merged for 6.16) and at 7b54a96f30de (before it);
* kernel/crash_core.c of the 6.5/6.6 era (``CONFIG_CRASH_HOTPLUG`` present;
  6.1 parses the same way) and of the 4.x era, for what changed;
* lib/cmdline.c ``memparse()``, lib/kstrtox.c ``_parse_integer_fixup_radix()``
  and ``_parse_integer()``, lib/vsprintf.c ``simple_strtoull()``;
* arch/x86/kernel/setup.c, arch/arm64/mm/init.c, arch/riscv/mm/init.c,
  arch/loongarch/kernel/setup.c ``arch_reserve_crashkernel()``: all pass
  ``memblock_phys_mem_size()`` as ``system_ram``.

Two layers, on purpose:

* :func:`kernel_parse`, :func:`last_crashkernel` and :func:`reservation` do
  what the kernel does, quirks included (see below); use them to read a
  command line that a host booted with.
* ``parse`` (value.py) is the strict validator for values we write or users
  give: it accepts the kernel's grammar but refuses what the kernel would read
  differently from what was meant, or refuse on some hosts only (the kernel
  skips anything after a matching range, takes ``256M@`` as 256M at no fixed
  address, reads ``0256M`` as octal 174M, wraps sizes past 16E to 0).

The _crashkernel package: memparse.py (sizes), kernel.py (this port), value.py
(the strict parser), auto.py (``size: auto``), reserve.py (kdump_reserve).
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import (
    MIB, ULLONG_MAX, _char, _human, memparse,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import normalize_arch
from ansible_collections.kernel.kexec.plugins.module_utils._host import iomem

NAME = "crashkernel="
SZ_128M = 128 << 20

# suffix_tbl[] of crash_reserve.c. ",cma" is there since 6.16; older kernels know only
# ",high" and ",low" and treat "crashkernel=64M,cma" as a plain value, which then fails
# to parse and, being the last plain one, costs the whole reservation.
SUFFIXES = (",high", ",low", ",cma")
SUFFIXES_BEFORE_CMA = (",high", ",low")

# Arches whose arch_reserve_crashkernel() passes 'high' to parse_crashkernel(), i.e. that
# read crashkernel=X,high and crashkernel=Y,low (CONFIG_ARCH_HAS_GENERIC_CRASHKERNEL_RESERVATION).
# s390x and powerpc read the plain form only: a ',high' there reserves nothing.
HIGH_LOW_ARCHES = ("x86_64", "aarch64", "riscv64", "loongarch64")

# CRASH_ALIGN: reserve_crashkernel_generic() asks memblock for exactly [offset, offset+size)
# with this alignment, so an unaligned @offset fails ("memory is in use").
# arch/x86/include/asm/crash_reserve.h SZ_16M; include/linux/crash_reserve.h default SZ_2M
# (arm64, loongarch; riscv64 PMD_SIZE = 2M). x86 before the generic code (6.1) used 1M.
OFFSET_ALIGN = {"x86_64": 16 * MIB, "aarch64": 2 * MIB, "riscv64": 2 * MIB, "loongarch64": 2 * MIB}

# DEFAULT_CRASH_KERNEL_LOW_SIZE: the low part a ',high' reservation gets without ',low'.
# x86_64: max(swiotlb_size_or_default() + 8M, 256M) = 256M with the default 64M swiotlb
# (more with a bigger swiotlb=); include/linux/crash_reserve.h default 128M elsewhere.
DEFAULT_LOW_SIZE = {"x86_64": 256 * MIB, "aarch64": 128 * MIB, "riscv64": 128 * MIB, "loongarch64": 128 * MIB}


def round_system_ram(system_ram):
    """parse_crashkernel_mem() since 6.0: roundup(system_ram, SZ_128M) before matching ranges."""
    return -(-system_ram // SZ_128M) * SZ_128M


# --- the kernel's parsers, quirks included -------------------------------------------------

def _einval(value, kernel_message, pos):
    return KexecError("crashkernel=%s: the kernel rejects it (%s, at position %d), so it reserves nothing"
                      % (value, kernel_message, pos), kernel_message=kernel_message, position=pos)


def _kernel_mem(value, system_ram, round_128m):
    """parse_crashkernel_mem(): 'start-[end]:size[,...][@offset]' -> (size, base).

    total_mem is system_ram rounded up to 128M (6.0+; raw before). Each entry is
    checked in order; 'size >= total_mem' is an error even for an entry whose range
    does not match, but entries after the matching one are never looked at: the
    kernel skips to '@' or the end. Start is inclusive, end exclusive. No match
    gives size 0 ("crashkernel size resulted in zero bytes"), not an error here.
    """
    total_mem = round_system_ram(system_ram) if round_128m else system_ram
    cur = 0
    crash_size = 0
    crash_base = 0
    while True:
        start, tmp = memparse(value, cur)
        if tmp == cur:
            raise _einval(value, "crashkernel: Memory value expected", cur)
        cur = tmp
        if _char(value, cur) != "-":
            raise _einval(value, "crashkernel: '-' expected", cur)
        cur += 1
        end = ULLONG_MAX
        if _char(value, cur) != ":":
            end, tmp = memparse(value, cur)
            if tmp == cur:
                raise _einval(value, "crashkernel: Memory value expected", cur)
            cur = tmp
            if end <= start:
                raise _einval(value, "crashkernel: end <= start", cur)
        if _char(value, cur) != ":":
            raise _einval(value, "crashkernel: ':' expected", cur)
        cur += 1
        size, tmp = memparse(value, cur)
        if tmp == cur:
            raise _einval(value, "crashkernel: Memory value expected", cur)
        cur = tmp
        if size >= total_mem:
            raise _einval(value, "crashkernel: invalid size", cur)
        if start <= total_mem < end:
            crash_size = size
            break
        separator = _char(value, cur)
        cur += 1  # while (*cur++ == ',')
        if separator != ",":
            break
    if crash_size > 0:
        while _char(value, cur) not in ("", " ", "@"):
            cur += 1
        if _char(value, cur) == "@":
            cur += 1
            crash_base, tmp = memparse(value, cur)
            if tmp == cur:
                raise _einval(value, "crashkernel: Memory value expected after '@'", cur)
    return crash_size, crash_base


def _kernel_simple(value):
    """parse_crashkernel_simple(): 'size[@offset]'. The offset is not checked: '256M@' is base 0."""
    crash_size, cur = memparse(value, 0)
    if cur == 0:
        raise _einval(value, "crashkernel: memory value expected", 0)
    crash_base = 0
    if _char(value, cur) == "@":
        crash_base, cur = memparse(value, cur + 1)
    elif _char(value, cur) not in (" ", ""):
        raise _einval(value, "crashkernel: unrecognized char: %s" % _char(value, cur), cur)
    return crash_size, crash_base


def _kernel_suffix(value, suffix):
    """parse_crashkernel_suffix(): 'size' then exactly the suffix, then the end."""
    crash_size, cur = memparse(value, 0)
    if cur == 0:
        raise _einval(value, "crashkernel: memory value expected", 0)
    if not value.startswith(suffix, cur):
        raise _einval(value, "crashkernel: unrecognized char: %s" % _char(value, cur), cur)
    cur += len(suffix)
    if _char(value, cur) not in (" ", ""):
        raise _einval(value, "crashkernel: unrecognized char: %s" % _char(value, cur), cur)
    return crash_size


def kernel_parse(value, system_ram, suffix=None, round_128m=True):
    """__parse_crashkernel() on one value (the text after 'crashkernel=').

    Returns (size, base); raises KexecError where the kernel returns -EINVAL.
    ``suffix`` None parses a plain value: the range form when a ':' comes before
    the first space, else the simple form. With ``suffix`` (',high', ',low',
    ',cma') the value must be 'size' followed by exactly that suffix.
    ``round_128m=False`` gives kernels before 6.0, which matched ranges
    against system_ram itself.
    """
    if suffix is not None:
        return _kernel_suffix(value, suffix), 0
    colon = value.find(":")
    space = value.find(" ")
    if colon != -1 and (space == -1 or colon < space):
        return _kernel_mem(value, system_ram, round_128m)
    return _kernel_simple(value)


def last_crashkernel(cmdline, suffix=None, cma=True):
    """get_last_crashkernel(): the value of the occurrence the kernel uses, or None.

    The kernel scans with strstr() for 'crashkernel=' anywhere (even inside
    another parameter's name or value), and ends each occurrence at the next
    space (' ' only, quotes mean nothing). Without ``suffix`` it takes the last
    occurrence that does not end in a known suffix (',high', ',low', and ',cma'
    on 6.16+: pass ``cma=False`` for older kernels); with a suffix, the last one
    ending in it. Pass the command line without /proc/cmdline's newline.
    """
    known = SUFFIXES if cma else SUFFIXES_BEFORE_CMA
    chosen = None
    at = cmdline.find(NAME)
    while at != -1:
        end = cmdline.find(" ", at)
        if end == -1:
            end = len(cmdline)
        token = cmdline[at:end]
        if suffix is None:
            if not any(token.endswith(tail) for tail in known):
                chosen = token
        elif token.endswith(suffix):
            chosen = token
        at = cmdline.find(NAME, at + 1)
    return None if chosen is None else chosen[len(NAME):]


def current_value(args):
    """The crashkernel= value of ``args`` that decides the reservation, or None.

    The last plain one, as the kernel reads it; without one, the last ',high' one (the
    kernel's fallback), else a lone ',low' or ',cma'. last_crashkernel() alone skips
    every suffixed value, so a configured '1G,high' would be reported as none.
    """
    for suffix in (None, ",high", ",low", ",cma"):
        value = last_crashkernel(args, suffix)
        if value is not None:
            return value
    return None


def from_cmdline(cmdline, cma=True):
    """The values the kernel would use: {'plain', 'high', 'low', 'cma'} -> text or None."""
    return {
        "plain": last_crashkernel(cmdline, None, cma),
        "high": last_crashkernel(cmdline, ",high", cma),
        "low": last_crashkernel(cmdline, ",low", cma),
        "cma": last_crashkernel(cmdline, ",cma", cma) if cma else None,
    }


def reservation(cmdline, system_ram, arch="x86_64", cma=True, round_128m=True):
    """What parse_crashkernel() asks the arch code to reserve for ``cmdline``.

    Mirrors the generic flow (crash_reserve.c; x86_64, arm64, riscv64, loongarch64
    since about 6.7): the plain value wins whenever one exists, even when it is
    invalid or matches no range; only without one are ',high' (required) and
    ',low' (optional, else the arch's default low size) read; ',cma' is extra
    and counts only when the main part is valid. The result is invalid when the
    size is 0 or not below ``system_ram`` (the unrounded one; that check came in
    2024, before which the allocation failed instead, to the same effect).
    x86 before the generic code (6.1) differs: an invalid or zero plain value
    falls back to ',high' there, and the low part is reserved only when the main
    part lands above 4G. Where the memory lands is not modelled.

    Returns a dict: present, kind ('plain', 'high' or None), size, offset, low,
    cma, error (None, or why the kernel reserves nothing).
    """
    arch = normalize_arch(arch)
    result = {"present": False, "kind": None, "size": 0, "offset": 0, "low": 0, "cma": 0, "error": None}
    plain = last_crashkernel(cmdline, None, cma)
    if plain is not None:
        result.update(present=True, kind="plain")
        try:
            result["size"], result["offset"] = kernel_parse(plain, system_ram, round_128m=round_128m)
        except KexecError as exc:
            result["error"] = exc.msg
    elif arch in HIGH_LOW_ARCHES:
        high = last_crashkernel(cmdline, ",high", cma)
        if high is None:
            return result
        result.update(present=True, kind="high")
        try:
            result["size"], _base = kernel_parse(high, 0, ",high")
        except KexecError as exc:
            result["error"] = exc.msg
            return result
        if not result["size"]:
            result["error"] = "crashkernel=%s asks for 0 bytes: the kernel reserves nothing" % high
            return result
        low = last_crashkernel(cmdline, ",low", cma)
        if low is None:
            result["low"] = DEFAULT_LOW_SIZE.get(arch, 128 * MIB)
        else:
            try:
                result["low"], _base = kernel_parse(low, 0, ",low")
            except KexecError as exc:
                result.update(size=0, error=exc.msg)
                return result
    else:
        return result
    if cma and result["error"] is None:
        value = last_crashkernel(cmdline, ",cma", cma)
        if value is not None:
            try:
                result["cma"], _base = kernel_parse(value, 0, ",cma")
            except KexecError:
                result["cma"] = 0  # the kernel ignores a bad ',cma' value
    if result["error"] is None:
        if not result["size"] and ":" in plain:
            compared = round_system_ram(system_ram) if round_128m else system_ram
            result["error"] = ("crashkernel=%s matches no range for %s of RAM (the kernel compares %s): "
                               "it reserves nothing" % (plain, _human(system_ram), _human(compared)))
        elif not result["size"]:
            result["error"] = "crashkernel=%s asks for 0 bytes: the kernel reserves nothing" % plain
        elif result["size"] >= system_ram:
            result["error"] = ("crashkernel asks for %s, not less than the host's %s of RAM: the kernel reserves "
                               "nothing" % (_human(result["size"]), _human(system_ram)))
    if result["error"] is not None:
        result.update(size=0, offset=0, low=0, cma=0)
    return result


# --- system RAM as the kernel counts it -------------------------------------------------------

def system_ram_from_iomem(regions):
    """Sum of the 'System RAM' ranges of /proc/iomem (text or _host.iomem.parse() regions).

    The kernel compares memblock_phys_mem_size(): the RAM memblock knows at boot.
    On x86_64 memblock.memory is built from the same e820 RAM entries that
    e820__reserve_resources() publishes as top-level 'System RAM' (page 0 and
    the legacy 640K-1M hole are taken out of both), minus partial pages, so the
    sum matches to within a page. It drifts when memory was hot-added after boot
    (counted here, not at boot; driver-managed memory is named 'System RAM (kmem)'
    and the like and is not counted), and on arm64 it is low by the NOMAP firmware
    regions that memblock counts but /proc/iomem shows as 'reserved' (a few MiB).
    The kernel's 128M round-up absorbs such gaps unless the true value sits just
    above a multiple of 128M. kdump-utils (get_system_size) computes it the same way.
    Nested entries cannot double count: overlapping ranges are merged.
    Returns None when unknown: no System RAM, or addresses hidden (not root).
    """
    spans = system_ram_spans(regions)
    if spans is None:
        return None
    return sum(end - start + 1 for start, end in spans)


def system_ram_spans(regions):
    """The 'System RAM' ranges of /proc/iomem merged where they touch or overlap: [(start, end inclusive)].

    Each span is one piece of physical memory without a hole, the most one
    memblock allocation (the crash region is one) can ever get. None when
    unknown (see :func:`system_ram_from_iomem`).
    """
    if isinstance(regions, str):
        regions = iomem.parse(regions)
    spans = sorted((region.start, region.end) for region in regions if region.name == iomem.SYSTEM_RAM)
    if not spans or any(start == 0 and end == 0 for start, end in spans):
        return None
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start > merged[-1][1] + 1:
            merged.append([start, end])
        else:
            merged[-1][1] = max(merged[-1][1], end)
    return [tuple(span) for span in merged]


__all__ = (
    "DEFAULT_LOW_SIZE", "HIGH_LOW_ARCHES", "NAME", "OFFSET_ALIGN", "SUFFIXES", "current_value", "from_cmdline",
    "kernel_parse", "last_crashkernel", "reservation", "round_system_ram", "system_ram_from_iomem",
    "system_ram_spans",
)
