"""crashkernel= as the kernel reads it: the expected values below are worked out by hand from
the kernel's C (kernel/crash_reserve.c, kernel/crash_core.c, lib/cmdline.c memparse),
not from the module under test."""

import random

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import (
    current_value, from_cmdline, kernel_parse, last_crashkernel, reservation, round_system_ram, system_ram_from_iomem,
    system_ram_spans,
)
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import reserved_bytes
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.iomem import parse as parse_iomem

from ...fakes import host as fakes

M = 1 << 20
G = 1 << 30
T = 1 << 40
TABLE = "1G-4G:192M,4G-64G:256M,64G-:512M"


@pytest.mark.parametrize("ram, rounded", [
    (0, 0), (1, 128 * M), (128 * M, 128 * M), (128 * M + 1, 256 * M), (G - 1, G), (G, G), (2 * G - 4096, 2 * G),
])
def test_round_system_ram_is_the_kernels_roundup_to_128m(ram, rounded):
    assert round_system_ram(ram) == rounded


# --- parse_crashkernel_mem(): ranges ----------------------------------------------------------

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
    assert kernel_parse(value, ram) == (size, base)


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
        kernel_parse(value, ram)
    assert "reserves nothing" in info.value.msg
    assert info.value.extra["kernel_message"].endswith(message)


def test_ranges_without_the_128m_round_up_of_kernels_before_6_0():
    assert kernel_parse("1G-2G:128M", G - 1, round_128m=False) == (0, 0)
    assert kernel_parse("1G-2G:128M", 2 * G - 1, round_128m=False) == (128 * M, 0)
    assert kernel_parse("1G-2G:128M", 2 * G - 1) == (0, 0)
    assert kernel_parse("0-:600M", 513 * M) == (600 * M, 0)  # 513M rounds up to 640M
    with pytest.raises(KexecError, match="invalid size"):
        kernel_parse("0-:600M", 513 * M, round_128m=False)


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
    assert kernel_parse(value, 2 * G) == (size, base)


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
        kernel_parse(value, 2 * G)


def test_a_colon_after_a_space_does_not_make_a_range_list():
    # __parse_crashkernel(): ':' selects the range form only before the first space
    assert kernel_parse("256M foo=a:b", 2 * G) == (256 * M, 0)
    with pytest.raises(KexecError, match="'-' expected"):
        kernel_parse("256M:foo", 2 * G)


@pytest.mark.parametrize("value, suffix, size", [
    ("512M,high", ",high", 512 * M),
    ("1g,high", ",high", G),
    ("128M,low", ",low", 128 * M),
    ("0,low", ",low", 0),
    ("64M,cma", ",cma", 64 * M),
    ("512M,high foo", ",high", 512 * M),
])
def test_kernel_parse_suffix(value, suffix, size):
    assert kernel_parse(value, 0, suffix) == (size, 0)


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
        kernel_parse(value, 0, suffix)


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
    assert last_crashkernel(cmdline, suffix, cma) == value


def test_from_cmdline_lists_what_each_lookup_finds():
    line = "ro crashkernel=1G,high crashkernel=256M crashkernel=64M,cma crashkernel=96M,low quiet"
    assert from_cmdline(line) == {"plain": "256M", "high": "1G,high", "low": "96M,low", "cma": "64M,cma"}
    assert from_cmdline(line, cma=False) == {"plain": "64M,cma", "high": "1G,high", "low": "96M,low",
                                             "cma": None}


# --- parse_crashkernel(): what the arch code is asked to reserve ------------------------------

def _reservation(cmdline, ram=8 * G, arch="x86_64", **kwargs):
    result = reservation(cmdline, ram, arch, **kwargs)
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


def test_the_kernel_port_survives_any_text():
    rng = random.Random(7)
    alphabet = "0123456789xXkKmMgGtTeE-:,@. hilowcma"
    for _text in range(3000):
        text = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 14)))
        for suffix in (None, ",high"):
            try:
                size, base = kernel_parse(text, rng.randint(0, 100 * G), suffix)
            except KexecError:
                continue
            assert 0 <= size < (1 << 64) and 0 <= base < (1 << 64)


# --- system RAM from /proc/iomem --------------------------------------------------------------

# The fake host's /proc/iomem, plus hot-added memory a driver manages (not counted).
IOMEM = fakes.IOMEM + "240000000-27fffffff : CXL Window 0\n  240000000-27fffffff : System RAM (kmem)\n"
IOMEM_RAM = (0x9fbff - 0x1000 + 1) + (0xbffdafff - 0x100000 + 1) + (0x23fffffff - 0x100000000 + 1)


def test_system_ram_from_iomem_sums_the_system_ram_ranges():
    assert IOMEM_RAM == 9 * G - 0x1000 - 0x60400 - 0x40025000  # 4G + 5G less the holes below 4G
    assert system_ram_from_iomem(IOMEM) == IOMEM_RAM
    assert system_ram_from_iomem(parse_iomem(IOMEM)) == IOMEM_RAM
    # the kernel rounds it up to 8G before matching ranges
    assert round_system_ram(IOMEM_RAM) == 8 * G
    assert reserved_bytes("1G-8G:192M,8G-:256M", IOMEM_RAM) == 256 * M
    assert reserved_bytes("1G-8G:192M,8G-:256M", IOMEM_RAM, round_128m=False) == 192 * M


def test_system_ram_from_iomem_merges_nested_and_repeated_ranges():
    text = "00100000-001fffff : System RAM\n  00180000-0018ffff : System RAM\n00100000-001fffff : System RAM\n" \
           "00200000-002fffff : System RAM\n"
    assert system_ram_from_iomem(text) == 0x200000


def test_system_ram_spans_are_the_pieces_without_a_hole():
    # touching ranges make one piece: a reservation can span them; the 640K-1M hole and the 3G-4G one split them
    text = "00100000-001fffff : System RAM\n  00180000-0018ffff : System RAM\n00200000-002fffff : System RAM\n" \
           "00400000-004fffff : System RAM\n"
    assert system_ram_spans(text) == [(0x100000, 0x2fffff), (0x400000, 0x4fffff)]
    assert system_ram_spans(IOMEM) == [(0x1000, 0x9fbff), (0x100000, 0xbffdafff), (0x100000000, 0x23fffffff)]


@pytest.mark.parametrize("text", [
    "00000000-00000000 : System RAM\n00000000-00000000 : Reserved\n",   # not root: addresses hidden
    "00000000-00000fff : Reserved\n",
    "",
])
def test_system_ram_from_iomem_unknown(text):
    assert system_ram_from_iomem(text) is None
    assert system_ram_spans(text) is None


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
    assert current_value(args) == value
