"""The setup_data list after the command line, walked as the kernel walks it: from hdr.setup_data through each
``next``, every node 16-byte aligned, inside the boot_params segment, after the command line, none overlapping."""

import struct

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import plan as x86_plan
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64.setup_data import Tail

from .. import legacy_fakes as fakes

CMDLINE = "root=UUID=0b1c ro console=ttyS0,115200"
SETUP_DATA = 0x250
E820_EXT, EFI = 1, 4
# 141 entries: 128 in the zero page and 13 (260 bytes, not a multiple of 16) for SETUP_E820_EXT.
MANY = fakes.FIRMWARE[:-2] + tuple(
    (0x80000000 + index * 0x10000, 0x80000fff + index * 0x10000, "Reserved") for index in range(134)) + fakes.FIRMWARE[-2:]


def walk(data, base, first, after):
    """[(address, type, payload)] of the list from ``first``, in bytes ``data`` placed at ``base``; each node
    checked against the rules above, with ``after`` the first offset a node may use."""
    nodes, address, used = [], first, []
    while address:
        assert len(nodes) < 16, "the list does not end"
        offset = address - base
        assert address % 16 == 0 and after <= offset and offset + 16 <= len(data), hex(address)
        following, kind, length = struct.unpack_from("<QII", data, offset)
        assert offset + 16 + length <= len(data)
        assert all(offset >= end or offset + 16 + length <= start for start, end in used), "nodes overlap"
        used.append((offset, offset + 16 + length))
        nodes.append((address, kind, data[offset + 16:offset + 16 + length]))
        address = following
    return nodes


def e820_entries(payload):
    return [struct.unpack_from("<QQI", payload, at) for at in range(0, len(payload), 20)]


@pytest.mark.parametrize("sizes", [(), (0,), (1,), (20, 1), (260, 96), (7, 9, 15, 16, 17)])
@pytest.mark.parametrize("map_size", [0, 440, 480])
def test_every_node_starts_aligned_and_next_points_at_it(sizes, map_size):
    base = 0x7ffdf030
    tail = Tail(b"\xee" * map_size, [(index + 1, bytes([index + 1]) * size) for index, size in enumerate(sizes)])
    data = tail.data(base)
    assert len(data) == tail.size and data[:map_size] == b"\xee" * map_size
    nodes = walk(data, base, tail.first(base), map_size)
    assert [(kind, payload) for _address, kind, payload in nodes] == [
        (index + 1, bytes([index + 1]) * size) for index, size in enumerate(sizes)]
    assert tail.first(base) == (nodes[0][0] if sizes else 0)


def segment(result):
    return next(seg for seg in result.segments if seg.name == "boot_params")


@pytest.mark.parametrize("crash", [False, True], ids=["default", "crash"])
def test_a_map_of_more_than_128_entries_goes_on_in_setup_e820_ext(tmp_path, crash):
    """kexec-tools' way (kexec_file cuts the map at 128): the zero page holds 128, SETUP_E820_EXT the rest."""
    kernel = fakes.bzimage(str(tmp_path / "vmlinuz"))
    root = fakes.host(tmp_path / "host", firmware=MANY)
    seg = segment(x86_plan.plan(root, kernel, None, CMDLINE, crash=crash))
    in_page = [struct.unpack_from("<QQI", seg.data, 0x2d0 + 20 * index) for index in range(seg.data[0x1e8])]
    nodes = walk(seg.data, seg.mem, struct.unpack_from("<Q", seg.data, SETUP_DATA)[0], 4096 + len(CMDLINE) + 1)
    assert len(in_page) == 128 and [kind for _address, kind, _payload in nodes] == [E820_EXT]
    assert len(seg.data) <= seg.memsz and "e820 entries, " in seg.holds and "SETUP_E820_EXT setup_data" in seg.holds
    table = in_page + e820_entries(nodes[0][2])
    if crash:  # the capture kernel's own map: every reserved range of the firmware's, then its RAM
        assert len(table) > 128 and sum(1 for entry in table if entry[2] == 2) == 134 + 5
    else:
        assert table == [(start, end - start + 1, 1 if kind == "System RAM" else 2) for start, end, kind in MANY]


def test_on_an_efi_host_the_efi_memory_map_then_both_nodes(tmp_path):
    """11 runtime descriptors (440 bytes) and 13 extension entries (260 bytes): neither ends on 16 bytes."""
    kernel = fakes.bzimage(str(tmp_path / "vmlinuz"))
    root = fakes.efi_host(tmp_path / "host", firmware=MANY, runtime=fakes.RUNTIME_MAP[:11])
    seg = segment(x86_plan.plan(root, kernel, None, CMDLINE, crash=False))
    info = struct.unpack_from("<8I", seg.data, 0x1c0)
    memmap, map_size = info[4] | info[7] << 32, info[5]
    assert map_size == 440 and memmap % 16 == 0 and memmap - seg.mem >= 4096 + len(CMDLINE) + 1
    nodes = walk(seg.data, seg.mem, struct.unpack_from("<Q", seg.data, SETUP_DATA)[0], memmap - seg.mem + map_size)
    assert [kind for _address, kind, _payload in nodes] == [E820_EXT, EFI]
    assert e820_entries(nodes[0][2]) == [(start, end - start + 1, 1 if kind == "System RAM" else 2)
                                         for start, end, kind in MANY[128:]]
    assert struct.unpack_from("<4Q", nodes[1][2]) == (fakes.FW_VENDOR, 0, fakes.CONFIG_TABLE, fakes.SMBIOS)
    assert nodes[1][0] + 16 + 96 == seg.mem + len(seg.data)
    assert seg.holds.endswith("the EFI memory map (11 descriptors) and SETUP_E820_EXT and SETUP_EFI setup_data")
