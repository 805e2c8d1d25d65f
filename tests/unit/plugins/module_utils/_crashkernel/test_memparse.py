"""memparse() and sizes: the expected values below are worked out by hand from the kernel's C
(lib/cmdline.c memparse, lib/kstrtox.c, lib/vsprintf.c),
not from the module under test."""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import format_size, memparse

K = 1 << 10
M = 1 << 20
G = 1 << 30
T = 1 << 40


# --- memparse (lib/cmdline.c) over simple_strtoull(..., 0) -----------------------------------

@pytest.mark.parametrize("text, pos, value, end", [
    ("256M", 0, 256 * M, 4),
    ("256m", 0, 256 * M, 4),
    ("1k", 0, K, 2),
    ("1K", 0, K, 2),
    ("2g", 0, 2 * G, 2),
    ("2G", 0, 2 * G, 2),
    ("3t", 0, 3 * T, 2),
    ("1T", 0, T, 2),
    ("1p", 0, 1 << 50, 2),
    ("1E", 0, 1 << 60, 2),
    ("1e", 0, 1 << 60, 2),           # decimal: 'e' is the exa suffix
    ("0x1e", 0, 30, 4),              # hex: 'e' is a digit
    ("0x1G", 0, G, 4),
    ("0X10M", 0, 16 * M, 5),
    ("0x10000000", 0, 256 * M, 10),
    ("0x", 0, 0, 1),                 # "0x" without a hex digit: octal 0, stops at 'x'
    ("0xg", 0, 0, 1),
    ("010", 0, 8, 3),                # leading 0: octal
    ("0256M", 0, 174 * M, 5),
    ("08", 0, 0, 1),                 # 8 is no octal digit
    ("0", 0, 0, 1),
    ("12abc", 0, 12, 2),             # 'a' is no decimal digit and no suffix
    ("100", 0, 100, 3),
    ("16E", 0, 0, 3),                # 16 << 60 wraps to 0 in an unsigned long long
    ("17E", 0, 1 << 60, 3),
    ("18446744073709551616", 0, 0, 20),   # 2**64 wraps
    ("18446744073709551615", 0, (1 << 64) - 1, 20),
    ("", 0, 0, 0),
    ("M", 0, 0, 0),
    ("-1", 0, 0, 0),                 # no sign accepted
    ("+1", 0, 0, 0),
    (" 1", 0, 0, 0),                 # no white space skipped
    ("a256M", 1, 256 * M, 5),
    ("1G-2G", 3, 2 * G, 5),
])
def test_memparse_matches_the_kernel(text, pos, value, end):
    assert memparse(text, pos) == (value, end)


@pytest.mark.parametrize("size, text", [
    (0, "0"), (1, "1"), (1023, "1023"), (K, "1K"), (1023 * K, "1023K"), (256 * M, "256M"),
    (1536 * M, "1536M"), (G, "1G"), (64 * G, "64G"), (T, "1T"), (1 << 50, "1P"), (1 << 60, "1E"),
    (3 << 60, "3E"), (256 * M + 1, "268435457"),
])
def test_format_size_is_the_largest_exact_unit(size, text):
    assert format_size(size) == text
    assert memparse(text) == (size, len(text))
