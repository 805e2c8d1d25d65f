# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the old boot says while kexec_reboot waits for it to go: has the reboot started?

Private to the kernel.kexec collection (controller side: the kexec_reboot action).

A reboot may start late for good reasons, and systemd calls the host
"running" meanwhile: ``systemctl kexec`` passes through logind, which first
waits for delay inhibitors (kubelet's graceful node shutdown holds one for
minutes, up to ``InhibitDelayMaxUSec``) with ``PreparingForShutdown`` true.
So one remote command reads, besides the boot's identity, every sign there
is: systemd's system state, the queued jobs, logind's properties by
``busctl get-property`` (its output is a type letter and a value: ``b true``,
``t 5000000``, ``s "shutdown:sleep"``) and the status file the reboot's child
writes (waiting, then the command it ran with its exit status and stderr).
Only a host that says plainly that no shutdown is under way counts as "the
reboot did not start": systemd ``running``, ``degraded`` or ``maintenance``
(``starting`` and ``initializing`` say nothing either way), no shutdown job,
logind not preparing for shutdown.
"""

from __future__ import annotations

import json

# systemd states that say no shutdown is under way.
NOT_STOPPING = frozenset(("running", "degraded", "maintenance"))
# Units whose job in the queue means a shutdown has begun.
SHUTDOWN_UNITS = frozenset(("shutdown.target", "final.target", "umount.target", "kexec.target", "reboot.target",
                            "poweroff.target", "halt.target", "systemd-kexec.service", "systemd-reboot.service",
                            "systemd-poweroff.service", "systemd-halt.service"))
LOGIND_PROPERTIES = ("PreparingForShutdown", "DelayInhibited", "InhibitDelayMaxUSec")


def command(state_command, status_file):
    """``state_command`` (boot_id, release, cmdline), then one ``NAME: value`` line per sign of a shutdown.

    Each sign is read on its own: a host without systemd, logind or the status file leaves that line empty.
    printf, not echo: dash's echo would turn the status file's JSON escapes (``\\n``) into line breaks."""
    line = "printf '%s\\n' "
    logind = "busctl --timeout=3 get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager"
    return "".join((
        state_command, " && {",
        " ", line, "\"system: $(systemctl is-system-running 2>/dev/null)\";",
        " ", line, "\"jobs: $(systemctl list-jobs --no-legend 2>/dev/null | awk '{print $2}' | tr '\\n' ' ')\";",
        " for name in ", " ".join(LOGIND_PROPERTIES), "; do ", line, "\"$name: $(", logind, " $name 2>/dev/null)\"; done;",
        " ", line, "\"status: $(cat ", status_file, " 2>/dev/null)\"; }"))


def busctl_value(text):
    """The value of one ``busctl get-property`` answer: ``b true`` -> True, ``t 5000000`` -> 5000000,
    ``s "shutdown:sleep"`` -> 'shutdown:sleep'; None for anything else (no logind, an error message)."""
    kind, _sep, value = (text or "").strip().partition(" ")
    value = value.strip()
    if kind == "b" and value in ("true", "false"):
        return value == "true"
    if kind in ("t", "u") and value.isdigit():
        return int(value)
    if kind == "s" and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return None


def _json_object(text):
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class OldBoot:
    """The signs of a shutdown one read of the old boot found (the lines after the first three)."""

    def __init__(self, lines):
        fields = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip()] = value.strip()
        self.system = fields.get("system") or None
        self.jobs = [unit for unit in fields.get("jobs", "").split() if unit in SHUTDOWN_UNITS]
        self.preparing = busctl_value(fields.get("PreparingForShutdown")) is True
        self.delay_inhibited = busctl_value(fields.get("DelayInhibited")) or None
        max_delay = busctl_value(fields.get("InhibitDelayMaxUSec"))
        self.inhibit_delay_max = max_delay / 1e6 if isinstance(max_delay, int) and not isinstance(max_delay, bool) else 0.0
        self.status = _json_object(fields.get("status") or "")

    def shows_no_shutdown(self):
        """True only when the host says plainly that no shutdown is under way."""
        return self.system in NOT_STOPPING and not self.jobs and not self.preparing

    def summary(self):
        """What this read found, in words."""
        parts = ["systemd: %s" % (self.system or "unknown")]
        if self.jobs:
            parts.append("shutdown jobs queued: %s" % " ".join(self.jobs))
        if self.preparing:
            parts.append("logind is preparing for shutdown")
        if self.delay_inhibited:
            parts.append("delay inhibitors on %s (logind waits up to %g s)"
                         % (self.delay_inhibited, self.inhibit_delay_max))
        parts.append(describe_status(self.status))
        return "; ".join(parts)


def describe_status(status):
    """The reboot child's status file, in words."""
    if status is None:
        return "no status from the reboot's child"
    command_run = status.get("command") or "the reboot command"
    state = status.get("state")
    if state == "waiting":
        return "the reboot's child was waiting to run %s (%s)" % (command_run, status.get("session") or "")
    if state == "running":
        return "the reboot's child ran %s, which has not returned" % command_run
    if state == "failed":
        return "the reboot's child could not run %s: %s" % (command_run, status.get("error"))
    if state == "issued" and "rc" in status:
        stderr = (status.get("stderr") or "").strip()
        return "the reboot's child ran %s, which exited %s%s" % (command_run, status["rc"], ": " + stderr if stderr else "")
    if state == "issued":
        return "the reboot's child ran %s" % command_run
    return "the reboot's child wrote %s" % json.dumps(status, sort_keys=True)


__all__ = ("LOGIND_PROPERTIES", "NOT_STOPPING", "OldBoot", "SHUTDOWN_UNITS", "busctl_value", "command",
           "describe_status")
