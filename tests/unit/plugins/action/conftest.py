"""A controller-side harness for the kexec_reboot action plugin.

The ActionModule is built as ansible-core's own action tests build theirs
(MagicMock task, play context, loader and templar), with the outside world
replaced by scripted fakes:

- ``FakeClock`` stands in for the class hooks ``_clock`` and ``_sleep``:
  sleeping advances it, so waits of minutes take no real time;
- ``FakeConnection`` records ``reset`` and ``set_option``;
- ``Target`` answers ``_execute_module`` (the module's result), the looks
  at sshd (``look_at_sshd``: scripted Sights of the banner watch) and
  ``_low_level_execute_command``.

Each fake appends a short line to one shared ``events`` list, so a test can
assert the whole order of what the plugin did. Nothing reaches a host.
"""

import json
import threading
from unittest.mock import MagicMock

import pytest

from ansible_collections.kernel.kexec.plugins.action.kexec_reboot import STATE_COMMAND, ActionModule
from ansible_collections.kernel.kexec.plugins.plugin_utils._banner_watch import (
    BANNER, ENDED, LOST, NOTHING, REFUSED, Sight,
)

from ..fakes.host import BOOT_ID, RELEASE, ROOT_UUID

OLD_BOOT = BOOT_ID
NEW_BOOT = "9d1e5a37-0c2b-4f8e-b6a4-51c7e2d0f3a8"
HOST, PORT = "127.0.0.1", 2222
START = 1000.0  # the fake clock's time when a test begins
LOADED_CMDLINE = "root=UUID=%s ro quiet console=ttyS0" % ROOT_UUID
# What a look at sshd sees (see _banner_watch.py): the old sshd still holds the connection it answered; nothing
# answers; the held connections were ended by the shutdown; sshd answered a fresh connection; a new connection
# was refused while the old sshd still held one; the held connections ended, proving nothing.
HELD, SILENT, GONE, BACK, LIMITED, LOST_HOLD = (Sight(NOTHING, True), Sight(NOTHING, False), Sight(ENDED, False),
                                                Sight(BANNER, True), Sight(REFUSED, True), Sight(LOST, False))
LOOK_WORDS = {HELD: "held", SILENT: "silent", GONE: "gone", BACK: "banner", LIMITED: "refused", LOST_HOLD: "lost",
              Sight(REFUSED, False): "refused"}
# What logind's busctl get-property answers on a host where nothing delays a shutdown.
LOGIND_IDLE = {"PreparingForShutdown": "b false", "DelayInhibited": 's ""', "InhibitDelayMaxUSec": "t 5000000"}


def is_read(cmd):
    """A boot_id read: STATE_COMMAND alone (the new boot) or with the old boot's signs of a shutdown."""
    return cmd == STATE_COMMAND or cmd.startswith(STATE_COMMAND + " && ")


def is_old_boot_read(cmd):
    return is_read(cmd) and cmd != STATE_COMMAND


def kexec_plan(release=RELEASE, cmdline=LOADED_CMDLINE, **more):
    """What the module returns after loading and starting a kexec reboot."""
    plan = {"changed": True, "method": "kexec", "boot_id": OLD_BOOT, "load_changed": True,
            "reboot_by": "systemctl kexec --no-block --message=Reboot initiated by Ansible (kernel.kexec.kexec_reboot)",
            "loaded": {"kernel": "/boot/vmlinuz-%s" % RELEASE, "kernel_release": RELEASE, "cmdline": cmdline,
                       "initrd": "/boot/initrd.img-%s" % RELEASE, "method": "file"},
            "expected": {"release": release, "cmdline": cmdline}}
    plan.update(more)
    return plan


def boot(boot_id, release=RELEASE, cmdline=LOADED_CMDLINE):
    """The answer to STATE_COMMAND from a boot."""
    return {"rc": 0, "stdout": "%s\n%s\n%s\n" % (boot_id, release, cmdline), "stderr": ""}


class FakeClock:
    def __init__(self, events):
        self.now = START
        self.events = events

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.events.append("sleep %g" % seconds)
        self.now += seconds


class FakeConnection:
    def __init__(self, events):
        self.transport = "ssh"
        self.options = {"port": PORT, "timeout": 10}
        self.events = events
        self._shell = MagicMock(tmpdir=None)

    def get_option(self, name, hostvars=None):
        return self.options[name]  # KeyError for an option the plugin lacks, as Ansible's plugins do

    def set_option(self, name, value):
        self.events.append("%s=%s" % (name, value))
        self.options[name] = value

    def reset(self):
        self.events.append("reset")


def scripted(script, count):
    """The answer for call number ``count`` (from 1): in order, then the last one again and again."""
    return script[min(count, len(script)) - 1]


class Target:
    """The host behind the connection, as the plugin sees it.

    ``sights``: what the looks at sshd see, in turn (a look that sees NOTHING costs its timeout on the clock).
    ``reads``: answers to the boot_id reads (STATE_COMMAND, and old_boot_command while the old
    boot's sshd answers): a result dict, an exception to raise, or a threading.Event to block on
    until the test sets it.
    An old boot read's answer gets the old boot's signs of a shutdown added, as the command prints
    them: ``system`` (systemctl is-system-running), ``jobs`` (the queued jobs' units), ``logind``
    (busctl get-property answers by property) and ``status`` (the reboot child's status file, a dict
    or None); each a value, or a list of values for the reads in turn.
    """

    def __init__(self, clock, events):
        self.clock = clock
        self.events = events
        self.plan = kexec_plan()
        self.module_seconds = 0  # fake time the module takes on the target
        self.sights = [HELD]
        self.reachable = True  # whether the pre-reboot probe finds sshd directly reachable
        self.reads = [boot(NEW_BOOT)]
        self.system = "stopping"
        self.jobs = ""
        self.logind = dict(LOGIND_IDLE)
        self.status = None
        self.test_result = {"rc": 0, "stdout": "", "stderr": ""}
        self.module_calls, self.looks, self.commands = [], [], []

    def execute_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        self.module_calls.append({"module_name": module_name, "module_args": module_args, "task_vars": task_vars})
        self.events.append("module")
        self.clock.now += self.module_seconds
        return dict(self.plan)

    def look_at_sshd(self, host, port, timeout):
        self.looks.append((host, port, timeout))
        sight = scripted(self.sights, len(self.looks))
        self.events.append("look %s" % LOOK_WORDS[sight])
        if sight.kind == NOTHING:
            self.clock.now += timeout
        return sight

    def execute(self, cmd, sudoable=True, **kwargs):
        self.commands.append((cmd, sudoable))
        if not is_read(cmd):
            self.events.append("test %s" % cmd)
            return self.test_result
        answer = scripted(self.reads, sum(1 for call in self.commands if is_read(call[0])))
        if isinstance(answer, threading.Event):
            self.events.append("read hangs")
            answer.wait(10)
            return boot(NEW_BOOT)
        if isinstance(answer, BaseException):
            self.events.append("read raises")
            raise answer
        lines = answer["stdout"].splitlines()
        whose = {OLD_BOOT: "old", NEW_BOOT: "new"}.get(lines[0]) if answer["rc"] == 0 and len(lines) == 3 else None
        self.events.append("read %s" % (whose or "rc=%s" % answer["rc"]))
        if is_old_boot_read(cmd) and answer["rc"] == 0:
            answer = dict(answer, stdout=answer["stdout"] + self.old_boot_signs())
        return answer

    def old_boot_signs(self):
        """The lines old_boot_command prints after the three of STATE_COMMAND, for this read."""
        count = sum(1 for call in self.commands if is_old_boot_read(call[0]))

        def now(value):
            return scripted(value, count) if isinstance(value, list) else value
        logind = now(self.logind)
        status = now(self.status)
        lines = ["system: %s" % now(self.system), "jobs: %s" % now(self.jobs)]
        lines += ["%s: %s" % (name, logind.get(name, ""))
                  for name in ("PreparingForShutdown", "DelayInhibited", "InhibitDelayMaxUSec")]
        lines.append("status: %s" % (json.dumps(status) if status is not None else ""))
        return "".join(line + "\n" for line in lines)


class Harness:
    def __init__(self):
        self.events = []
        self.clock = FakeClock(self.events)
        self.connection = FakeConnection(self.events)
        self.target = Target(self.clock, self.events)

    def action(self, args=None, check_mode=False):
        task = MagicMock()
        task.args = dict(args or {})
        task.check_mode = check_mode
        task.async_val = 0
        task.action = "kernel.kexec.kexec_reboot"
        play_context = MagicMock()
        play_context.remote_addr = HOST
        action = ActionModule(task, self.connection, play_context, loader=MagicMock(), templar=MagicMock(),
                              shared_loader_obj=MagicMock())
        action._clock = self.clock
        action._sleep = self.clock.sleep
        action._execute_module = self.target.execute_module
        action._low_level_execute_command = self.target.execute
        action.look_at_sshd = self.target.look_at_sshd
        # The pre-reboot probe is stubbed: probes are scripted for the wait only.
        action.probe_endpoint = lambda: action._ssh_endpoint() if self.target.reachable else (None, None)
        return action

    def run(self, check_mode=False, **args):
        return self.action(args, check_mode).run(task_vars={"inventory_hostname": "guest"})

    def count(self, event):
        return self.events.count(event)


@pytest.fixture
def harness():
    return Harness()
