"""size: auto: the expected values below are worked out by hand from the kdump-utils tables
and the kernel's C (kernel/crash_reserve.c),
not from the module under test."""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.auto import AUTO_TABLES, auto_size
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import format_size
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import parse, reserved_bytes
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

M = 1 << 20
G = 1 << 30
T = 1 << 40


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
    ("ppc64le", G + 128 * M, "0-2G:384M," + AUTO_TABLES["ppc64le"], 384 * M),
    ("ppc64le", 2 * G, AUTO_TABLES["ppc64le"], 384 * M),
    ("ppc64le", 4 * G, AUTO_TABLES["ppc64le"], 512 * M),
    ("ppc64el", 16 * G - 1, AUTO_TABLES["ppc64le"], G),
    ("ppc64le", 64 * G, AUTO_TABLES["ppc64le"], 2 * G),
    ("ppc64le", 128 * G - 128 * M, AUTO_TABLES["ppc64le"], 2 * G),
    ("ppc64le", 128 * G, AUTO_TABLES["ppc64le"], 4 * G),
    ("ppc64le", 2 * T, AUTO_TABLES["ppc64le"], 4 * G),
    ("ppc64", 4 * G, AUTO_TABLES["ppc64le"], 512 * M),
    # no kdump-utils table: x86_64's
    ("riscv64", 8 * G, "2G-64G:256M,64G-:512M", 256 * M),
    ("loongarch64", G, "0-2G:192M,2G-64G:256M,64G-:512M", 192 * M),
])
def test_auto_size(arch, ram, value, reserved):
    got, explanation = auto_size(arch, ram)
    assert got == value
    assert reserved_bytes(got, ram) == reserved
    assert parse(got).format() == got
    assert "kdump-utils" in explanation
    assert explanation.startswith("crashkernel=%s from the Fedora/RHEL kdump-utils default for " % value)
    assert "it reserves %s" % format_size(reserved) in explanation
    assert ("would reserve nothing here" in explanation) == got.startswith("0-2G:")
    assert ("no table for" in explanation) == (arch in ("riscv64", "loongarch64"))


def test_auto_size_warns_when_the_small_host_size_is_a_large_share():
    value, explanation = auto_size("x86_64", 600 * M)
    assert reserved_bytes(value, 600 * M) == 192 * M
    assert "640M as the kernel compares it" in explanation
    assert "warning: that is 32% of this host's RAM" in explanation
    _value, explanation = auto_size("x86_64", 1920 * M)
    assert "warning" not in explanation


@pytest.mark.parametrize("arch, ram", [("x86_64", 128 * M), ("x86_64", 192 * M), ("ppc64le", 384 * M)])
def test_auto_size_refuses_hosts_too_small_for_a_capture_kernel(arch, ram):
    with pytest.raises(KexecError, match="too little for a crash kernel"):
        auto_size(arch, ram)


@pytest.mark.parametrize("ram", [None, 0, -1, "8G", True])
def test_auto_size_needs_the_ram_in_bytes(ram):
    with pytest.raises(KexecError, match="needs the host's RAM in bytes"):
        auto_size("x86_64", ram)


@pytest.mark.parametrize("arch", sorted(AUTO_TABLES))
def test_auto_tables_are_canonical_values_that_start_at_2g(arch):
    parsed = parse(AUTO_TABLES[arch])
    assert parsed.format() == AUTO_TABLES[arch]
    assert parsed.kind == "ranges" and parsed.ranges[0].start == 2 * G and parsed.ranges[-1].end is None
    assert [entry.end for entry in parsed.ranges[:-1]] == [entry.start for entry in parsed.ranges[1:]]
