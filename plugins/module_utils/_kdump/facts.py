# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kdump facts a person checks first: which capture service, is it running, where do dumps go,
the newest dump, and whether the crash reservation holds the capture kernel.

Private to the kernel.kexec collection; kexec_info returns these as ``kdump``.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._kdump import providers
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.dumps import list_dumps
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.size import capture_check
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.systemd import unit_state

NONE = {"service": None, "provider": None, "config": None, "config_enabled": None, "installed": None,
        "active": None, "enabled": None, "active_state": None, "unit_file_state": None,
        "target": None, "location": None, "path": None, "dumps": None, "newest_dump": None, "capture": None}


def kdump_facts(root, release, reserved):
    """Facts for the capture service configured under ``root``; every value None when there is none.

    ``reserved`` is the crash memory the running kernel holds (bytes). The unit's
    state stays None here: :func:`add_service_state` asks systemd for it.
    """
    provider = providers.detect(root, release)
    facts = dict(NONE)
    if provider is None:
        return facts
    facts.update(service=provider.service, provider=provider.name, config=provider.config)
    facts.update(provider.settings())
    if facts["target"] == "local":
        dumps = list_dumps(root, facts["path"])
        facts.update(dumps=len(dumps), newest_dump=dumps[0] if dumps else None)
    kernel, initrd = provider.capture_files()
    facts["capture"] = capture_check(root, reserved, kernel, initrd)
    return facts


def add_service_state(info, runner):
    """Fill ``info['kdump']`` (kexec_info's facts) with its unit's state, read through ``runner``; returns ``info``.

    Nothing is run when no capture service is configured or there is no runner (no systemd).
    """
    kdump = info.get("kdump") or {}
    if kdump.get("service") and runner is not None:
        state = unit_state(runner, kdump["service"] + ".service")
        if state is not None:
            kdump.update(state)
    return info


__all__ = ("add_service_state", "kdump_facts")
