"""The entry stub: its patched fields, and its code decoded independently."""

import shutil
import struct
import subprocess

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import stub

# Taken at import, before the module_utils guard replaces subprocess.run: objdump only reads a file we wrote.
RUN_OBJDUMP = subprocess.run
STUB_AT = 0x7ffd7000
PARAMS_AT = 0x7ffd8000
ENTRY = 0x7d800200


def test_patched_fields():
    data = stub.build(STUB_AT, PARAMS_AT, ENTRY)
    assert len(data) == stub.SIZE <= stub.PAGE
    limit, base = struct.unpack_from("<HQ", data, stub.GDTR)
    assert limit == 31 and base == STUB_AT + stub.GDT
    assert struct.unpack_from("<Q", data, stub.BOOT_PARAMS_PTR)[0] == PARAMS_AT
    assert struct.unpack_from("<Q", data, stub.KERNEL_ENTRY_PTR)[0] == ENTRY


def test_gdt_has_flat_boot_cs_and_ds():
    gdt = struct.unpack_from("<4Q", stub.build(STUB_AT, PARAMS_AT, ENTRY), stub.GDT)
    code, data = gdt[2], gdt[3]  # selectors 0x10 and 0x18
    assert gdt[0] == gdt[1] == 0
    # access byte: present, ring 0, code execute/read (0x9a) and data read/write (0x92)
    assert (code >> 40) & 0xff == 0x9a and (data >> 40) & 0xff == 0x92
    # flags: code L=1 (64-bit), G=1; data D/B=1, G=1; limits 0xfffff
    assert (code >> 52) & 0xf == 0xa and (data >> 52) & 0xf == 0xc
    assert code & 0xffff == data & 0xffff == 0xffff and (code >> 48) & 0xf == 0xf


def _rip_relative_targets(code):
    """(offset, target) of each rip-relative operand: opcode bytes, then a rel32, ends the instruction."""
    found = {}
    for offset, opcode_len in ((0x01, 3), (0x17, 3), (0x1e, 3), (0x2a, 3), (0x31, 3)):
        rel = struct.unpack_from("<i", code, offset + opcode_len)[0]
        found[offset] = offset + opcode_len + 4 + rel
    return found


def test_rip_relative_operands_reach_their_fields():
    targets = _rip_relative_targets(stub.CODE)
    assert targets == {0x01: stub.GDTR, 0x17: stub.PAGE, 0x1e: 0x2a, 0x2a: stub.BOOT_PARAMS_PTR,
                       0x31: stub.KERNEL_ENTRY_PTR}


def test_code_fits_before_the_gdtr():
    assert len(stub.CODE) <= stub.GDTR


def test_the_stub_leaves_paging_as_it_finds_it():
    """No mov to a control register (0f 22): CR3 and CR4 (LA57 on a 5-level host) stay as relocate_kernel left
    them, as after the kernel's own purgatory; the kernel's 64-bit entry switches paging modes itself."""
    assert b"\x0f\x22" not in stub.CODE


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
def test_objdump_reads_the_documented_instructions(tmp_path):
    blob = tmp_path / "stub.bin"
    blob.write_bytes(stub.build(STUB_AT, PARAMS_AT, ENTRY))
    command = ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "--stop-address=0x3a", str(blob)]
    out = RUN_OBJDUMP(command, capture_output=True, text=True, check=True).stdout
    mnemonics = [line.split("\t")[2].split()[0] for line in out.splitlines() if line.count("\t") >= 2]
    assert mnemonics == ["cli", "lgdt", "mov", "mov", "mov", "mov", "mov", "mov", "lea", "lea", "push", "push",
                         "lretq", "mov", "mov", "jmp"]
    assert "%ds" in out and "%ss" in out and "%rsi" in out
