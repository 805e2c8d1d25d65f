# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A crashkernel= value we write or a user gives: the strict parser and the parsed value.

Private to the kernel.kexec collection. :func:`parse` accepts the kernel's
grammar (kernel.py reads it as the kernel does) but refuses what the kernel
would read differently from what was meant, or refuse on some hosts only (the
kernel skips anything after a matching range, takes ``256M@`` as 256M at no
fixed address, reads ``0256M`` as octal 174M, wraps sizes past 16E to 0).
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import (
    HIGH_LOW_ARCHES, NAME, OFFSET_ALIGN, SUFFIXES, _kernel_mem,
)
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import (
    ULLONG_MAX, _char, _isdigit, _memparse, format_size,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import normalize_arch

KINDS = ("simple", "ranges", "high", "low", "cma")


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


__all__ = ("KINDS", "CrashKernel", "Range", "parse", "reserved_bytes")
