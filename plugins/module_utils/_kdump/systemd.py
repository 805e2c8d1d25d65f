# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A systemd unit's state, read through a command runner the caller passes.

Private to the kernel.kexec collection. The runner takes an argv list and
returns ``(rc, stdout, stderr)``: modules pass ``module.run_command``, unit
tests a fake. Nothing here starts a process of its own.
"""

from __future__ import annotations

ENABLED = ("enabled", "enabled-runtime")
PROPERTIES = ("LoadState", "ActiveState", "UnitFileState")


def unit_state(runner, unit):
    """{'installed', 'active', 'enabled', 'active_state', 'unit_file_state'} of ``unit``.

    None without a runner, or when systemctl fails (no systemd running).
    """
    if runner is None:
        return None
    rc, out, _err = runner(["systemctl", "show", "--property=" + ",".join(PROPERTIES), "--", unit])
    if rc != 0:
        return None
    props = {}
    for line in out.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            props[name.strip()] = value.strip()
    active_state = props.get("ActiveState") or None
    unit_file_state = props.get("UnitFileState") or None
    return {"installed": props.get("LoadState") not in (None, "", "not-found"),
            "active": active_state == "active",
            "enabled": unit_file_state in ENABLED,
            "active_state": active_state,
            "unit_file_state": unit_file_state}


__all__ = ("unit_state",)
