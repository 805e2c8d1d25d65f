"""The ELF core header, read back by a small reader written from the ELF spec (not from elfcore.py)."""

import struct

from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy import elfcore
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.elfcore import Load, Note


def read_core(data):
    """Elf64_Ehdr fields by name, and each Elf64_Phdr as a dict."""
    names = ("ident", "type", "machine", "version", "entry", "phoff", "shoff", "flags", "ehsize", "phentsize",
             "phnum", "shentsize", "shnum", "shstrndx")
    header = dict(zip(names, struct.unpack_from("<16sHHIQQQIHHHHHH", data, 0)))
    phdrs = []
    for index in range(header["phnum"]):
        values = struct.unpack_from("<IIQQQQQQ", data, header["phoff"] + index * header["phentsize"])
        phdrs.append(dict(zip(("type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz", "align"), values)))
    return header, phdrs


def test_header_is_what_proc_vmcore_accepts():
    data = elfcore.build([Note(0x7dc1d4d8, 368, "cpu0")], [Load(0x100000, 0xffff888000100000, 0x1000, "ram")])
    header, phdrs = read_core(data)
    assert header["ident"][:4] == b"\x7fELF"
    assert header["ident"][4] == 2 and header["ident"][5] == 1 and header["ident"][6] == 1  # 64-bit, LE, current
    assert (header["type"], header["machine"], header["version"]) == (4, 62, 1)  # ET_CORE, EM_X86_64
    assert (header["ehsize"], header["phentsize"], header["phoff"]) == (64, 56, 64)
    assert header["shnum"] == 0 and header["phnum"] == 2
    assert len(data) == elfcore.size_for(2) == 64 + 2 * 56


def test_notes_then_loads_with_kernel_conventions():
    notes = [Note(0x7dc1d4d8, 368, "cpu0"), Note(0x7dc1e4d8, 368, "cpu1"), Note(0x1f5cd000, 0x1024, "vmcoreinfo")]
    loads = [Load(0x1e000000, 0xffffffffa3000000, 0x2a00000, "text"),
             Load(0x100000, 0xffff9d4b40100000, 0x6ef00000, "ram")]
    _header, phdrs = read_core(elfcore.build(notes, loads))
    assert [p["type"] for p in phdrs] == [4, 4, 4, 1, 1]
    vmcoreinfo = phdrs[2]
    assert vmcoreinfo["offset"] == vmcoreinfo["paddr"] == 0x1f5cd000
    assert vmcoreinfo["filesz"] == vmcoreinfo["memsz"] == 0x1024 and vmcoreinfo["vaddr"] == 0
    ram = phdrs[4]
    # /proc/vmcore reads old memory at p_offset: it must be the physical address.
    assert ram["offset"] == ram["paddr"] == 0x100000
    assert ram["vaddr"] == 0xffff9d4b40100000 and ram["filesz"] == ram["memsz"] == 0x6ef00000
    assert ram["flags"] == 7
    assert phdrs[3]["vaddr"] == 0xffffffffa3000000 and phdrs[3]["paddr"] == 0x1e000000
