# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of kernel.kexec.kexec_reboot: start, wait, verify.

Shaped like ansible.builtin.reboot (phases as methods, one deadline), but the
wait is built to be quick and never to hang:

- the module on the target loads the kernel and forks the reboot, so the task
  knows the old boot_id and the exact release and command line to expect;
- the SSH control master is dropped right after, so no command rides a stale
  ControlPersist connection into the reboot (the hang of ansible/ansible#84573);
- the host is polled with bare SSH-banner probes every quarter second (QEMU and
  load balancers accept TCP even when the host is down; the banner proves sshd);
- once sshd answers, one command reads boot_id, release and cmdline; every
  remote call runs under a deadline and the connection is reset if it overruns;
- the host is back only with a new boot_id, never by time alone.
"""

from __future__ import annotations

import socket
import threading
import time

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._argspec import LOAD_OPTIONS, REBOOT_OPTIONS
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

display = Display()

STATE_COMMAND = "cat /proc/sys/kernel/random/boot_id /proc/sys/kernel/osrelease /proc/cmdline"


class RemoteCallTimeout(AnsibleError):
    pass


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(LOAD_OPTIONS) | frozenset(REBOOT_OPTIONS)

    PROBE_INTERVAL = 0.25  # seconds between banner probes
    BANNER_TIMEOUT = 1.0  # one probe: connect and read "SSH-"
    PRE_PROBE_TIMEOUT = 3.0  # the probe before the reboot, which decides whether probing works at all
    # Reads wait until sshd has gone away once: a read sent while the old boot shuts down can hang
    # on a half-closed connection. If sshd never seems to go, reads start after this many seconds.
    DOWN_GRACE = 60
    EXTRA_CALL_TIME = 20  # a remote call may take connect_timeout plus this before it is cut

    # Replaced by unit tests with a fake clock.
    _clock = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super(ActionModule, self).run(tmp, task_vars)
        if self._connection.transport == "local":
            return dict(result, failed=True, rebooted=False,
                        msg="kexec_reboot refuses the local connection: it would reboot the controller")
        spec = dict(LOAD_OPTIONS)
        spec.update(REBOOT_OPTIONS)
        _validation, args = self.validate_argument_spec(argument_spec=spec)
        endpoint = None if self._task.check_mode else self.probe_endpoint()
        start = self._clock()
        # The module gets the task's own arguments: validation here expands ~ and $VARS in the path
        # options with the controller's environment, and the module must resolve them on the target.
        prepared = self.start_reboot(dict(self._task.args), task_vars)
        result.update(prepared)
        result.pop("systemd", None)
        result["previous_boot_id"] = result.pop("boot_id", None)
        if prepared.get("failed") or self._task.check_mode:
            result["rebooted"] = False
            return result
        result["rebooted"] = True
        self.remove_remote_tmp()
        deadline = start + args["reboot_timeout"]
        original_timeout = self._set_connect_timeout(args["connect_timeout"])
        try:
            self.drop_connection()
            self._sleep(args["post_reboot_delay"])
            state = self.wait_for_new_boot(prepared["boot_id"], deadline, args["connect_timeout"], endpoint)
            self.verify(prepared, state)
            if args["test_command"]:
                self.run_test_command(args["test_command"], deadline, args["connect_timeout"])
        except (AnsibleError, KexecError) as exc:
            return dict(result, failed=True, msg=str(exc), elapsed=round(self._clock() - start, 1))
        finally:
            self._set_connect_timeout(original_timeout)
        result.update(changed=True, elapsed=round(self._clock() - start, 1), kernel=state["release"],
                      cmdline=state["cmdline"], boot_id=state["boot_id"])
        return result

    # --- phase 1: load and start the reboot on the target ----------------

    def start_reboot(self, args, task_vars):
        return self._execute_module(module_name="kernel.kexec.kexec_reboot", module_args=args,
                                    task_vars=task_vars)

    def remove_remote_tmp(self):
        """Remove the module's remote tmp dir now, in the second before the reboot starts,
        not over the first (slow) SSH session of the new boot."""
        tmpdir = self._connection._shell.tmpdir
        if tmpdir:
            try:
                self._remove_tmp_path(tmpdir, force=True)
            except AnsibleError as exc:
                display.vvv("kexec_reboot: removing %s before the reboot failed: %s" % (tmpdir, exc))
            self._connection._shell.tmpdir = None

    # --- phase 2: wait for a new boot ---------------------------------------

    def probe_endpoint(self):
        """(host, port) for banner probes, checked before the reboot; (None, None) to go without.

        Behind a jump host, or with the port set only in ~/.ssh/config, the controller
        cannot reach sshd directly: then the wait relies on bounded remote reads alone.
        """
        host, port = self._ssh_endpoint()
        if port and not self.ssh_banner(host, port, self.PRE_PROBE_TIMEOUT):
            display.vvv("kexec_reboot: no SSH banner at %s:%s before the reboot; waiting without probes" % (host, port))
            return None, None
        return host, port

    def wait_for_new_boot(self, old_boot_id, deadline, connect_timeout, endpoint=None):
        """Poll until the host answers with a boot_id other than ``old_boot_id``."""
        host, port = endpoint or self._ssh_endpoint()
        last_seen = "nothing yet"
        went_down = not port  # without probes only the boot_id can tell
        read_anyway_at = self._clock() + self.DOWN_GRACE
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise AnsibleError("the host did not come back within reboot_timeout; last seen: %s" % last_seen)
            if port and not self.ssh_banner(host, port, min(self.BANNER_TIMEOUT, remaining)):
                went_down = True
                last_seen = "no SSH banner from %s:%s" % (host, port)
                self._sleep(self.PROBE_INTERVAL)
                continue
            if not went_down and self._clock() < read_anyway_at:
                last_seen = "sshd of the old boot still answering (shutting down)"
                self._sleep(self.PROBE_INTERVAL)
                continue
            try:
                state = self.read_state(min(connect_timeout + self.EXTRA_CALL_TIME, remaining))
            except AnsibleError as exc:
                last_seen = "sshd answered but reading the boot_id failed: %s" % exc
                self.drop_connection()
                self._sleep(self.PROBE_INTERVAL)
                continue
            if state["boot_id"] != old_boot_id:
                return state
            last_seen = "the old boot %s still answering (the host had not gone down yet)" % old_boot_id
            self.drop_connection()
            self._sleep(self.PROBE_INTERVAL)

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

    @staticmethod
    def ssh_banner(host, port, timeout):
        """True when sshd answers with its banner; a bare TCP accept proves nothing."""
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                banner = b""
                while len(banner) < 4:
                    chunk = sock.recv(4 - len(banner))
                    if not chunk:
                        break
                    banner += chunk
                return banner == b"SSH-"
        except OSError:
            return False

    def read_state(self, timeout):
        result = self.bounded(lambda: self._low_level_execute_command(STATE_COMMAND, sudoable=False), timeout)
        lines = result.get("stdout", "").splitlines()
        if result.get("rc") != 0 or len(lines) < 3:
            raise AnsibleError("'%s' returned rc=%s: %s" % (STATE_COMMAND, result.get("rc"),
                                                            (result.get("stderr") or "").strip()))
        return {"boot_id": lines[0].strip(), "release": lines[1].strip(), "cmdline": lines[2].strip()}

    def bounded(self, call, timeout):
        """Run ``call`` with a deadline; past it, reset the connection and give up."""
        outcome = {}

        def target():
            try:
                outcome["value"] = call()
            except Exception as exc:  # pylint: disable=broad-except
                outcome["error"] = exc

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            self.drop_connection()  # ends a client stuck on a dead control master
            raise RemoteCallTimeout("a remote call took longer than %.1fs" % timeout)
        if "error" in outcome:
            raise AnsibleError(str(outcome["error"]))
        return outcome["value"]

    def drop_connection(self):
        try:
            self._connection.reset()
        except Exception as exc:  # pylint: disable=broad-except
            display.vvv("kexec_reboot: connection reset failed: %s" % exc)

    def _set_connect_timeout(self, value):
        """Set the connection's connect timeout; return the old value (None if unknown)."""
        for option in ("connection_timeout", "timeout"):
            try:
                old = self._connection.get_option(option)
            except KeyError:
                continue
            if value is not None:
                self._connection.set_option(option, value)
            return old
        return None

    # --- phase 3: verify ------------------------------------------------------

    def verify(self, prepared, state):
        """The new boot must run the loaded release with every loaded argument."""
        expected = prepared.get("expected") or {}
        problems = []
        if expected.get("release") and state["release"] != expected["release"]:
            problems.append("kernel %s is running, %s was loaded" % (state["release"], expected["release"]))
        if expected.get("cmdline"):
            running = set(cmdline_args.split(state["cmdline"]))
            missing = [arg for arg in cmdline_args.split(expected["cmdline"]) if arg not in running]
            if missing:
                problems.append("arguments missing from /proc/cmdline: %s" % " ".join(missing))
        if problems:
            raise AnsibleError("the host came back (boot_id %s) but not into the loaded kernel: %s. It probably "
                               "rebooted through firmware instead of kexec; see its console log"
                               % (state["boot_id"], "; ".join(problems)))

    def run_test_command(self, command, deadline, connect_timeout):
        remaining = max(deadline - self._clock(), 1)
        result = self.bounded(lambda: self._low_level_execute_command(command, sudoable=True),
                              min(connect_timeout + self.EXTRA_CALL_TIME, remaining))
        if result.get("rc") != 0:
            raise AnsibleError("test_command '%s' failed after the reboot (rc=%s): %s"
                               % (command, result.get("rc"), (result.get("stderr") or result.get("stdout") or "").strip()))
