# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a crash dump holds, for the crash proofs (resources/tasks/proof_*.yml; crash.yml installs it on the guest).

    python3 vmcore_check.py headers VMCORE              its PT_LOADs and notes, as JSON (kexec-capture runs it
                                                        in the capture kernel on /proc/vmcore)
    python3 vmcore_check.py iomem NAME [IOMEM]          the ranges /proc/iomem names NAME, at any depth, as JSON
    python3 vmcore_check.py uncovered HEADERS RANGE...  the parts of each RANGE (START-END in hex, END included,
                                                        as /proc/iomem prints them) that no PT_LOAD of HEADERS
                                                        (the JSON of headers) covers, as JSON

In the capture kernel /proc/vmcore is the crashed kernel's memory as an ELF core file. Its program
headers come from the ELF core header the crash load handed over (elfcorehdr=): a PT_LOAD for each
range of memory that header named, and one PT_NOTE into which the capture kernel gathered the notes
the header pointed at that hold something: an NT_PRSTATUS ("CORE") of each CPU that saved its
registers at the crash, and the kernel's VMCOREINFO.
Python 3.8+, standard library only.
"""

from __future__ import annotations

import json
import re
import struct
import sys

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr: type, flags, offset, vaddr, paddr, filesz, memsz, align
NOTE_HEADER = struct.Struct("<III")  # Elf64_Nhdr: namesz, descsz, type
PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS = 1
IOMEM_LINE = re.compile(r"^ *([0-9a-f]+)-([0-9a-f]+) : (.*)$")


def padded(size):
    return (size + 3) & ~3


def notes(data):
    """(name, type) of each note in a PT_NOTE segment's bytes."""
    found, offset = [], 0
    while offset + NOTE_HEADER.size <= len(data):
        namesz, descsz, kind = NOTE_HEADER.unpack_from(data, offset)
        if not namesz and not descsz and not kind:
            break  # zero padding after the last note
        name = data[offset + NOTE_HEADER.size:offset + NOTE_HEADER.size + namesz].rstrip(b"\0")
        found.append((name.decode("ascii", "replace"), kind))
        offset += NOTE_HEADER.size + padded(namesz) + padded(descsz)
    return found


def headers(path):
    """The PT_LOADs (first and last physical address) and notes of the ELF core file at ``path``."""
    with open(path, "rb") as core:
        ident, _type, _machine, _version, _entry, phoff, _shoff, _flags, _ehsize, phentsize, phnum = \
            ELF_HEADER.unpack(core.read(ELF_HEADER.size))[:11]
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise ValueError("%s is not a 64-bit little-endian ELF file" % path)
        loads, found = [], []
        for index in range(phnum):
            core.seek(phoff + index * phentsize)
            kind, _flags, offset, _vaddr, paddr, filesz, memsz, _align = \
                PROGRAM_HEADER.unpack(core.read(PROGRAM_HEADER.size))
            if kind == PT_LOAD and memsz:
                loads.append([paddr, paddr + memsz - 1])
            elif kind == PT_NOTE:
                core.seek(offset)
                found.extend(notes(core.read(filesz)))
    return {"loads": loads, "notes": [{"name": name, "type": kind} for name, kind in found],
            "prstatus": found.count(("CORE", NT_PRSTATUS))}


def iomem(name, path="/proc/iomem"):
    """The ranges named ``name`` in /proc/iomem at any depth, as START-END, and their size in bytes."""
    ranges, size = [], 0
    with open(path) as lines:
        for line in lines:
            match = IOMEM_LINE.match(line.rstrip("\n"))
            if match and match.group(3) == name:
                start, end = int(match.group(1), 16), int(match.group(2), 16)
                if not end:
                    raise ValueError("%s hides its addresses: read it as root" % path)
                ranges.append("%x-%x" % (start, end))
                size += end - start + 1
    return {"ranges": ranges, "bytes": size}


def uncovered(loads, ranges):
    """The parts of ``ranges`` (START-END strings) outside every load ([first, last] pairs), as START-END."""
    missing = []
    for text in ranges:
        start, end = (int(part, 16) for part in text.split("-"))
        position = start
        for first, last in sorted(loads):
            if last < position or first > end:
                continue
            if first > position:
                missing.append("%x-%x" % (position, first - 1))
            position = max(position, last + 1)
            if position > end:
                break
        if position <= end:
            missing.append("%x-%x" % (position, end))
    return missing


def main(argv):
    try:
        if len(argv) == 2 and argv[0] == "headers":
            result = headers(argv[1])
        elif len(argv) in (2, 3) and argv[0] == "iomem":
            result = iomem(*argv[1:])
        elif len(argv) >= 2 and argv[0] == "uncovered":
            with open(argv[1]) as handle:
                result = uncovered(json.load(handle)["loads"], argv[2:])
        else:
            sys.exit(__doc__)
    except (OSError, ValueError, KeyError, struct.error) as exc:
        sys.exit("vmcore_check.py %s: %s" % (argv[0], exc))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
