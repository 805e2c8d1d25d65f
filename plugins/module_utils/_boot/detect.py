# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pick the bootloader backend: by name, or ``auto`` detection.

Private to the kernel.kexec collection.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._boot.bls import BlsEntries, Grubby
from ansible_collections.kernel.kexec.plugins.module_utils._boot.grub import GrubDefaults
from ansible_collections.kernel.kexec.plugins.module_utils._boot.zipl import Zipl
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import host_machine

BACKENDS = {"grub": GrubDefaults, "grubby": Grubby, "systemd-boot": BlsEntries, "zipl": Zipl}
# auto tries them in this order: the most specific evidence first.
DETECTION_ORDER = ("grubby", "zipl", "systemd-boot", "grub")


def detect(root="/", machine=None):
    """The backend name that manages the host at ``root``, or a KexecError saying what was looked for."""
    machine = host_machine(machine)
    for name in DETECTION_ORDER:
        if name == "zipl" and machine != "s390x":
            continue
        if BACKENDS[name].detect(root):
            return name
    raise KexecError("no supported bootloader found (looked for grubby with BLS entries, /etc/zipl.conf on s390x, "
                     "loader/loader.conf of systemd-boot, /etc/default/grub): set bootloader explicitly")


def create(name="auto", root="/", runner=None, kernel=None, machine=None):
    """A backend instance; ``auto`` detects which."""
    if name == "auto":
        name = detect(root, machine)
    if name not in BACKENDS:
        raise KexecError("unknown bootloader %r; choose one of auto, %s" % (name, ", ".join(sorted(BACKENDS))))
    kwargs = {"runner": runner} if runner else {}
    return BACKENDS[name](root, kernel=kernel, machine=machine, **kwargs)


__all__ = ("BACKENDS", "create", "detect")
