# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes as the kernel reads them (``memparse()``) and the shortest text that reads back the same.

Private to the kernel.kexec collection. A port of lib/cmdline.c ``memparse()``
over lib/vsprintf.c ``simple_strtoull(ptr, &end, 0)``, read with the rest of
the crashkernel= code (see kernel.py for the kernel files and commits).
"""

from __future__ import annotations

ULLONG_MAX = (1 << 64) - 1
MIB = 1 << 20
GIB = 1 << 30

# memparse(): the suffix letter multiplies by 1024 per step from K (case-insensitive).
_SHIFTS = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_UNITS = (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10))


# --- lib/cmdline.c memparse() over lib/vsprintf.c simple_strtoull(ptr, &end, 0) -------------

def _isdigit(char):
    return char != "" and char in "0123456789"


def _isxdigit(char):
    return char != "" and char in "0123456789abcdefABCDEF"


def _char(text, pos):
    """*cur in C: the character at pos, '' for the terminating NUL (or past it)."""
    return text[pos:pos + 1]


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


__all__ = ("GIB", "MIB", "ULLONG_MAX", "format_size", "memparse")
