"""Every wait of kexec_reboot is bounded, and a call that overran never shares its connection again.

A remote call that overruns its bound is abandoned, but its thread still runs
inside the connection object it was given. Nothing else may use that object
afterwards: the next remote call gets a fresh connection of the same plugin and
options. Resets (the "reconnects") are bounded too, and so are the module run
and the remote tmp removal before the reboot.

Hung calls block on a threading.Event; ``short_join`` stands in for the plugin's
``_join`` hook: it waits a fifth of a second in real time, then moves the fake
clock by the whole bound, so a bound of minutes costs no real time.
"""

import threading
import time

import pytest

from .conftest import BACK, GONE, NEW_BOOT, FakeConnection, boot

HANG = 3  # seconds a hung fake call blocks at most (only reached by code without the bounds)


def short_join(harness):
    def join(thread, timeout):
        thread.join(0.2)
        if thread.is_alive():
            harness.clock.now += timeout
    return join


class FreshConnection(FakeConnection):
    def reset(self):
        self.events.append("reset fresh")


class Tracked:
    """An action whose remote calls record the connection object they ran on."""

    def __init__(self, harness, args=None):
        self.harness = harness
        self.fresh = []  # connections handed out by _fresh_connection, in order
        self.used = []  # (command, connection) per remote command
        self.released = threading.Event()
        self.action = action = harness.action(args)
        action._join = short_join(harness)
        action._fresh_connection = self.fresh_connection

        def execute(cmd, sudoable=True, **kwargs):
            self.used.append((cmd, action._connection))
            return harness.target.execute(cmd, sudoable, **kwargs)
        action._low_level_execute_command = execute

    def fresh_connection(self, old):
        assert old is not None
        connection = FreshConnection(self.harness.events)
        connection.options = dict(old.options)
        self.harness.events.append("fresh connection")
        self.fresh.append(connection)
        return connection

    def hang(self, *args, **kwargs):
        self.harness.events.append("hangs")
        self.released.wait(HANG)

    def run(self):
        began = time.monotonic()
        try:
            return self.action.run(task_vars={})
        finally:
            self.released.set()
            self.took = time.monotonic() - began


@pytest.fixture
def tracked(harness):
    return Tracked(harness)


def test_hung_module_run_is_cut_at_reboot_timeout(harness):
    tracked = Tracked(harness, {"reboot_timeout": 60})

    def module(**kwargs):
        harness.target.execute_module(**kwargs)
        tracked.hang()
        return dict(harness.target.plan)
    tracked.action._execute_module = module
    result = tracked.run()
    assert tracked.took < 2
    assert result["failed"] is True and result["rebooted"] is None
    assert "did not answer within reboot_timeout (60 s)" in result["msg"]
    assert "may have started" in result["msg"]
    assert harness.target.looks == [] and tracked.used == []  # no wait after a lost answer


def test_timed_out_read_never_reuses_the_abandoned_connection(harness, tracked):
    harness.target.reads = [threading.Event(), boot(NEW_BOOT)]  # the first read hangs
    old = harness.connection
    result = tracked.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    [fresh] = tracked.fresh
    assert [connection for _cmd, connection in tracked.used] == [old, fresh]
    hang = harness.events.index("read hangs")
    # the abandoned connection is reset once (bounded), then never touched again
    assert harness.events[hang:hang + 2] == ["read hangs", "reset"]
    assert "reset" not in harness.events[hang + 2:]
    assert "fresh connection" in harness.events[hang + 2:]
    harness.target.reads[0].set()


def test_test_command_after_a_timeout_uses_a_fresh_connection(harness, tracked):
    harness.target.reads = [threading.Event(), boot(NEW_BOOT)]
    tracked.action._task.args["test_command"] = "true"
    result = tracked.run()
    harness.target.reads[0].set()
    assert "failed" not in result
    assert tracked.used[-1] == ("true", tracked.fresh[-1])


def test_hung_reset_is_bounded(harness, tracked):
    harness.connection.reset = tracked.hang
    result = tracked.run()
    assert tracked.took < 2
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    # the connection whose reset hung is not used again
    assert all(connection is not harness.connection for _cmd, connection in tracked.used)


def test_no_fresh_connection_fails_closed(harness, tracked):
    def cannot(old):
        raise RuntimeError("connection plugin gone")
    tracked.action._fresh_connection = cannot
    harness.target.reads = [threading.Event(), boot(NEW_BOOT)]
    result = tracked.run()
    harness.target.reads[0].set()
    assert result["failed"] is True
    assert "not reusing the connection a hung call still holds" in result["msg"]
    assert "connection plugin gone" in result["msg"]
    assert len(tracked.used) == 1  # nothing after the hung read


def test_every_wait_ends_at_the_deadline_even_when_every_call_hangs(harness, tracked):
    harness.target.sights = [GONE, BACK]
    harness.target.reads = [threading.Event()]
    tracked.action._task.args["reboot_timeout"] = 60
    result = tracked.run()
    harness.target.reads[0].set()
    assert result["failed"] is True and "did not come back within reboot_timeout" in result["msg"]
    assert harness.clock.now - 1000.0 <= 60 + 1
    assert tracked.took < 10


def test_connect_timeout_restored_on_the_task_connection(harness, tracked):
    harness.connection.options["timeout"] = 30
    harness.target.reads = [threading.Event(), boot(NEW_BOOT)]
    tracked.run()
    harness.target.reads[0].set()
    assert harness.connection.options["timeout"] == 30


# --- ansible-core's cleanup after the task: bounded, and nothing after an unanswered module ----------------

TMPDIR = "/root/.ansible/tmp/ansible-tmp-1796180670.47-27622-1234"


def leave_tmpdir(harness, action):
    """What _execute_module's _make_tmp_path leaves when the module is not pipelined."""
    harness.connection._shell.tmpdir = TMPDIR
    harness.connection._shell.remove = lambda path, recurse=False: "rm -f -r %s > /dev/null 2>&1" % path
    action._cleanup_remote_tmp = True


def test_cleanup_after_an_unanswered_module_sends_nothing(harness):
    # The module run was cut at reboot_timeout: the host may be going down, and the task executor runs
    # cleanup() outside the task's deadline. An rm -rf sent now could hang.
    tracked = Tracked(harness, {"reboot_timeout": 60})

    def module(**kwargs):
        leave_tmpdir(harness, tracked.action)
        tracked.hang()
    tracked.action._execute_module = module
    result = tracked.run()
    assert result["rebooted"] is None
    tracked.action.cleanup()
    assert tracked.used == []


def module_failed_leaving_its_tmpdir(harness):
    """A Tracked action whose module failed on the target (nothing rebooted): its tmp dir is still set."""
    tracked = Tracked(harness)
    harness.target.plan = {"failed": True, "msg": "kexec is disabled on this host"}

    def module(**kwargs):
        leave_tmpdir(harness, tracked.action)
        return dict(harness.target.plan)
    tracked.action._execute_module = module
    return tracked


def test_cleanup_is_bounded_like_every_remote_call(harness):
    tracked = module_failed_leaving_its_tmpdir(harness)
    tracked.action._low_level_execute_command = lambda cmd, **kwargs: tracked.hang()  # the rm hangs
    result = tracked.run()
    assert result["failed"] is True and harness.events == []
    tracked.released = threading.Event()  # run() released the first
    began = time.monotonic()
    try:
        tracked.action.cleanup()
    finally:
        tracked.released.set()
    assert time.monotonic() - began < 2
    assert harness.events == ["hangs", "reset"]  # the rm was cut, its connection retired
    assert harness.clock.now - 1000.0 == 10 + tracked.action.EXTRA_CALL_TIME  # connect_timeout + 20 s


def test_cleanup_removes_the_tmp_dir_of_a_host_that_stays_up(harness):
    tracked = module_failed_leaving_its_tmpdir(harness)
    tracked.run()
    tracked.action.cleanup()
    assert [cmd for cmd, _connection in tracked.used] == ["rm -f -r %s > /dev/null 2>&1" % TMPDIR]
    assert harness.connection._shell.tmpdir is None
