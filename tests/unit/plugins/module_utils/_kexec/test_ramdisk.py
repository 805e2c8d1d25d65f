"""ramdisk: an initrd the host cannot hold is refused from its size (fstat), before anything reads it.

The kernel's rule (sanity_check_segment_list, kernel/kexec_core.c): no segment may take more than half
of totalram_pages() (/proc/meminfo's MemTotal); a crash load's segments must lie in the crash region.
"""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import ramdisk

from ...fakes import host as fakes
from ...fakes.files import ReadCounter

MIB = 1 << 20
GIB = 1 << 30
MEM_TOTAL = 2013548 * 1024  # the MemTotal of a 2 GiB guest, as legacy_fakes writes it
CRASH_HIGH = fakes.CRASH_HIGH[1] - fakes.CRASH_HIGH[0] + 1  # 16 MiB
CRASH_LOW = fakes.CRASH_LOW[1] - fakes.CRASH_LOW[0] + 1  # 128 MiB, the larger of fake_host's two ranges


@pytest.fixture
def meminfo(host):
    host.write("proc/meminfo", "MemTotal:        2013548 kB\nMemFree:          1700000 kB\n")
    return host


def sparse(path, size):
    with open(path, "wb") as handle:
        handle.truncate(size)
    return str(path)


def check(host, path, crash=False):
    with open(path, "rb") as handle:
        ramdisk.check(host.root, path, handle, crash)


def test_limits_are_half_of_memtotal_and_the_largest_crash_range(meminfo):
    assert [limit for limit, _why in ramdisk.limits(meminfo.root, False)] == [MEM_TOTAL // 2]
    assert [limit for limit, _why in ramdisk.limits(meminfo.root, True)] == [MEM_TOTAL // 2, CRASH_LOW]


def test_what_cannot_be_read_is_not_guessed(host):
    """No /proc/meminfo, /proc/iomem without addresses (not root): no limit here; the kernel still has its own."""
    host.write("proc/iomem", "".join("00000000-00000000 : %s\n" % line.partition(" : ")[2]
                                     for line in fakes.IOMEM.splitlines()))
    assert ramdisk.limits(host.root, True) == []
    host.write("proc/meminfo", "MemFree: 1 kB\n")
    assert ramdisk.limits(host.root, False) == []


@pytest.mark.parametrize("size", [1, MEM_TOTAL // 2])
def test_an_initrd_up_to_half_of_ram_passes(meminfo, tmp_path, size):
    check(meminfo, sparse(tmp_path / "initrd.img", size))


@pytest.mark.parametrize("size", [MEM_TOTAL // 2 + 1, 8 * GIB])
def test_an_initrd_larger_than_half_of_ram_is_refused_unread(meminfo, tmp_path, monkeypatch, size):
    path = sparse(tmp_path / "initrd.img", size)
    reads = ReadCounter(monkeypatch)
    with pytest.raises(KexecError) as info:
        check(meminfo, path)
    assert info.value.msg == (
        "initrd %s is %.1f MiB (%d bytes), more than this host can load: the kernel refuses a kexec segment larger "
        "than half of its RAM (MemTotal 1966.4 MiB, so at most 983.2 MiB: sanity_check_segment_list); refused "
        "before reading it (is it the right file?)" % (path, size / float(MIB), size))
    assert reads.of(os.stat(path)) == [0]


def test_a_crash_initrd_must_fit_in_the_crash_region(meminfo, tmp_path):
    path = sparse(tmp_path / "initrd.img", CRASH_LOW + 1)
    check(meminfo, path, crash=False)  # a normal load does not care
    with pytest.raises(KexecError) as info:
        check(meminfo, path, crash=True)
    assert ("a crash load's segments must lie in the crash kernel region, and the largest 'Crash kernel' range of "
            "/proc/iomem is 128.0 MiB; refused before reading it") in info.value.msg
    check(meminfo, sparse(tmp_path / "fits.img", CRASH_LOW), crash=True)


def test_the_tightest_limit_is_named(meminfo, tmp_path):
    with pytest.raises(KexecError, match="largest 'Crash kernel' range"):
        check(meminfo, sparse(tmp_path / "initrd.img", 8 * GIB), crash=True)
