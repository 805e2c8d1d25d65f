# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of kernel.kexec.kexec_reboot: start, wait, verify.

Shaped like ansible.builtin.reboot (phases as methods, one deadline), but the
wait is built to be quick and never to hang:

- the module on the target loads the kernel and forks the reboot, so the task
  knows the old boot_id and the exact release and command line to expect; the
  reboot starts once the module's process has exited, and its child removes the
  module's tmp dir, so no command follows the module to a host going down;
- the SSH control master is dropped right after, so no command rides a stale
  ControlPersist connection into the reboot (the hang of ansible/ansible#84573);
- the host is watched through its SSH port with few new connections, because
  hosts rate-limit them (ufw's ``limit`` rejects the 6th within 30 s; fail2ban;
  sshd's PerSourcePenalties) and a refusal proves nothing while the host is up
  (plugin_utils/_banner_watch.py, _new_connections.py, _wait_state.py): the
  connection the old sshd answered before the reboot is held, and its end shows
  the old boot going; every new connection, probe or SSH login, takes a place
  in one window of 4 per 31 s, and each refusal makes the next one wait longer.
  QEMU and load balancers accept TCP even when the host is down, so only the
  banner proves sshd; a connection that something in between accepted is kept
  until it answers, since QEMU's port forward would still hand it to the new
  boot's sshd;
- once sshd answers a fresh connection, one command reads boot_id, release and
  cmdline;
- while the old boot has not been seen going down, the boot_id is also read at
  growing intervals, each read bounded: a new boot_id ends the wait (a
  shutdown the watch did not see); the same read gathers every sign of a
  shutdown under way (plugin_utils/_old_boot.py), and only an old boot that
  shows none, NOT_STARTED_AFTER seconds (plus logind's longest delay for
  inhibitors) after the reboot was due, ends the wait with an error that quotes
  the reboot child's status file; a read that hangs is cut;
- every wait is bounded: the module run, each read, each connection reset (the
  "reconnect"), the delays, and ansible-core's removal of the remote tmp dir
  afterwards (cleanup(), skipped after an unanswered module call). A remote
  call that overruns is abandoned, and so is the connection object its thread
  still runs in: the next call gets a fresh connection of the same plugin and options
  (plugin_utils/_bounded_connection.py);
- the host is back only with a new boot_id, never by time alone, and a kexec
  is claimed only when the new /proc/cmdline carries this run's nonce
  (``kexec_reboot.boot=<nonce>``, which the module put on the image it loaded).
"""

from __future__ import annotations

import collections
import itertools
import secrets
import time

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._argspec import (
    LOAD_OPTIONS, REBOOT_OPTIONS, check_reboot_options,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.reboot import (
    SETTLE_DELAY, nonce_argument, status_path,
)
from ansible_collections.kernel.kexec.plugins.plugin_utils import _old_boot as old_boot
from ansible_collections.kernel.kexec.plugins.plugin_utils._banner_watch import (
    BANNER, NOTHING, REFUSED, BannerWatch,
)
from ansible_collections.kernel.kexec.plugins.plugin_utils._bounded_connection import (
    BoundedConnection, ConnectionLost, RemoteCallTimeout,
)
from ansible_collections.kernel.kexec.plugins.plugin_utils._new_connections import NewConnections
from ansible_collections.kernel.kexec.plugins.plugin_utils._wait_state import WaitState, refused_login

display = Display()

STATE_COMMAND = "cat /proc/sys/kernel/random/boot_id /proc/sys/kernel/osrelease /proc/cmdline"


def old_boot_command(run_id):
    """STATE_COMMAND and every sign of a shutdown under way, with the status file of the run ``run_id``."""
    return old_boot.command(STATE_COMMAND, status_path("/", run_id))


TEST_OUTPUT = 1000  # characters of test_command's output an error quotes: its last ones, where a failure shows


def printed(result):
    """What a command printed (stdout, then stderr), on one line and at most TEST_OUTPUT characters."""
    lines = [line.strip() for stream in ("stdout", "stderr") for line in (result.get(stream) or "").splitlines()]
    text = " | ".join(line for line in lines if line)
    if len(text) > TEST_OUTPUT:
        return "..." + text[-TEST_OUTPUT:]
    return text or "it printed nothing"


# The reboot the wait is for: its run id (the nonce, which names its status file), the controller's clock
# time at which the target's child issues it, and the pre_reboot_delay that time includes.
DueReboot = collections.namedtuple("DueReboot", "run_id due pre_reboot_delay")


class NotTheKexec(AnsibleError):
    """The host came back, but not (provably) by the kexec that was started."""


class ActionModule(BoundedConnection, ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(LOAD_OPTIONS) | frozenset(REBOOT_OPTIONS)

    # Each connection that reaches sshd costs the host a fork and re-exec of sshd, and hosts rate-limit new
    # ones: the watch holds a connection the old sshd answered instead of probing it again, and every new
    # connection of the task takes a place from one NewConnections (see _new_connections.py).
    PROBE_INTERVAL = 0.25  # seconds between reads when the SSH port cannot be probed
    BANNER_TIMEOUT = 5.0  # the longest look at the watch between checks of the wait's state
    PRE_PROBE_TIMEOUT = 3.0  # the probe before the reboot, which decides whether probing works at all
    HOLD = 2  # connections the old sshd answered that the watch keeps (see _banner_watch.py)
    # While the old boot has not been seen going down, the boot_id is read at these seconds after the wait
    # began, then every OLD_BOOT_READS[-1] seconds: rarely, because a read sent while the old boot
    # shuts down can hang on a half-closed connection until its deadline cuts it.
    OLD_BOOT_READS = (5, 10, 20, 40)
    # systemctl kexec/reboot makes systemd "stopping" at once, or logind "preparing for shutdown" while
    # inhibitors delay it: an old boot that shows neither this long after the reboot was due (plus
    # logind's InhibitDelayMaxUSec) never started it (the child or its command failed).
    NOT_STARTED_AFTER = 30
    EXTRA_CALL_TIME = 20  # a remote call may take connect_timeout plus this before it is cut

    # Replaced by unit tests with a fake clock.
    _clock = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)
    _new_nonce = staticmethod(lambda: secrets.token_hex(16))

    def __init__(self, *args, **kwargs):
        super(ActionModule, self).__init__(*args, **kwargs)
        self._banner_watch = None  # the probes' shared connections, from the probe before the reboot to the end
        self._gate = None  # the places for new connections to the host (SSH-like connections only)
        self._call_timeout = REBOOT_OPTIONS["connect_timeout"]["default"] + self.EXTRA_CALL_TIME
        self._module_unanswered = False  # cleanup() then sends nothing: the host may be going down

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super(ActionModule, self).run(tmp, task_vars)
        if self._connection.transport == "local":
            return dict(result, failed=True, rebooted=False,
                        msg="kexec_reboot refuses the local connection: it would reboot the controller")
        spec = dict(LOAD_OPTIONS)
        spec.update(REBOOT_OPTIONS)
        _validation, args = self.validate_argument_spec(argument_spec=spec)
        try:
            check_reboot_options(args)  # before any remote call: nothing loaded, nothing rebooted
        except KexecError as exc:
            return dict(result, failed=True, rebooted=False, msg=exc.msg)
        self._call_timeout = args["connect_timeout"] + self.EXTRA_CALL_TIME
        if self._ssh_endpoint()[1]:
            self._gate = NewConnections()
        try:
            return self._reboot(result, args, task_vars)
        finally:
            self.close_banner_watch()  # the probe before the reboot keeps what sshd answered, for the wait

    def _reboot(self, result, args, task_vars):
        task_connection = self._connection
        nonce = self._new_nonce()
        endpoint = None if self._task.check_mode else self.probe_endpoint()
        start = self._clock()
        deadline = start + args["reboot_timeout"]
        # The module gets the task's own arguments: validation here expands ~ and $VARS in the path
        # options with the controller's environment, and the module must resolve them on the target.
        try:
            prepared = self.start_reboot(dict(self._task.args, nonce=nonce), task_vars, deadline)
        except RemoteCallTimeout:
            self._module_unanswered = True
            return dict(result, failed=True, rebooted=None, elapsed=round(self._clock() - start, 1),
                        msg="the kexec_reboot module on the target did not answer within reboot_timeout (%s s): "
                            "the reboot may have started; check the host" % args["reboot_timeout"])
        reboot_due = self._clock() + max(args["pre_reboot_delay"], SETTLE_DELAY)  # when the child issues it
        result.update(prepared)
        result["previous_boot_id"] = result.pop("boot_id", None)
        if prepared.get("failed") or self._task.check_mode:
            result["rebooted"] = False
            return result
        result["rebooted"] = True
        # The module's tmp dir is removed on the target by the reboot's child (or kept: keep_remote_files):
        # nothing more is sent to a host that is going down, and cleanup() has nothing to do on the new boot.
        self._connection._shell.tmpdir = None
        original_timeout = self._set_connect_timeout(args["connect_timeout"])
        try:
            self.drop_connection()
            self._sleep(min(args["post_reboot_delay"], max(deadline - self._clock(), 0)))
            state = self.wait_for_new_boot(prepared["boot_id"], deadline, args["connect_timeout"], endpoint,
                                           DueReboot(nonce, reboot_due, args["pre_reboot_delay"]))
            result.update(kernel=state["release"], cmdline=state["cmdline"], boot_id=state["boot_id"])
            result.update(self.verify(prepared, state, nonce))
            if args["test_command"]:
                self.run_test_command(args["test_command"], deadline)
        except NotTheKexec as exc:
            return dict(result, failed=True, msg=str(exc), method="unknown", verified=False,
                        elapsed=round(self._clock() - start, 1))
        except (AnsibleError, KexecError) as exc:
            return dict(result, failed=True, msg=str(exc), elapsed=round(self._clock() - start, 1))
        finally:
            self._set_connect_timeout(original_timeout, task_connection)
        result.update(changed=True, elapsed=round(self._clock() - start, 1))
        return result

    # --- before the reboot: can the wait watch sshd? ---------------------

    def probe_endpoint(self):
        """(host, port) for banner probes, checked before the reboot; (None, None) to go without.

        Behind a jump host, or with the port set only in ~/.ssh/config, the controller
        cannot reach sshd directly: then the wait relies on bounded remote reads alone.
        A refusal is an answer from that address (a rate limit, or sshd going): the probes
        go on. The watch keeps the connection sshd answered on, for the wait to hold.
        """
        host, port = self._ssh_endpoint()
        if not port:
            return host, port
        sight = self.look_at_sshd(host, port, self.PRE_PROBE_TIMEOUT)
        if sight.kind in (BANNER, REFUSED):
            return host, port
        display.vvv("kexec_reboot: no SSH banner at %s:%s before the reboot; waiting without probes" % (host, port))
        self.close_banner_watch()
        return None, None

    def _ssh_endpoint(self):
        """(host, port) to probe; port None when the connection is not SSH-like."""
        if self._connection.transport not in ("ssh", "paramiko", "paramiko_ssh", "ansible.builtin.ssh",
                                              "ansible.builtin.paramiko_ssh"):
            return None, None
        host = self._play_context.remote_addr
        try:
            port = self._connection.get_option("port") or 22
        except KeyError:
            port = 22
        return host, int(port)

    def look_at_sshd(self, host, port, timeout):
        """What the watch of host:port sees within ``timeout`` (a Sight; see BannerWatch.look).

        The looks share one BannerWatch until close_banner_watch(): from the probe before the reboot,
        whose answered connection the wait holds, to the end of the wait."""
        if self._banner_watch is None or (self._banner_watch.host, self._banner_watch.port) != (host, port):
            self.close_banner_watch()
            self._banner_watch = BannerWatch(host, port, gate=self._gate, hold=self.HOLD, clock=self._clock)
        return self._banner_watch.look(timeout)

    def close_banner_watch(self):
        if self._banner_watch is not None:
            self._banner_watch.close()
            self._banner_watch = None

    # --- phase 1, reboot: load and start the reboot on the target ----------

    def start_reboot(self, args, task_vars, deadline):
        self._count_logins()
        return self.bounded(lambda: self._execute_module(module_name="kernel.kexec.kexec_reboot", module_args=args,
                                                         task_vars=task_vars),
                            max(deadline - self._clock(), 0))

    def cleanup(self, force=False):
        """ansible-core's cleanup (it removes the module's remote tmp dir where that is still set) with the
        bound of every remote call. Nothing after an unanswered module call: the host may be going down,
        and the task executor runs cleanup() outside the task's deadline."""
        if self._module_unanswered:
            display.vvv("kexec_reboot: the module did not answer; its remote tmp dir, if any, stays on the target")
            return
        try:
            self.bounded(lambda: super(ActionModule, self).cleanup(force), self._call_timeout)
        except AnsibleError as exc:
            display.warning("kexec_reboot: removing the remote tmp dir failed: %s" % exc)

    def _login_cost(self):
        """New connections one SSH login may open: one, and one per retry the connection plugin makes."""
        try:
            retries = int(self._connection.get_option("reconnection_retries") or 0)
        except (KeyError, TypeError, ValueError):
            retries = 0
        return 1 + max(retries, 0)

    def _count_logins(self):
        if self._gate is not None:
            self._gate.open(self._clock(), self._login_cost())

    # --- phase 2, wait: for a new boot -------------------------------------

    def wait_for_new_boot(self, old_boot_id, deadline, connect_timeout, endpoint, reboot):
        """Poll until the host answers with a boot_id other than ``old_boot_id``; ``reboot`` (a DueReboot)
        says when the target issues the reboot."""
        try:
            return self._wait_for_new_boot(old_boot_id, deadline, connect_timeout, endpoint, reboot)
        finally:
            self.close_banner_watch()

    def _wait_for_new_boot(self, old_boot_id, deadline, connect_timeout, endpoint, reboot):
        began = self._clock()
        wait = WaitState(began, self.old_boot_read_times(began), endpoint or self._ssh_endpoint(), began)
        while True:
            now = self._clock()
            if now >= deadline:
                raise AnsibleError(wait.not_back(NewConnections.MAX_NEW, NewConnections.WINDOW))
            if now >= wait.read_due():
                state = self._read_when_allowed(wait, old_boot_id, deadline, connect_timeout, reboot)
                if state is not None:
                    return state
            elif wait.port:
                self._see(wait, min(wait.read_due(), deadline, now + self.BANNER_TIMEOUT) - now)
            else:
                self._sleep(min(wait.read_due(), deadline) - now)

    def _see(self, wait, timeout):
        """One look at sshd through the watch, taken in by ``wait``."""
        began = self._clock()
        sight = self.look_at_sshd(wait.host, wait.port, timeout)
        meaning = wait.saw(sight, self._clock())
        if meaning:
            self._trace(wait.began, meaning)
        if self._gate is not None:
            self._gate.booting = wait.went_down
        if sight.kind == NOTHING and self._clock() < began + timeout:  # no name or route: the look ended early
            self._sleep(began + timeout - self._clock())

    def _read_when_allowed(self, wait, old_boot_id, deadline, connect_timeout, reboot):
        """Read the boot_id once the gate has a place for the login: the new boot's state, or None."""
        now = self._clock()
        if self._gate is not None:
            at = self._gate.next_open(now, self._login_cost())
            if at > now:
                self._trace(wait.began, "the next read waits %.1fs for a place among new connections" % (at - now))
                self._sleep(min(at, deadline) - now)
                return None
        checking_old_boot = wait.reading(now)
        self._trace(wait.began, "reading the boot_id" + (" (the old boot may still run)" if checking_old_boot else ""))
        self._count_logins()
        try:
            state = self.read_state(min(connect_timeout + self.EXTRA_CALL_TIME, deadline - now),
                                    old_boot_command(reboot.run_id) if checking_old_boot else STATE_COMMAND)
        except ConnectionLost:
            raise
        except AnsibleError as exc:
            self._read_failed(wait, exc)
            return None
        self._trace(wait.began, "boot_id %s" % state["boot_id"])
        if self._gate is not None:
            self._gate.answered()
        if state["boot_id"] != old_boot_id:
            return state
        old = state.get("old_boot")
        if old is not None:
            self.check_reboot_started(old_boot_id, old, reboot)
        wait.read_old_boot(self._clock(), old_boot_id, self.PROBE_INTERVAL, old.summary() if old is not None else None)
        if self._gate is not None:
            self._gate.booting = False
        self.drop_connection()
        return None

    def _read_failed(self, wait, exc):
        self._trace(wait.began, "reading the boot_id failed: %s" % exc)
        now = self._clock()
        if wait.read_failed(now, exc, self.PROBE_INTERVAL):
            self._trace(wait.began, "the login was refused while the host had just answered: no sign of it going")
        if self._gate is not None and refused_login(exc):
            self._gate.refused(now)
        if wait.asked and self._banner_watch is not None:
            self._banner_watch.release()  # the next read waits for sshd to answer a fresh connection again
        self.drop_connection()

    def read_state(self, timeout, command=STATE_COMMAND):
        """boot_id, release, cmdline in one call, and by old_boot_command() also ``old_boot`` (an OldBoot)."""
        result = self.bounded(lambda: self._low_level_execute_command(command, sudoable=False), timeout)
        lines = result.get("stdout", "").splitlines()
        if result.get("rc") != 0 or len(lines) < 3:  # named by its first part: the old boot's is long
            raise AnsibleError("'%s' returned rc=%s: %s" % (STATE_COMMAND, result.get("rc"),
                                                            (result.get("stderr") or "").strip()))
        state = {"boot_id": lines[0].strip(), "release": lines[1].strip(), "cmdline": lines[2].strip()}
        if command != STATE_COMMAND:
            state["old_boot"] = old_boot.OldBoot(lines[3:])
        return state

    def check_reboot_started(self, old_boot_id, old, reboot):
        """Raise when the old boot ``old`` (an OldBoot) shows no shutdown long after ``reboot`` was due:
        NOT_STARTED_AFTER seconds, plus the longest delay logind grants inhibitors."""
        late = self._clock() - reboot.due
        if not old.shows_no_shutdown() or late < self.NOT_STARTED_AFTER + old.inhibit_delay_max:
            return
        raise AnsibleError("the reboot did not start: %.0f s after it was due (pre_reboot_delay %s s after the "
                           "module answered) the host still runs boot %s, and nothing shows a shutdown under way "
                           "(systemd calls it %s, no shutdown job is queued, logind is not preparing for shutdown). "
                           "The reboot's status (%s): %s. See the host's journal"
                           % (late, reboot.pre_reboot_delay, old_boot_id, old.system,
                              status_path("/", reboot.run_id), old_boot.describe_status(old.status)))

    def old_boot_read_times(self, began):
        """When to read the boot_id while sshd has not been seen going away: OLD_BOOT_READS, then
        every OLD_BOOT_READS[-1] seconds after the last of them."""
        every = self.OLD_BOOT_READS[-1]
        offsets = itertools.chain(self.OLD_BOOT_READS, itertools.count(2 * every, every))
        return (began + offset for offset in offsets)

    def _trace(self, began, what):
        """One -vvv line per step of the wait, stamped with the seconds since it began: where a slow
        wait spent its time."""
        display.vvv("kexec_reboot: wait +%.2fs: %s" % (self._clock() - began, what))

    # --- phase 3, verify: the new boot is the kexec, and test_command passes -

    def verify(self, prepared, state, nonce=None):
        """Whether the new boot is the kexec that was started: result keys, or NotTheKexec.

        Proof is this run's nonce in /proc/cmdline: only the image the module loaded for this run
        carries it. Without it (an image loaded before the task) the release and command line are
        checked, but the boot is reported as not proven (verified: false)."""
        if prepared.get("method") != "kexec":
            return {}  # a firmware reboot (fallback: full): the new boot_id is all there is to check
        expected = prepared.get("expected") or {}
        mark = nonce_argument(nonce) if nonce else None
        carried = mark is not None and expected.get("nonce") == nonce
        running = cmdline_args.split(state["cmdline"])
        problems = []
        if expected.get("release") and state["release"] != expected["release"]:
            problems.append("kernel %s is running, %s was loaded" % (state["release"], expected["release"]))
        if expected.get("cmdline"):
            missing = [arg for arg in cmdline_args.split(expected["cmdline"]) if arg not in running and arg != mark]
            if missing:
                problems.append("arguments missing from /proc/cmdline: %s" % " ".join(missing))
        if carried and mark not in running:
            raise NotTheKexec("the host came back through firmware (or another boot path), not by the kexec: the new "
                              "boot (boot_id %s) lacks %s in /proc/cmdline, which only the image this task loaded "
                              "carries%s. See the host's console log for why the kexec did not happen"
                              % (state["boot_id"], mark, "".join("; " + problem for problem in problems)))
        if problems and carried:
            raise AnsibleError("the host came back by the kexec (boot_id %s, /proc/cmdline carries %s) but not as "
                               "loaded: %s" % (state["boot_id"], mark, "; ".join(problems)))
        if problems:
            raise NotTheKexec("the host came back (boot_id %s) but not into the loaded kernel: %s. It probably "
                              "rebooted through firmware instead of kexec; see its console log"
                              % (state["boot_id"], "; ".join(problems)))
        if carried:
            return {"verified": True, "verification": "proven: /proc/cmdline carries %s, which only the image "
                                                      "this task loaded had" % mark}
        return {"verified": False, "verification": "not proven: the image booted carries no nonce of this task (it "
                                                   "was loaded before the task, by kexec_load or another tool), so "
                                                   "nothing on the new boot shows it came from the kexec rather than "
                                                   "through firmware"}

    def run_test_command(self, command, deadline):
        """The health gate: ``command`` on the new boot, bounded by what is left of reboot_timeout (a gate such as
        ``systemctl is-system-running --wait`` lasts as long as the boot's slowest unit)."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise AnsibleError("test_command '%s' did not run: the wait for the host used up reboot_timeout" % command)
        try:
            result = self.bounded(lambda: self._low_level_execute_command(command, sudoable=True), remaining)
        except RemoteCallTimeout:
            raise AnsibleError("test_command '%s' did not finish within the %.0f s left of reboot_timeout; what it "
                               "printed is lost with the abandoned call" % (command, remaining))
        if result.get("rc") != 0:
            raise AnsibleError("test_command '%s' failed after the reboot (rc=%s): %s"
                               % (command, result.get("rc"), printed(result)))
