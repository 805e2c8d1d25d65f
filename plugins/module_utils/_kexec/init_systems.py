# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which init system runs the host, and how a reboot goes through it cleanly.

Private to the kernel.kexec collection. A clean reboot stops the services and
unmounts (or remounts read-only) the file systems before the kernel switches;
the reboot syscall alone does neither. Each init system boots an image loaded
beforehand in its own way, where it can at all:

- systemd: ``systemctl kexec`` (``systemctl reboot`` for a firmware reboot);
- OpenRC's own init (openrc-init, which makes the FIFO ``/run/openrc/init.ctl``):
  ``openrc-shutdown --kexec now`` runs the reboot runlevel, then reboot(2) with
  LINUX_REBOOT_CMD_KEXEC (``--reboot`` for a firmware reboot);
- runit on Void: stage 3 (``runit-init 6``) stops the services, unmounts, and its
  ``/etc/runit/shutdown.d/90-kexec.sh`` runs ``kexec -e`` where kexec-tools'
  ``kexec`` is installed; otherwise it reboots through firmware;
- sysvinit (OpenRC on sysvinit too): runlevel 6 (``telinit 6``) reboots through
  firmware, unless Debian's kexec-tools put its ``kexec`` stop script into
  runlevel 6 (``/etc/rc6.d/K..kexec``), which runs ``/sbin/kexec -e`` after the
  root file system was remounted read-only whenever an image is loaded;
- busybox init: ``reboot`` runs its shutdown actions, then reboots through
  firmware; it has no kexec.

Where none of these applies, only the reboot syscall is left, and the user
must allow it (``allow_unclean_reboot``).
"""

from __future__ import annotations

import glob
import os
import stat

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import syscalls

PROGRAM_DIRS = ("usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin")


class InitSystem:
    """An init system and the argv lists that reboot through it: ``kexec`` into the loaded image,
    ``reboot`` through firmware; None where it has no such way, and ``no_kexec`` then says why."""

    def __init__(self, name, kexec=None, reboot=None, no_kexec=None):
        self.name = name
        self.kexec = kexec
        self.reboot = reboot
        self.no_kexec = no_kexec


class RebootOrder:
    """What the reboot's child runs: ``argv`` through the init system (with ``env`` added), or, where
    argv is None, sync and reboot(2) with ``syscall`` at once."""

    def __init__(self, argv=None, env=None, syscall=None):
        self.argv = argv
        self.env = env or {}
        self.syscall = syscall

    @property
    def clean(self):
        return self.argv is not None

    def __str__(self):
        if self.clean:
            return " ".join(self.argv)
        return "sync, then the reboot syscall at once (unclean: no service stopped, no file system unmounted)"


def find_program(root, name):
    """The absolute path of the executable ``name`` in the usual directories below ``root``, or None."""
    for directory in PROGRAM_DIRS:
        path = os.path.join(root, directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return "/%s/%s" % (directory, name)
    return None


def _read_pid1(root, entry):
    """/proc/1/comm (text) or the name /proc/1/exe points to; None when unreadable (exe needs root)."""
    path = os.path.join(root, "proc/1", entry)
    try:
        if entry == "exe":
            return os.path.basename(os.readlink(path))
        return read_regular(path, "PID 1's name").decode("utf-8", "replace").strip()
    except (KexecError, OSError):
        return None


def _is_fifo(path):
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _systemd(root):
    return InitSystem("systemd", kexec=["systemctl", "kexec", "--no-block"], reboot=["systemctl", "reboot", "--no-block"])


def _openrc(root):
    shutdown = find_program(root, "openrc-shutdown")
    if shutdown is None:
        return InitSystem("openrc", no_kexec="openrc-init runs, but openrc-shutdown is missing")
    return InitSystem("openrc", kexec=[shutdown, "--kexec", "now"], reboot=[shutdown, "--reboot", "now"])


def _runit(root):
    runit_init = find_program(root, "runit-init")
    if runit_init is None:
        return InitSystem("runit", no_kexec="runit runs, but runit-init is missing")
    reboot = [runit_init, "6"]
    if not os.path.isfile(os.path.join(root, "etc/runit/shutdown.d/90-kexec.sh")):
        return InitSystem("runit", reboot=reboot, no_kexec="runit's stage 3 has no kexec step "
                                                           "(/etc/runit/shutdown.d/90-kexec.sh, as Void ships it)")
    if find_program(root, "kexec") is None:
        return InitSystem("runit", reboot=reboot, no_kexec="runit's stage 3 kexecs only with kexec-tools' kexec "
                                                           "installed, and it is not")
    return InitSystem("runit", kexec=reboot, reboot=reboot)


def _sysvinit(root):
    telinit = find_program(root, "telinit")
    if telinit is None:
        return InitSystem("sysvinit", no_kexec="sysvinit runs, but telinit is missing")
    reboot = [telinit, "6"]
    if not glob.glob(os.path.join(root, "etc/rc6.d/K[0-9][0-9]kexec")):
        return InitSystem("sysvinit", reboot=reboot, no_kexec="runlevel 6 reboots through firmware: it has no kexec "
                                                              "stop script (/etc/rc6.d/K..kexec, from Debian's "
                                                              "kexec-tools)")
    if not os.access(os.path.join(root, "sbin/kexec"), os.X_OK):
        return InitSystem("sysvinit", reboot=reboot, no_kexec="runlevel 6's kexec stop script needs /sbin/kexec "
                                                              "(kexec-tools), which is missing")
    return InitSystem("sysvinit", kexec=reboot, reboot=reboot)


def _busybox(root):
    reboot = find_program(root, "reboot")
    return InitSystem("busybox", reboot=[reboot] if reboot else None,
                      no_kexec="busybox init has no kexec: it reboots through firmware")


def detect(root="/"):
    """The InitSystem of the host below ``root``, from what PID 1 leaves in /run and /proc."""
    if os.path.isdir(os.path.join(root, "run/systemd/system")):
        return _systemd(root)
    if _is_fifo(os.path.join(root, "run/openrc/init.ctl")):  # made by openrc-init alone
        return _openrc(root)
    comm = _read_pid1(root, "comm")
    if comm == "runit":
        return _runit(root)
    if _read_pid1(root, "exe") == "busybox":
        return _busybox(root)
    if comm == "init" and any(_is_fifo(os.path.join(root, path)) for path in ("run/initctl", "dev/initctl")):
        return _sysvinit(root)
    return InitSystem(comm or "unknown", no_kexec="PID 1 is %s, an init system kexec_reboot cannot reboot through"
                      % (comm or "unknown (/proc/1/comm unreadable)"))


def unclean_refusal(init, what):
    """The error for a reboot that only the reboot syscall could make, without allow_unclean_reboot."""
    return KexecError("refusing an unclean %s: %s. Only sync and the reboot syscall are left, which stop no "
                      "service and unmount no file system; nothing was loaded or rebooted. Set "
                      "allow_unclean_reboot: true to reboot that way anyway" % (what, init.no_kexec))


def reboot_order(init, method, msg=None, allow_unclean=False):
    """The RebootOrder for ``method`` ('kexec' or 'full') on ``init``; KexecError where only an unclean
    reboot is possible and it is not allowed."""
    argv = init.kexec if method == "kexec" else init.reboot
    if argv is None:
        if not allow_unclean:
            if method == "kexec":
                raise unclean_refusal(init, "kexec reboot")
            raise KexecError("refusing an unclean firmware reboot: kexec_reboot knows no reboot command of this "
                             "host's init system (%s); nothing was rebooted. Set allow_unclean_reboot: true to "
                             "reboot by sync and the reboot syscall anyway" % init.name)
        return RebootOrder(syscall=syscalls.LINUX_REBOOT_CMD_KEXEC if method == "kexec"
                           else syscalls.LINUX_REBOOT_CMD_RESTART)
    if init.name != "systemd":
        return RebootOrder(list(argv))
    argv = argv + (["--message=%s" % msg] if msg else [])
    # Newer systemd kexecs on `systemctl reboot` when an image is loaded; a firmware reboot must not.
    return RebootOrder(argv, env={"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"} if method == "full" else None)


__all__ = ("InitSystem", "RebootOrder", "detect", "find_program", "reboot_order", "unclean_refusal")
