"""Fake hosts and kernel images for the legacy loader's tests.

A 2 GiB SeaBIOS guest as QEMU gives one (the memory map the molecule guests
see), with its /sys/firmware/memmap, /proc/iomem, /proc/meminfo, running zero
page, per-CPU crash notes, vmcoreinfo and a /proc/kcore whose program headers
say where KASLR put the direct map and the kernel text. ``efi_host`` adds what
an OVMF guest's kernel shows of EFI: /sys/firmware/efi with systab, fw_vendor,
config_table and runtime-map, and efi_info in the running zero page.
Everything is written below the test's own directory.
"""

import os
import struct

GIB = 1 << 30
CRASH = (0x6f000000, 0x7effffff)  # 256 MiB, where crashkernel=256M lands in a 2 GiB guest
PAGE_OFFSET = 0xffff9d4b40000000  # a KASLR'd direct-map base
TEXT_VADDR = 0xffffffffa3000000
TEXT_PADDR = 0x1e000000
TEXT_SIZE = 0x2a00000
RSDP = 0xf5a40
REAL_KERNEL = os.path.join(os.environ.get("KEXEC_CACHE", os.path.expanduser("~/.cache/kernel-kexec")),
                           "images", "vmlinuz")

# (start, end inclusive, type) as /sys/firmware/memmap lists them for a 2 GiB QEMU pc guest.
FIRMWARE = (
    (0x0, 0x9fbff, "System RAM"),
    (0x9fc00, 0x9ffff, "Reserved"),
    (0xf0000, 0xfffff, "Reserved"),
    (0x100000, 0x7ffdffff, "System RAM"),
    (0x7ffe0000, 0x7fffffff, "Reserved"),
    (0xfeffc000, 0xfeffffff, "Reserved"),
    (0xfffc0000, 0xffffffff, "Reserved"),
)


def iomem(crash=CRASH, low_crash=None):
    lines = [
        "00000000-00000fff : Reserved",
        "00001000-0009fbff : System RAM",
        "0009fc00-0009ffff : Reserved",
        "000a0000-000bffff : PCI Bus 0000:00",
        "000f0000-000fffff : Reserved",
        "  000f0000-000fffff : System ROM",
        "00100000-7ffdffff : System RAM",
    ]
    if low_crash:
        lines.append("  %08x-%08x : Crash kernel" % low_crash)
    lines.append("  %08x-%08x : Kernel code" % (TEXT_PADDR, TEXT_PADDR + 0xe00000 - 1))
    if crash:
        lines.append("  %08x-%08x : Crash kernel" % crash)
    lines += ["7ffe0000-7fffffff : Reserved", "80000000-febfffff : PCI Bus 0000:00"]
    return "\n".join(lines) + "\n"


def write(root, path, content):
    full = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)
    return full


def bzimage(path, setup_sects=27, payload=0x9000, protocol=0x020f, loadflags=0x01, xloadflags=0x7f,
            init_size=0x2600000, kernel_alignment=0x200000, pref_address=0x1000000, cmdline_size=2047,
            relocatable=1, cut=0, syssize=None, pe=False, pe_text=None):
    """A bzImage with a real-shaped setup header and ``payload`` bytes of protected-mode 'kernel'.

    ``pe``: an EFI stub's PE/COFF header as well (see pe_header); ``cut`` bytes are taken off the end.
    """
    setup = ((setup_sects or 4) + 1) * 512
    data = bytearray(setup + payload)
    if pe:
        pe_header(data, [(b".setup", 0x200, setup - 0x200), (b".bss", 0, 0),
                         (b".text", setup, payload if pe_text is None else pe_text)])
    data[0x1f1] = setup_sects
    struct.pack_into("<I", data, 0x1f4, (payload + 15) // 16 if syssize is None else syssize)
    struct.pack_into("<H", data, 0x1fe, 0xAA55)
    struct.pack_into("<H", data, 0x200, 0x6aeb)  # jmp +0x6a: the header ends at 0x26c
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, protocol)
    data[0x211] = loadflags
    struct.pack_into("<I", data, 0x214, 0x100000)
    struct.pack_into("<I", data, 0x22c, 0x7fffffff)
    struct.pack_into("<I", data, 0x230, kernel_alignment)
    data[0x234] = relocatable
    data[0x235] = 21
    struct.pack_into("<H", data, 0x236, xloadflags)
    struct.pack_into("<I", data, 0x238, cmdline_size)
    struct.pack_into("<Q", data, 0x258, pref_address)
    struct.pack_into("<I", data, 0x260, init_size)
    for offset in range(setup, setup + payload, 4096):  # recognisable payload bytes
        data[offset:offset + 4] = struct.pack("<I", offset)
    if cut:
        del data[-cut:]
    return write(os.path.dirname(path), os.path.basename(path), bytes(data))


def pe_header(data, sections, at=0x40, optional_size=0xa0):
    """Write "MZ", the pointer at 0x3c, "PE\\0\\0" and a section table of (name, PointerToRawData,
    SizeOfRawData) into ``data``, where the Debian 6.1 kernel has them (its table ends at 0x198)."""
    data[0:2] = b"MZ"
    struct.pack_into("<I", data, 0x3c, at)
    data[at:at + 4] = b"PE\0\0"
    struct.pack_into("<HH", data, at + 4, 0x8664, len(sections))  # Machine, NumberOfSections
    struct.pack_into("<H", data, at + 20, optional_size)  # SizeOfOptionalHeader
    struct.pack_into("<H", data, at + 24, 0x20b)  # PE32+
    table = at + 24 + optional_size
    for index, (name, pointer, size) in enumerate(sections):
        struct.pack_into("<8sIIII", data, table + 40 * index, name, size, pointer, size, pointer)
    return data


def kcore(page_offset=PAGE_OFFSET, text=(TEXT_VADDR, TEXT_PADDR, TEXT_SIZE)):
    """The start of /proc/kcore: ELF header, a note and load headers as fs/proc/kcore.c writes them."""
    phdrs = [(4, 0, 0x1000, 0, 0, 0x1000, 0, 4)]  # PT_NOTE
    phdrs.append((1, 7, 0x2000, 0xffffffffff600000, 0xffffffffffffffff, 0x1000, 0x1000, 0x1000))  # vsyscall
    if text:
        phdrs.append((1, 7, 0x3000, text[0], text[1], text[2], text[2], 0x1000))
    phdrs.append((1, 7, 0x4000, 0xffffc90000000000, 0xffffffffffffffff, 1 << 40, 1 << 40, 0x1000))  # vmalloc
    if page_offset is not None:
        for start, end, kind in FIRMWARE:
            if kind == "System RAM":
                phdrs.append((1, 7, 0x5000, page_offset + start, start, end - start + 1, end - start + 1, 0x1000))
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0, 64, 0, 0,
                         64, 56, len(phdrs), 0, 0, 0)
    return header + b"".join(struct.pack("<IIQQQQQQ", *phdr) for phdr in phdrs)


# What an OVMF guest's kernel shows of EFI (drivers/firmware/efi/efi.c, runtime-map.c).
EFI_RSDP20 = 0x7fb7e014
EFI_RSDP = 0x7fb7e000
SMBIOS = 0x7f93d000
SMBIOS3 = 0x7f93c000
FW_VENDOR = 0x7fbee098
CONFIG_TABLE = 0x7fbee118
SYSTAB = "ACPI20=%#x\nACPI=%#x\nSMBIOS3=%#x\nSMBIOS=%#x\n" % (EFI_RSDP20, EFI_RSDP, SMBIOS3, SMBIOS)
EL64 = struct.unpack("<I", b"EL64")[0]
EL32 = struct.unpack("<I", b"EL32")[0]
# efi_info: signature, systab, memdesc_size, memdesc_version, memmap, memmap_size, systab_hi, memmap_hi.
# The running kernel's own copy of the map (48-byte descriptors, as OVMF gives them); systab_hi is set
# to see the high half copied.
EFI_INFO = (EL64, 0x7fbee018, 48, 1, 0x7e8a3018, 48 * 12, 0x1, 0x0)
SECURE_BOOT = 3  # efi_secureboot_mode_enabled
# 12 runtime regions (more than 10, so that "10" sorting before "2" would show): type, phys, virt,
# pages, attribute. Runtime code and data below 2 GiB, then flash as memory-mapped I/O.
RUNTIME_MAP = tuple(
    (5 if index % 2 == 0 else 6, 0x7f800000 + index * 0x10000, 0xfffffffeff800000 + index * 0x10000, 0x10,
     0x800000000000000f) for index in range(11)
) + ((11, 0xffc00000, 0xfffffffeff600000, 0x400, 0x8000000000000001),)


def running_boot_params(rsdp=RSDP, efi_info=None, secure_boot=0):
    page = bytearray(4096)
    page[0:0x40] = bytes(range(1, 0x41))  # screen_info
    struct.pack_into("<Q", page, 0x070, rsdp)
    struct.pack_into("<I", page, 0x23c, 0)  # hardware_subarch: PC
    page[0x1e8] = 99  # the running e820 count: must not leak into the new page
    if efi_info:
        struct.pack_into("<8I", page, 0x1c0, *efi_info)
    page[0x1ec] = secure_boot
    return bytes(page)


def runtime_map(root, entries=RUNTIME_MAP):
    """/sys/firmware/efi/runtime-map/N/{type,phys_addr,virt_addr,num_pages,attribute} as the kernel prints them."""
    for index, entry in enumerate(entries):
        for name, value in zip(("type", "phys_addr", "virt_addr", "num_pages", "attribute"), entry):
            write(root, "sys/firmware/efi/runtime-map/%d/%s" % (index, name), "%#x\n" % value)


def efi_host(root, rsdp=0, efi_info=EFI_INFO, systab=SYSTAB, runtime=RUNTIME_MAP, **fields):
    """An OVMF guest: host() with /sys/firmware/efi and efi_info in the running zero page.

    ``rsdp`` 0 (the default): the running kernel was entered through the EFI stub directly and never
    filled acpi_rsdp_addr. A None ``systab`` or ``runtime`` leaves that out.
    """
    root = host(root, **fields)
    write(root, "sys/kernel/boot_params/data", running_boot_params(rsdp, efi_info, SECURE_BOOT))
    os.makedirs(os.path.join(root, "sys/firmware/efi/efivars"), exist_ok=True)
    if systab is not None:
        write(root, "sys/firmware/efi/systab", systab)
    write(root, "sys/firmware/efi/fw_vendor", "%#x\n" % FW_VENDOR)
    write(root, "sys/firmware/efi/config_table", "%#x\n" % CONFIG_TABLE)
    write(root, "sys/firmware/efi/runtime", "0x7fbeeb98\n")  # kexec-tools reads it; kexec_file leaves __unused 0
    if runtime is not None:
        runtime_map(root, runtime)
    return root


def host(root, crash=CRASH, low_crash=None, cpus=2, firmware=FIRMWARE, memmap=True, kcore_data=None):
    """Write a fake host below ``root``; returns ``root`` as a str."""
    root = str(root)
    if memmap:
        for index, (start, end, kind) in enumerate(firmware):
            write(root, "sys/firmware/memmap/%d/start" % index, "%#x\n" % start)
            write(root, "sys/firmware/memmap/%d/end" % index, "%#x\n" % end)
            write(root, "sys/firmware/memmap/%d/type" % index, kind + "\n")
    write(root, "proc/iomem", iomem(crash, low_crash))
    write(root, "proc/meminfo", "MemTotal:        2013548 kB\nMemFree:          1700000 kB\n")
    write(root, "sys/kernel/boot_params/data", running_boot_params())
    for cpu in range(cpus):
        write(root, "sys/devices/system/cpu/cpu%d/crash_notes" % cpu, "%x\n" % (0x7dc1d000 + cpu * 0x1000 + 0x4d8))
        write(root, "sys/devices/system/cpu/cpu%d/crash_notes_size" % cpu, "368\n")
    write(root, "sys/devices/system/cpu/online", "0-%d\n" % (cpus - 1))
    write(root, "sys/kernel/vmcoreinfo", "0x000000001f5cd000 1024\n")
    write(root, "proc/kcore", kcore() if kcore_data is None else kcore_data)
    return root
