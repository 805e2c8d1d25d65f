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


def _read(root, path):
    """Text of ``root/path`` stripped, or None when it does not exist."""
    try:
        with open(os.path.join(root, path.lstrip("/")), "r") as handle:
            return handle.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_int(root, path):
    text = _read(root, path)
    return None if text in (None, "") else int(text)


class Region:
    """One /proc/iomem range, end inclusive as the kernel prints it."""

    def __init__(self, start, end, name):
        self.start = start
        self.end = end
        self.name = name

    @property
    def hidden(self):
        """Without root the kernel prints 0-0 for every range."""
        return self.start == 0 and self.end == 0

    @property
    def size(self):
        return None if self.hidden else self.end - self.start + 1

    def as_dict(self):
        return {"start": self.start, "end": self.end, "size": self.size}

    def __repr__(self):
        return "Region(%#x, %#x, %r)" % (self.start, self.end, self.name)


def parse_iomem(text):
    """All top-level and nested /proc/iomem regions as Region objects.

    Without root the kernel prints zeros for the addresses; callers treat a
    region of 0-0 as 'present, addresses hidden'.
    """
    regions = []
    for line in text.splitlines():
        span, sep, name = line.strip().partition(" : ")
        if not sep:
            continue
        start, dash, end = span.partition("-")
        if not dash:
            continue
        regions.append(Region(int(start, 16), int(end, 16), name.strip()))
    return regions


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
    def boot_id(self):
        return _read(self.root, "/proc/sys/kernel/random/boot_id")

    def iomem(self):
        text = _read(self.root, "/proc/iomem")
        return parse_iomem(text) if text else []

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


__all__ = ("KernelState", "Region", "crash_reserved", "parse_iomem", "parse_lockdown")
