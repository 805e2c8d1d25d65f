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
    current_value, reservation, system_ram_from_iomem,
)
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.memparse import memparse
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import parse
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import host_machine
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState, crash_reserved

CRASH_SIZE = "sys/kernel/kexec_crash_size"


def wanted_value(size, arch, system_ram):
    """The crashkernel= value to write, and the explanation for ``auto``."""
    if size == "auto":
        if system_ram is None:
            raise KexecError("size: auto needs the host's RAM from /proc/iomem, which only root can read: "
                             "use become: true, or give size explicitly")
        return auto_size(arch, system_ram)
    return parse(size, arch).format(), None


def ensure_reservation(size="auto", state="present", bootloader_name="auto", kernel=None, shrink_to=None,
                       check_mode=False, root="/", runner=None, machine=None):
    machine = host_machine(machine)
    kstate = KernelState(root)
    if shrink_to is not None:
        shrink_target(kstate, shrink_to)  # refuse before the bootloader is touched
    regions = kstate.iomem()
    system_ram = system_ram_from_iomem(regions)
    backend = detect.create(bootloader_name, root, runner=runner, kernel=kernel, machine=machine)
    explanation = None
    if state == "present":
        value, explanation = wanted_value(size, machine, system_ram)
    else:
        value = None
    edit = set_crashkernel(value)
    changes = backend.plan_edit(edit)
    regenerate = bool(changes) or backend.needs_regenerate(edit)
    backups = {}
    if regenerate and not check_mode:
        backups = backend.apply(changes, edit)
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
        "backups": sorted(path for path in backups.values() if path),
        "diff": [change.diff(root) for change in changes],
    }
    if explanation:
        result["explanation"] = explanation
    if shrink_to is not None:
        result["changed"] |= shrink(kstate, root, shrink_to, check_mode)
        result["reserved"] = crash_reserved(kstate.crash_regions(), kstate.kexec_crash_size)
    return result


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


__all__ = ("ensure_reservation", "expected_bytes", "shrink", "shrink_target", "wanted_value")
