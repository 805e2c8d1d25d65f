# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kdump_reserve's logic: crashkernel= in the bootloader, compared with what the kernel reserved.

Private to the kernel.kexec collection. Plan with the bootloader backend (pure),
apply only outside check mode, then report what is configured, what the running
kernel was booted with and reserved, and whether a reboot is still needed.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.kernel.kexec.plugins.module_utils._boot import detect
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import set_crashkernel
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.auto import auto_size
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import (
    NAME, OFFSET_ALIGN, current_value, reservation, round_system_ram, system_ram_from_iomem, system_ram_spans,
)
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import MIB, _human, format_size, memparse
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import parse
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import host_machine
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState, crash_reserved

CRASH_SIZE = "sys/kernel/kexec_crash_size"

# What the running system must keep once the crash memory is taken, or the value is refused.
# 512 MiB is what Debian's installation guide recommends for a system without a desktop (its
# bare minimum, 256 MiB, assumes swap and the text installer). The distributions' own defaults
# respect it almost everywhere: Fedora/RHEL kdump-utils
# reserve only from 2G of RAM up (256M: 1.75G left; its older tables from 1G: 832M left).
# Debian's kdump-tools '384M-:128M' and Ubuntu's '512M-:192M' start lower and leave 256M and
# 320M on their smallest hosts: on hosts under 640M / 704M we refuse those too (force: true
# writes them anyway), as a host that tight is the one an oversized reservation leaves unbootable.
# CMA crash memory (',cma') is not counted: the running system keeps using it for movable pages.
MIN_LEFT_TO_BOOT = 512 * MIB

# CRASH_ADDR_LOW_MAX on x86_64 (arch/x86/include/asm/crash_reserve.h): the low part of a
# ',high' reservation (reserve_crashkernel_low()) must lie below 4G.
LOW_MAX = {"x86_64": 4 << 30}


def wanted_value(size, arch, system_ram):
    """The crashkernel= value to write, and the explanation for ``auto``."""
    if size == "auto":
        if system_ram is None:
            raise KexecError("size: auto needs the host's RAM from /proc/iomem, which only root can read: "
                             "use become: true, or give size explicitly")
        return auto_size(arch, system_ram)
    return parse(size, arch).format(), None


def ensure_reservation(size="auto", state="present", bootloader_name="auto", kernel=None, shrink_to=None,
                       check_mode=False, root="/", runner=None, machine=None, force=False, backup=False):
    check_strings(size=size, kernel=kernel, shrink_to=shrink_to)
    machine = host_machine(machine)
    kstate = KernelState(root)
    if shrink_to is not None:
        shrink_target(kstate, shrink_to)  # refuse before the bootloader is touched
    regions = kstate.iomem()
    system_ram = system_ram_from_iomem(regions)
    explanation = None
    warnings = []
    value = None
    if state == "present":
        value, explanation = wanted_value(size, machine, system_ram)
        # Before the bootloader is even looked at, in check mode too.
        warnings = check_value(value, machine, regions, force)
    backend = detect.create(bootloader_name, root, runner=runner, kernel=kernel, machine=machine)
    edit = set_crashkernel(value)
    changes = backend.plan_edit(edit)
    regenerate = bool(changes) or backend.needs_regenerate(edit)
    backups = {}
    if regenerate and not check_mode:
        backups = backend.apply(changes, edit, backup=backup)
        warnings += backend.backup_warnings
    backup_files = dict((path, copy) for path, copy in backups.items() if copy)
    configured = current_value(edit(backend.configured_args()) if check_mode else backend.configured_args())
    active = current_value(kstate.cmdline)
    expected = expected_bytes(configured, system_ram, machine)
    result = {
        "changed": regenerate,
        "bootloader": backend.name,
        "crashkernel": configured,
        "active": active,
        "reserved": crash_reserved([r for r in regions if r.name == "Crash kernel"], kstate.kexec_crash_size),
        "expected": expected,
        "system_ram": system_ram,
        "reboot_required": configured != active,
        "changed_files": [change.path for change in changes],
        "backup_files": backup_files,
        "backups": sorted(backup_files.values()),
        "diff": [change.diff(root) for change in changes],
    }
    if explanation:
        result["explanation"] = explanation
    if warnings:
        result["warnings"] = warnings
    if shrink_to is not None:
        result["changed"] |= shrink(kstate, root, shrink_to, check_mode)
        result["reserved"] = crash_reserved(kstate.crash_regions(), kstate.kexec_crash_size)
    return result


def check_strings(**options):
    """No NUL byte in any string option, and an empty ``kernel`` is a mistake, not "every entry".

    A NUL would cut the value where a tool (grubby, zipl) gets it as an argument,
    or fail there with a traceback; ``kernel: ""`` (an unset variable, say) would
    silently widen the edit to every boot entry.
    """
    problems = ["%s holds a NUL byte" % name for name, text in sorted(options.items())
                if isinstance(text, str) and "\0" in text]
    if options.get("kernel") == "":
        problems.append("kernel is an empty string: leave it out to change every boot entry")
    if problems:
        raise KexecError("kdump_reserve options refused (nothing was changed): %s" % "; ".join(problems))


def check_value(value, arch, regions, force=False):
    """Refuse a value that reserves nothing on this host or leaves it too little to boot; warnings when forced.

    The kernel's own reading (kernel.reservation) of ``crashkernel=value`` on the
    RAM of /proc/iomem decides what is reserved. With ``force`` the problem comes
    back as a warning instead of a KexecError. Without root the RAM is unknown:
    only what holds on any host (a lone ',low' or ',cma') is refused then.
    """
    problem, computed = refusal(value, arch, regions)
    if problem is None:
        return []
    if computed is None:
        return [problem]  # not checked at all: a warning, forced or not
    if force:
        return ["force: true writes it anyway: %s" % problem]
    raise KexecError("crashkernel=%s refused, nothing was changed: %s; give another size, or force: true to "
                     "write it anyway" % (value, problem), crashkernel=value, computed=computed)


def refusal(value, arch, regions):
    """(why the kernel would reserve nothing or too much for ``value`` here, or None; what it computes).

    ``computed`` is kernel.reservation()'s dict plus the RAM it was given, None
    when the RAM is unknown. What is modelled is what fails for certain: the
    kernel's parse and size checks, a part larger than any piece of System RAM
    (one memblock allocation cannot span a hole), a fixed @offset outside RAM.
    Memory that early boot already holds (kernel image, initrd, firmware) is not
    known here, so a value that passes can still fail to be reserved. The
    placement rules are those of the generic code (x86_64, arm64, riscv64,
    loongarch64); s390x and powerpc are checked by size and RAM only.
    """
    spans = system_ram_spans(regions)
    system_ram = system_ram_from_iomem(regions)
    if value.endswith((",low", ",cma")):
        # parse_crashkernel() reads ',low' only with a ',high' main part and ',cma' only beside
        # a valid main part: alone, neither is a main size, so the kernel reserves nothing on
        # any host (reservation() says present: False), whatever the RAM.
        computed = reservation(NAME + value, system_ram or 0, arch)
        computed.update(system_ram=system_ram)
        suffix = value[value.rfind(","):]
        reads = ("only as the low part of a ',high' reservation" if suffix == ",low"
                 else "only as CMA memory beside a main reservation")
        return ("'%s' alone reserves nothing: the kernel reads it %s, and this value replaces every other "
                "crashkernel=" % (suffix, reads), computed)
    if spans is None:
        return ("crashkernel=%s was not checked against this host's RAM: /proc/iomem shows its addresses to "
                "root only (use become: true)" % value, None)
    computed = reservation(NAME + value, system_ram, arch)
    computed.update(system_ram=system_ram, compared_ram=round_system_ram(system_ram))
    if computed["error"]:
        return computed["error"], computed
    on_host = "on this host's %s of RAM" % _human(system_ram)
    problem = _no_room(computed, spans, arch)
    if problem:
        return "%s %s, so the kernel's reservation fails" % (problem, on_host), computed
    taken = computed["size"] + computed["low"]
    left = system_ram - taken
    if left < MIN_LEFT_TO_BOOT:
        return ("it reserves %s %s and leaves %s, less than the %s the running system needs to boot"
                % (_human(taken), on_host, _human(max(left, 0)), format_size(MIN_LEFT_TO_BOOT))), computed
    return None, computed


def _fits(size, spans, align, below=None):
    """Whether one piece of ``size`` bytes, ``align``-aligned, fits in a span (and below ``below``)."""
    for start, end in spans:
        top = end + 1 if below is None else min(end + 1, below)
        if -(-start // align) * align + size <= top:
            return True
    return False


def _no_room(computed, spans, arch):
    """Why the memory of a reservation cannot be found in the System RAM ``spans``, or None.

    reserve_crashkernel_generic() (crash_reserve.c) takes the main part in one
    memblock_phys_alloc_range() call aligned to CRASH_ALIGN: at exactly
    [offset, offset + size) when @offset is given ("memory is in use" if not
    free), else anywhere, low first; the low part of ',high' in one more call
    below CRASH_ADDR_LOW_MAX.
    """
    align = OFFSET_ALIGN.get(arch, 1)
    size, offset, low = computed["size"], computed["offset"], computed["low"]
    largest = max(end - start + 1 for start, end in spans)
    if offset:
        if not any(start <= offset and offset + size - 1 <= end for start, end in spans):
            return ("[%#x, %#x) (%s at @%s) is not inside one System RAM range of /proc/iomem"
                    % (offset, offset + size, format_size(size), format_size(offset)))
    elif not _fits(size, spans, align):
        return ("no System RAM range of /proc/iomem holds %s in one piece (the largest is %s)"
                % (format_size(size), _human(largest)))
    if low and not _fits(low, spans, align, LOW_MAX.get(arch)):
        return "no System RAM range of /proc/iomem holds the low part, %s, in one piece" % format_size(low)
    return None


def expected_bytes(configured, system_ram, arch):
    """What the kernel would reserve for ``configured`` here (main and low part), read as the kernel does.

    A configured value may be one the kernel accepts but our strict parser refuses
    (someone else wrote it): the kernel's own reading decides, never an exception.
    """
    if not configured or not system_ram:
        return 0
    reserved = reservation("crashkernel=" + configured, system_ram, arch)
    return reserved["size"] + reserved["low"] if reserved["present"] and not reserved["error"] else 0


def shrink_target(kstate, shrink_to):
    """The byte size to shrink to, checked before anything else is changed."""
    text = str(shrink_to).strip()
    target, end = memparse(text)
    if not text or end != len(text):
        raise KexecError("shrink_to=%r is not a size: give bytes or a size like 128M" % (shrink_to,))
    current = kstate.kexec_crash_size
    if current is None:
        raise KexecError("/%s is missing: this kernel cannot resize the crash region" % CRASH_SIZE)
    if target > current:
        raise KexecError("shrink_to %d is larger than the %d bytes reserved: the region can only shrink at run time"
                         % (target, current))
    if kstate.kexec_crash_loaded:
        raise KexecError("a crash kernel is loaded: unload it first (kernel.kexec.kexec_load type=crash "
                         "state=unloaded), the kernel refuses to resize under it")
    return target


def shrink(kstate, root, shrink_to, check_mode):
    """Give crash memory back at run time; True when it changed (or would)."""
    target = shrink_target(kstate, shrink_to)
    page = os.sysconf("SC_PAGE_SIZE")
    if -(-target // page) * page >= kstate.kexec_crash_size:
        return False
    if not check_mode:
        try:
            with open(os.path.join(root, CRASH_SIZE), "w") as handle:
                handle.write("%d\n" % target)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise KexecError("the kernel refused to resize the crash region (a crash kernel is loaded)")
            raise KexecError("writing /%s failed: %s" % (CRASH_SIZE, exc))
    return True


__all__ = ("MIN_LEFT_TO_BOOT", "check_strings", "check_value", "ensure_reservation", "expected_bytes", "refusal", "shrink",
           "shrink_target", "wanted_value")
