"""The legacy plan on EFI hosts, read back byte by byte: the RSDP, efi_info, the EFI memory map, SETUP_EFI,
the capture kernel's acpi_rsdp=, the notes, and refusals of what the kernel would not write."""

import os
import re
import shutil
import struct

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import efi
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import plan as x86_plan

from .. import legacy_fakes as fakes

CMDLINE = "root=UUID=0b1c ro console=ttyS0,115200"
EFI_INFO, SECURE_BOOT, SETUP_DATA, ACPI_RSDP_ADDR = 0x1c0, 0x1ec, 0x250, 0x070
INVALID = 0xffffffffffffffff


@pytest.fixture
def kernel(tmp_path):
    return fakes.bzimage(str(tmp_path / "boot" / "vmlinuz"))


def params_of(result):
    return next(seg for seg in result.segments if seg.name == "boot_params")


def efi_info(data):
    names = ("signature", "systab", "memdesc_size", "memdesc_version", "memmap", "memmap_size", "systab_hi",
             "memmap_hi")
    return dict(zip(names, struct.unpack_from("<8I", data, EFI_INFO)))


def u64(data, offset):
    return struct.unpack_from("<Q", data, offset)[0]


def plan(root, kernel, crash=False, cmdline=CMDLINE):
    return x86_plan.plan(str(root), kernel, None, cmdline, crash=crash)


def test_efi_info_describes_the_running_firmware_and_our_map(tmp_path, kernel):
    seg = params_of(plan(fakes.efi_host(tmp_path / "host"), kernel))
    info = efi_info(seg.data)
    signature, systab, _size, version, _map, _map_size, systab_hi, _map_hi = fakes.EFI_INFO
    assert struct.pack("<I", info["signature"]) == b"EL64"
    assert (info["systab"], info["systab_hi"], info["memdesc_version"]) == (systab, systab_hi, version)
    assert info["memdesc_size"] == 40  # our descriptors, not the running kernel's 48
    assert info["memmap_size"] == 40 * len(fakes.RUNTIME_MAP)
    memmap = info["memmap"] | info["memmap_hi"] << 32
    offset = memmap - seg.mem
    assert offset % 16 == 0 and offset >= 4096 + len(CMDLINE) + 1  # after the zero page and the command line
    assert seg.data[SECURE_BOOT] == fakes.SECURE_BOOT


def test_the_runtime_map_becomes_efi_memory_descriptors_in_index_order(tmp_path, kernel):
    seg = params_of(plan(fakes.efi_host(tmp_path / "host"), kernel))
    info = efi_info(seg.data)
    offset = info["memmap"] - seg.mem
    found = [struct.unpack_from("<IIQQQQ", seg.data, offset + 40 * index) for index in range(len(fakes.RUNTIME_MAP))]
    assert found == [(kind, 0, phys, virt, pages, attr) for kind, phys, virt, pages, attr in fakes.RUNTIME_MAP]


def test_setup_efi_is_chained_from_hdr_setup_data(tmp_path, kernel):
    seg = params_of(plan(fakes.efi_host(tmp_path / "host"), kernel))
    pointer = u64(seg.data, SETUP_DATA)
    offset = pointer - seg.mem
    map_end = efi_info(seg.data)["memmap"] - seg.mem + 40 * len(fakes.RUNTIME_MAP)
    assert offset == (map_end + 15) & ~15 and offset + 16 + 96 == len(seg.data) <= seg.memsz
    assert struct.unpack_from("<QII", seg.data, offset) == (0, 4, 96)  # next, SETUP_EFI, sizeof(efi_setup_data)
    fields = struct.unpack_from("<12Q", seg.data, offset + 16)
    assert fields[:4] == (fakes.FW_VENDOR, 0, fakes.CONFIG_TABLE, fakes.SMBIOS)  # SMBIOS=, not SMBIOS3=
    assert fields[4:] == (0,) * 8


def test_smbios_missing_from_systab_is_passed_as_an_invalid_table_address(tmp_path, kernel):
    """kexec_file passes efi.smbios, which stays EFI_INVALID_TABLE_ADDR where the firmware has none."""
    root = fakes.efi_host(tmp_path / "host", systab="ACPI20=%#x\nSMBIOS3=%#x\n" % (fakes.EFI_RSDP20, fakes.SMBIOS3))
    seg = params_of(plan(root, kernel))
    assert u64(seg.data, u64(seg.data, SETUP_DATA) - seg.mem + 16 + 24) == INVALID


@pytest.mark.parametrize("systab, expected", [
    (fakes.SYSTAB, fakes.EFI_RSDP20),
    ("ACPI=0x7fb7e000\nACPI20=0x7fb7e014\n", fakes.EFI_RSDP20),  # ACPI 2.0 preferred, wherever its line is
    ("ACPI=0x7fb7e000\nSMBIOS=0x7f93d000\n", fakes.EFI_RSDP),
], ids=["acpi20-first", "acpi20-second", "acpi-only"])
@pytest.mark.parametrize("runtime", [True, False], ids=["runtime", "no-runtime-map"])
def test_a_zero_running_rsdp_is_taken_from_systab(tmp_path, kernel, systab, expected, runtime):
    root = fakes.efi_host(tmp_path / "host", systab=systab, runtime=fakes.RUNTIME_MAP if runtime else None)
    result = plan(root, kernel)
    assert u64(params_of(result).data, ACPI_RSDP_ADDR) == expected
    name = "ACPI20" if expected == fakes.EFI_RSDP20 else "ACPI"
    assert "EFI host: acpi_rsdp_addr %#x is systab's %s= (the running zero page has none)" % (expected, name) in (
        result.notes)


def test_a_running_rsdp_is_kept(tmp_path, kernel):
    """As kexec_file: the running value wins over systab's, which differs here, with EFI runtime handed on too."""
    root = fakes.efi_host(tmp_path / "host", rsdp=fakes.RSDP)
    result = plan(root, kernel)
    seg = params_of(result)
    assert u64(seg.data, ACPI_RSDP_ADDR) == fakes.RSDP != fakes.EFI_RSDP20
    assert struct.pack("<I", efi_info(seg.data)["signature"]) == b"EL64"
    assert not any("systab's" in note for note in result.notes)


def test_a_crash_kernel_gets_the_same_efi_state_inside_the_region(tmp_path, kernel):
    result = plan(fakes.efi_host(tmp_path / "host"), kernel, crash=True)
    seg = params_of(result)
    low, high = fakes.CRASH
    assert low <= seg.mem and seg.mem + seg.memsz - 1 <= high
    info = efi_info(seg.data)
    assert struct.pack("<I", info["signature"]) == b"EL64" and seg.mem < info["memmap"] < seg.mem + seg.memsz
    assert struct.unpack_from("<QII", seg.data, u64(seg.data, SETUP_DATA) - seg.mem) == (0, 4, 96)
    assert u64(seg.data, ACPI_RSDP_ADDR) == fakes.EFI_RSDP20
    # The capture kernel finds ACPI through EFI's tables: kexec-tools adds no acpi_rsdp= then.
    assert "acpi_rsdp=" not in result.cmdline


@pytest.mark.parametrize("rsdp, expected", [(0, fakes.EFI_RSDP20), (fakes.RSDP, fakes.RSDP)], ids=["systab", "running"])
def test_a_crash_kernel_without_efi_runtime_gets_acpi_rsdp_on_its_command_line(tmp_path, kernel, rsdp, expected):
    root = fakes.efi_host(tmp_path / "host", rsdp=rsdp, runtime=None)
    result = plan(root, kernel, crash=True, cmdline="root=/dev/vda1 -- init-arg")
    elf = next(seg for seg in result.segments if seg.name == "elfcorehdr")
    # Beside elfcorehdr=, before the user's arguments, so never after "--".
    assert result.cmdline == "elfcorehdr=%#x acpi_rsdp=%#x root=/dev/vda1 -- init-arg" % (elf.mem, expected)
    assert params_of(result).data[4096:].split(b"\0")[0].decode() == result.cmdline


def test_a_normal_load_gets_no_acpi_rsdp_argument(tmp_path, kernel):
    result = plan(fakes.efi_host(tmp_path / "host", runtime=None), kernel)
    assert result.cmdline == CMDLINE


@pytest.mark.parametrize("change, reason", [
    (dict(runtime=None), "/sys/firmware/efi/runtime-map is missing or empty"),
    (dict(efi_info=fakes.EFI_INFO[:5] + (0,) + fakes.EFI_INFO[6:]), "efi_info has no EFI memory map (efi_memmap_size 0)"),
    (dict(efi_info=(fakes.EL32,) + fakes.EFI_INFO[1:]), "the firmware is 32-bit EFI (efi_info signature EL32"),
    (dict(efi_info=fakes.EFI_INFO[:3] + (2,) + fakes.EFI_INFO[4:]), "EFI memory descriptor version 2"),
    (dict(xloadflags=0x6f), "does not set XLF_EFI_KEXEC"),
    (dict(no_fw_vendor=True), "/sys/firmware/efi/fw_vendor or config_table is missing"),
], ids=["no-runtime-map", "memmap-size-0", "32-bit-efi", "descriptor-version", "kernel-without-xlf-efi-kexec",
        "no-fw-vendor"])
def test_without_efi_runtime_the_notes_say_what_the_kernel_lacks_and_nothing_claims_efi(tmp_path, change, reason):
    kernel = fakes.bzimage(str(tmp_path / "boot" / "vmlinuz"), xloadflags=change.pop("xloadflags", 0x7f))
    no_fw_vendor = change.pop("no_fw_vendor", False)
    root = fakes.efi_host(tmp_path / "host", **change)
    if no_fw_vendor:
        os.remove(os.path.join(root, "sys/firmware/efi/fw_vendor"))
    result = plan(root, kernel)
    seg = params_of(result)
    note = next(note for note in result.notes if "EFI runtime services" in note)
    assert note.startswith("EFI host: EFI runtime services are not passed on (")
    assert reason in note and "without EFI runtime services (no efivars" in note
    assert seg.data[EFI_INFO:EFI_INFO + 32] == bytes(32) and seg.data[SECURE_BOOT] == 0  # no EL64: no EFI boot
    assert u64(seg.data, SETUP_DATA) == 0 and len(seg.data) == 4096 + len(CMDLINE) + 1
    assert u64(seg.data, ACPI_RSDP_ADDR) == fakes.EFI_RSDP20  # ACPI is still found


def test_the_note_says_what_is_passed_on(tmp_path, kernel):
    notes = plan(fakes.efi_host(tmp_path / "host"), kernel).notes
    assert ("EFI host: EFI runtime services are passed on: 12 runtime-map regions as the EFI memory map and "
            "SETUP_EFI setup_data (fw_vendor %#x, config tables %#x), as kexec_file does"
            % (fakes.FW_VENDOR, fakes.CONFIG_TABLE)) in notes
    assert not any("not passed on" in note for note in notes)


@pytest.mark.parametrize("systab, says", [
    (None, "/sys/firmware/efi/systab is missing"),
    ("SMBIOS=0x7f93d000\n", "/sys/firmware/efi/systab has no ACPI20= or ACPI= line"),
    ("ACPI20=0x0\n", "/sys/firmware/efi/systab has no ACPI20= or ACPI= line"),
], ids=["no-systab", "no-acpi-line", "zero"])
@pytest.mark.parametrize("crash", [False, True], ids=["default", "crash"])
def test_an_efi_host_without_any_rsdp_is_refused(tmp_path, kernel, systab, says, crash):
    root = fakes.efi_host(tmp_path / "host", systab=systab)
    with pytest.raises(KexecError) as caught:
        plan(root, kernel, crash=crash)
    assert caught.value.msg.startswith("EFI host without an ACPI RSDP address: the running zero page "
                                       "(/sys/kernel/boot_params/data) has acpi_rsdp_addr 0 or is missing")
    assert says in caught.value.msg and "the new kernel would find no ACPI tables" in caught.value.msg


def test_an_efi_host_without_a_running_zero_page_or_systab_is_refused(tmp_path, kernel):
    root = fakes.efi_host(tmp_path / "host", systab=None)
    os.remove(os.path.join(root, "sys/kernel/boot_params/data"))
    with pytest.raises(KexecError, match="EFI host without an ACPI RSDP address"):
        plan(root, kernel)


def test_an_efi_host_without_a_running_zero_page_takes_systab_and_no_runtime(tmp_path, kernel):
    root = fakes.efi_host(tmp_path / "host")
    os.remove(os.path.join(root, "sys/kernel/boot_params/data"))
    result = plan(root, kernel)
    assert u64(params_of(result).data, ACPI_RSDP_ADDR) == fakes.EFI_RSDP20
    assert any("zero page /sys/kernel/boot_params/data is missing or short" in note for note in result.notes)


def entry_file(root, field, index=3):
    return os.path.join(root, "sys/firmware/efi/runtime-map/%d/%s" % (index, field))


def missing_field(root):
    os.remove(entry_file(root, "num_pages"))


def garbage(root):
    fakes.write(root, entry_file(root, "phys_addr"), "banana\n")


def no_prefix(root):
    fakes.write(root, entry_file(root, "virt_addr"), "7f800000\n")


def nul_byte(root):
    fakes.write(root, entry_file(root, "attribute"), b"0x8000\0000000000f\n")


def type_too_wide(root):
    fakes.write(root, entry_file(root, "type"), "0x100000000\n")


def fifo(root):
    os.remove(entry_file(root, "phys_addr"))
    os.mkfifo(entry_file(root, "phys_addr"))


def directory(root):
    os.remove(entry_file(root, "type"))
    os.mkdir(entry_file(root, "type"))


def gap(root):
    os.rename(os.path.dirname(entry_file(root, "type", 11)), os.path.dirname(entry_file(root, "type", 12)))


def stray_name(root):
    os.mkdir(os.path.join(root, "sys/firmware/efi/runtime-map/x"))


def entry_is_a_file(root):
    base = os.path.dirname(entry_file(root, "type", 11))
    for name in os.listdir(base):
        os.remove(os.path.join(base, name))
    os.rmdir(base)
    fakes.write(root, base, "0x5\n")


def map_is_a_file(root):
    shutil.rmtree(os.path.join(root, "sys/firmware/efi/runtime-map"))
    fakes.write(root, "sys/firmware/efi/runtime-map", "0\n")


def huge(root):
    fakes.write(root, entry_file(root, "num_pages"), "0x1" + "0" * 5000 + "\n")


MALFORMED_MAP = [
    (missing_field, r"runtime-map/3 has no num_pages: an EFI runtime map entry has type, phys_addr, virt_addr, "
                    r"num_pages, attribute"),
    (garbage, r"runtime-map/3/phys_addr is 'banana\\n', not a 64-bit 0x-prefixed hex number"),
    (no_prefix, r"runtime-map/3/virt_addr is '7f800000\\n', not a 64-bit 0x-prefixed hex number"),
    (nul_byte, r"runtime-map/3/attribute holds a NUL byte"),
    (type_too_wide, r"runtime-map/3/type is '0x100000000\\n', not a 32-bit"),
    (fifo, r"runtime-map/3/phys_addr is a FIFO, not a regular file"),
    (directory, r"runtime-map/3/type is a directory, not a regular file"),
    (gap, r"runtime-map holds 12: the kernel names its 12 entries 0 to 11"),
    (stray_name, r"runtime-map holds x: the kernel names its 13 entries 0 to 12"),
    (entry_is_a_file, r"runtime-map/11 is not a directory: not an EFI runtime map entry"),
    (map_is_a_file, r"runtime-map is not a directory: not the kernel's EFI runtime map"),
    (huge, r"runtime-map/3/num_pages is longer than a sysfs file can be"),
]


@pytest.mark.parametrize("damage, message", [pytest.param(damage, message, id=damage.__name__)
                                             for damage, message in MALFORMED_MAP])
@pytest.mark.parametrize("crash", [False, True], ids=["default", "crash"])
def test_a_malformed_runtime_map_is_refused(tmp_path, kernel, damage, message, crash, no_hang):
    root = fakes.efi_host(tmp_path / "host")
    damage(root)
    with pytest.raises(KexecError, match=message):
        plan(root, kernel, crash=crash)


@pytest.mark.parametrize("systab, message", [
    ("ACPI20=0x7fb7e014\nthis is not a table\n", r"systab line 'this is not a table' is not NAME=0xADDRESS"),
    ("ACPI20=0x7fb7e014\nSMBIOS=0xfoo\n", r"systab line 'SMBIOS=0xfoo' is '0xfoo', not a 64-bit"),
    (b"ACPI20=0x7fb7e014\0\n", r"systab holds a NUL byte"),
    (b"ACPI20=0x7fb7e014\n\xff\n", r"systab is not ASCII text"),
], ids=["not-a-table", "bad-address", "nul", "not-ascii"])
def test_a_malformed_systab_is_refused(tmp_path, kernel, systab, message):
    root = fakes.efi_host(tmp_path / "host", systab=systab)
    with pytest.raises(KexecError, match=message):
        plan(root, kernel)


def test_a_systab_fifo_is_refused_without_hanging(tmp_path, kernel, no_hang):
    root = fakes.efi_host(tmp_path / "host", systab=None)
    os.mkfifo(os.path.join(root, "sys/firmware/efi/systab"))
    with pytest.raises(KexecError, match="systab is a FIFO, not a regular file"):
        plan(root, kernel)


def test_an_unreadable_systab_asks_for_root(tmp_path, kernel, monkeypatch):
    """systab is 0400: without root the open fails (the tests may run as root, so the refusal is staged)."""
    root = fakes.efi_host(tmp_path / "host")
    denied = os.path.join(root, "sys/firmware/efi/systab")
    real_open = os.open

    def guarded(path, *args, **kwargs):
        if path == denied:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", guarded)
    with pytest.raises(KexecError, match=re.escape("EFI sysfs file %s cannot be read: run as root (become: true)"
                                                   % denied)):
        plan(root, kernel)


def test_a_running_zero_page_that_is_a_fifo_is_refused_without_hanging(tmp_path, kernel, no_hang):
    root = fakes.host(tmp_path / "host")
    os.remove(os.path.join(root, "sys/kernel/boot_params/data"))
    os.mkfifo(os.path.join(root, "sys/kernel/boot_params/data"))
    with pytest.raises(KexecError, match="boot_params/data is a FIFO, not a regular file"):
        plan(root, kernel)


@pytest.mark.parametrize("crash", [False, True], ids=["default", "crash"])
def test_a_bios_host_is_planned_as_before(tmp_path, kernel, crash):
    """No /sys/firmware/efi: the running acpi_rsdp_addr is copied as it is (even 0), no efi_info, no
    setup_data, nothing after the command line, no systab read, no acpi_rsdp=, no EFI note."""
    root = fakes.host(tmp_path / "host")
    fakes.write(root, "sys/kernel/boot_params/data", fakes.running_boot_params(rsdp=0, efi_info=fakes.EFI_INFO))
    fakes.runtime_map(os.path.join(root, "elsewhere"))  # nothing below /sys/firmware/efi
    result = plan(root, kernel, crash=crash)
    seg = params_of(result)
    assert u64(seg.data, ACPI_RSDP_ADDR) == 0
    assert seg.data[EFI_INFO:EFI_INFO + 32] == bytes(32) and u64(seg.data, SETUP_DATA) == 0
    assert len(seg.data) == 4096 + len(result.cmdline) + 1 and "acpi_rsdp=" not in result.cmdline
    assert seg.holds == "boot_params (zero page, %d e820 entries) and the command line" % seg.data[0x1e8]
    assert [note.split(":")[0] for note in result.notes] == ["no digest check"]


def test_read_is_none_on_a_bios_host(tmp_path, kernel):
    root = fakes.host(tmp_path / "host")
    header = bzimage.read_image(kernel)[0]
    assert efi.read(root, fakes.running_boot_params(), header) is None
