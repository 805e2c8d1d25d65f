# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The entry stub: the first code that runs after a kexec_load'ed kernel takes over.

Private to the kernel.kexec collection.

Why a stub, and why not purgatory: the kernel's relocate_kernel
(arch/x86/kernel/relocate_kernel_64.S) copies the segments into place and
jumps to ``entry`` in 64-bit mode, on page tables that identity-map RAM and
every segment, with all general registers zero, RFLAGS 0, 0x18 in
ds/es/ss/fs/gs, and the GDT and IDT limits set to 0. The kernel's 64-bit entry
(boot.rst, "64-bit boot protocol") wants a GDT with a flat code segment at
__BOOT_CS (0x10) and a flat data segment at __BOOT_DS (0x18), CS/DS/ES/SS
loaded from it, interrupts off and ``rsi`` pointing at boot_params. With a GDT
limit of 0, any segment reload before a new GDT is loaded triple-faults. So:
load our own GDT, reload the segments, take a stack, set ``rsi``, jump.

kexec-tools does this in purgatory (43 KB, 147 relocations), which first
checks the sha256 of every segment: under emulation that takes tens of
seconds. This stub does not check the segments (like ``kexec -i``): nothing
verifies them after the kernel copied them at load time.

The page, byte by byte (assembled from the listing below with GNU as and
checked against objdump; the unit tests disassemble it again where objdump is
installed). rel32 operands are relative to the end of their instruction.

    off  bytes                 instruction
    00   fa                    cli
    01   0f 01 15 38 00 00 00  lgdt   [rip+0x38]        -> gdtr at 0x40
    08   b8 18 00 00 00        mov    eax, 0x18         (__BOOT_DS)
    0d   8e d8                 mov    ds, eax
    0f   8e c0                 mov    es, eax
    11   8e d0                 mov    ss, eax
    13   8e e0                 mov    fs, eax
    15   8e e8                 mov    gs, eax
    17   48 8d 25 e2 0f 00 00  lea    rsp, [rip+0xfe2]  -> 0x1000, the top of this page
    1e   48 8d 05 05 00 00 00  lea    rax, [rip+0x5]    -> 0x2a, the next instruction after lretq
    25   6a 10                 push   0x10              (__BOOT_CS)
    27   50                    push   rax
    28   48 cb                 lretq                    (far return: reloads CS from our GDT)
    2a   48 8b 35 3f 00 00 00  mov    rsi, [rip+0x3f]   -> boot_params pointer at 0x70
    31   48 8b 05 40 00 00 00  mov    rax, [rip+0x40]   -> kernel entry at 0x78
    38   ff e0                 jmp    rax
    40   1f 00                 gdtr.limit = 4 * 8 - 1
    42   (8 bytes)             gdtr.base  = physical address of the GDT        [patched]
    50   (8 bytes) x 2         null descriptors (0x00, 0x08)
    60   ff ff 00 00 00 9a af 00   0x10: 64-bit code, present, ring 0, base 0, limit 4 GiB
    68   ff ff 00 00 00 92 cf 00   0x18: data, read/write, base 0, limit 4 GiB
    70   (8 bytes)             boot_params physical address                    [patched]
    78   (8 bytes)             kernel 64-bit entry: load address + 0x200       [patched]
    80 - fff                   zero-filled by the kernel (memsz 4096): the stack

The stub is position independent (every reference is rip-relative), so it
runs wherever the planner puts its page; only the three patched fields know
addresses. It never writes a control register: the new kernel's 64-bit entry
finds paging as relocate_kernel left it, CR4.LA57 included where the running
kernel uses 5-level paging, just as after the kernel's own purgatory; that
entry switches paging modes itself where its header has XLF_5LEVEL
(image.check_paging refuses a kernel without it on such a host).
"""

from __future__ import annotations

import struct

CODE = bytes.fromhex(
    "fa"                    # cli
    "0f011538000000"        # lgdt [rip+0x38]
    "b818000000"            # mov eax, 0x18
    "8ed8" "8ec0" "8ed0" "8ee0" "8ee8"   # mov ds/es/ss/fs/gs, eax
    "488d25e20f0000"        # lea rsp, [rip+0xfe2]
    "488d0505000000"        # lea rax, [rip+0x5]
    "6a10"                  # push 0x10
    "50"                    # push rax
    "48cb"                  # lretq
    "488b353f000000"        # mov rsi, [rip+0x3f]
    "488b0540000000"        # mov rax, [rip+0x40]
    "ffe0"                  # jmp rax
)
GDTR = 0x40
GDT = 0x50
BOOT_PARAMS_PTR = 0x70
KERNEL_ENTRY_PTR = 0x78
SIZE = 0x80          # bytes handed to the kernel; the rest of the page is zeroed (memsz)
PAGE = 0x1000
GDT_ENTRIES = (0, 0, 0x00af9a000000ffff, 0x00cf92000000ffff)


def build(stub_address, boot_params_address, kernel_entry):
    """The stub's bytes for a page at physical ``stub_address``."""
    data = bytearray(SIZE)
    data[:len(CODE)] = CODE
    struct.pack_into("<HQ", data, GDTR, len(GDT_ENTRIES) * 8 - 1, stub_address + GDT)
    struct.pack_into("<4Q", data, GDT, *GDT_ENTRIES)
    struct.pack_into("<Q", data, BOOT_PARAMS_PTR, boot_params_address)
    struct.pack_into("<Q", data, KERNEL_ENTRY_PTR, kernel_entry)
    return bytes(data)


__all__ = ("BOOT_PARAMS_PTR", "CODE", "GDT", "GDTR", "KERNEL_ENTRY_PTR", "PAGE", "SIZE", "build")
