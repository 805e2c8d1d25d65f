"""Range arithmetic of the memory maps, and where a normal kexec load may place its segments."""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import iomem, memmap
from ansible_collections.kernel.kexec.plugins.module_utils._host.iomem import Region


def test_subtract_splits_and_trims():
    assert memmap.subtract([(0, 99), (200, 299)], [(10, 19), (250, 400)]) == [(0, 9), (20, 99), (200, 249)]


def test_intersect_keeps_what_both_cover():
    assert memmap.intersect([(0, 99), (200, 299)], [(50, 249), (290, 500)]) == [(50, 99), (200, 249), (290, 299)]
    assert memmap.intersect([(0, 99)], [(100, 199)]) == []


def test_kexec_ram_is_firmware_ram_the_running_kernel_manages_itself():
    firmware = [Region(0x0, 0x9fbff, "System RAM"), Region(0x9fc00, 0x9ffff, "Reserved"),
                Region(0x100000, 0x7ffdffff, "System RAM")]
    regions = iomem.parse(
        "00000000-00000fff : Reserved\n"
        "00001000-0009fbff : System RAM\n"
        "00100000-3fffffff : System RAM\n"
        "  01000000-01ffffff : Kernel code\n"
        "40000000-43ffffff : Reserved\n"                      # memmap=64M$1G
        "44000000-5fffffff : System RAM\n"
        "60000000-6fffffff : Persistent Memory (legacy)\n"     # memmap=256M!1536M, onlined by kmem
        "  60000000-6fffffff : dax0.0\n"
        "    60000000-6fffffff : System RAM (kmem)\n"
        "70000000-7bffffff : System RAM\n"                     # mem=1984M: nothing above
        "100000000-13fffffff : virtio0\n"                      # not in the firmware map at all
        "  100000000-10fffffff : System RAM (virtio_mem)\n")
    assert memmap.kexec_ram(firmware, regions) == [
        (0x1000, 0x9fbff), (0x100000, 0x3fffffff), (0x44000000, 0x5fffffff), (0x70000000, 0x7bffffff)]


def test_a_firmware_memmap_file_that_is_a_fifo_is_one_error_without_hanging(tmp_path, no_hang):
    entry = tmp_path / "sys/firmware/memmap/0"
    entry.mkdir(parents=True)
    (entry / "start").write_text("0x0\n")
    (entry / "end").write_text("0x9fbff\n")
    os.mkfifo(str(entry / "type"))
    with pytest.raises(KexecError, match="^%s/type is a FIFO, not a regular file$" % entry):
        memmap.firmware_memmap(str(tmp_path))
