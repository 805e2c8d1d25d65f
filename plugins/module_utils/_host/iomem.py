# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""/proc/iomem: the running kernel's tree of physical address ranges, and its System RAM.

Private to the kernel.kexec collection. Host state, read-only. The one
reader and parser of /proc/iomem in the collection.

The kernel prints its ``iomem_resource`` tree in pre-order, each line
``start-end : name`` (``end`` inclusive) indented two spaces per level
(kernel/resource.c ``r_show``). :func:`parse` keeps that shape: a flat list
in file order whose :class:`Region` objects know their ``depth`` and
``parent``. Without root every address reads 0 (``Region.hidden``).

:func:`system_ram` selects RAM by the rule the kernel's own kexec_file uses
for the crash dump (arch/x86/kernel/crash.c ``prepare_elf_headers`` through
``walk_system_ram_res``): ``find_next_iomem_res`` walks the whole tree in
that same order, takes the first resource flagged ``IORESOURCE_SYSTEM_RAM``
and ``IORESOURCE_BUSY`` that reaches the address it searches from, and goes
on after that resource's end. So it finds System RAM at any depth (below a
``virtio0`` device or a ``Soft Reserved``/CXL window and its ``dax0.0``), but
never a resource inside one it took: the outermost System RAM resources,
each once. Linux 5.13 made it walk all levels (commit 97523a4edb7b, "kernel/
resource: remove first_lvl / siblings_only logic"); before, only the top
level, where all System RAM but driver-managed memory lies.

/proc/iomem shows no flags, but the names carry them: ``System RAM`` for the
firmware's RAM and ACPI hot-add, ``System RAM (driver)`` for memory a driver
added (mm/memory_hotplug.c ``register_memory_resource``: any other name is
flagged ``IORESOURCE_SYSRAM_DRIVER_MANAGED``; virtio_mem, kmem for dax and
CXL). The kernel's other System RAM resources (``Kernel code`` and its
siblings, ``Crash kernel``) always lie inside a ``System RAM`` parent, so the
outermost rule never reaches them; a virtio-mem device's own ``virtioN``
range is flagged System RAM but not busy, so the walk passes it by too.
"""

from __future__ import annotations

import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular

IOMEM = "proc/iomem"
SYSTEM_RAM = "System RAM"
DRIVER_MANAGED_PREFIX = "System RAM ("
INDENT = 2  # r_show prints depth * 2 spaces


class Region:
    """A physical address range with a name, as /proc/iomem and /sys/firmware/memmap list them.

    ``end`` is inclusive, as the kernel prints it. ``depth`` and ``parent``
    place an /proc/iomem line in its tree (0 and None at the top level, and for
    firmware map entries).
    """

    def __init__(self, start, end, name, depth=0, parent=None):
        self.start = start
        self.end = end
        self.name = name
        self.depth = depth
        self.parent = parent

    @property
    def hidden(self):
        """Without root the kernel prints 0-0 for every range."""
        return self.start == 0 and self.end == 0

    @property
    def size(self):
        return None if self.hidden else self.end - self.start + 1

    @property
    def is_system_ram(self):
        """Flagged IORESOURCE_SYSTEM_RAM, as the name shows it: ``System RAM`` or ``System RAM (driver)``."""
        return self.name == SYSTEM_RAM or self.name.startswith(DRIVER_MANAGED_PREFIX)

    @property
    def driver_managed(self):
        """RAM a driver added (IORESOURCE_SYSRAM_DRIVER_MANAGED), which a new kernel may not have."""
        return self.name.startswith(DRIVER_MANAGED_PREFIX)

    def ancestors(self):
        parent = self.parent
        while parent is not None:
            yield parent
            parent = parent.parent

    def as_dict(self):
        return {"start": self.start, "end": self.end, "size": self.size}

    def __repr__(self):
        return "Region(%#x, %#x, %r)" % (self.start, self.end, self.name)


def _line(text):
    """(indent, start, end, name) of one ``start-end : name`` line, or None for anything else."""
    span, sep, name = text.strip().partition(" : ")
    start, dash, end = span.partition("-")
    if not (sep and dash):
        return None
    try:
        return len(text) - len(text.lstrip(" ")), int(start, 16), int(end, 16), name.strip()
    except ValueError:
        return None


def parse(text):
    """Every region of /proc/iomem's ``text``, in file order, each with its depth and parent.

    A line's parent is the nearest line above it with less indent. Lines that
    are not ``start-end : name`` are skipped. The kernel indents at most five
    levels (``MAX_IORES_LEVEL``), so a deeper line reads as a sibling of the
    fifth-level line above it; RAM never sits that deep.
    """
    regions = []
    open_levels = []  # the innermost region open at each indent, outermost first
    for text_line in text.splitlines():
        fields = _line(text_line)
        if fields is None:
            continue
        indent, start, end, name = fields
        while open_levels and open_levels[-1][0] >= indent:
            open_levels.pop()
        parent = open_levels[-1][1] if open_levels else None
        region = Region(start, end, name, len(open_levels), parent)
        open_levels.append((indent, region))
        regions.append(region)
    return regions


def read(root="/"):
    """The regions of ``root``/proc/iomem (see :func:`parse`); [] where it does not exist."""
    path = os.path.join(root, IOMEM)
    if not os.path.lexists(path):
        return []
    return parse(read_regular(path, "the kernel's memory map").decode("utf-8", "replace"))


def read_addresses(root, purpose):
    """The regions of /proc/iomem with their addresses; KexecError naming ``purpose`` where there are none.

    Without root every range reads 0-0: that is refused rather than planned on.
    """
    regions = read(root)
    if not regions:
        raise KexecError("/proc/iomem is missing or empty: %s needs the running kernel's memory map" % purpose)
    if all(region.hidden for region in regions):
        raise KexecError("/proc/iomem shows no addresses: %s needs root (become: true)" % purpose)
    return regions


def top_level(regions):
    """The unindented regions: RAM, reserved ranges, PCI windows."""
    return [region for region in regions if region.parent is None]


def system_ram(regions):
    """The outermost System RAM regions at any depth, as walk_system_ram_res() finds them (see above)."""
    return [region for region in regions
            if region.is_system_ram and not any(above.is_system_ram for above in region.ancestors())]


__all__ = ("IOMEM", "Region", "SYSTEM_RAM", "parse", "read", "read_addresses", "system_ram", "top_level")
