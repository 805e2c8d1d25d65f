# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a kernel loaded by kexec_load on an EFI host is told of the firmware, read from sysfs.

Private to the kernel.kexec collection. Host state, read-only; boot_params.py
writes what this finds into the zero page and plan.py places the rest. The
kernel's kexec_file does the same from its own memory (setup_efi_state in
arch/x86/kernel/kexec-bzimage64.c), kexec-tools from the same files
(kexec/arch/i386/x86-linux-setup.c).

* The ACPI RSDP: the running zero page's acpi_rsdp_addr, or where that is 0,
  ``ACPI20=`` (else ``ACPI=``) of ``/sys/firmware/efi/systab``, because a
  kernel entered through the EFI stub directly (systemd-boot; Linux 6.6, and
  6.1 from 6.1.81) leaves acpi_rsdp_addr 0, and a kernel booted without EFI
  finds no ACPI on an EFI machine by scanning. An EFI host that gives neither
  is refused.
* EFI runtime services, where the running kernel can hand them on: its
  efi_info (loader signature, system table, descriptor version) and
  secure_boot; the runtime regions of ``/sys/firmware/efi/runtime-map`` as EFI
  memory descriptors, because the firmware can be switched to virtual mode
  only once, so the new kernel must map them at the virtual addresses the
  first kernel gave it; and a SETUP_EFI setup_data with the physical
  fw_vendor, configuration table and SMBIOS addresses, because the system
  table the firmware keeps now holds virtual ones.

Where runtime cannot be handed on (no runtime-map, 32-bit firmware, a kernel
without XLF_EFI_KEXEC, ...) efi_info stays zero, so the new kernel boots as on
a BIOS machine with the RSDP, and :meth:`Firmware.notes` says what it lacks.
"""

from __future__ import annotations

import os
import re
import struct

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.bzimage import XLF_EFI_KEXEC
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import boot_params

SYSTAB = "sys/firmware/efi/systab"
FW_VENDOR = "sys/firmware/efi/fw_vendor"
CONFIG_TABLE = "sys/firmware/efi/config_table"
RUNTIME_MAP = "sys/firmware/efi/runtime-map"
# One runtime-map entry's files (drivers/firmware/efi/runtime-map.c), in efi_memory_desc_t order.
MAP_FIELDS = ("type", "phys_addr", "virt_addr", "num_pages", "attribute")
SYSFS_MAX = 4096  # a sysfs attribute is at most one page
HEX = re.compile(r"0x[0-9a-fA-F]{1,16}\Z")

EFI_INFO = struct.Struct("<8I")  # efi_info at boot_params 0x1c0, 32 bytes
DESCRIPTOR = struct.Struct("<IIQQQQ")  # efi_memory_desc_t: type, pad, phys_addr, virt_addr, num_pages, attribute
EFI_SETUP_DATA = struct.Struct("<QQQQ64x")  # struct efi_setup_data: fw_vendor, __unused, tables, smbios, reserved[8]
EL64 = b"EL64"
EL32 = b"EL32"
MEMDESC_VERSION = 1
EFI_INVALID_TABLE_ADDR = (1 << 64) - 1  # what the kernel passes for a table the firmware does not have
WHAT = "EFI sysfs file"


def _read(root, path):
    """Text of the sysfs file ``root/path``, or None where it does not exist.

    Read through _io.read_regular: a FIFO, device or directory in its place is
    refused at once, never read.
    """
    full = os.path.join(root, path)
    if not os.path.lexists(full):
        return None
    data = read_regular(full, WHAT, SYSFS_MAX + 1)
    if len(data) > SYSFS_MAX:
        raise KexecError("%s %s is longer than a sysfs file can be (%d bytes)" % (WHAT, full, SYSFS_MAX))
    if b"\0" in data:
        raise KexecError("%s %s holds a NUL byte: it is not what the kernel writes there" % (WHAT, full))
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KexecError("%s %s is not ASCII text: it is not what the kernel writes there" % (WHAT, full))


def _hex(text, where, bits=64):
    """The number in ``text`` ("0x..." as the kernel prints it); KexecError naming ``where`` otherwise."""
    value = text.strip()
    if not HEX.match(value) or int(value, 16) >> bits:
        raise KexecError("%s is %r, not a %d-bit 0x-prefixed hex number as the kernel writes it"
                         % (where, text[:40], bits))
    return int(value, 16)


def _address(root, path):
    """The address in the one-value sysfs file ``root/path``, or None where it does not exist."""
    text = _read(root, path)
    return None if text is None else _hex(text, os.path.join(root, path))


def parse_systab(text, where):
    """{name: address} of systab's ``NAME=0xHEX`` lines (drivers/firmware/efi/efi.c systab_show)."""
    tables = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.isalnum():
            raise KexecError("%s line %r is not NAME=0xADDRESS" % (where, line[:60]))
        tables.setdefault(name, _hex(value, "%s line %r" % (where, line[:60])))
    return tables


def read_systab(root):
    """systab's tables, or None where the file does not exist."""
    text = _read(root, SYSTAB)
    return None if text is None else parse_systab(text, os.path.join(root, SYSTAB))


def read_runtime_map(root):
    """The runtime-map entries as (type, phys_addr, virt_addr, num_pages, attribute), in the kernel's
    order (its entries are named 0 to N-1); None where there is no runtime-map."""
    base = os.path.join(root, RUNTIME_MAP)
    if not os.path.lexists(base):
        return None
    try:
        names = os.listdir(base)
    except NotADirectoryError:
        raise KexecError("%s is not a directory: not the kernel's EFI runtime map" % base)
    except PermissionError:
        raise KexecError("%s cannot be read: run as root (become: true)" % base)
    stray = sorted(set(names) - set(str(index) for index in range(len(names))))
    if stray:
        raise KexecError("%s holds %s: the kernel names its %d entries 0 to %d"
                         % (base, ", ".join(stray[:8]), len(names), len(names) - 1))
    entries = []
    for index in range(len(names)):
        entry = os.path.join(base, str(index))
        if not os.path.isdir(entry):
            raise KexecError("%s is not a directory: not an EFI runtime map entry" % entry)
        values = []
        for field in MAP_FIELDS:
            text = _read(root, "%s/%d/%s" % (RUNTIME_MAP, index, field))
            if text is None:
                raise KexecError("%s has no %s: an EFI runtime map entry has %s" % (entry, field, ", ".join(MAP_FIELDS)))
            values.append(_hex(text, os.path.join(entry, field), 32 if field == "type" else 64))
        entries.append(tuple(values))
    return entries


class Runtime:
    """The EFI runtime state handed on: the running efi_info, secure_boot, the runtime map and SETUP_EFI.

    The planner places :meth:`memory_map` and a SETUP_EFI node holding
    :meth:`setup_efi` in the boot_params segment (setup_data.Tail);
    :meth:`efi_info` points at the map.
    """

    def __init__(self, running_info, secure_boot, descriptors, fw_vendor, tables, smbios):
        self.running_info = running_info  # the running efi_info's 8 fields
        self.secure_boot = secure_boot
        self.descriptors = list(descriptors)
        self.fw_vendor = fw_vendor
        self.tables = tables
        self.smbios = smbios

    @property
    def map_size(self):
        return len(self.descriptors) * DESCRIPTOR.size

    def efi_info(self, address):
        """efi_info (32 bytes) for :meth:`memory_map` placed at ``address``: the running one's signature, system
        table and descriptor version, with our map's address, size and descriptor size."""
        signature, systab, _size, version, _map, _map_size, systab_hi, _map_hi = self.running_info
        return EFI_INFO.pack(signature, systab, DESCRIPTOR.size, version, address & 0xffffffff, self.map_size,
                             systab_hi, address >> 32)

    def memory_map(self):
        """The runtime regions as EFI memory descriptors."""
        return b"".join(DESCRIPTOR.pack(kind, 0, phys, virt, pages, attribute)
                        for kind, phys, virt, pages, attribute in self.descriptors)

    def setup_efi(self):
        """SETUP_EFI's payload (struct efi_setup_data): the physical fw_vendor, tables and SMBIOS addresses."""
        return EFI_SETUP_DATA.pack(self.fw_vendor, 0, self.tables, self.smbios)


class Firmware:
    """What the new kernel on an EFI host is given: the RSDP (and where it came from), EFI runtime where it
    can be handed on (else ``missing`` says why not)."""

    def __init__(self, rsdp, rsdp_source, runtime=None, missing=None):
        self.rsdp = rsdp
        self.rsdp_source = rsdp_source
        self.runtime = runtime
        self.missing = missing

    def capture_rsdp(self):
        """``acpi_rsdp=`` for a capture kernel's command line where it gets no EFI runtime, else "".

        kexec-tools adds it in that case only (crashdump-x86.c cmdline_add_efi),
        because Linux 4.19 and older do not read acpi_rsdp_addr.
        """
        return "acpi_rsdp=%#x" % self.rsdp if self.runtime is None else ""

    def notes(self):
        """What check mode shows: where the RSDP came from, and what is handed on or what the kernel lacks."""
        notes = []
        if self.rsdp_source != "running":
            notes.append("EFI host: acpi_rsdp_addr %#x is systab's %s= (the running zero page has none)"
                         % (self.rsdp, self.rsdp_source))
        if self.runtime:
            notes.append("EFI host: EFI runtime services are passed on: %d runtime-map regions as the EFI memory "
                         "map and SETUP_EFI setup_data (fw_vendor %#x, config tables %#x), as kexec_file does"
                         % (len(self.runtime.descriptors), self.runtime.fw_vendor, self.runtime.tables))
        else:
            notes.append("EFI host: EFI runtime services are not passed on (%s): the new kernel boots as on a BIOS "
                         "machine, with ACPI through acpi_rsdp_addr but without EFI runtime services (no efivars, "
                         "no EFI time or reset) and without the EFI configuration tables (SMBIOS only if found in "
                         "the legacy BIOS area, no ESRT, no TPM event log)" % self.missing)
        return notes


def _running_rsdp(page):
    return struct.unpack_from("<Q", page, boot_params.ACPI_RSDP_ADDR)[0] if page else 0


def _runtime_blocked(page, header):
    """Why the running efi_info or the new kernel rules out handing EFI runtime on; None if nothing does."""
    if page is None:
        return "the running kernel's zero page /sys/kernel/boot_params/data is missing or short"
    signature, _systab, _size, version, _map, map_size, _systab_hi, _map_hi = EFI_INFO.unpack_from(
        page, boot_params.EFI_INFO)
    signature = struct.pack("<I", signature)
    if not map_size:
        return "the running kernel's efi_info has no EFI memory map (efi_memmap_size 0)"
    if signature == EL32:
        return "the firmware is 32-bit EFI (efi_info signature EL32; kexec_file refuses to load on such hosts)"
    if signature != EL64:
        return "the running kernel's efi_info signature is %r, not EL64" % signature
    if version != MEMDESC_VERSION:
        return "EFI memory descriptor version %d (only version %d is known)" % (version, MEMDESC_VERSION)
    if not header.xloadflags & XLF_EFI_KEXEC:
        return "%s does not set XLF_EFI_KEXEC (built without EFI or kexec support)" % header.path
    return None


def read(root, running, header):
    """A Firmware for an EFI host, or None on a BIOS host (no /sys/firmware/efi), where boot_params copies
    the running acpi_rsdp_addr as it is.

    ``running``: the running zero page (boot_params.read_running); ``header``:
    the new kernel's bzimage.SetupHeader. KexecError where an EFI host gives no
    RSDP, or where a file read is not what the kernel writes.
    """
    if not KernelState(root).efi:
        return None
    page = running if running is not None and len(running) >= boot_params.SIZE else None
    missing = _runtime_blocked(page, header)
    descriptors = fw_vendor = tables = None
    if missing is None:
        descriptors = read_runtime_map(root)
        if not descriptors:
            missing = ("/sys/firmware/efi/runtime-map is missing or empty (the running kernel runs without EFI "
                       "runtime services, or was built without CONFIG_EFI_RUNTIME_MAP)")
    if missing is None:
        fw_vendor, tables = _address(root, FW_VENDOR), _address(root, CONFIG_TABLE)
        if fw_vendor is None or tables is None:
            missing = "/sys/firmware/efi/fw_vendor or config_table is missing"
    rsdp, source = _running_rsdp(page), "running"
    systab = read_systab(root) if missing is None or not rsdp else None
    if not rsdp:
        source = next((name for name in ("ACPI20", "ACPI") if (systab or {}).get(name)), None)
        if source is None:
            raise KexecError(
                "EFI host without an ACPI RSDP address: the running zero page (/sys/kernel/boot_params/data) "
                "has acpi_rsdp_addr 0 or is missing, and /sys/firmware/efi/systab %s; the new kernel would find "
                "no ACPI tables" % ("is missing" if systab is None else "has no ACPI20= or ACPI= line"))
        rsdp = systab[source]
    if missing is not None:
        return Firmware(rsdp, source, missing=missing)
    secure_boot = page[boot_params.SECURE_BOOT]
    runtime = Runtime(EFI_INFO.unpack_from(page, boot_params.EFI_INFO), secure_boot, descriptors, fw_vendor,
                      tables, (systab or {}).get("SMBIOS", EFI_INVALID_TABLE_ADDR))
    return Firmware(rsdp, source, runtime)


__all__ = ("EFI_INVALID_TABLE_ADDR", "Firmware", "Runtime", "parse_systab", "read", "read_runtime_map",
           "read_systab")
