# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only view of the kexec state the running kernel exposes.

Private to the kernel.kexec collection. Every path is taken below ``root``
(``/`` on a host, a fake tree in unit tests). Nothing here writes. The _host
package holds what the running host says about itself, read-only.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.iomem import read as read_iomem
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular, read_text

# uname -m of the x86 machines: where EFI did not boot them, a BIOS (or UEFI's compatibility module) did.
X86_MACHINES = ("x86_64", "i386", "i486", "i586", "i686")
# EFI_GLOBAL_VARIABLE, the vendor GUID of the variables the UEFI specification defines.
EFI_GLOBAL_VARIABLE = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
SECURE_BOOT_VARIABLE = "/sys/firmware/efi/efivars/SecureBoot-%s" % EFI_GLOBAL_VARIABLE
# What only an AMD SEV-SNP guest's kernel makes, each where cc_platform_has(CC_ATTR_GUEST_SEV_SNP): the
# sev-guest platform device (snp_init_platform_device, Linux 5.19 on), then also /sys/devices/system/cpu/sev
# (sev_sysfs_init) and /sys/hypervisor/sev on newer kernels.
SEV_SNP_GUEST_PATHS = ("sys/devices/platform/sev-guest", "sys/devices/system/cpu/sev", "sys/hypervisor/sev")


def _read(root, path):
    """Text of ``root/path`` stripped, or None when it does not exist; KexecError when it cannot be read as text."""
    text = read_text(os.path.join(root, path.lstrip("/")), missing=None)
    return None if text is None else text.strip()


def _read_bytes(root, path, what):
    """The bytes of the regular file ``root/path``, or None when it does not exist.

    Read by _io.read_regular (non-blocking, regular files only; efivarfs files
    are regular); KexecError naming ``what`` when the file is there but cannot be
    opened or read, or is no regular file.
    """
    return read_regular(os.path.join(root, path.lstrip("/")), what, missing=None)


def _read_int(root, path):
    text = _read(root, path)
    return None if text in (None, "") else int(text)


def crash_reserved(regions, crash_size):
    """Bytes reserved: the regions' sum, or kexec_crash_size where /proc/iomem hides addresses (not root)."""
    if any(region.hidden for region in regions):
        return crash_size or 0
    return sum(region.size for region in regions)


def parse_lockdown(text):
    """'none [integrity] confidentiality' -> 'integrity'; None if absent."""
    if not text:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


class KernelState:
    """The running kernel's kexec state, read from ``root``."""

    def __init__(self, root="/"):
        self.root = root

    def read(self, path):
        return _read(self.root, path)

    @property
    def kexec_loaded(self):
        return _read_int(self.root, "/sys/kernel/kexec_loaded") == 1

    @property
    def kexec_crash_loaded(self):
        return _read_int(self.root, "/sys/kernel/kexec_crash_loaded") == 1

    def loaded(self, crash):
        return self.kexec_crash_loaded if crash else self.kexec_loaded

    @property
    def kexec_supported(self):
        """CONFIG_KEXEC_CORE: the kernel exposes /sys/kernel/kexec_loaded."""
        return os.path.exists(os.path.join(self.root, "sys/kernel/kexec_loaded"))

    @property
    def efi(self):
        """Booted by EFI firmware: the kernel makes /sys/firmware/efi only then
        (drivers/firmware/efi/efi.c efisubsys_init returns early without EFI_BOOT)."""
        return os.path.isdir(os.path.join(self.root, "sys/firmware/efi"))

    def firmware(self, machine):
        """'efi' when EFI booted the running kernel; 'bios' on an x86 ``machine`` that EFI did not boot;
        None on other machines, which boot from firmware this cannot tell apart (U-Boot with a device
        tree, OPAL, s390's IPL).

        'bios' is told by the absence of EFI: a kernel started directly by a hypervisor, or by a kexec
        that did not pass the EFI tables on, reads as 'bios' too.
        """
        if self.efi:
            return "efi"
        return "bios" if machine in X86_MACHINES else None

    @property
    def secure_boot(self):
        """The firmware's SecureBoot variable: True (on) or False; None where EFI did not boot the kernel
        or the variable is missing (firmware without Secure Boot, efivarfs not mounted).

        efivarfs shows a variable as its 4 bytes of attributes, then its value: here one byte, on when it
        is not 0 (as the kernel's EFI stub reads it, efi_get_secureboot in libstub/secureboot.c; the stub
        also counts SetupMode and shim's MokSBState, this is the firmware's variable alone). KexecError
        when the file is there but cannot be read, or holds anything but those 5 bytes.
        """
        if not self.efi:
            return None
        data = _read_bytes(self.root, SECURE_BOOT_VARIABLE, "EFI variable")
        if data is None:
            return None
        if len(data) != 5:
            raise KexecError("EFI variable %s is malformed: %d bytes, not 4 bytes of attributes and a 1-byte value"
                             % (SECURE_BOOT_VARIABLE, len(data)))
        return data[4] != 0

    @property
    def kexec_crash_size(self):
        return _read_int(self.root, "/sys/kernel/kexec_crash_size")

    @property
    def kexec_load_disabled(self):
        return _read_int(self.root, "/proc/sys/kernel/kexec_load_disabled") == 1

    def load_limit(self, crash):
        """Loads left for this kind (newer kernels; -1 unlimited, None unknown)."""
        name = "panic" if crash else "reboot"
        return _read_int(self.root, "/proc/sys/kernel/kexec_load_limit_%s" % name)

    @property
    def lockdown(self):
        """'none', 'integrity', 'confidentiality', or None without the LSM."""
        return parse_lockdown(_read(self.root, "/sys/kernel/security/lockdown"))

    @property
    def locked_down(self):
        return self.lockdown not in (None, "none")

    @property
    def cmdline(self):
        return _read(self.root, "/proc/cmdline") or ""

    @property
    def release(self):
        return _read(self.root, "/proc/sys/kernel/osrelease")

    @property
    def release_version(self):
        """(major, minor) of the running release ("5.10.0-28-amd64" gives (5, 10)); None when it starts otherwise."""
        match = re.match(r"(\d+)\.(\d+)", self.release or "")
        return (int(match.group(1)), int(match.group(2))) if match else None

    def cpu_flags(self):
        """The ``flags`` of the first CPU in /proc/cpuinfo (x86); empty where there are none.

        The kernel shows a feature there only while it uses it: it clears ``la57`` when it runs
        with 4-level paging (early_identify_cpu in arch/x86/kernel/cpu/common.c).
        """
        for line in (_read(self.root, "/proc/cpuinfo") or "").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == "flags":
                return frozenset(value.split())
        return frozenset()

    @property
    def five_level_paging(self):
        """The running kernel uses 5-level paging (``la57`` in /proc/cpuinfo), which a kexec keeps on."""
        return "la57" in self.cpu_flags()

    @property
    def confidential_guest(self):
        """'Intel TDX' or 'AMD SEV-SNP' where the running kernel is such a confidential guest, else None.

        TDX guests show ``tdx_guest`` in /proc/cpuinfo; SEV-SNP guests one of SEV_SNP_GUEST_PATHS (the
        ``sev_snp`` cpuinfo flag is the host's CPU feature, not a guest's).
        """
        if "tdx_guest" in self.cpu_flags():
            return "Intel TDX"
        if any(os.path.exists(os.path.join(self.root, path)) for path in SEV_SNP_GUEST_PATHS):
            return "AMD SEV-SNP"
        return None

    @property
    def boot_id(self):
        return _read(self.root, "/proc/sys/kernel/random/boot_id")

    def iomem(self):
        """Every /proc/iomem region (iomem.parse), [] where it does not exist."""
        return read_iomem(self.root)

    def crash_regions(self):
        """The 'Crash kernel' regions (low and high parts are separate lines)."""
        return [region for region in self.iomem() if region.name == "Crash kernel"]

    def kernel_config(self, release=None):
        """Options of /boot/config-RELEASE as a dict, empty if the file is missing."""
        text = _read(self.root, "/boot/config-%s" % (release or self.release))
        options = {}
        for line in (text or "").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("CONFIG_"):
                options[key] = value
        return options


__all__ = ("EFI_GLOBAL_VARIABLE", "KernelState", "SECURE_BOOT_VARIABLE", "SEV_SNP_GUEST_PATHS", "X86_MACHINES",
           "crash_reserved", "parse_lockdown")
