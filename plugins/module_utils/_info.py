# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything kexec_info reports, gathered read-only from one root.

Private to the kernel.kexec collection.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._boot.entry import default_entry
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import current_value
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import host_machine
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState, crash_reserved
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.facts import kdump_facts
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import crash_hotplug, methods
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import current_load
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES


def usable_methods(state, machine):
    """Load methods that can work here now (see _kexec/methods.py)."""
    return methods.usable(state, machine, ARCHES)


def method_reasons(state, machine):
    """Every load method with None where it can work here now, else why not (see _kexec/methods.py)."""
    return methods.assess(state, machine, ARCHES)


def gather(root="/", machine=None):
    """Every fact below ``root`` (the kdump unit's state comes from _kdump.facts.add_service_state).

    Without root most facts are still there (the readers that meet root-only
    files say so in the facts, and ``warnings`` lists what is unknown for that
    reason); a root-only file no reader expected fails with advice instead of a
    traceback.
    """
    try:
        return _gather(root, machine)
    except (PermissionError, Unreadable) as exc:
        path = exc.path if isinstance(exc, Unreadable) else exc.filename
        raise KexecError("kexec_info cannot read %s: only root can; run it with become: true" % path, path=path)


def _gather(root, machine):
    state = KernelState(root)
    machine = host_machine(machine)
    regions = state.crash_regions()
    reserved = crash_reserved(regions, state.kexec_crash_size)
    entry, entry_fact, warnings = _default_entry(root, state.release)
    secure_boot, secure_boot_warnings = _secure_boot(state)
    reasons = method_reasons(state, machine)
    facts = {
        "arch": machine,
        "firmware": state.firmware(machine),
        "secure_boot": secure_boot,
        "kexec_supported": state.kexec_supported,
        "loaded": state.kexec_loaded,
        "crash_loaded": state.kexec_crash_loaded,
        "loaded_image": current_load(root, state, "default"),
        "crash_image": current_load(root, state, "crash"),
        "crash_hotplug": crash_hotplug.fact(root, state),
        "crash_size": state.kexec_crash_size,
        "crash_regions": [region.as_dict() for region in regions],
        "crash_reserved": reserved,
        "lockdown": state.lockdown,
        "load_disabled": state.kexec_load_disabled,
        "load_limits": {"reboot": state.load_limit(False), "panic": state.load_limit(True)},
        "methods": methods.usable_in(reasons),  # from the same assessment: the two never disagree
        "method_reasons": reasons,
        "kernel_release": state.release,
        "cmdline": state.cmdline,
        "boot_id": state.boot_id,
        "default_entry": entry_fact,
        "crashkernel": {
            "active": current_value(state.cmdline),
            "configured": current_value(entry.args or "") if entry else None,
        },
        "kdump": kdump_facts(root, state.release, reserved),
    }
    warnings += secure_boot_warnings
    if warnings:
        facts["warnings"] = warnings
    return facts


def _secure_boot(state):
    """(secure_boot, warnings): a SecureBoot variable that is there but unreadable or malformed is unknown."""
    try:
        return state.secure_boot, []
    except KexecError as exc:
        return None, ["secure_boot is unknown: %s" % exc.msg]


def _default_entry(root, release):
    """(entry or None, its fact, warnings). A boot file that is there but root's alone (grub.cfg is
    0600 on Fedora) leaves the entry unknown, not absent: every key null and ``unreadable`` its path."""
    try:
        entry = default_entry(root, release)
    except Unreadable as exc:
        fact = dict.fromkeys(("kernel", "initrd", "args", "source", "title"))
        fact["unreadable"] = exc.path
        return None, fact, ["default_entry is unknown: %s" % exc.msg]
    return entry, entry.as_dict() if entry else None, []


__all__ = ("gather", "method_reasons", "usable_methods")
