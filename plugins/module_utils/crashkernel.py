# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``crashkernel=``: parse, validate and format it; what it reserves; a size for ``auto``.

Private to the kernel.kexec collection. The kernel is the oracle. The ports
below follow, function by function, the C read for this file:

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
* :func:`parse` is the strict validator for values we write or users give: it
  accepts the kernel's grammar but refuses what the kernel would read
  differently from what was meant, or refuse on some hosts only (the kernel
  skips anything after a matching range, takes ``256M@`` as 256M at no fixed
  address, reads ``0256M`` as octal 174M, wraps sizes past 16E to 0).
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils.errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils.sysfs import parse_iomem

NAME = "crashkernel="
ULLONG_MAX = (1 << 64) - 1
SZ_128M = 128 << 20
MIB = 1 << 20
GIB = 1 << 30

# memparse(): the suffix letter multiplies by 1024 per step from K (case-insensitive).
_SHIFTS = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_UNITS = (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10))

# suffix_tbl[] of crash_reserve.c. ",cma" is there since 6.16; older kernels know only
# ",high" and ",low" and treat "crashkernel=64M,cma" as a plain value, which then fails
# to parse and, being the last plain one, costs the whole reservation.
SUFFIXES = (",high", ",low", ",cma")
SUFFIXES_BEFORE_CMA = (",high", ",low")
KINDS = ("simple", "ranges", "high", "low", "cma")

_ARCH_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le",
                 "riscv": "riscv64", "loong64": "loongarch64"}

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


def normalize_arch(arch):
    """'amd64' -> 'x86_64', 'arm64' -> 'aarch64', ...; other names as given."""
    arch = (arch or "").strip().lower()
    return _ARCH_ALIASES.get(arch, arch)


# --- lib/cmdline.c memparse() over lib/vsprintf.c simple_strtoull(ptr, &end, 0) -------------

def _isdigit(char):
    return char != "" and char in "0123456789"


def _isxdigit(char):
    return char != "" and char in "0123456789abcdefABCDEF"


def _memparse(text, pos=0):
    """memparse(text + pos): (value modulo 2**64, exact value, end, radix, suffix letter or '').

    Radix as _parse_integer_fixup_radix(): "0x" followed by a hex digit is hex,
    any other leading "0" octal, else decimal. Digits as _parse_integer(): stop at
    the first character that is not a digit of the radix; overflow wraps silently
    (the kernel ignores KSTRTOX_OVERFLOW here). end == pos means "no number".
    """
    start = pos
    radix = 10
    if text[pos:pos + 1] == "0":
        if text[pos + 1:pos + 2] in ("x", "X") and _isxdigit(text[pos + 2:pos + 3]):
            radix = 16
            pos += 2
        else:
            radix = 8
    exact = 0
    while pos < len(text):
        code = ord(text[pos])
        lower = code | 0x20  # the kernel's "c | 0x20", not tolower()
        if 0x30 <= code <= 0x39:
            digit = code - 0x30
        elif 0x61 <= lower <= 0x66:
            digit = lower - 0x61 + 10
        else:
            break
        if digit >= radix:
            break
        exact = exact * radix + digit
        pos += 1
    if pos == start:
        return 0, 0, start, radix, ""
    suffix = ""
    letter = text[pos:pos + 1].lower()
    if letter and letter in _SHIFTS:
        suffix = text[pos]
        exact <<= _SHIFTS[letter]
        pos += 1
    return exact & ULLONG_MAX, exact, pos, radix, suffix


def memparse(text, pos=0):
    """lib/cmdline.c memparse(): (value, end). end == pos when there is no number.

    Suffixes K, M, G, T, P, E in either case; "0x" hex and leading-"0" octal;
    the value wraps modulo 2**64 as the kernel's unsigned long long does.
    """
    value, _exact, end, _radix, _suffix = _memparse(text, pos)
    return value, end


def format_size(size):
    """Bytes as the shortest exact memparse() text: 268435456 -> '256M', 1536M stays '1536M'."""
    if size == 0:
        return "0"
    for unit, shift in _UNITS:
        if size % (1 << shift) == 0:
            return "%d%s" % (size >> shift, unit)
    return str(size)


def _human(size):
    if size % MIB == 0:
        return format_size(size)
    return "%d bytes (%.2fG)" % (size, size / float(GIB))


def round_system_ram(system_ram):
    """parse_crashkernel_mem() since 6.0: roundup(system_ram, SZ_128M) before matching ranges."""
    return -(-system_ram // SZ_128M) * SZ_128M


# --- the kernel's parsers, quirks included -------------------------------------------------

def _char(text, pos):
    """*cur in C: the character at pos, '' for the terminating NUL (or past it)."""
    return text[pos:pos + 1]


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


# --- the parsed value ---------------------------------------------------------------------

class Range:
    """One entry of a range list: [start, end) -> size; end None is open-ended."""

    def __init__(self, start, end, size):
        self.start = start
        self.end = end
        self.size = size

    def matches(self, total_mem):
        return self.start <= total_mem and (self.end is None or total_mem < self.end)

    def format(self):
        return "%s-%s:%s" % (format_size(self.start), "" if self.end is None else format_size(self.end),
                             format_size(self.size))

    def as_dict(self):
        return {"start": self.start, "end": self.end, "size": self.size}

    def _key(self):
        return (self.start, self.end, self.size)

    def __eq__(self, other):
        return isinstance(other, Range) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "Range(%r)" % self.format()


class CrashKernel:
    """A parsed crashkernel= value.

    kind: 'simple' (size[@offset]), 'ranges' (start-[end]:size,...[@offset]),
    'high', 'low' or 'cma' (size,suffix). ``size`` is None for 'ranges';
    ``ranges`` is empty for the others; ``offset`` None when not given.
    """

    def __init__(self, kind, size=None, ranges=(), offset=None):
        if kind not in KINDS:
            raise KexecError("unknown crashkernel kind %r; use one of %s" % (kind, ", ".join(KINDS)))
        self.kind = kind
        self.size = size
        self.ranges = tuple(ranges)
        self.offset = offset

    def format(self):
        """The canonical value (without 'crashkernel='): upper-case units, largest exact unit."""
        if self.kind == "ranges":
            text = ",".join(entry.format() for entry in self.ranges)
        else:
            text = format_size(self.size)
        if self.kind in ("high", "low", "cma"):
            return "%s,%s" % (text, self.kind)
        if self.offset is not None:
            text = "%s@%s" % (text, format_size(self.offset))
        return text

    def argument(self):
        """The whole kernel argument: 'crashkernel=' + format()."""
        return NAME + self.format()

    def size_for(self, system_ram, round_128m=True):
        """Bytes this value asks for on a host with ``system_ram`` (0: nothing)."""
        if self.kind == "ranges":
            try:
                size, _base = _kernel_mem(self.format(), system_ram, round_128m)
            except KexecError:
                return 0  # 'invalid size': an entry not below this host's rounded RAM
        else:
            size = self.size
        if self.kind in ("simple", "ranges", "high") and size >= system_ram:
            return 0  # parse_crashkernel(): "*crash_size >= system_ram" is -EINVAL
        return size

    def as_dict(self):
        return {"kind": self.kind, "size": self.size, "offset": self.offset,
                "ranges": [entry.as_dict() for entry in self.ranges], "value": self.format()}

    def _key(self):
        return (self.kind, self.size, self.ranges, self.offset)

    def __eq__(self, other):
        return isinstance(other, CrashKernel) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "CrashKernel(%r)" % self.format()


# --- the strict parser ----------------------------------------------------------------------

class _Reader:
    """A cursor over one value that raises KexecError naming the position."""

    def __init__(self, value):
        self.value = value
        self.pos = 0

    def peek(self):
        return _char(self.value, self.pos)

    def where(self, pos=None):
        pos = self.pos if pos is None else pos
        if pos >= len(self.value):
            return "at position %d (end of value)" % pos
        return "at position %d" % pos

    def fail(self, problem, advice, pos=None):
        return KexecError("crashkernel=%s: %s %s; %s" % (self.value, problem, self.where(pos), advice),
                          position=self.pos if pos is None else pos)

    def unexpected(self, context):
        char = self.peek()
        if char == ".":
            advice = "sizes are whole numbers: use a smaller unit (1536M, not 1.5G)"
        elif char.isspace():
            advice = "a crashkernel value holds no white space"
        elif char == ",":
            advice = ("the only suffixes are ',high', ',low' and ',cma', each after a single size "
                      "(512M,high); ranges are separated by ',' only in the range form start-[end]:size")
        elif char == "@":
            advice = "give one @offset, at the end"
        elif char == "-" and ":" not in self.value:
            advice = "a range list needs a size for each range: start-[end]:size, e.g. 2G-64G:256M"
        else:
            advice = context
        return self.fail("unexpected %r" % char, advice)

    def number(self, what):
        """One memparse() number, refusing what the kernel would misread."""
        start = self.pos
        char = self.peek()
        if not _isdigit(char):
            found = "" if not char else ", found %r" % char
            raise self.fail("%s expected%s" % (what, found),
                            "write a number with an optional K, M or G suffix, e.g. 256M")
        if char == "0" and _isdigit(_char(self.value, start + 1)):
            digits = start
            while _isdigit(_char(self.value, digits)):
                digits += 1
            octal, _exact, _end, _radix, _suffix = _memparse(self.value, start)
            if "8" in self.value[start:digits] or "9" in self.value[start:digits]:
                meaning = "where 8 and 9 are no digits"
            else:
                meaning = "so it means %s" % format_size(octal)
            raise self.fail("%s %r starts with 0, which makes the kernel read it as octal, %s"
                            % (what, self.value[start:digits], meaning), "drop the leading zero")
        value, exact, end, _radix, suffix = _memparse(self.value, start)
        if exact > ULLONG_MAX:
            raise self.fail("%s %r does not fit in 64 bits (the kernel would wrap it to %s)"
                            % (what, self.value[start:end], format_size(value)), "use a smaller size")
        self.pos = end
        after = self.peek()
        if after.isalpha():
            if suffix:
                raise self.fail("unexpected %r after %r" % (after, self.value[start:end]),
                                "a size takes one suffix letter: write %s, not %s%s"
                                % (self.value[start:end], self.value[start:end], after))
            raise self.fail("unknown size suffix %r" % after, "use K, M or G (T, P and E also work)")
        return value


def _parse_offset(reader):
    reader.pos += 1  # '@'
    return reader.number("offset after '@'")


def _parse_simple(reader):
    size = reader.number("size")
    offset = None
    if reader.peek() == "@":
        offset = _parse_offset(reader)
    if reader.peek():
        raise reader.unexpected("the simple form is size[@offset], e.g. 256M or 256M@16M")
    if size == 0:
        raise reader.fail("a size of 0 reserves nothing (the kernel rejects it)",
                          "remove the parameter instead, or give a size such as 256M", pos=0)
    return CrashKernel("simple", size=size, offset=offset)


def _parse_ranges(reader):
    ranges = []
    while True:
        start = reader.number("range start")
        if reader.peek() != "-":
            raise reader.fail("'-' expected after the range start", "ranges are start-[end]:size, e.g. 2G-64G:256M")
        reader.pos += 1
        end = None
        if reader.peek() != ":":
            end_at = reader.pos
            end = reader.number("range end or ':'")
            if end <= start:
                raise reader.fail("range end %s is not above its start %s (end <= start)"
                                  % (format_size(end), format_size(start)),
                                  "a range is start-end with the start included and the end excluded; "
                                  "leave the end out for no upper bound (64G-:512M)", pos=end_at)
        if reader.peek() != ":":
            raise reader.fail("':' expected after the range", "ranges are start-[end]:size, e.g. 2G-64G:256M")
        reader.pos += 1
        size_at = reader.pos
        size = reader.number("size")
        if end is not None and size >= end:
            raise reader.fail("size %s is not below the range end %s: the kernel refuses it on every host in "
                              "that range ('invalid size')" % (format_size(size), format_size(end)),
                              "give a size smaller than the RAM it applies to", pos=size_at)
        ranges.append(Range(start, end, size))
        if reader.peek() != ",":
            break
        reader.pos += 1
    offset = None
    if reader.peek() == "@":
        offset = _parse_offset(reader)
    if reader.peek():
        raise reader.unexpected("the range form is start-[end]:size[,start-[end]:size...][@offset]")
    return CrashKernel("ranges", ranges=ranges, offset=offset)


def _parse_suffixed(reader, kind):
    size = reader.number("size")
    if reader.value[reader.pos:] != "," + kind:
        what = "a range list" if reader.peek() in ("-", ":") else "an @offset" if reader.peek() == "@" else None
        if what:
            raise reader.fail("',%s' takes a single size, not %s (found %r)" % (kind, what, reader.peek()),
                              "write it as size,%s, e.g. 512M,%s" % (kind, kind))
        if reader.peek() == ",":
            raise reader.fail("unexpected %r before ',%s'" % (reader.value[reader.pos:-len(kind) - 1], kind),
                              "write it as size,%s, e.g. 512M,%s" % (kind, kind))
        raise reader.unexpected("write it as size,%s, e.g. 512M,%s" % (kind, kind))
    if kind == "high" and size == 0:
        raise reader.fail("a size of 0 with ',high' reserves nothing (the kernel rejects it)",
                          "remove the parameter instead, or give a size such as 512M,high", pos=0)
    return CrashKernel(kind, size=size)


def parse(value, arch=None):
    """Validate and parse one crashkernel= value (with or without 'crashkernel=').

    Raises KexecError naming the position of the first problem. With ``arch``,
    also checks what that architecture needs: ',high'/',low' support and the
    alignment of an @offset.
    """
    if not isinstance(value, str):
        raise KexecError("crashkernel value must be a string such as '256M', not %r" % (value,))
    value = value.strip()
    if value.startswith(NAME):
        value = value[len(NAME):]
    reader = _Reader(value)
    for char in value:
        if char.isspace():
            reader.pos = value.index(char)
            raise reader.unexpected("")
    if value == "auto":
        raise KexecError("crashkernel=auto is a RHEL 7/8 kernel patch: upstream kernels and RHEL 9+ reject it; "
                         "use the module's size: auto, which writes a range list")
    kind = None
    for tail in SUFFIXES:
        if value.endswith(tail):
            kind = tail[1:]
    if kind is not None:
        parsed = _parse_suffixed(reader, kind)
    elif ":" in value:
        parsed = _parse_ranges(reader)
    else:
        parsed = _parse_simple(reader)
    if arch:
        _check_arch(parsed, value, normalize_arch(arch))
    return parsed


def _check_arch(parsed, value, arch):
    if parsed.kind in ("high", "low") and arch not in HIGH_LOW_ARCHES:
        raise KexecError("crashkernel=%s: %s reads no ',%s' value (only %s do), so it would reserve nothing; "
                         "use a plain size or a range list" % (value, arch, parsed.kind, ", ".join(HIGH_LOW_ARCHES)))
    align = OFFSET_ALIGN.get(arch)
    if parsed.offset and align and parsed.offset % align:
        below = parsed.offset // align * align
        raise KexecError("crashkernel=%s: offset %s is not a multiple of %s, which %s needs for the crash region; "
                         "use @%s or @%s" % (value, format_size(parsed.offset), format_size(align), arch,
                                             format_size(below), format_size(below + align)))


def reserved_bytes(expr, system_ram, round_128m=True):
    """Bytes ``expr`` (a value or CrashKernel) reserves on a host with ``system_ram``.

    The kernel's arithmetic: ranges are matched against system_ram rounded up to
    128M (``round_128m=False`` for kernels before 6.0); 0 when no range matches,
    when an entry checked before the match is not below that rounded RAM, or when
    the size is not below the unrounded RAM. For ',high' this is the high part
    only (the low part is separate: see :func:`reservation`); ',low' and ',cma'
    give their size. Malformed values raise KexecError (see :func:`parse`).
    """
    parsed = expr if isinstance(expr, CrashKernel) else parse(expr)
    return parsed.size_for(system_ram, round_128m)


# --- system RAM as the kernel counts it -------------------------------------------------------

def system_ram_from_iomem(regions):
    """Sum of the 'System RAM' ranges of /proc/iomem (text or sysfs.parse_iomem() regions).

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
    if isinstance(regions, str):
        regions = parse_iomem(regions)
    spans = sorted((region.start, region.end) for region in regions if region.name == "System RAM")
    if not spans or any(start == 0 and end == 0 for start, end in spans):
        return None
    total = 0
    current_start, current_end = spans[0]
    for start, end in spans[1:]:
        if start > current_end + 1:
            total += current_end - current_start + 1
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    return total + current_end - current_start + 1


# --- size: auto -------------------------------------------------------------------------------

# Fedora/RHEL kdump-utils, kdump-lib.sh kdump_get_arch_recommend_crashkernel() as of
# rhkdump/kdump-utils commit 015e0f935bb6. It adds, and we do not: +64M on x86_64 with AMD
# SME/SEV active; on aarch64 +150M with mlx5, and for 64K-page kernels +100M, +384M with
# an SMMU, +200M with mlx5 (never to the first row). Its earlier tables (kexec-tools
# 2.0.23 era) began at 1G: x86_64/s390x '1G-4G:192M,4G-64G:256M,64G-:512M', aarch64
# '1G-4G:256M,...'. Debian bookworm's kdump-tools 1:1.8.1 writes 'crashkernel=384M-:128M'
# (/etc/default/grub.d/kdump-tools.cfg); Ubuntu's writes '512M-:192M'.
AUTO_TABLES = {
    "x86_64": "2G-64G:256M,64G-:512M",
    "s390x": "2G-64G:256M,64G-:512M",
    "aarch64": "2G-4G:256M,4G-64G:320M,64G-:576M",
    "ppc64le": "2G-4G:384M,4G-16G:512M,16G-64G:1G,64G-128G:2G,128G-:4G",
}
_AUTO_TABLE_OF = {"ppc64": "ppc64le"}

# Hosts below the table's first row (2G): the row Fedora used for them before it raised
# the floor (192M on x86_64/s390x, 256M on aarch64), and the first row on ppc64le, whose
# 64K pages cost more. A capture kernel needs about this much to boot whatever the host's
# RAM, and reserving nothing is what users most often regret.
AUTO_SMALL_HOST = {"x86_64": 192 * MIB, "s390x": 192 * MIB, "aarch64": 256 * MIB, "ppc64le": 384 * MIB}
AUTO_TABLE_FLOOR = 2 * GIB


def auto_size(arch, system_ram):
    """A crashkernel= value for ``arch`` and ``system_ram``, with an explanation.

    Policy: the Fedora/RHEL kdump-utils table for the arch (larger than Debian's
    and Ubuntu's single row, maintained per arch, and kept as a range list so a
    later RAM change still gets a fitting size). Where that table reserves
    nothing on this host (below 2G after the kernel's 128M round-up), a row
    '0-2G:<small-host size>' is put in front, with a warning when that takes a
    quarter of the RAM or more. Arches without a table use x86_64's, and say so.
    Raises KexecError when even that would reserve nothing (RAM below the
    capture kernel's own need).
    Returns (value, explanation).
    """
    if isinstance(system_ram, bool) or not isinstance(system_ram, int) or system_ram <= 0:
        raise KexecError("size: auto needs the host's RAM in bytes, got %r; read it from /proc/iomem as root"
                         % (system_ram,))
    arch = normalize_arch(arch)
    table_arch = _AUTO_TABLE_OF.get(arch, arch)
    notes = []
    if table_arch not in AUTO_TABLES:
        notes.append("kdump-utils has no table for %s; using the x86_64 one" % (arch or "this architecture"))
        table_arch = "x86_64"
    table = AUTO_TABLES[table_arch]
    total_mem = round_system_ram(system_ram)
    source = "the Fedora/RHEL kdump-utils default for %s (%s)" % (table_arch, table)
    value = table
    reserved = reserved_bytes(value, system_ram)
    if not reserved:
        small = AUTO_SMALL_HOST[table_arch]
        value = "0-%s:%s,%s" % (format_size(AUTO_TABLE_FLOOR), format_size(small), table)
        reserved = reserved_bytes(value, system_ram)
        if not reserved:
            raise KexecError("size: auto: this host has %s of RAM, too little for a crash kernel (it needs about %s "
                             "besides the running system); give size explicitly if you must"
                             % (_human(system_ram), format_size(small)))
        notes.append("that table starts at %s and would reserve nothing here, so %s is added for smaller hosts "
                     "(the row Fedora used for them before), as a capture kernel needs about that much to boot"
                     % (format_size(AUTO_TABLE_FLOOR), format_size(small)))
        if reserved * 4 >= system_ram:
            notes.append("warning: that is %d%% of this host's RAM" % (reserved * 100 // system_ram))
    explanation = ("crashkernel=%s from %s: on this host's %s of RAM (%s as the kernel compares it, rounded up "
                   "to 128M) it reserves %s" % (value, source, _human(system_ram), _human(total_mem),
                                                format_size(reserved)))
    if notes:
        explanation += "; " + "; ".join(notes)
    return value, explanation


__all__ = (
    "current_value",
    "NAME", "SUFFIXES", "KINDS", "HIGH_LOW_ARCHES", "OFFSET_ALIGN", "DEFAULT_LOW_SIZE", "AUTO_TABLES",
    "AUTO_SMALL_HOST", "Range", "CrashKernel", "normalize_arch", "memparse", "format_size", "round_system_ram",
    "kernel_parse", "last_crashkernel", "from_cmdline", "reservation", "parse", "reserved_bytes",
    "system_ram_from_iomem", "auto_size",
)
