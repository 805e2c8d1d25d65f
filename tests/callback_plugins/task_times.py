# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/run's molecule stage: after each playbook, the tasks that took longest (CI's time budget)."""

from __future__ import annotations

import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: The slowest tasks of a playbook, printed at its end (tests/run only)
description:
  - Prints the tasks that took 10 seconds or more, slowest first, after each playbook.
  - Not part of the collection; tests/run enables it for the molecule scenarios.
"""

SHOWN_FROM_SECONDS = 10


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._times = []  # (task name, seconds), in order
        self._current = None

    def _close(self):
        if self._current:
            name, started = self._current
            self._times.append((name, time.monotonic() - started))
            self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._current = (task.get_name(), time.monotonic())

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        slow = sorted((item for item in self._times if item[1] >= SHOWN_FROM_SECONDS), key=lambda item: -item[1])
        total = sum(seconds for _name, seconds in self._times)
        self._display.display("task_times: %d tasks in %.0f s; %d took %d s or more:"
                              % (len(self._times), total, len(slow), SHOWN_FROM_SECONDS))
        for name, seconds in slow:
            self._display.display("  %6.0f s  %s" % (seconds, name))
