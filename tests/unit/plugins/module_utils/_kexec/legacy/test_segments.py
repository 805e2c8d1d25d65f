"""The kernel's segment rules (sanity_check_segment_list) and top-down placement."""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.segments import (
    DESTINATION_LIMIT, MemoryHoles, Segment, check_segments,
)

RAM_PAGES = 2 * (1 << 30) // 4096
PAGE = 4096


def seg(name, mem, memsz, bufsz=None):
    return Segment(name, bytes(memsz if bufsz is None else bufsz), mem, memsz)


def refused(segments, entry=0, crash=None, pages=RAM_PAGES):
    with pytest.raises(KexecError) as caught:
        check_segments(segments, entry, pages, crash_region=crash)
    return caught.value


def test_a_good_plan_passes():
    check_segments([seg("a", 0x100000, PAGE), seg("b", 0x200000, 2 * PAGE, bufsz=10)], 0x100000, RAM_PAGES)


def test_more_than_sixteen_segments_is_einval():
    error = refused([seg("s%d" % i, 0x100000 + i * PAGE, PAGE) for i in range(17)])
    assert error.extra["errno_name"] == "EINVAL" and "17 segments" in error.msg


def test_wrapping_segment_is_eaddrnotavail():
    error = refused([Segment("huge", b"", (1 << 64) - PAGE, 2 * PAGE)])
    assert error.extra["errno_name"] == "EADDRNOTAVAIL"
    assert "segment 0 (huge) wraps" in error.msg


@pytest.mark.parametrize("mem, memsz", [(0x100010, PAGE), (0x100000, PAGE + 1)])
def test_unaligned_start_or_end_is_eaddrnotavail(mem, memsz):
    error = refused([seg("ok", 0x200000, PAGE), Segment("odd", b"", mem, memsz)])
    assert error.extra["errno_name"] == "EADDRNOTAVAIL"
    assert "segment 1 (odd) is not page aligned" in error.msg


def test_past_the_destination_limit_is_eaddrnotavail():
    error = refused([Segment("high", b"", DESTINATION_LIMIT + 1 - PAGE, PAGE)])
    assert "past the destination limit" in error.msg and error.extra["errno_name"] == "EADDRNOTAVAIL"


def test_overlap_names_both_segments():
    error = refused([seg("kernel", 0x1000000, 4 * PAGE), seg("initrd", 0x1003000, PAGE)])
    assert error.extra["errno_name"] == "EINVAL"
    assert "segment 1 (initrd) overlaps segment 0 (kernel)" in error.msg


def test_touching_segments_do_not_overlap():
    check_segments([seg("a", 0x1000000, PAGE), seg("b", 0x1001000, PAGE)], 0, RAM_PAGES)


def test_more_data_than_memory_is_einval():
    error = refused([Segment("fat", bytes(PAGE + 1), 0x100000, PAGE)])
    assert "has 4097 bytes of data for 4096 bytes of memory" in error.msg


def test_one_segment_over_half_of_ram_is_einval():
    error = refused([Segment("big", b"", 0, 600 * PAGE)], pages=1000)
    assert "takes 600 pages, more than half of the 1000 pages" in error.msg


def test_all_segments_together_over_half_of_ram_is_einval():
    error = refused([Segment("a", b"", 0, 300 * PAGE), Segment("b", b"", 300 * PAGE, 300 * PAGE)], pages=1000)
    assert "the segments take 600 pages" in error.msg and error.extra["errno_name"] == "EINVAL"


def test_the_rules_run_in_the_kernels_order():
    # Unaligned (rule 1) and overlapping (rule 2): the kernel answers EADDRNOTAVAIL first.
    error = refused([seg("a", 0x100000, 2 * PAGE), Segment("b", b"", 0x100800, PAGE)])
    assert error.extra["errno_name"] == "EADDRNOTAVAIL"


def test_crash_segments_must_lie_in_the_crash_region():
    crash = (0x6f000000, 0x7effffff)
    check_segments([seg("k", 0x7efff000, PAGE)], 0x7efff000, RAM_PAGES, crash_region=crash)
    error = refused([seg("k", 0x7f000000 - PAGE, 2 * PAGE)], entry=0x6f000000, crash=crash)
    assert "segment 0 (k) (0x7efff000-0x7f000fff) is outside the crash kernel region" in error.msg
    assert error.extra["errno_name"] == "EADDRNOTAVAIL"


def test_crash_entry_must_lie_in_the_crash_region():
    crash = (0x6f000000, 0x7effffff)
    error = refused([seg("k", 0x70000000, PAGE)], entry=0x1000, crash=crash)
    assert "the entry point 0x1000 is outside the crash kernel region" in error.msg


def test_holes_hand_out_the_highest_aligned_place():
    holes = MemoryHoles([(0x0, 0x9fbff), (0x100000, 0x7ffdffff)])
    assert holes.take("kernel", 0x2600000, align=0x200000, minimum=0x1000000) == 0x7d800000
    # Aligning the kernel left the top of RAM free: the next take uses it, then goes below the kernel.
    assert holes.take("initrd", 0x10000, minimum=0x1000000) == 0x7ffd0000
    assert holes.take("big", 0x300000, minimum=0x1000000) == 0x7d800000 - 0x300000
    assert holes.take("stub", PAGE, maximum=0x9ffff) == 0x9e000


def test_holes_respect_the_minimum_and_say_what_is_free():
    holes = MemoryHoles([(0x100000, 0x1ffffff)])
    with pytest.raises(KexecError) as caught:
        holes.take("initrd", 0x1000000 + PAGE, minimum=0x1000000)
    assert "no room for the initrd" in caught.value.msg and "0x100000-0x1ffffff" in caught.value.msg


def test_holes_never_hand_out_the_same_memory_twice():
    holes = MemoryHoles([(0x100000, 0x10ffff)])
    taken = [holes.take("page%d" % i, PAGE) for i in range(16)]
    assert sorted(taken) == [0x100000 + i * PAGE for i in range(16)]
    with pytest.raises(KexecError):
        holes.take("one more", PAGE)
