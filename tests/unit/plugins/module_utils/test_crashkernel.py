"""crashkernel=: the expected values below are worked out by hand from the kernel's C
(kernel/crash_reserve.c, kernel/crash_core.c, lib/cmdline.c memparse, lib/kstrtox.c),
not from the module under test."""

import random

import pytest

import fakes
from ansible_collections.kernel.kexec.plugins.module_utils import crashkernel as ck
from ansible_collections.kernel.kexec.plugins.module_utils.crashkernel import CrashKernel, Range
from ansible_collections.kernel.kexec.plugins.module_utils.errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils.sysfs import parse_iomem

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
    assert ck.memparse(text, pos) == (value, end)


@pytest.mark.parametrize("size, text", [
    (0, "0"), (1, "1"), (1023, "1023"), (K, "1K"), (1023 * K, "1023K"), (256 * M, "256M"),
    (1536 * M, "1536M"), (G, "1G"), (64 * G, "64G"), (T, "1T"), (1 << 50, "1P"), (1 << 60, "1E"),
    (3 << 60, "3E"), (256 * M + 1, "268435457"),
])
def test_format_size_is_the_largest_exact_unit(size, text):
    assert ck.format_size(size) == text
    assert ck.memparse(text) == (size, len(text))


@pytest.mark.parametrize("ram, rounded", [
    (0, 0), (1, 128 * M), (128 * M, 128 * M), (128 * M + 1, 256 * M), (G - 1, G), (G, G), (2 * G - 4096, 2 * G),
])
def test_round_system_ram_is_the_kernels_roundup_to_128m(ram, rounded):
    assert ck.round_system_ram(ram) == rounded


# --- parse_crashkernel_mem(): ranges ----------------------------------------------------------

TABLE = "1G-4G:192M,4G-64G:256M,64G-:512M"


@pytest.mark.parametrize("value, ram, size, base", [
    # start inclusive, end exclusive, compared with the RAM rounded up to 128M
    ("1G-2G:128M", G, 128 * M, 0),
    ("1G-2G:128M", G - 1, 128 * M, 0),           # rounds up to 1G
    ("1G-2G:128M", 896 * M + 1, 128 * M, 0),     # rounds up to 1G
    ("1G-2G:128M", 896 * M, 0, 0),               # already a multiple of 128M: below the start
    ("1G-2G:128M", 2 * G - 128 * M, 128 * M, 0),
    ("1G-2G:128M", 2 * G - 1, 0, 0),             # rounds up to 2G = end, which is excluded
    ("1G-2G:128M", 2 * G, 0, 0),
    ("1G-:256M", 1 << 50, 256 * M, 0),           # open-ended
    ("1G-:256M", 512 * M, 0, 0),
    (TABLE, 2 * G, 192 * M, 0),
    (TABLE, 4 * G - 1, 256 * M, 0),              # rounds to 4G: the second range
    (TABLE, 4 * G - 128 * M, 192 * M, 0),
    (TABLE, 64 * G, 512 * M, 0),
    (TABLE, 1 * T, 512 * M, 0),
    (TABLE, 900 * M, 192 * M, 0),                # 900M rounds up to 1024M: the first range
    (TABLE, 896 * M, 0, 0),                      # 7 * 128M: stays below 1G
    ("0-2G:0,2G-:256M", G, 0, 0),                # an entry of size 0 matches and reserves nothing
    ("0-2G:0,2G-:256M", 4 * G, 256 * M, 0),
    ("2G-4G:256M,1G-8G:128M", 3 * G, 256 * M, 0),   # overlapping: the first match wins
    ("2G-4G:256M,1G-8G:128M", 5 * G, 128 * M, 0),
    ("1g-2g:128m", G, 128 * M, 0),               # suffixes in either case
    ("0x40000000-0x80000000:0x8000000", G, 128 * M, 0),
    ("1048576K-2097152K:131072K", G, 128 * M, 0),
    # the offset applies whichever entry matched; it is read only when the size is > 0
    ("1G-2G:128M,2G-:256M@16M", G, 128 * M, 16 * M),
    ("1G-2G:128M,2G-:256M@16M", 3 * G, 256 * M, 16 * M),
    ("1G-2G:128M,2G-:256M@16M", 512 * M, 0, 0),
    ("1G-:256M@", 512 * M, 0, 0),                # no match: the empty offset is never read
    # entries after the match are never read: junk there passes on big hosts only
    ("1G-2G:128M,2G-:4G", 1536 * M, 128 * M, 0),
    ("1G-:256M,garbage@16M", 2 * G, 256 * M, 16 * M),
    ("1G-:256Mx", 2 * G, 256 * M, 0),
    ("1G-:256Mx", 512 * M, 0, 0),                # no match, then 'x' ends the list: zero bytes, no error
    ("1G-:256Mx@16M", 512 * M, 0, 0),            # and the '@' after it is not read
    ("1G-:256Mx@16M", 2 * G, 256 * M, 16 * M),
    ("1G-2G:128M,", 1536 * M, 128 * M, 0),
    # 'size >= total_mem' is checked against the rounded RAM only
    ("0-:512M", 513 * M, 512 * M, 0),            # 513M rounds to 640M
    ("0-:1010M", 1000 * M, 1010 * M, 0),         # 1000M rounds to 1024M (parse_crashkernel rejects it later)
])
def test_kernel_parse_ranges(value, ram, size, base):
    assert ck.kernel_parse(value, ram) == (size, base)


@pytest.mark.parametrize("value, ram, message", [
    ("1G-512M:64M", 4 * G, "end <= start"),
    ("1G-1G:64M", 4 * G, "end <= start"),
    (":256M", 4 * G, "Memory value expected"),
    ("x-1G:256M", 4 * G, "Memory value expected"),
    ("1G:256M", 4 * G, "'-' expected"),
    ("1G-2G;:256M", 4 * G, "':' expected"),
    ("1G-x:256M", 4 * G, "Memory value expected"),
    ("1G-:", 4 * G, "Memory value expected"),
    ("1G-:x", 4 * G, "Memory value expected"),
    ("1G-2G:128M,", 3 * G, "Memory value expected"),     # no match, then an empty entry
    ("1G-:256M,garbage@16M", 512 * M, "Memory value expected"),
    ("1G-:256M@", 2 * G, "Memory value expected after '@'"),
    ("1G-:256M@x", 2 * G, "Memory value expected after '@'"),
    ("0-:512M", 512 * M, "invalid size"),                 # size == rounded RAM
    ("1G-2G:128M,2G-:4G", 3 * G, "invalid size"),        # the matching entry is checked
    ("2G-64G:256M,64G-:512M", 128 * M, "invalid size"),  # so is one that does not match
])
def test_kernel_parse_range_errors(value, ram, message):
    with pytest.raises(KexecError, match=message) as info:
        ck.kernel_parse(value, ram)
    assert "reserves nothing" in info.value.msg
    assert info.value.extra["kernel_message"].endswith(message)


def test_ranges_without_the_128m_round_up_of_kernels_before_6_0():
    assert ck.kernel_parse("1G-2G:128M", G - 1, round_128m=False) == (0, 0)
    assert ck.kernel_parse("1G-2G:128M", 2 * G - 1, round_128m=False) == (128 * M, 0)
    assert ck.kernel_parse("1G-2G:128M", 2 * G - 1) == (0, 0)
    assert ck.kernel_parse("0-:600M", 513 * M) == (600 * M, 0)  # 513M rounds up to 640M
    with pytest.raises(KexecError, match="invalid size"):
        ck.kernel_parse("0-:600M", 513 * M, round_128m=False)


# --- parse_crashkernel_simple() and parse_crashkernel_suffix() ----------------------------------

@pytest.mark.parametrize("value, size, base", [
    ("256M", 256 * M, 0),
    ("256M@16M", 256 * M, 16 * M),
    ("256M@", 256 * M, 0),              # the offset is not checked: empty is base 0
    ("256M@x", 256 * M, 0),
    ("256M@16Mjunk", 256 * M, 16 * M),  # nor what follows it
    ("0256M", 174 * M, 0),              # octal
    ("16E", 0, 0),                      # wraps to 0
    ("0x10000000", 256 * M, 0),
    ("4G", 4 * G, 0),                   # no RAM check here (parse_crashkernel does it)
    ("0", 0, 0),
])
def test_kernel_parse_simple(value, size, base):
    assert ck.kernel_parse(value, 2 * G) == (size, base)


@pytest.mark.parametrize("value, message", [
    ("", "memory value expected"),
    ("-", "memory value expected"),
    ("M", "memory value expected"),
    ("256Mx", "unrecognized char: x"),
    ("256MB", "unrecognized char: B"),
    ("256M,foo", "unrecognized char: ,"),
    ("256M,high", "unrecognized char: ,"),  # as a plain value
    ("1.5G", "unrecognized char: ."),
    ("1G-2G", "unrecognized char: -"),      # no ':' at all: the simple form
    ('"256M"', "memory value expected"),
])
def test_kernel_parse_simple_errors(value, message):
    with pytest.raises(KexecError, match=message):
        ck.kernel_parse(value, 2 * G)


def test_a_colon_after_a_space_does_not_make_a_range_list():
    # __parse_crashkernel(): ':' selects the range form only before the first space
    assert ck.kernel_parse("256M foo=a:b", 2 * G) == (256 * M, 0)
    with pytest.raises(KexecError, match="'-' expected"):
        ck.kernel_parse("256M:foo", 2 * G)


@pytest.mark.parametrize("value, suffix, size", [
    ("512M,high", ",high", 512 * M),
    ("1g,high", ",high", G),
    ("128M,low", ",low", 128 * M),
    ("0,low", ",low", 0),
    ("64M,cma", ",cma", 64 * M),
    ("512M,high foo", ",high", 512 * M),
])
def test_kernel_parse_suffix(value, suffix, size):
    assert ck.kernel_parse(value, 0, suffix) == (size, 0)


@pytest.mark.parametrize("value, suffix", [
    ("512M,highx", ",high"),
    ("512M", ",high"),
    ("512M,HIGH", ",high"),
    ("1G-:256M,high", ",high"),
    ("512M@16M,high", ",high"),
    (",high", ",high"),
    ("512M,low", ",high"),
])
def test_kernel_parse_suffix_errors(value, suffix):
    with pytest.raises(KexecError, match="crashkernel: (unrecognized char|memory value expected)"):
        ck.kernel_parse(value, 0, suffix)


# --- get_last_crashkernel() ---------------------------------------------------------------------

@pytest.mark.parametrize("cmdline, suffix, cma, value", [
    ("ro crashkernel=128M quiet crashkernel=256M", None, True, "256M"),
    ("crashkernel=256M crashkernel=512M,high", None, True, "256M"),
    ("crashkernel=256M crashkernel=512M,high", ",high", True, "512M,high"),
    ("crashkernel=512M,high crashkernel=1G,high", ",high", True, "1G,high"),
    ("crashkernel=512M,high crashkernel=128M,low", None, True, None),
    ("crashkernel=512M,high crashkernel=128M,low", ",low", True, "128M,low"),
    ("crashkernel=1G-:256M,high", ",high", True, "1G-:256M,high"),   # only the end is looked at
    ("crashkernel=256M crashkernel=64M,cma", None, True, "256M"),
    ("crashkernel=256M crashkernel=64M,cma", None, False, "64M,cma"),  # before 6.16 ',cma' is plain
    ("crashkernel=256M crashkernel=64M,cma", ",cma", True, "64M,cma"),
    ("crashkernel=256M crashkernel=256M,HIGH", None, True, "256M,HIGH"),  # case-sensitive
    ("crashkernel=256M xcrashkernel=1G", None, True, "1G"),           # strstr() finds it anywhere
    ("crashkernel=256M foo=crashkernel=1G", None, True, "1G"),
    ('crashkernel="256M" ro', None, True, '"256M"'),                  # quotes mean nothing
    ("crashkernel=256M\tquiet", None, True, "256M\tquiet"),           # only ' ' ends a value
    ("crashkernel=", None, True, ""),
    ("ro quiet", None, True, None),
    ("", ",high", True, None),
])
def test_last_crashkernel(cmdline, suffix, cma, value):
    assert ck.last_crashkernel(cmdline, suffix, cma) == value


def test_from_cmdline_lists_what_each_lookup_finds():
    line = "ro crashkernel=1G,high crashkernel=256M crashkernel=64M,cma crashkernel=96M,low quiet"
    assert ck.from_cmdline(line) == {"plain": "256M", "high": "1G,high", "low": "96M,low", "cma": "64M,cma"}
    assert ck.from_cmdline(line, cma=False) == {"plain": "64M,cma", "high": "1G,high", "low": "96M,low",
                                                "cma": None}


# --- parse_crashkernel(): what the arch code is asked to reserve ------------------------------

def _reservation(cmdline, ram=8 * G, arch="x86_64", **kwargs):
    result = ck.reservation(cmdline, ram, arch, **kwargs)
    return {key: result[key] for key in ("present", "kind", "size", "offset", "low", "cma")}, result["error"]


@pytest.mark.parametrize("cmdline, ram, arch, expected", [
    ("ro quiet", 8 * G, "x86_64", dict(present=False, kind=None, size=0, offset=0, low=0, cma=0)),
    ("crashkernel=256M", 8 * G, "x86_64", dict(present=True, kind="plain", size=256 * M, offset=0, low=0, cma=0)),
    ("crashkernel=256M@16M", 8 * G, "x86_64", dict(present=True, kind="plain", size=256 * M, offset=16 * M,
                                                   low=0, cma=0)),
    (TABLE, 8 * G, "x86_64", dict(present=False, kind=None, size=0, offset=0, low=0, cma=0)),  # no name
    ("crashkernel=" + TABLE, 8 * G, "x86_64", dict(present=True, kind="plain", size=256 * M, offset=0, low=0,
                                                   cma=0)),
    # the plain value wins over ',high'
    ("crashkernel=1G,high crashkernel=256M", 8 * G, "x86_64", dict(present=True, kind="plain", size=256 * M,
                                                                   offset=0, low=0, cma=0)),
    # ',high' alone: the arch's default low part (x86_64 256M, generic 128M)
    ("crashkernel=1G,high", 8 * G, "x86_64", dict(present=True, kind="high", size=G, offset=0, low=256 * M, cma=0)),
    ("crashkernel=1G,high", 8 * G, "arm64", dict(present=True, kind="high", size=G, offset=0, low=128 * M, cma=0)),
    ("crashkernel=1G,high", 8 * G, "riscv64", dict(present=True, kind="high", size=G, offset=0, low=128 * M,
                                                   cma=0)),
    ("crashkernel=1G,high crashkernel=72M,low", 8 * G, "x86_64", dict(present=True, kind="high", size=G, offset=0,
                                                                      low=72 * M, cma=0)),
    ("crashkernel=1G,high crashkernel=0,low", 8 * G, "x86_64", dict(present=True, kind="high", size=G, offset=0,
                                                                    low=0, cma=0)),
    # s390x and ppc64le read no ',high'
    ("crashkernel=1G,high", 8 * G, "s390x", dict(present=False, kind=None, size=0, offset=0, low=0, cma=0)),
    ("crashkernel=1G,high", 8 * G, "ppc64le", dict(present=False, kind=None, size=0, offset=0, low=0, cma=0)),
    # ',cma' comes on top of a valid main part only
    ("crashkernel=256M crashkernel=64M,cma", 8 * G, "x86_64", dict(present=True, kind="plain", size=256 * M,
                                                                   offset=0, low=0, cma=64 * M)),
    ("crashkernel=256M crashkernel=64X,cma", 8 * G, "x86_64", dict(present=True, kind="plain", size=256 * M,
                                                                   offset=0, low=0, cma=0)),
    ("crashkernel=64M,cma", 8 * G, "x86_64", dict(present=False, kind=None, size=0, offset=0, low=0, cma=0)),
])
def test_reservation(cmdline, ram, arch, expected):
    result, error = _reservation(cmdline, ram, arch)
    assert error is None
    assert result == expected


@pytest.mark.parametrize("cmdline, ram, arch, cma, error", [
    ("crashkernel=256Mx crashkernel=1G,high", 8 * G, "x86_64", True, "unrecognized char: x"),
    ("crashkernel=2G-:256M", G, "x86_64", True, "matches no range"),
    ("crashkernel=0", 8 * G, "x86_64", True, "asks for 0 bytes"),
    ("crashkernel=4G", 2 * G, "x86_64", True, "not less than the host's"),
    ("crashkernel=0-:1010M", 1000 * M, "x86_64", True, "not less than the host's"),  # raw RAM, not rounded
    ("crashkernel=2G,high", 2 * G, "x86_64", True, "not less than the host's"),
    ("crashkernel=0,high", 8 * G, "x86_64", True, "asks for 0 bytes"),
    ("crashkernel=1G-:256M,high", 8 * G, "x86_64", True, "unrecognized char: -"),
    ("crashkernel=1G,high crashkernel=x,low", 8 * G, "x86_64", True, "memory value expected"),
    # before 6.16 the ',cma' value is the last plain one, and fails: no reservation at all
    ("crashkernel=256M crashkernel=64M,cma", 8 * G, "x86_64", False, "unrecognized char: ,"),
])
def test_reservation_errors_reserve_nothing(cmdline, ram, arch, cma, error):
    result, message = _reservation(cmdline, ram, arch, cma=cma)
    assert result["present"] is True
    assert (result["size"], result["low"], result["cma"], result["offset"]) == (0, 0, 0, 0)
    assert error in message


# --- the strict parser ------------------------------------------------------------------------

@pytest.mark.parametrize("value, kind, size, ranges, offset, canonical", [
    ("256M", "simple", 256 * M, (), None, "256M"),
    ("256m", "simple", 256 * M, (), None, "256M"),
    ("262144K", "simple", 256 * M, (), None, "256M"),
    ("268435456", "simple", 256 * M, (), None, "256M"),
    ("0x10000000", "simple", 256 * M, (), None, "256M"),
    ("1536M", "simple", 1536 * M, (), None, "1536M"),
    ("1024M", "simple", G, (), None, "1G"),
    ("1t", "simple", T, (), None, "1T"),
    ("100", "simple", 100, (), None, "100"),
    ("256M@16M", "simple", 256 * M, (), 16 * M, "256M@16M"),
    ("256M@0x1000000", "simple", 256 * M, (), 16 * M, "256M@16M"),
    ("256M@0", "simple", 256 * M, (), 0, "256M@0"),
    ("crashkernel=256M", "simple", 256 * M, (), None, "256M"),
    ("  256M\n", "simple", 256 * M, (), None, "256M"),
    (TABLE, "ranges", None, (Range(G, 4 * G, 192 * M), Range(4 * G, 64 * G, 256 * M), Range(64 * G, None, 512 * M)),
     None, TABLE),
    ("1g-4g:192m", "ranges", None, (Range(G, 4 * G, 192 * M),), None, "1G-4G:192M"),
    ("0-:256M", "ranges", None, (Range(0, None, 256 * M),), None, "0-:256M"),
    ("0-2G:0,2G-:256M", "ranges", None, (Range(0, 2 * G, 0), Range(2 * G, None, 256 * M)), None, "0-2G:0,2G-:256M"),
    ("1G-2G:128M,2G-:256M@16M", "ranges", None, (Range(G, 2 * G, 128 * M), Range(2 * G, None, 256 * M)), 16 * M,
     "1G-2G:128M,2G-:256M@16M"),
    ("1048576K-2097152K:131072K", "ranges", None, (Range(G, 2 * G, 128 * M),), None, "1G-2G:128M"),
    ("512M,high", "high", 512 * M, (), None, "512M,high"),
    ("512m,high", "high", 512 * M, (), None, "512M,high"),
    ("128M,low", "low", 128 * M, (), None, "128M,low"),
    ("0,low", "low", 0, (), None, "0,low"),
    ("64M,cma", "cma", 64 * M, (), None, "64M,cma"),
    ("1e", "simple", 1 << 60, (), None, "1E"),
])
def test_parse_accepts_the_kernels_forms(value, kind, size, ranges, offset, canonical):
    parsed = ck.parse(value)
    assert (parsed.kind, parsed.size, parsed.ranges, parsed.offset) == (kind, size, ranges, offset)
    assert parsed.format() == canonical
    assert parsed.argument() == "crashkernel=" + canonical
    again = ck.parse(parsed.format())
    assert again == parsed and again.format() == canonical
    assert ck.parse(parsed.argument()) == parsed


@pytest.mark.parametrize("value, message, position", [
    ("", "size expected", 0),
    ("crashkernel=", "size expected", 0),
    ("-", "size expected, found '-'", 0),
    ("1G-:", "size expected", 4),
    (":256M", "range start expected, found ':'", 0),
    ("1G-512M:64M", "range end 512M is not above its start 1G (end <= start)", 3),
    ("1G-1G:64M", "end <= start", 3),
    ("256M@", "offset after '@' expected", 5),
    ("256M@x", "offset after '@' expected, found 'x'", 5),
    ("256Mx", "unexpected 'x' after '256M'", 4),
    ("256MB", "unexpected 'B' after '256M'", 4),
    ("512X", "unknown size suffix 'X'", 3),
    ("512b", "unknown size suffix 'b'", 3),
    ("0x1fz", "unknown size suffix 'z'", 4),
    ("256M,foo", "unexpected ','", 4),
    ("256M,HIGH", "unexpected ','", 4),
    ("256M,", "unexpected ','", 4),
    ("1.5G", "unexpected '.'", 1),
    ("256M 1G", "unexpected ' '", 4),
    ("0256M", "read it as octal, so it means 174M", 0),
    ("08M", "where 8 and 9 are no digits", 0),
    ("1G-2G:0128M", "octal", 6),
    ("1G-2G:128M,", "range start expected", 11),
    ("1G-2G:128M,,2G-:256M", "range start expected, found ','", 11),
    ("1G-2G", "unexpected '-' at position 2; a range list needs a size for each range", 2),
    ("1G:256M", "'-' expected after the range start", 2),
    ("1G-2G;128M", "unexpected '-'", 2),     # no ':' at all: the simple form, as in the kernel
    ("1G-2G;:128M", "':' expected after the range", 5),
    ("1G-2G:128Mx", "unexpected 'x' after '128M'", 10),
    ("1G-2G:128M@", "offset after '@' expected", 11),
    ("1G-2G:128M@16Mx", "unexpected 'x' after '16M'", 14),
    ("1G-2G:128M@16M,2G-:1G", "unexpected ','", 14),
    ("256M@16M@32M", "unexpected '@'", 8),
    ("1G-:256M,high", "',high' takes a single size, not a range list", 2),
    ("256M@16M,high", "',high' takes a single size, not an @offset", 4),
    ("256M,x,high", "unexpected ',x' before ',high'", 4),
    ("256Mx,low", "unexpected 'x' after '256M'", 4),
    (",high", "size expected, found ','", 0),
    ("0", "a size of 0 reserves nothing", 0),
    ("0M@16M", "a size of 0 reserves nothing", 0),
    ("0,high", "a size of 0 with ',high' reserves nothing", 0),
    ("20E", "does not fit in 64 bits (the kernel would wrap it to 4E)", 0),
    ("16E", "does not fit in 64 bits (the kernel would wrap it to 0)", 0),
    ("0-1G:2G", "size 2G is not below the range end 1G", 5),
    ("0-1G:1G", "size 1G is not below the range end 1G", 5),
    ("\u00b2", "size expected", 0),
])
def test_parse_refuses_junk_pointing_at_it(value, message, position):
    with pytest.raises(KexecError) as info:
        ck.parse(value)
    assert message in info.value.msg
    assert info.value.msg.startswith("crashkernel=%s: " % value.strip().replace("crashkernel=", "", 1))
    assert "at position %d" % position in info.value.msg
    assert info.value.extra["position"] == position
    assert "; " in info.value.msg  # always says what to do


def test_parse_error_example_from_the_brief():
    with pytest.raises(KexecError) as info:
        ck.parse("512X")
    assert info.value.msg.startswith("crashkernel=512X: unknown size suffix 'X' at position 3; use K, M or G")


@pytest.mark.parametrize("value, message", [
    ("auto", "RHEL 7/8 kernel patch"),
    (256, "must be a string"),
    (None, "must be a string"),
])
def test_parse_refuses_what_is_no_crashkernel_value(value, message):
    with pytest.raises(KexecError, match=message):
        ck.parse(value)


@pytest.mark.parametrize("value, arch, message", [
    ("512M,high", "s390x", "s390x reads no ',high' value"),
    ("128M,low", "ppc64le", "ppc64le reads no ',low' value"),
    ("256M@24M", "x86_64", "not a multiple of 16M, which x86_64 needs; use @16M or @32M"),
    ("256M@24M", "amd64", "use @16M or @32M"),
    ("1G-:256M@1M", "x86_64", "use @0 or @16M"),
    ("256M@3M", "aarch64", "use @2M or @4M"),
    ("256M@3M", "arm64", "aarch64"),
])
def test_parse_with_arch_checks_what_the_arch_needs(value, arch, message):
    with pytest.raises(KexecError) as info:
        ck.parse(value, arch=arch)
    assert message in info.value.msg.replace(" for the crash region", "")


@pytest.mark.parametrize("value, arch", [
    ("512M,high", "x86_64"), ("128M,low", "aarch64"), ("512M,high", "riscv64"), ("256M@32M", "x86_64"),
    ("256M@24M", "aarch64"), ("256M@24M", "s390x"), ("256M@0", "x86_64"), ("64M,cma", "ppc64le"),
    ("256M@24M", None),
])
def test_parse_with_arch_accepts(value, arch):
    assert ck.parse(value, arch=arch).format() == value


def test_crash_kernel_value_object():
    parsed = ck.parse("1G-2G:128M,2G-:256M@16M")
    assert parsed == CrashKernel("ranges", ranges=[Range(G, 2 * G, 128 * M), Range(2 * G, None, 256 * M)],
                                 offset=16 * M)
    assert parsed != ck.parse("1G-2G:128M,2G-:256M")
    assert len({parsed, ck.parse("1g-2g:128m,2g-:256m@16m")}) == 1
    assert parsed.as_dict() == {
        "kind": "ranges", "size": None, "offset": 16 * M, "value": "1G-2G:128M,2G-:256M@16M",
        "ranges": [{"start": G, "end": 2 * G, "size": 128 * M}, {"start": 2 * G, "end": None, "size": 256 * M}],
    }
    assert repr(parsed) == "CrashKernel('1G-2G:128M,2G-:256M@16M')"
    assert parsed.ranges[1].matches(1 << 50) and not parsed.ranges[0].matches(2 * G)
    assert CrashKernel("high", size=G).format() == "1G,high"
    assert CrashKernel("simple", size=G, offset=48 * M).argument() == "crashkernel=1G@48M"
    with pytest.raises(KexecError, match="unknown crashkernel kind"):
        CrashKernel("auto", size=G)


# --- reserved_bytes ---------------------------------------------------------------------------

@pytest.mark.parametrize("expr, ram, reserved", [
    ("256M", 2 * G, 256 * M),
    ("256M@16M", 2 * G, 256 * M),
    ("4G", 2 * G, 0),                  # parse_crashkernel(): size >= system_ram
    ("2G", 2 * G, 0),
    ("2G", 2 * G + 1, 2 * G),
    ("1G-2G:128M", G - 1, 128 * M),    # rounded up to 1G: matches
    ("1G-2G:128M", 2 * G - 1, 0),      # rounded up to 2G: the end is excluded
    ("1G-2G:128M", 2 * G - 128 * M, 128 * M),
    (TABLE, 512 * M, 0),               # below every range
    (TABLE, G, 192 * M),
    (TABLE, 4 * G, 256 * M),
    (TABLE, 64 * G - 1, 512 * M),
    ("2G-64G:256M,64G-:512M", 128 * M, 0),   # 'invalid size' on an entry before any match
    ("0-:512M", 512 * M, 0),                 # 'invalid size' on the match itself
    ("0-:512M", 513 * M, 512 * M),
    ("0-:1010M", 1000 * M, 0),               # passes the rounded check, fails the raw one
    ("1G-2G:128M,2G-:4G", 1536 * M, 128 * M),
    ("1G-2G:128M,2G-:4G", 3 * G, 0),
    ("1G-2G:128M,2G-:4G", 5 * G, 4 * G),
    ("512M,high", 8 * G, 512 * M),
    ("8G,high", 8 * G, 0),
    ("128M,low", 8 * G, 128 * M),
    ("0,low", 8 * G, 0),
    ("64M,cma", 8 * G, 64 * M),
])
def test_reserved_bytes(expr, ram, reserved):
    assert ck.reserved_bytes(expr, ram) == reserved
    assert ck.reserved_bytes(ck.parse(expr), ram) == reserved
    assert ck.parse(expr).size_for(ram) == reserved


def test_reserved_bytes_before_6_0_compares_the_raw_ram():
    assert ck.reserved_bytes("1G-2G:128M", G - 1, round_128m=False) == 0
    assert ck.reserved_bytes("1G-2G:128M", 2 * G - 1, round_128m=False) == 128 * M
    assert ck.reserved_bytes("0-:512M", 513 * M, round_128m=False) == 512 * M


@pytest.mark.parametrize("expr", ["256Mx", "1G-:256M,garbage@16M", "256M@", "", "1G-512M:64M"])
def test_reserved_bytes_refuses_malformed_values(expr):
    with pytest.raises(KexecError):
        ck.reserved_bytes(expr, 8 * G)


def test_strict_values_evaluate_as_the_kernel_parser_on_many_hosts():
    """Whatever parse() accepts, the kernel port parses without a syntax error and agrees with size_for()."""
    rng = random.Random(20240611)
    units = ["", "K", "M", "G", "k", "m", "g"]
    values = [TABLE, "2G-64G:256M,64G-:512M", "0-2G:192M,2G-:256M@16M"]
    for _value in range(400):
        entries = []
        start = rng.choice([0, 512 * M, G])
        for _entry in range(rng.randint(1, 4)):
            end = start + rng.choice([128 * M, G, 3 * G, 60 * G])
            size = "%d%s" % (rng.randint(0, 900), rng.choice(units))
            entries.append("%s-%s:%s" % (ck.format_size(start), ck.format_size(end), size))
            start = end
        if rng.random() < 0.5:
            entries[-1] = entries[-1].split("-")[0] + "-:" + entries[-1].split(":")[1]
        values.append(",".join(entries) + rng.choice(["", "@16M", "@0x2000000"]))
    rams = [rng.randint(1, 200 * G) for _ram in range(30)] + [G, 2 * G, 64 * G, 128 * M, 2 * G - 1]
    checked = 0
    for value in values:
        try:
            parsed = ck.parse(value)
        except KexecError:
            continue
        for ram in rams:
            try:
                size, base = ck.kernel_parse(value, ram)
            except KexecError as exc:
                assert exc.extra["kernel_message"] == "crashkernel: invalid size"
                size, base = 0, 0
            expected = size if size < ram else 0
            assert parsed.size_for(ram) == expected
            if size:
                assert base == (parsed.offset or 0)
            checked += 1
    assert checked > 5000


def test_the_kernel_port_survives_any_text():
    rng = random.Random(7)
    alphabet = "0123456789xXkKmMgGtTeE-:,@. hilowcma"
    for _text in range(3000):
        text = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 14)))
        for suffix in (None, ",high"):
            try:
                size, base = ck.kernel_parse(text, rng.randint(0, 100 * G), suffix)
            except KexecError:
                continue
            assert 0 <= size < (1 << 64) and 0 <= base < (1 << 64)


# --- system RAM from /proc/iomem --------------------------------------------------------------

# The fake host's /proc/iomem, plus hot-added memory a driver manages (not counted).
IOMEM = fakes.IOMEM + "240000000-27fffffff : CXL Window 0\n  240000000-27fffffff : System RAM (kmem)\n"
IOMEM_RAM = (0x9fbff - 0x1000 + 1) + (0xbffdafff - 0x100000 + 1) + (0x23fffffff - 0x100000000 + 1)


def test_system_ram_from_iomem_sums_the_system_ram_ranges():
    assert IOMEM_RAM == 9 * G - 0x1000 - 0x60400 - 0x40025000  # 4G + 5G less the holes below 4G
    assert ck.system_ram_from_iomem(IOMEM) == IOMEM_RAM
    assert ck.system_ram_from_iomem(parse_iomem(IOMEM)) == IOMEM_RAM
    # the kernel rounds it up to 8G before matching ranges
    assert ck.round_system_ram(IOMEM_RAM) == 8 * G
    assert ck.reserved_bytes("1G-8G:192M,8G-:256M", IOMEM_RAM) == 256 * M
    assert ck.reserved_bytes("1G-8G:192M,8G-:256M", IOMEM_RAM, round_128m=False) == 192 * M


def test_system_ram_from_iomem_merges_nested_and_repeated_ranges():
    text = "00100000-001fffff : System RAM\n  00180000-0018ffff : System RAM\n00100000-001fffff : System RAM\n" \
           "00200000-002fffff : System RAM\n"
    assert ck.system_ram_from_iomem(text) == 0x200000


@pytest.mark.parametrize("text", [
    "00000000-00000000 : System RAM\n00000000-00000000 : Reserved\n",   # not root: addresses hidden
    "00000000-00000fff : Reserved\n",
    "",
])
def test_system_ram_from_iomem_unknown(text):
    assert ck.system_ram_from_iomem(text) is None


# --- size: auto -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, ram, value, reserved", [
    # x86_64 and s390x: 2G-64G:256M,64G-:512M, and 192M below 2G
    ("x86_64", 1920 * M, "0-2G:192M,2G-64G:256M,64G-:512M", 192 * M),
    ("x86_64", 1920 * M + 1, "2G-64G:256M,64G-:512M", 256 * M),   # rounds up to 2G
    ("x86_64", 2 * G - 4096, "2G-64G:256M,64G-:512M", 256 * M),
    ("x86_64", 2 * G, "2G-64G:256M,64G-:512M", 256 * M),
    ("x86_64", 8 * G, "2G-64G:256M,64G-:512M", 256 * M),
    ("x86_64", 64 * G - 128 * M, "2G-64G:256M,64G-:512M", 256 * M),
    ("x86_64", 64 * G - 1, "2G-64G:256M,64G-:512M", 512 * M),     # rounds up to 64G
    ("x86_64", 64 * G, "2G-64G:256M,64G-:512M", 512 * M),
    ("x86_64", 4 * T, "2G-64G:256M,64G-:512M", 512 * M),
    ("amd64", 8 * G, "2G-64G:256M,64G-:512M", 256 * M),
    ("s390x", G, "0-2G:192M,2G-64G:256M,64G-:512M", 192 * M),
    ("s390x", 64 * G, "2G-64G:256M,64G-:512M", 512 * M),
    # aarch64: 2G-4G:256M,4G-64G:320M,64G-:576M, and 256M below 2G
    ("aarch64", G, "0-2G:256M,2G-4G:256M,4G-64G:320M,64G-:576M", 256 * M),
    ("aarch64", 2 * G, "2G-4G:256M,4G-64G:320M,64G-:576M", 256 * M),
    ("aarch64", 4 * G - 128 * M, "2G-4G:256M,4G-64G:320M,64G-:576M", 256 * M),
    ("aarch64", 4 * G - 1, "2G-4G:256M,4G-64G:320M,64G-:576M", 320 * M),
    ("arm64", 4 * G, "2G-4G:256M,4G-64G:320M,64G-:576M", 320 * M),
    ("aarch64", 64 * G, "2G-4G:256M,4G-64G:320M,64G-:576M", 576 * M),
    # ppc64le: its own table, and 384M below 2G
    ("ppc64le", G + 128 * M, "0-2G:384M," + ck.AUTO_TABLES["ppc64le"], 384 * M),
    ("ppc64le", 2 * G, ck.AUTO_TABLES["ppc64le"], 384 * M),
    ("ppc64le", 4 * G, ck.AUTO_TABLES["ppc64le"], 512 * M),
    ("ppc64el", 16 * G - 1, ck.AUTO_TABLES["ppc64le"], G),
    ("ppc64le", 64 * G, ck.AUTO_TABLES["ppc64le"], 2 * G),
    ("ppc64le", 128 * G - 128 * M, ck.AUTO_TABLES["ppc64le"], 2 * G),
    ("ppc64le", 128 * G, ck.AUTO_TABLES["ppc64le"], 4 * G),
    ("ppc64le", 2 * T, ck.AUTO_TABLES["ppc64le"], 4 * G),
    ("ppc64", 4 * G, ck.AUTO_TABLES["ppc64le"], 512 * M),
    # no kdump-utils table: x86_64's
    ("riscv64", 8 * G, "2G-64G:256M,64G-:512M", 256 * M),
    ("loongarch64", G, "0-2G:192M,2G-64G:256M,64G-:512M", 192 * M),
])
def test_auto_size(arch, ram, value, reserved):
    got, explanation = ck.auto_size(arch, ram)
    assert got == value
    assert ck.reserved_bytes(got, ram) == reserved
    assert ck.parse(got).format() == got
    assert "kdump-utils" in explanation
    assert explanation.startswith("crashkernel=%s from the Fedora/RHEL kdump-utils default for " % value)
    assert "it reserves %s" % ck.format_size(reserved) in explanation
    assert ("would reserve nothing here" in explanation) == got.startswith("0-2G:")
    assert ("no table for" in explanation) == (arch in ("riscv64", "loongarch64"))


def test_auto_size_warns_when_the_small_host_size_is_a_large_share():
    value, explanation = ck.auto_size("x86_64", 600 * M)
    assert ck.reserved_bytes(value, 600 * M) == 192 * M
    assert "640M as the kernel compares it" in explanation
    assert "warning: that is 32% of this host's RAM" in explanation
    _value, explanation = ck.auto_size("x86_64", 1920 * M)
    assert "warning" not in explanation


@pytest.mark.parametrize("arch, ram", [("x86_64", 128 * M), ("x86_64", 192 * M), ("ppc64le", 384 * M)])
def test_auto_size_refuses_hosts_too_small_for_a_capture_kernel(arch, ram):
    with pytest.raises(KexecError, match="too little for a crash kernel"):
        ck.auto_size(arch, ram)


@pytest.mark.parametrize("ram", [None, 0, -1, "8G", True])
def test_auto_size_needs_the_ram_in_bytes(ram):
    with pytest.raises(KexecError, match="needs the host's RAM in bytes"):
        ck.auto_size("x86_64", ram)


@pytest.mark.parametrize("arch", sorted(ck.AUTO_TABLES))
def test_auto_tables_are_canonical_values_that_start_at_2g(arch):
    parsed = ck.parse(ck.AUTO_TABLES[arch])
    assert parsed.format() == ck.AUTO_TABLES[arch]
    assert parsed.kind == "ranges" and parsed.ranges[0].start == 2 * G and parsed.ranges[-1].end is None
    assert [entry.end for entry in parsed.ranges[:-1]] == [entry.start for entry in parsed.ranges[1:]]


@pytest.mark.parametrize("args, value", [
    ("ro quiet", None),
    ("crashkernel=256M", "256M"),
    ("crashkernel=1G,high crashkernel=256M,low", "1G,high"),
    ("crashkernel=256M crashkernel=1G,high", "256M"),  # the kernel reads ',high' only without a plain one
    ("crashkernel=1G,high crashkernel=512M crashkernel=2G,high", "512M"),
    ("crashkernel=1G,high crashkernel=2G,high", "2G,high"),
    ("crashkernel=256M,low", "256M,low"),
    ("crashkernel=64M,cma", "64M,cma"),
    ("crashkernel=", ""),
])
def test_current_value(args, value):
    assert ck.current_value(args) == value
