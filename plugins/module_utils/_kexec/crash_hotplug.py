# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash images that stay right when CPUs or memory are added or removed after the load.

Private to the kernel.kexec collection. Host state, read-only.

A crash image's ELF core header lists the CPUs' notes and the System RAM to
dump as they were at load time. What the kernel does about later changes
(read in the kernel sources, Linux 6.1 to 6.12):

* Linux 6.6 brought ``CONFIG_CRASH_HOTPLUG`` (kernel/crash_core.c
  ``crash_handle_hotplug_event``): on every CPU online/offline and memory
  online/offline it rebuilds the header of a loaded crash image and writes it
  over the old one, on x86 with the kernel's own builder
  (arch/x86/kernel/crash.c ``arch_crash_handle_hotplug_event``: a PT_NOTE per
  possible CPU, vmcoreinfo, kernel text, System RAM outside the low 1 MiB and
  the crash regions). It then creates ``/sys/devices/system/cpu/crash_hotplug``,
  ``/sys/devices/system/memory/crash_hotplug`` (drivers/base/cpu.c, memory.c)
  and ``/sys/kernel/crash_elfcorehdr_size`` (kernel/ksysfs.c); kernels before
  6.6, Debian 12's 6.1 among them, have none of the three and update nothing.
* The ``crash_hotplug`` files say whether the crash image *loaded now* is kept
  current: 0 with none loaded (6.6 to 6.9 ``crash_check_update_elfcorehdr``,
  6.10 on ``crash_check_hotplug_support``). Their presence is the capability.
  The cpu file was root's alone (0400) before it became 0444.
* kexec_file_load needs nothing: its crash images are always kept current
  (``image->file_mode``; 6.10 on ``arch_crash_hotplug_support`` returns 1 for
  them), and its header segment is sized for the most CPUs and memory ranges
  (``crash_load_segments``). No ``KEXEC_FILE_*`` flag is about hotplug (6.12
  accepts UNLOAD, ON_CRASH, NO_INITRAMFS and DEBUG).
* kexec_load images are kept current only when asked: flag
  ``KEXEC_UPDATE_ELFCOREHDR`` (0x4, Linux 6.6) or ``KEXEC_CRASH_HOTPLUG_SUPPORT``
  (0x8, Linux 6.10, added for powerpc); x86 takes either (6.10 on) or 0x4 alone
  (6.6 to 6.9). A flag outside ``KEXEC_FLAGS`` is EINVAL (kernel/kexec.c
  ``kexec_load_check``), so 0x4 is passed, and only where
  ``/sys/kernel/crash_elfcorehdr_size`` shows the series that defined it. The
  asking promises the header segment may change (no purgatory digest covers
  it: the legacy loader has no purgatory) and has room to grow.
* The kernel finds that segment at the first hotplug event by the ELF magic at
  the start of each segment's first page (the last segment that has it; here
  only the header does) and refuses to write more than the segment's
  ``memsz``. ``crash_elfcorehdr_size`` is the program headers' bytes for
  ``NR_CPUS_DEFAULT`` CPUs, vmcoreinfo, kernel text and, with memory hotplug,
  ``CRASH_MAX_MEMORY_RANGES`` ranges (Debian 13's 6.12: 8192 + 2 + 8192, 917616
  bytes); the ELF header comes on top, and without memory hotplug so do the
  present ranges, so the legacy loader gives it the header it built plus that
  size.

Where the kernel does not keep the image current, the load record says what
its header was built from (:func:`header_inputs`: the CPUs with crash notes
and the System RAM ranges), and a rerun of kexec_load that finds them changed
loads again (:func:`stale`).
"""

from __future__ import annotations

import hashlib
import os
import re

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import iomem
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular

CPU_FILE = "sys/devices/system/cpu/crash_hotplug"
MEMORY_FILE = "sys/devices/system/memory/crash_hotplug"
SIZE_FILE = "sys/kernel/crash_elfcorehdr_size"
CPU_DIR = "sys/devices/system/cpu"
KEXEC_UPDATE_ELFCOREHDR = 0x4  # include/uapi/linux/kexec.h, Linux 6.6
KERNEL = "kernel"  # the kernel rewrites the loaded crash image's header on CPU and memory hotplug
RELOAD = "reload"  # it does not: kexec_load loads again when the CPUs or the System RAM changed
UNSUPPORTED = "unsupported"  # the kernel cannot load a crash kernel at all


def _text(root, path):
    """The stripped text of ``root/path``; None where it is missing or cannot be read."""
    try:
        raw = read_regular(os.path.join(root, path), "/" + path, missing=None)
    except KexecError:
        return None
    return None if raw is None else raw.decode("ascii", "replace").strip()


def kernel_updates(root):
    """Whether the running kernel has CONFIG_CRASH_HOTPLUG (its sysfs files exist)."""
    return os.path.lexists(os.path.join(root, SIZE_FILE)) and any(
        os.path.lexists(os.path.join(root, path)) for path in (CPU_FILE, MEMORY_FILE))


def loaded_image_updated(root):
    """What the kernel says of the crash image loaded now: True (kept current), False, or None (no answer)."""
    for path in (CPU_FILE, MEMORY_FILE):
        text = _text(root, path)
        if text in ("0", "1"):
            return text == "1"
    return None


def elfcorehdr_size(root):
    """``/sys/kernel/crash_elfcorehdr_size`` in bytes; None where the kernel has no crash hotplug."""
    raw = read_regular(os.path.join(root, SIZE_FILE), "/" + SIZE_FILE, missing=None)
    if raw is None:
        return None
    text = raw.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise KexecError("/%s is %r, not a number of bytes: cannot size the ELF core header for crash hotplug"
                         % (SIZE_FILE, text))
    return int(text)


def crash_cpus(root):
    """The CPUs the kernel has crash notes for (``cpuN/crash_notes``), in order: the present ones."""
    try:
        names = os.listdir(os.path.join(root, CPU_DIR))
    except FileNotFoundError:
        return []
    cpus = sorted(int(match.group(1)) for match in (re.match(r"cpu(\d+)$", name) for name in names) if match)
    return [cpu for cpu in cpus if os.path.lexists(os.path.join(root, CPU_DIR, "cpu%d" % cpu, "crash_notes"))]


def cpu_list(cpus):
    """[0, 1, 2, 5] as the kernel's cpulist format: '0-2,5'."""
    parts, start = [], None
    for index, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if index + 1 == len(cpus) or cpus[index + 1] != cpu + 1:
            parts.append("%d" % cpu if start == cpu else "%d-%d" % (start, cpu))
            start = None
    return ",".join(parts)


def system_ram(root):
    """(start, end inclusive) of the System RAM a crash header describes: iomem.system_ram, the kernel's rule."""
    regions = iomem.read_addresses(root, "a crash load")
    return [(region.start, region.end) for region in iomem.system_ram(regions)]


def header_inputs(cpus, ram):
    """What a crash header is built from, as the record keeps it: ``cpus`` (numbers) and ``ram`` (ranges)."""
    inputs = {"cpus": cpu_list(cpus), "ram_ranges": None, "ram_bytes": None, "ram_sha256": None}
    if ram is not None:
        text = "".join("%x-%x\n" % span for span in ram)
        inputs.update(ram_ranges=len(ram), ram_bytes=sum(end - start + 1 for start, end in ram),
                      ram_sha256=hashlib.sha256(text.encode("ascii")).hexdigest())
    return inputs


def current_inputs(root):
    """header_inputs of the host now; the RAM unknown (None) where /proc/iomem gives no addresses."""
    try:
        ram = system_ram(root)
    except KexecError:
        ram = None
    return header_inputs(crash_cpus(root), ram)


def record_fields(root, inputs, asked, loaded=True):
    """The record's ``crash_hotplug`` and ``crash_header`` for a crash image whose header came from ``inputs``.

    ``asked``: the load asked the kernel to keep the header current (kexec_file_load always does, kexec_load
    with KEXEC_UPDATE_ELFCOREHDR). After the load (``loaded``) the kernel's answer for the image decides;
    before it (check mode), whether this kernel can.
    """
    updated = loaded_image_updated(root) if loaded else None
    if updated is None:
        updated = asked and kernel_updates(root)
    if updated:
        return {"crash_hotplug": KERNEL}
    return {"crash_hotplug": RELOAD, "crash_header": inputs}


def describe(inputs):
    """What a record's ``crash_header`` describes, in words."""
    ram = ("System RAM unknown" if inputs.get("ram_bytes") is None else
           "%d MiB of System RAM in %d ranges" % (inputs["ram_bytes"] >> 20, inputs["ram_ranges"]))
    return "CPUs %s and %s" % (inputs.get("cpus") or "(none)", ram)


def stale(root, record):
    """Why the crash image ``record`` describes must be loaded again, or None while it is right.

    Right: the kernel keeps it current, or the CPUs and System RAM are those its header was built from.
    """
    if not record or "kernel_sha256" not in record or loaded_image_updated(root):
        return None
    before = record.get("crash_header")
    if record.get("crash_hotplug") == KERNEL and before is None:
        return None
    if before is None:
        return ("the crash image's record does not say which CPUs and memory its ELF core header describes "
                "(loaded by an older kernel.kexec): loading it again")
    now = current_inputs(root)
    if now == before:
        return None
    return ("the CPUs or the memory changed since the crash image was loaded and the kernel does not keep its "
            "ELF core header current (no crash hotplug): it describes %s, the host has %s; loading it again"
            % (describe(before), describe(now)))


def fact(root, state):
    """kexec_info's ``crash_hotplug``: KERNEL, RELOAD, UNSUPPORTED, or None (a crash image is loaded and the
    kernel's answer for it cannot be read)."""
    if not os.path.lexists(os.path.join(root, "sys/kernel/kexec_crash_loaded")):
        return UNSUPPORTED
    if not state.kexec_crash_loaded:
        return KERNEL if kernel_updates(root) else RELOAD
    if not kernel_updates(root):
        return RELOAD
    updated = loaded_image_updated(root)
    return None if updated is None else (KERNEL if updated else RELOAD)


__all__ = ("KERNEL", "KEXEC_UPDATE_ELFCOREHDR", "RELOAD", "UNSUPPORTED", "cpu_list", "crash_cpus",
           "current_inputs", "describe", "elfcorehdr_size", "fact", "header_inputs", "kernel_updates",
           "loaded_image_updated", "record_fields", "stale", "system_ram")
