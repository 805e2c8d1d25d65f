"""crashkernel= values we write or users give: the strict parser, checked against the kernel's
reading (kernel/crash_reserve.c) with expected values worked out by hand,
not from the module under test."""

import random

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import kernel_parse
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import format_size
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import (
    CrashKernel, Range, parse, reserved_bytes,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

K = 1 << 10
M = 1 << 20
G = 1 << 30
T = 1 << 40
TABLE = "1G-4G:192M,4G-64G:256M,64G-:512M"


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
    parsed = parse(value)
    assert (parsed.kind, parsed.size, parsed.ranges, parsed.offset) == (kind, size, ranges, offset)
    assert parsed.format() == canonical
    assert parsed.argument() == "crashkernel=" + canonical
    again = parse(parsed.format())
    assert again == parsed and again.format() == canonical
    assert parse(parsed.argument()) == parsed


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
        parse(value)
    assert message in info.value.msg
    assert info.value.msg.startswith("crashkernel=%s: " % value.strip().replace("crashkernel=", "", 1))
    assert "at position %d" % position in info.value.msg
    assert info.value.extra["position"] == position
    assert "; " in info.value.msg  # always says what to do


def test_parse_error_example_from_the_brief():
    with pytest.raises(KexecError) as info:
        parse("512X")
    assert info.value.msg.startswith("crashkernel=512X: unknown size suffix 'X' at position 3; use K, M or G")


@pytest.mark.parametrize("value, message", [
    ("auto", "RHEL 7/8 kernel patch"),
    (256, "must be a string"),
    (None, "must be a string"),
])
def test_parse_refuses_what_is_no_crashkernel_value(value, message):
    with pytest.raises(KexecError, match=message):
        parse(value)


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
        parse(value, arch=arch)
    assert message in info.value.msg.replace(" for the crash region", "")


@pytest.mark.parametrize("value, arch", [
    ("512M,high", "x86_64"), ("128M,low", "aarch64"), ("512M,high", "riscv64"), ("256M@32M", "x86_64"),
    ("256M@24M", "aarch64"), ("256M@24M", "s390x"), ("256M@0", "x86_64"), ("64M,cma", "ppc64le"),
    ("256M@24M", None),
])
def test_parse_with_arch_accepts(value, arch):
    assert parse(value, arch=arch).format() == value


def test_crash_kernel_value_object():
    parsed = parse("1G-2G:128M,2G-:256M@16M")
    assert parsed == CrashKernel("ranges", ranges=[Range(G, 2 * G, 128 * M), Range(2 * G, None, 256 * M)],
                                 offset=16 * M)
    assert parsed != parse("1G-2G:128M,2G-:256M")
    assert len({parsed, parse("1g-2g:128m,2g-:256m@16m")}) == 1
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
    assert reserved_bytes(expr, ram) == reserved
    assert reserved_bytes(parse(expr), ram) == reserved
    assert parse(expr).size_for(ram) == reserved


def test_reserved_bytes_before_6_0_compares_the_raw_ram():
    assert reserved_bytes("1G-2G:128M", G - 1, round_128m=False) == 0
    assert reserved_bytes("1G-2G:128M", 2 * G - 1, round_128m=False) == 128 * M
    assert reserved_bytes("0-:512M", 513 * M, round_128m=False) == 512 * M


@pytest.mark.parametrize("expr", ["256Mx", "1G-:256M,garbage@16M", "256M@", "", "1G-512M:64M"])
def test_reserved_bytes_refuses_malformed_values(expr):
    with pytest.raises(KexecError):
        reserved_bytes(expr, 8 * G)


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
            entries.append("%s-%s:%s" % (format_size(start), format_size(end), size))
            start = end
        if rng.random() < 0.5:
            entries[-1] = entries[-1].split("-")[0] + "-:" + entries[-1].split(":")[1]
        values.append(",".join(entries) + rng.choice(["", "@16M", "@0x2000000"]))
    rams = [rng.randint(1, 200 * G) for _ram in range(30)] + [G, 2 * G, 64 * G, 128 * M, 2 * G - 1]
    checked = 0
    for value in values:
        try:
            parsed = parse(value)
        except KexecError:
            continue
        for ram in rams:
            try:
                size, base = kernel_parse(value, ram)
            except KexecError as exc:
                assert exc.extra["kernel_message"] == "crashkernel: invalid size"
                size, base = 0, 0
            expected = size if size < ram else 0
            assert parsed.size_for(ram) == expected
            if size:
                assert base == (parsed.offset or 0)
            checked += 1
    assert checked > 5000
