"""/proc/iomem read as the tree the kernel prints, and its System RAM chosen by the kernel's own walk."""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import iomem
from ansible_collections.kernel.kexec.plugins.module_utils._host.iomem import Region

from ...fakes import host as fakes

# A host with driver-managed RAM, as Linux 6.x prints it: a virtio-mem device with two plugged blocks,
# CXL memory onlined by dax/kmem below a Soft Reserved window, ACPI hot-added RAM at the top level,
# and a driver's RAM nested in firmware RAM (the walk must not count it twice).
DRIVER_MANAGED = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-bffdafff : System RAM
  01000000-01ffffff : Kernel code
  2a000000-31ffffff : Crash kernel
  40000000-47ffffff : System RAM (kmem)
bffdb000-bfffffff : Reserved
100000000-13fffffff : System RAM
140000000-33fffffff : virtio0
  140000000-147ffffff : System RAM (virtio_mem)
  150000000-157ffffff : System RAM (virtio_mem)
340000000-43fffffff : Soft Reserved
  340000000-43fffffff : CXL Window 0
    340000000-3bfffffff : dax0.0
      340000000-3bfffffff : System RAM (kmem)
440000000-47fffffff : System RAM
"""


def test_parse_reads_nested_regions_with_inclusive_ends():
    regions = iomem.parse(fakes.IOMEM + "not a region line\n0-\nzz-1 : bad\n")
    by_name = {}
    for region in regions:
        by_name.setdefault(region.name, []).append(region)
    assert len(regions) == 11
    assert [(r.start, r.end) for r in by_name["Crash kernel"]] == [fakes.CRASH_LOW, fakes.CRASH_HIGH]
    assert [r.size for r in by_name["Crash kernel"]] == [128 << 20, 16 << 20]
    assert by_name["System ROM"][0].as_dict() == {"start": 0xf0000, "end": 0xfffff, "size": 0x10000}
    assert by_name["System RAM"][-1].start == 0x100000000  # more than 8 hex digits


def test_parse_gives_each_line_its_depth_and_parent():
    regions = iomem.parse(DRIVER_MANAGED)
    kmem = regions[-2]
    assert (kmem.name, kmem.depth) == ("System RAM (kmem)", 3)
    assert [above.name for above in kmem.ancestors()] == ["dax0.0", "CXL Window 0", "Soft Reserved"]
    assert regions[-1].parent is None and regions[-1].depth == 0  # back at the top after three levels
    assert [r.name for r in iomem.top_level(regions)] == [
        "Reserved", "System RAM", "System RAM", "Reserved", "System RAM", "virtio0", "Soft Reserved", "System RAM"]


def test_system_ram_is_every_outermost_system_ram_region_at_any_depth():
    """walk_system_ram_res(): driver-managed RAM below a device or a window counts; what lies inside
    System RAM (Kernel code, Crash kernel, a driver's RAM in firmware RAM) is not counted again."""
    ram = iomem.system_ram(iomem.parse(DRIVER_MANAGED))
    assert [(r.start, r.end, r.name) for r in ram] == [
        (0x1000, 0x9fbff, "System RAM"),
        (0x100000, 0xbffdafff, "System RAM"),
        (0x100000000, 0x13fffffff, "System RAM"),
        (0x140000000, 0x147ffffff, "System RAM (virtio_mem)"),
        (0x150000000, 0x157ffffff, "System RAM (virtio_mem)"),
        (0x340000000, 0x3bfffffff, "System RAM (kmem)"),
        (0x440000000, 0x47fffffff, "System RAM"),
    ]
    assert [r.driver_managed for r in ram] == [False, False, False, True, True, True, False]


@pytest.mark.parametrize("name, ram, managed", [
    ("System RAM", True, False),
    ("System RAM (virtio_mem)", True, True),
    ("System RAM (kmem)", True, True),
    ("System ROM", False, False),
    ("Persistent Memory (legacy)", False, False),
    ("Kernel code", False, False),
])
def test_the_name_shows_the_flags(name, ram, managed):
    assert (Region(0, 1, name).is_system_ram, Region(0, 1, name).driver_managed) == (ram, managed)


def test_region_of_one_byte():
    assert Region(0x1000, 0x1000, "x").size == 1


def test_read_is_empty_without_the_file(tmp_path):
    assert iomem.read(str(tmp_path)) == []


def test_read_addresses_refuses_a_missing_file_and_hidden_addresses(tmp_path):
    with pytest.raises(KexecError, match="/proc/iomem is missing or empty: a test needs"):
        iomem.read_addresses(str(tmp_path), "a test")
    fakes.FakeHost(tmp_path).write("proc/iomem", "00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n")
    with pytest.raises(KexecError, match="shows no addresses: a test needs root"):
        iomem.read_addresses(str(tmp_path), "a test")
