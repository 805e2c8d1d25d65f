# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's architecture, worked out in one place.

Private to the kernel.kexec collection. :func:`host_machine` is the one call of
``platform.machine()`` (the kernel's ``uname -m``); :func:`normalize_arch` maps
the other spellings users and distributions give (amd64, arm64, ...) to the
kernel's. The syscall numbers of each architecture belong to the syscalls
(_kexec/syscalls.py ``ARCHES`` and ``current_arch``).
"""

from __future__ import annotations

import platform

_ARCH_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le",
                 "riscv": "riscv64", "loong64": "loongarch64"}


def host_machine(machine=None):
    """``machine`` when one is given (a test, a named target), else this host's ``uname -m``."""
    return machine or platform.machine()


def normalize_arch(arch):
    """'amd64' -> 'x86_64', 'arm64' -> 'aarch64', ...; other names as given."""
    arch = (arch or "").strip().lower()
    return _ARCH_ALIASES.get(arch, arch)


__all__ = ("host_machine", "normalize_arch")
