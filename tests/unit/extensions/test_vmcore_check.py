"""extensions/molecule/resources/files/vmcore_check.py, the crash proofs' reader of a dump: the PT_LOADs and notes
of an ELF core file as /proc/vmcore shows it, the /proc/iomem ranges of a name at any depth, and which parts of
them no PT_LOAD covers. Built files under tmp_path stand in for /proc/vmcore and /proc/iomem."""

import importlib.util
import json
import os
import struct
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(REPO, "extensions", "molecule", "resources", "files", "vmcore_check.py")


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("vmcore_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def padded(data):
    return data + b"\0" * (-len(data) % 4)


def note(name, kind, desc_size):
    name = name.encode() + b"\0"
    return struct.pack("<III", len(name), desc_size, kind) + padded(name) + padded(b"\x01" * desc_size)


def core_file(path, loads, notes):
    """An ELF64 core file as the capture kernel presents /proc/vmcore: one PT_NOTE, then the PT_LOADs."""
    phnum = 1 + len(loads)
    note_offset = 64 + 56 * phnum
    headers = [struct.pack("<IIQQQQQQ", 4, 0, note_offset, 0, 0, len(notes), len(notes), 0)]
    offset = note_offset + len(notes)
    for start, size in loads:
        headers.append(struct.pack("<IIQQQQQQ", 1, 7, offset, 0xffff888000000000 + start, start, size, size, 0))
        offset += size
    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    elf = struct.pack("<16sHHIQQQIHHHHHH", ident, 4, 62, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    path.write_bytes(elf + b"".join(headers) + notes)
    return str(path)


# Two CPUs saved their registers (NT_PRSTATUS, 336 bytes on x86_64), then the kernel's VMCOREINFO.
NOTES = note("CORE", 1, 336) + note("CORE", 1, 336) + note("VMCOREINFO", 0, 2000)


def test_headers_lists_each_pt_load_and_counts_the_cpus_registers(check, tmp_path):
    vmcore = core_file(tmp_path / "vmcore", [(0x100000, 0x7ef00000), (0x140000000, 0x10000000)], NOTES)
    assert check.headers(vmcore) == {
        "loads": [[0x100000, 0x7effffff], [0x140000000, 0x14fffffff]],
        "notes": [{"name": "CORE", "type": 1}, {"name": "CORE", "type": 1}, {"name": "VMCOREINFO", "type": 0}],
        "prstatus": 2,
    }


def test_headers_stops_at_the_zero_padding_after_the_last_note(check, tmp_path):
    vmcore = core_file(tmp_path / "vmcore", [(0x100000, 0x1000)], note("CORE", 1, 336) + b"\0" * 24)
    assert check.headers(vmcore)["prstatus"] == 1


def test_a_file_that_is_no_elf_core_is_one_line(check, tmp_path):
    junk = tmp_path / "vmcore"
    junk.write_bytes(b"KDUMP   " + b"\0" * 120)
    done = subprocess.run([sys.executable, SCRIPT, "headers", str(junk)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "vmcore_check.py headers: %s is not a 64-bit little-endian ELF file\n" % junk


# /proc/iomem of a guest with a virtio-mem device: half of it plugged, in two memory blocks that were merged.
IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-7ffdffff : System RAM
  01000000-01e00fff : Kernel code
  6f000000-7effffff : Crash kernel
100000000-13fffffff : PCI Bus 0000:00
140000000-15fffffff : virtio0
  140000000-14fffffff : System RAM (virtio_mem)
"""


def test_iomem_finds_a_name_at_any_depth_and_adds_up_its_size(check, tmp_path):
    iomem = tmp_path / "iomem"
    iomem.write_text(IOMEM)
    assert check.iomem("System RAM (virtio_mem)", str(iomem)) == {
        "ranges": ["140000000-14fffffff"], "bytes": 256 * 1024 * 1024}
    assert check.iomem("System RAM", str(iomem))["ranges"] == ["1000-9fbff", "100000-7ffdffff"]
    assert check.iomem("System RAM (kmem)", str(iomem)) == {"ranges": [], "bytes": 0}


def test_iomem_read_without_root_is_refused(check, tmp_path):
    iomem = tmp_path / "iomem"
    iomem.write_text("00000000-00000000 : System RAM\n  00000000-00000000 : System RAM (virtio_mem)\n")
    with pytest.raises(ValueError, match="hides its addresses: read it as root"):
        check.iomem("System RAM (virtio_mem)", str(iomem))


@pytest.mark.parametrize("loads, missing", [
    ([[0x100000, 0x7ffdffff], [0x140000000, 0x14fffffff]], []),
    # Split across two PT_LOADs that meet, in any order.
    ([[0x148000000, 0x14fffffff], [0x140000000, 0x147ffffff]], []),
    ([[0x100000, 0x7ffdffff]], ["140000000-14fffffff"]),
    ([[0x140000000, 0x143ffffff], [0x148000000, 0x14bffffff]], ["144000000-147ffffff", "14c000000-14fffffff"]),
    ([[0x13f000000, 0x160000000]], []),
])
def test_uncovered_names_each_part_no_pt_load_holds(check, loads, missing):
    assert check.uncovered(loads, ["140000000-14fffffff"]) == missing


def test_uncovered_from_the_command_line_reads_the_saved_headers(tmp_path):
    saved = tmp_path / "vmcore-headers.json"
    saved.write_text(json.dumps({"loads": [[0x140000000, 0x147ffffff]], "notes": [], "prstatus": 0}))
    done = subprocess.run([sys.executable, SCRIPT, "uncovered", str(saved), "140000000-14fffffff", "1000-1fff"],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert json.loads(done.stdout) == ["148000000-14fffffff", "1000-1fff"]
