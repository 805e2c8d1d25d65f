# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target side of kexec_reboot: make sure a kernel is loaded, then start a clean reboot.

Private to the kernel.kexec collection. ``prepare`` decides the method and what
the controller must find after the reboot; ``start_reboot`` forks a detached
child that, after a short delay (so the module's answer gets back over SSH),
runs ``systemctl kexec`` (or ``systemctl reboot`` for the firmware fallback)
where systemd runs, and otherwise syncs and makes the reboot syscall itself.
Nothing skips service shutdown when systemd is there to do it.
"""

from __future__ import annotations

import os
import time

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import syscalls

LOAD_KEYS = ("kernel", "initrd", "cmdline", "append", "remove")
# Seconds the detached child waits before rebooting, so the module's result reaches the controller.
MIN_DELAY = 1


def load_requested(params):
    """True when the task names anything to load (else what is loaded is used)."""
    return any(params.get(key) for key in LOAD_KEYS) or params.get("force")


def has_systemd(root="/"):
    return os.path.isdir(os.path.join(root, "run/systemd/system"))


def prepare(kexec, request, requested, fallback, check_mode):
    """Load if asked (or if nothing is loaded) and say what the reboot will be.

    Returns a dict with ``method`` ('kexec' or 'full'), ``boot_id`` (before),
    ``expected`` (release and cmdline to find afterwards, None where unknown),
    ``loaded`` (the load record) and ``fallback_reason`` when falling back.
    """
    state = kexec.state
    plan = {"boot_id": state.boot_id, "systemd": has_systemd(kexec.root), "changed": True}
    try:
        if requested or not state.kexec_loaded:
            loaded = kexec.ensure_loaded(request, check_mode=check_mode)
            plan["load_changed"] = loaded["changed"]
            record = dict((key, loaded[key]) for key in ("kernel", "kernel_release", "initrd", "cmdline", "method"))
        else:
            record = kexec.current("default")
            plan["load_changed"] = False
    except (KexecUnavailable, SyscallError) as exc:
        if fallback != "full":
            raise
        plan.update(method="full", fallback_reason=exc.msg, loaded=None, expected={"release": None, "cmdline": None})
        return plan
    plan.update(method="kexec", loaded=record,
                expected={"release": record.get("kernel_release"), "cmdline": record.get("cmdline")})
    if record.get("cmdline") is None:
        plan["warning"] = ("a kernel loaded by another tool is used as it is: only the new boot_id "
                           "can be verified, not its release or command line")
    return plan


def unload_for_full_reboot(kexec):
    """A firmware reboot must not turn into a kexec (newer systemd kexecs when an image is loaded)."""
    if kexec.state.kexec_loaded:
        try:
            kexec.ensure_unloaded("default")
        except KexecError:
            pass  # kexec disabled after the load: SYSTEMCTL_SKIP_AUTO_KEXEC still covers systemd


def reboot_command(method, msg):
    command = ["systemctl", "kexec" if method == "kexec" else "reboot", "--no-block"]
    if msg:
        command.append("--message=%s" % msg)
    return command


def start_reboot(method, systemd, delay=0, msg=None, arch=None):
    """Fork a detached child that reboots after ``delay`` seconds; return at once in the parent."""
    if os.fork():
        return
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # the SSH session must not wait for this child
        time.sleep(max(delay, MIN_DELAY))
        if systemd:
            env = dict(os.environ, SYSTEMCTL_SKIP_AUTO_KEXEC="1") if method == "full" else os.environ
            os.execvpe("systemctl", reboot_command(method, msg), env)
        syscalls.reboot(syscalls.LINUX_REBOOT_CMD_KEXEC if method == "kexec" else syscalls.LINUX_REBOOT_CMD_RESTART,
                        arch=arch)
    finally:
        os._exit(1)  # only reached when exec or the syscall failed


__all__ = ("has_systemd", "load_requested", "prepare", "reboot_command", "start_reboot", "unload_for_full_reboot")
