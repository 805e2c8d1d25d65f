# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remote calls of an action plugin that never hang: each runs for at most its bound.

Private to the kernel.kexec collection (controller side: the kexec_reboot action).

A call runs in a thread for at most its bound. A call that overruns is
abandoned, and so is the connection object its thread still runs in: that
connection is reset (so the call can end, e.g. ssh's control master is
stopped) and never used again, and the next call gets a fresh connection of
the same plugin and options. Resets are bounded too.
"""

from __future__ import annotations

import contextvars
import threading

from ansible.errors import AnsibleError
from ansible.utils.display import Display

display = Display()


class RemoteCallTimeout(AnsibleError):
    pass


class ConnectionLost(AnsibleError):
    """A call hung and no fresh connection could be made: the wait ends rather than reuse the hung one."""


class BoundedConnection:
    """Mixed into an ActionBase subclass: bounded remote calls on ``self._connection``."""

    RESET_TIMEOUT = 15  # a connection reset (ssh -O check and -O stop, a paramiko close) may take this long

    @staticmethod
    def _join(thread, timeout):
        thread.join(timeout)

    def __init__(self, *args, **kwargs):
        super(BoundedConnection, self).__init__(*args, **kwargs)
        self._retired = []  # connection objects a hung call may still be using: never used again

    def _run_for_at_most(self, call, timeout):
        """Run ``call`` in a thread (in this thread's context: ansible-core keeps task and templating
        state in contextvars) for at most ``timeout`` seconds. Returns (finished, outcome)."""
        outcome = {}
        context = contextvars.copy_context()

        def target():
            try:
                outcome["value"] = context.run(call)
            except Exception as exc:  # pylint: disable=broad-except
                outcome["error"] = exc

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        self._join(worker, timeout)
        return not worker.is_alive(), outcome

    def bounded(self, call, timeout):
        """Run the remote call ``call`` with a deadline; past it, give up on the call and on its connection."""
        connection = self._usable_connection()
        finished, outcome = self._run_for_at_most(call, timeout)
        if not finished:
            self._retire(connection)
            raise RemoteCallTimeout("a remote call took longer than %.1fs" % timeout)
        if "error" in outcome:
            if isinstance(outcome["error"], AnsibleError):
                raise outcome["error"]  # as it was: an unreachable host stays unreachable
            raise AnsibleError(str(outcome["error"]))
        return outcome["value"]

    def _usable_connection(self):
        """The connection for the next remote call: never one a hung call was left running in."""
        if any(self._connection is retired for retired in self._retired):
            try:
                self._connection = self._fresh_connection(self._connection)
            except Exception as exc:  # pylint: disable=broad-except
                raise ConnectionLost("a remote call hung and no new connection could be made (%s): not reusing "
                                     "the connection a hung call still holds" % exc)
        return self._connection

    def _fresh_connection(self, old):
        """A new object of ``old``'s connection plugin with its options, shell and become plugin."""
        fresh = self._shared_loader_obj.connection_loader.get(old._load_name, self._play_context)
        if fresh is None:
            raise AnsibleError("connection plugin %s not found" % old._load_name)
        fresh.set_options(direct=old.get_options())
        fresh._shell = old._shell
        if old.become is not None:
            fresh.set_become_plugin(old.become)
        return fresh

    def _retire(self, connection):
        """A call hung in ``connection``: reset it (so that call can end, e.g. ssh's control master is
        stopped) and never use it again."""
        self._retired.append(connection)
        self._reset(connection)

    def _reset(self, connection):
        finished, outcome = self._run_for_at_most(connection.reset, self.RESET_TIMEOUT)
        if not finished:
            display.vvv("kexec_reboot: a connection reset took over %ss; that connection is not used again"
                        % self.RESET_TIMEOUT)
            if not any(connection is retired for retired in self._retired):
                self._retired.append(connection)
        elif "error" in outcome:
            display.vvv("kexec_reboot: connection reset failed: %s" % outcome["error"])

    def drop_connection(self):
        """Reset the connection (bounded), so the next call connects anew."""
        self._reset(self._usable_connection())

    def _set_connect_timeout(self, value, connection=None):
        """Set the connection's connect timeout; return the old value (None if unknown)."""
        connection = connection or self._connection
        for option in ("connection_timeout", "timeout"):
            try:
                old = connection.get_option(option)
            except KeyError:
                continue
            if value is not None:
                connection.set_option(option, value)
            return old
        return None
