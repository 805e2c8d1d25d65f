# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target side of kexec_reboot: make sure a kernel is loaded, then start a clean reboot.

Private to the kernel.kexec collection. ``prepare`` decides the method and what
the controller must find after the reboot; ``start_reboot`` forks a detached
child that waits until the module's process has exited (its answer is then
on its way back over SSH: no blind delay), removes the module's remote tmp
dir when asked to (so the controller sends nothing more to a host that is
going down, as async_wrapper does), and reboots through the host's init system
(init_systems.py: ``systemctl kexec`` where systemd runs). Only where the user
allowed an unclean reboot does it sync and make the reboot syscall itself.

Where systemd runs, the child is moved out of the SSH login session into a
transient scope of its own before the module answers: logind's
KillUserProcesses=yes would otherwise end it with the session, before it
reboots anything. The child writes its progress to a status file under /run
(waiting, then the command it issued with its exit status and stderr), which
the controller reads while the old boot still answers.

``method: auto`` means something else here than for kexec_load: a reboot is
where the legacy loader pays off (no purgatory, so no sha256 pass over every
segment between the old kernel's end and the new one's start, which takes tens
of seconds under emulation and grows with the initrd on hardware), so
kexec_reboot loads by ``legacy`` wherever that is allowed and loses nothing:
x86_64, kexec_load not disabled, no lockdown, and a BIOS host (on EFI hosts the
legacy load hands EFI runtime services on only where the running kernel's
runtime map allows it, so there ``file`` stays the choice). A legacy load the host refuses is retried by ``auto`` (the file
syscall); the result's ``method_reason`` says which loaded and why.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import shutil
import signal
import time

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular, write_atomic
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import init_systems, syscalls
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.methods import usable

LOAD_KEYS = ("kernel", "initrd", "cmdline", "append", "remove")
# The detached child reboots this many seconds after the module's process has exited: by then sshd
# holds the whole answer, and systemd stops sshd's sessions a good while after the reboot job starts.
SETTLE_DELAY = 0.2
# The module's process exits right after printing its answer; the child never waits longer than this.
PARENT_EXIT_TIMEOUT = 10
# World-readable: the controller reads the status without become, as it reads boot_id, while the host goes down.
STATUS_DIR = "run/kernel-kexec-reboot"
STDERR_KEPT = 2000  # characters of the reboot command's stderr the status file keeps
# Moving the child into its scope happens when systemd runs the start job: poll its cgroup this often, this long.
SCOPE_POLL_INTERVAL = 0.02
SCOPE_POLLS = 250

# What a load syscall returns when this host cannot kexec (not: this image or command line is wrong).
# EPERM: kexec_load_disabled, lockdown or the load limit (root is checked before); EACCES: an IMA
# policy; ENOSYS, EOPNOTSUPP: no support; the rest: a signature policy refused the kernel (the kernel
# checks signatures only where a policy enforces them). Every other errno (EINVAL, ENOEXEC, EBADF,
# ENOMEM, EBUSY, ...) is an error that reboots nothing, whatever fallback says.
HOST_REFUSALS = frozenset((errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EOPNOTSUPP, errno.EKEYREJECTED,
                           errno.ENOKEY, errno.ENODATA, errno.ENOPKG, errno.EBADMSG, errno.EMSGSIZE))

# The argument that proves a new boot came from the image kexec_reboot loaded. init/main.c
# unknown_bootoption() takes a parameter with a '.' in its name for a module parameter: it is kept
# in /proc/cmdline but neither handed to init nor put in its environment, and no module is named
# kexec_reboot.
NONCE_NAME = "kexec_reboot.boot"
NONCE_FORM = re.compile(r"^[0-9a-f]{16,64}$")


def load_requested(params):
    """True when the task names anything to load (else what is loaded is used).

    A value that is set counts, even empty: ``cmdline: ""`` asks for an empty command line, and an
    empty kernel or initrd is an error LoadRequest reports rather than "not set"."""
    return (any(params.get(key) is not None for key in ("kernel", "initrd", "cmdline"))
            or any(params.get(key) for key in ("append", "remove")) or bool(params.get("force")))


def nonce_argument(nonce):
    return "%s=%s" % (NONCE_NAME, nonce)


def check_nonce(nonce):
    """The action plugin's nonce goes onto a command line: hex digits only."""
    if nonce is not None and not NONCE_FORM.match(nonce):
        raise KexecError("nonce %r is not 16 to 64 lower-case hex digits (the action plugin sets it; "
                         "do not set it in a task)" % (nonce,))


def host_cannot_kexec(exc):
    """True for the refusals ``fallback: full`` turns into a firmware reboot."""
    if isinstance(exc, SyscallError):
        return exc.errno in HOST_REFUSALS
    return isinstance(exc, KexecUnavailable)


def reboot_method(kexec):
    """(method, why) for kexec_reboot's ``method: auto`` on this host: see the module docstring."""
    if "legacy" not in usable(kexec.state, kexec.arch.name, syscalls.ARCHES):
        return "auto", None
    if kexec.state.efi:
        return "auto", None
    return "legacy", ("kexec_reboot loads by kexec_load on this BIOS x86_64 host (method auto): the new kernel "
                      "starts without purgatory's digest pass over every segment")


def load_for_reboot(kexec, request, check_mode):
    """ensure_loaded, with kexec_reboot's method policy for ``auto``.

    The methods are tried in turn, each with the reason to give when it loads; the next one only
    when the host refused the one before. Where reboot_method picks legacy, ``auto`` (the file
    syscall) comes after it; a refusal of the image or command line is no reason to try again.
    """
    attempts = [(request.method, None)]
    if request.method == "auto":
        chosen, why = reboot_method(kexec)
        if chosen == "legacy":
            attempts = [("legacy", why), ("auto", None)]
    refused = None
    while True:
        request.method, reason = attempts.pop(0)
        try:
            loaded = kexec.ensure_loaded(request, check_mode=check_mode)
            break
        except SyscallError as exc:
            if not attempts or exc.errno not in HOST_REFUSALS:
                raise  # the image or command line is wrong: the file syscall would refuse it as well
            refused = exc
    if refused is not None:
        loaded["method_reason"] = "%s (kexec_load was refused: %s)" % (loaded.get("method_reason"), refused.msg)
    elif reason and loaded.get("changed"):
        loaded["method_reason"] = reason
    return loaded


def prepare(kexec, request, requested, fallback, check_mode, nonce=None, init=None, allow_unclean=False):
    """Load if asked (or if nothing is loaded) and say what the reboot will be.

    ``init`` is the host's init_systems.InitSystem (detected below kexec.root when not given). Where it
    cannot kexec cleanly, nothing is loaded: without ``allow_unclean`` the answer is a firmware reboot
    through it (``fallback: full``) or an error.

    Returns a dict with ``method`` ('kexec' or 'full'), ``boot_id`` (before),
    ``expected`` (release and cmdline to find afterwards, None where unknown,
    and ``nonce`` when the image loaded here carries ``nonce``),
    ``loaded`` (the load record) and ``fallback_reason`` when falling back.
    """
    state = kexec.state
    plan = {"boot_id": state.boot_id, "changed": True}
    init = init or init_systems.detect(kexec.root)
    if init.kexec is None and not allow_unclean:
        if fallback != "full" or init.reboot is None:
            raise init_systems.unclean_refusal(init, "kexec reboot")
        plan.update(method="full", fallback_reason="no clean kexec through this host's init system: %s"
                    % init.no_kexec, loaded=None, expected={"release": None, "cmdline": None})
        return plan
    carries = None
    try:
        if requested or not state.kexec_loaded:
            if nonce:  # first of the appended arguments: the user's own stay last, as they wrote them
                request.append.insert(0, nonce_argument(nonce))
                carries = nonce
            loaded = load_for_reboot(kexec, request, check_mode)
            plan["load_changed"] = loaded["changed"]
            plan["method_reason"] = loaded.get("method_reason")
            record = dict((key, loaded[key]) for key in ("kernel", "kernel_release", "initrd", "cmdline", "method"))
        else:
            record = kexec.current("default")
            plan["load_changed"] = False
    except KexecError as exc:
        if fallback != "full" or not host_cannot_kexec(exc):
            raise
        plan.update(method="full", fallback_reason=exc.msg, loaded=None, expected={"release": None, "cmdline": None})
        return plan
    plan.update(method="kexec", loaded=record,
                expected={"release": record.get("kernel_release"), "cmdline": record.get("cmdline")})
    if carries:
        plan["expected"]["nonce"] = carries
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


def status_path(root, run_id):
    """The reboot's status file for the run ``run_id`` (the action plugin's nonce)."""
    return os.path.join(root, STATUS_DIR, "%s.status" % run_id)


def session_unit(run_id):
    return "kexec-reboot-%s.scope" % run_id


def record_progress(path, state, **details):
    """Write the reboot's progress for the controller to read; a failure to write never stops the reboot."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        write_atomic(path, json.dumps(dict(details, state=state), sort_keys=True) + "\n", mode=0o644)
    except (OSError, KexecError):
        pass


def logind_runs(root="/"):
    """logind makes /run/systemd/seats when it starts (sd-login's own test for a running logind)."""
    return os.path.isdir(os.path.join(root, "run/systemd/seats"))


def _in_unit(pid, unit, root):
    try:
        cgroup = read_regular(os.path.join(root, "proc/%d/cgroup" % pid), "cgroup of the reboot's process")
    except (KexecError, OSError):
        return False
    return ("/" + unit).encode() in cgroup


def leave_session(runner, pid, unit, root="/"):
    """Move process ``pid`` out of the SSH login session into the transient scope ``unit``, as
    ``systemd-run --scope`` places a command, so that logind's KillUserProcesses=yes cannot end it
    with the session. Returns what happened, in words; KexecError where it stays in a session logind
    may end. ``runner(argv, env=None)`` returns (rc, stdout, stderr) and raises where argv cannot run."""
    rc, _out, err = runner(["busctl", "--timeout=10", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                            "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail",
                            "3", "PIDs", "au", "1", str(pid), "DefaultDependencies", "b", "false",
                            "CollectMode", "s", "inactive-or-failed", "0"])
    if rc == 0:
        for _poll in range(SCOPE_POLLS):
            if _in_unit(pid, unit, root):
                return "moved out of the login session into %s" % unit
            time.sleep(SCOPE_POLL_INTERVAL)
        problem = "the process did not appear in %s within %.0f s" % (unit, SCOPE_POLLS * SCOPE_POLL_INTERVAL)
    else:
        problem = "busctl StartTransientUnit failed (rc=%s): %s" % (rc, (err or "").strip())
    if not logind_runs(root):
        return "left in the login session (%s), which no logind runs to end" % problem
    raise KexecError("the reboot could not be moved out of the SSH login session: %s. logind ends a session's "
                     "processes with it where KillUserProcesses=yes, so the reboot would not survive the "
                     "connection's end; nothing was rebooted (an image loaded for it stays loaded)" % problem)


def start_reboot(order, status, delay=0, runner=None, unit=None, root="/", arch=None, remove_dir=None):
    """Fork a detached child that reboots by ``order`` (init_systems.RebootOrder) once this process has
    exited; return at once in the parent.

    The child learns of the exit from a pipe: this process holds its write end until it exits, so the
    child's read end then sees end-of-file. It then removes ``remove_dir`` (the module's remote tmp
    dir, where the controller asked for its removal) and reboots ``delay`` seconds later, at least
    SETTLE_DELAY. With ``unit``, the parent first moves the child out of the login session
    (leave_session). ``runner`` runs both that and the reboot command; ``status`` is the status file's path.
    """
    exit_seen, held_until_exit = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(exit_seen)
        os.close(held_until_exit)
        raise
    if pid:
        os.close(exit_seen)
        try:
            session = leave_session(runner, pid, unit, root) if unit else "no systemd: left in the login session"
        except KexecError:
            os.kill(pid, signal.SIGKILL)  # it would reboot once this process exits
            os.waitpid(pid, 0)
            raise
        record_progress(status, "waiting", command=str(order), delay=delay, session=session)
        return
    code = 1  # the exit status when anything below raises
    try:
        os.close(held_until_exit)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # the SSH session must not wait for this child
        select.select([exit_seen], [], [], PARENT_EXIT_TIMEOUT)  # readable (end-of-file) once the module exited
        if remove_dir:
            shutil.rmtree(remove_dir, ignore_errors=True)
        time.sleep(max(delay, SETTLE_DELAY))
        code = 0 if issue(order, status, runner, arch) else 1
    finally:
        os._exit(code)  # never back into the module's code


def issue(order, status, runner, arch=None):
    """Run the reboot command (or, for an unclean order, sync and the reboot syscall); record what it said.

    True when the init system took the request (the syscall, when it works, never returns). "running" is
    recorded first, so a command that never returns (an init system that no longer listens) shows as such."""
    if not order.clean:
        record_progress(status, "issued", command=str(order))
        try:
            syscalls.reboot(order.syscall, arch=arch)
        except KexecError as exc:
            record_progress(status, "failed", command=str(order), error=exc.msg)
        return False
    record_progress(status, "running", command=str(order))
    try:
        rc, _out, err = runner(order.argv, order.env)
    except Exception as exc:  # pylint: disable=broad-except  # it cannot run: say why, whatever it was
        record_progress(status, "failed", command=str(order), error=str(exc))
        return False
    record_progress(status, "issued", command=str(order), rc=rc, stderr=(err or "")[-STDERR_KEPT:])
    return rc == 0


__all__ = ("HOST_REFUSALS", "NONCE_NAME", "STATUS_DIR", "check_nonce", "host_cannot_kexec", "issue", "leave_session",
           "load_for_reboot", "load_requested", "logind_runs", "nonce_argument", "prepare", "reboot_method",
           "record_progress", "session_unit", "start_reboot", "status_path", "unload_for_full_reboot")
