"""kexec_reboot's reboot child: start_reboot's fork, the move out of the login session, the status file.

Safety: start_reboot forks, runs commands through the runner it is given and may make the reboot
syscall. Every test here replaces os.fork, os._exit, os.kill, os.waitpid and the runner with
recorders (FakeProcess); the reboot syscall only ever reaches fake_syscall. The status file is
written for real, below the test's own tree (``root``).
"""

import errno
import json
import os
import signal

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot, syscalls
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.init_systems import RebootOrder
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES

X86_64 = ARCHES["x86_64"]
RUN_ID = "5f0c3a9e1b7d4c2e8a6f0b1d3c5e7a90"
UNIT = "kexec-reboot-%s.scope" % RUN_ID
CHILD = 4242
SYSTEMCTL_KEXEC = RebootOrder(["systemctl", "kexec", "--no-block"])
BUSCTL_MOVE = ["busctl", "--timeout=10", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
               "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", UNIT, "fail",
               "3", "PIDs", "au", "1", str(CHILD), "DefaultDependencies", "b", "false",
               "CollectMode", "s", "inactive-or-failed", "0"]
SESSION_CGROUP = "0::/user.slice/user-0.slice/session-4.scope\n"
SCOPE_CGROUP = "0::/system.slice/%s\n" % UNIT


class ChildExit(Exception):
    """Raised by the mocked os._exit: the child ended here."""


class FakeProcess:
    """os, time, select, shutil and the runner as start_reboot sees them, every call recorded in order.

    The fakes are in place only while ``start`` runs: pytest's own output capture calls os.dup2
    between tests and must reach the real one. os.open and os.close reach the real ones for the
    status file (write_atomic); the pipe's and /dev/null's descriptors are fake numbers.
    """

    DEVNULL_FD = 917
    EXIT_SEEN_FD, HELD_FD = 31, 32  # the pipe: the child's end, the end the module holds until it exits

    def __init__(self, root, fork_returns):
        self.root = root
        self.events = []
        self.fork_returns = fork_returns
        self.busctl_answer = (0, 'o "/org/freedesktop/systemd1/job/1"\n', "")
        self.command_answer = (0, "", "")  # the reboot command's (rc, stdout, stderr)
        self.command_failure = None  # or the exception it raises instead
        self.on_sleep = None  # called at each sleep (a test moves the child into its scope there)
        self.replace = {}  # os function name -> another fake, for one test
        self.real_open, self.real_close = os.open, os.close

    @property
    def status_file(self):
        return reboot.status_path(self.root, RUN_ID)

    def status(self):
        with open(self.status_file) as handle:
            return json.load(handle)

    def start(self, order=SYSTEMCTL_KEXEC, unit=None, **kwargs):
        """Call start_reboot; return ('returned', value) or ('_exit', code)."""
        fakes = {"pipe": self.pipe, "fork": self.fork, "close": self.close, "setsid": self.setsid, "open": self.open,
                 "dup2": self.dup2, "_exit": self._exit, "kill": self.kill, "waitpid": self.waitpid}
        fakes.update(self.replace)
        record_progress = reboot.record_progress
        with pytest.MonkeyPatch.context() as patch:
            for name, fake in fakes.items():
                patch.setattr(reboot.os, name, fake)
            patch.setattr(reboot.time, "sleep", self.sleep)
            patch.setattr(reboot.select, "select", self.select)
            patch.setattr(reboot.shutil, "rmtree", self.rmtree)
            patch.setattr(syscalls.os, "sync", lambda: self.events.append(("sync",)))

            def recorded(path, state, **details):
                self.events.append(("status", state))
                record_progress(path, state, **details)
            patch.setattr(reboot, "record_progress", recorded)
            try:
                return "returned", reboot.start_reboot(order, self.status_file, runner=self.runner, unit=unit,
                                                       root=self.root, **kwargs)
            except ChildExit as exited:
                return "_exit", exited.args[0]

    def pipe(self):
        self.events.append(("pipe",))
        return self.EXIT_SEEN_FD, self.HELD_FD

    def fork(self):
        self.events.append(("fork",))
        if isinstance(self.fork_returns, BaseException):
            raise self.fork_returns
        return self.fork_returns

    def close(self, fd):
        if fd not in (self.EXIT_SEEN_FD, self.HELD_FD):
            return self.real_close(fd)
        self.events.append(("close", fd))

    def open(self, path, flags, *mode):
        if path != os.devnull:
            return self.real_open(path, flags, *mode)
        self.events.append(("open", path, flags))
        return self.DEVNULL_FD

    def select(self, readable, writable, errors, timeout):
        """The module's process has exited: end-of-file on the pipe."""
        self.events.append(("wait for exit", tuple(readable), timeout))
        return readable, [], []

    def rmtree(self, path, ignore_errors=False):
        self.events.append(("rmtree", path, ignore_errors))

    def setsid(self):
        self.events.append(("setsid",))

    def dup2(self, fd, fd2):
        self.events.append(("dup2", fd, fd2))

    def sleep(self, seconds):
        self.events.append(("sleep", seconds))
        if self.on_sleep:
            self.on_sleep()

    def kill(self, pid, sig):
        self.events.append(("kill", pid, sig))

    def waitpid(self, pid, options):
        self.events.append(("waitpid", pid))
        return pid, 9

    def runner(self, argv, env=None):
        """busctl in the parent, the reboot command in the child."""
        if argv[0] == "busctl":
            self.events.append(("runner", "busctl"))
            self.busctl_argv = argv
            return self.busctl_answer
        self.events.append(("run", argv))
        self.run_env = env
        if self.command_failure is not None:
            raise self.command_failure
        return self.command_answer

    def _exit(self, code):
        self.events.append(("_exit", code))
        raise ChildExit(code)

    def names(self):
        return [event[0] for event in self.events]

    def cgroup(self, text, pid=CHILD):
        path = os.path.join(self.root, "proc/%d/cgroup" % pid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)


@pytest.fixture
def parent(tmp_path):
    return FakeProcess(str(tmp_path), fork_returns=CHILD)


@pytest.fixture
def child(tmp_path, monkeypatch):
    monkeypatch.delenv("SYSTEMCTL_SKIP_AUTO_KEXEC", raising=False)
    return FakeProcess(str(tmp_path), fork_returns=0)


def run_child(child, *args, **kwargs):
    ended, code = child.start(*args, **kwargs)
    assert ended == "_exit", "the child returned into the module instead of ending in os._exit"
    return code


DETACH = [("pipe",), ("fork",), ("close", FakeProcess.HELD_FD), ("setsid",), ("open", os.devnull, os.O_RDWR)] + [
    ("dup2", FakeProcess.DEVNULL_FD, fd) for fd in (0, 1, 2)] + [
    ("wait for exit", (FakeProcess.EXIT_SEEN_FD,), reboot.PARENT_EXIT_TIMEOUT)]


# --- the parent: out of the login session, then "waiting" --------------------------------------------

def test_parent_moves_the_child_out_of_the_session_before_the_module_answers(parent, fake_syscall):
    parent.cgroup(SCOPE_CGROUP)
    assert parent.start(unit=UNIT, delay=45) == ("returned", None)
    # The write end stays open in the module's process until it exits: that is the child's cue.
    assert parent.events == [("pipe",), ("fork",), ("close", FakeProcess.EXIT_SEEN_FD), ("runner", "busctl"),
                             ("status", "waiting")]
    # A transient scope of its own, as systemd-run --scope makes, outside logind's session: KillUserProcesses=yes
    # ends the session's processes, not this one; no default dependencies, so the shutdown does not stop it.
    assert parent.busctl_argv == BUSCTL_MOVE
    assert parent.status() == {"state": "waiting", "command": "systemctl kexec --no-block", "delay": 45,
                               "session": "moved out of the login session into %s" % UNIT}
    assert fake_syscall.calls == []


def test_parent_waits_until_systemd_has_moved_the_child(parent):
    # systemd moves the process when it runs the scope's start job, a moment after busctl returned.
    parent.cgroup(SESSION_CGROUP)
    sleeps = []

    def job_runs():
        sleeps.append(1)
        if len(sleeps) == 3:
            parent.cgroup(SCOPE_CGROUP)
    parent.on_sleep = job_runs
    parent.start(unit=UNIT)
    assert parent.names()[3:] == ["runner"] + ["sleep"] * 3 + ["status"]
    assert parent.status()["session"] == "moved out of the login session into %s" % UNIT


@pytest.mark.parametrize("answer, cgroup, problem", [
    ((1, "", "Call failed: Access denied\n"), SESSION_CGROUP, "busctl StartTransientUnit failed (rc=1): Call failed: "
                                                              "Access denied"),
    ((0, "", ""), SESSION_CGROUP, "the process did not appear in %s within 5 s" % UNIT),
], ids=["busctl-fails", "never-moved"])
def test_a_child_left_in_a_session_logind_may_end_is_killed_and_nothing_reboots(parent, answer, cgroup, problem):
    parent.busctl_answer = answer
    parent.cgroup(cgroup)
    os.makedirs(os.path.join(parent.root, "run/systemd/seats"))  # logind runs
    with pytest.raises(KexecError) as info:
        parent.start(unit=UNIT)
    assert info.value.msg.startswith("the reboot could not be moved out of the SSH login session: %s. logind ends"
                                     % problem)
    assert "nothing was rebooted" in info.value.msg
    assert parent.events[-2:] == [("kill", CHILD, signal.SIGKILL), ("waitpid", CHILD)]
    assert not os.path.exists(parent.status_file)


def test_without_logind_the_child_may_stay_in_the_session(parent):
    parent.busctl_answer = (1, "", "Failed to connect to bus: No such file or directory\n")
    assert parent.start(unit=UNIT) == ("returned", None)
    assert "kill" not in parent.names()
    assert parent.status()["session"] == ("left in the login session (busctl StartTransientUnit failed (rc=1): Failed "
                                          "to connect to bus: No such file or directory), which no logind runs to end")


def test_without_systemd_nothing_is_moved(parent):
    parent.start(order=RebootOrder(["/sbin/telinit", "6"]), unit=None)
    assert "runner" not in parent.names()
    assert parent.status() == {"state": "waiting", "command": "/sbin/telinit 6", "delay": 0,
                               "session": "no systemd: left in the login session"}


def test_failed_fork_closes_the_pipe(tmp_path):
    parent = FakeProcess(str(tmp_path), fork_returns=OSError(errno.EAGAIN, "fork"))
    with pytest.raises(OSError):
        parent.start()
    assert parent.events == [("pipe",), ("fork",), ("close", FakeProcess.EXIT_SEEN_FD),
                             ("close", FakeProcess.HELD_FD)]


# --- the child: wait, then the init system's command, its outcome in the status file ------------------

@pytest.mark.parametrize("delay, slept", [(0, reboot.SETTLE_DELAY), (0.1, reboot.SETTLE_DELAY), (7, 7)])
def test_child_waits_for_the_module_to_exit_then_the_delay(child, delay, slept):
    run_child(child, delay=delay)
    assert child.events[len(DETACH) - 1][0] == "wait for exit"
    assert child.events[len(DETACH)] == ("sleep", slept)


def test_child_removes_the_tmp_dir_after_the_module_exited(child):
    run_child(child, remove_dir="/root/.ansible/tmp/ansible-tmp-1")
    assert child.events[:len(DETACH)] == DETACH
    assert child.events[len(DETACH)] == ("rmtree", "/root/.ansible/tmp/ansible-tmp-1", True)
    assert child.names()[len(DETACH) + 1:] == ["sleep", "status", "run", "status", "_exit"]


@pytest.mark.parametrize("rc, stderr, code", [
    (0, "", 0),
    (1, "Failed to start kexec.target: Transaction for kexec.target/start is destructive.\n", 1),
])
def test_child_runs_the_command_and_records_its_exit_status_and_stderr(child, fake_syscall, rc, stderr, code):
    child.command_answer = (rc, "", stderr)
    order = RebootOrder(["systemctl", "reboot", "--no-block"], env={"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"})
    assert run_child(child, order=order, delay=3) == code
    assert child.events[:len(DETACH)] == DETACH
    # "running" first: a command that never returns shows as such
    assert child.events[len(DETACH):] == [("sleep", 3), ("status", "running"), ("run", order.argv),
                                          ("status", "issued"), ("_exit", code)]
    assert child.run_env == {"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"}
    assert child.status() == {"state": "issued", "command": "systemctl reboot --no-block", "rc": rc, "stderr": stderr}
    assert fake_syscall.calls == []  # a failed command never falls through to the abrupt reboot syscall


def test_child_records_a_command_that_cannot_run(child, fake_syscall):
    child.command_failure = FileNotFoundError(errno.ENOENT, "No such file or directory", "/sbin/telinit")
    assert run_child(child, order=RebootOrder(["/sbin/telinit", "6"])) == 1
    status = child.status()
    assert (status["state"], status["command"]) == ("failed", "/sbin/telinit 6")
    assert "No such file or directory" in status["error"]
    assert fake_syscall.calls == []


class Killed(BaseException):
    """The child is killed while its command runs (SIGKILL is no exception a handler could catch)."""


def test_child_whose_command_never_returns_shows_it_running(child):
    def hangs(argv, env=None):
        raise Killed()
    child.runner = hangs
    assert run_child(child) == 1
    assert child.status() == {"state": "running", "command": "systemctl kexec --no-block"}


def test_a_status_file_that_cannot_be_written_stops_no_reboot(child):
    with open(os.path.join(child.root, "run"), "w"):
        pass  # /run is a file: no directory can be made below it
    assert run_child(child) == 0
    assert child.names()[-3:] == ["run", "status", "_exit"]


def test_status_file_is_readable_without_root(child):
    run_child(child)
    assert os.stat(child.status_file).st_mode & 0o777 == 0o644


@pytest.mark.parametrize("syscall", [syscalls.LINUX_REBOOT_CMD_KEXEC, syscalls.LINUX_REBOOT_CMD_RESTART])
def test_unclean_order_syncs_then_makes_the_reboot_syscall(child, fake_syscall, syscall):
    order = RebootOrder(syscall=syscall)
    run_child(child, order=order, arch=X86_64)
    assert child.names()[len(DETACH):] == ["sleep", "status", "sync", "_exit"]
    assert child.status()["command"].startswith("sync, then the reboot syscall at once (unclean")
    [(number, args)] = fake_syscall.calls
    assert number == X86_64.reboot
    assert [arg.value for arg in args[:3]] == [syscalls.LINUX_REBOOT_MAGIC1, syscalls.LINUX_REBOOT_MAGIC2, syscall]


def test_failed_reboot_syscall_is_recorded(child, fake_syscall):
    fake_syscall.errors = [errno.EPERM]
    assert run_child(child, order=RebootOrder(syscall=syscalls.LINUX_REBOOT_CMD_KEXEC), arch=X86_64) == 1
    assert child.status()["state"] == "failed" and "reboot" in child.status()["error"]


def test_child_exits_when_detaching_fails(child, fake_syscall):
    def setsid():
        raise PermissionError(errno.EPERM, "setsid")
    child.replace["setsid"] = setsid
    assert run_child(child) == 1
    assert child.names() == ["pipe", "fork", "close", "_exit"]
    assert fake_syscall.calls == []
