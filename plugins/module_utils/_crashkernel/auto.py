# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``size: auto``: a crashkernel= value for this host's architecture and RAM.

Private to the kernel.kexec collection. The tables and the policy are those of
:func:`auto_size`; what a value reserves is worked out as the kernel does
(kernel.py).
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import round_system_ram
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import GIB, MIB, _human, format_size
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import reserved_bytes
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import normalize_arch

# Fedora/RHEL kdump-utils, kdump-lib.sh kdump_get_arch_recommend_crashkernel() as of
# rhkdump/kdump-utils commit 015e0f935bb6. It adds, and we do not: +64M on x86_64 with AMD
# SME/SEV active; on aarch64 +150M with mlx5, and for 64K-page kernels +100M, +384M with
# an SMMU, +200M with mlx5 (never to the first row). Its earlier tables (kexec-tools
# 2.0.23 era) began at 1G: x86_64/s390x '1G-4G:192M,4G-64G:256M,64G-:512M', aarch64
# '1G-4G:256M,...'. Debian bookworm's kdump-tools 1:1.8.1 writes 'crashkernel=384M-:128M'
# (/etc/default/grub.d/kdump-tools.cfg); Ubuntu's writes '512M-:192M'.
AUTO_TABLES = {
    "x86_64": "2G-64G:256M,64G-:512M",
    "s390x": "2G-64G:256M,64G-:512M",
    "aarch64": "2G-4G:256M,4G-64G:320M,64G-:576M",
    "ppc64le": "2G-4G:384M,4G-16G:512M,16G-64G:1G,64G-128G:2G,128G-:4G",
}
_AUTO_TABLE_OF = {"ppc64": "ppc64le"}

# Hosts below the table's first row (2G): the row Fedora used for them before it raised
# the floor (192M on x86_64/s390x, 256M on aarch64), and the first row on ppc64le, whose
# 64K pages cost more. A capture kernel needs about this much to boot whatever the host's
# RAM, and reserving nothing is what users most often regret.
AUTO_SMALL_HOST = {"x86_64": 192 * MIB, "s390x": 192 * MIB, "aarch64": 256 * MIB, "ppc64le": 384 * MIB}
AUTO_TABLE_FLOOR = 2 * GIB


def auto_size(arch, system_ram):
    """A crashkernel= value for ``arch`` and ``system_ram``, with an explanation.

    Policy: the Fedora/RHEL kdump-utils table for the arch (larger than Debian's
    and Ubuntu's single row, maintained per arch, and kept as a range list so a
    later RAM change still gets a fitting size). Where that table reserves
    nothing on this host (below 2G after the kernel's 128M round-up), a row
    '0-2G:<small-host size>' is put in front, with a warning when that takes a
    quarter of the RAM or more. Arches without a table use x86_64's, and say so.
    Raises KexecError when even that would reserve nothing (RAM below the
    capture kernel's own need).
    Returns (value, explanation).
    """
    if isinstance(system_ram, bool) or not isinstance(system_ram, int) or system_ram <= 0:
        raise KexecError("size: auto needs the host's RAM in bytes, got %r; read it from /proc/iomem as root"
                         % (system_ram,))
    arch = normalize_arch(arch)
    table_arch = _AUTO_TABLE_OF.get(arch, arch)
    notes = []
    if table_arch not in AUTO_TABLES:
        notes.append("kdump-utils has no table for %s; using the x86_64 one" % (arch or "this architecture"))
        table_arch = "x86_64"
    table = AUTO_TABLES[table_arch]
    total_mem = round_system_ram(system_ram)
    source = "the Fedora/RHEL kdump-utils default for %s (%s)" % (table_arch, table)
    value = table
    reserved = reserved_bytes(value, system_ram)
    if not reserved:
        small = AUTO_SMALL_HOST[table_arch]
        value = "0-%s:%s,%s" % (format_size(AUTO_TABLE_FLOOR), format_size(small), table)
        reserved = reserved_bytes(value, system_ram)
        if not reserved:
            raise KexecError("size: auto: this host has %s of RAM, too little for a crash kernel (it needs about %s "
                             "besides the running system); give size explicitly if you must"
                             % (_human(system_ram), format_size(small)))
        notes.append("that table starts at %s and would reserve nothing here, so %s is added for smaller hosts "
                     "(the row Fedora used for them before), as a capture kernel needs about that much to boot"
                     % (format_size(AUTO_TABLE_FLOOR), format_size(small)))
        if reserved * 4 >= system_ram:
            notes.append("warning: that is %d%% of this host's RAM" % (reserved * 100 // system_ram))
    explanation = ("crashkernel=%s from %s: on this host's %s of RAM (%s as the kernel compares it, rounded up "
                   "to 128M) it reserves %s" % (value, source, _human(system_ram), _human(total_mem),
                                                format_size(reserved)))
    if notes:
        explanation += "; " + "; ".join(notes)
    return value, explanation


__all__ = ("AUTO_SMALL_HOST", "AUTO_TABLES", "auto_size")
