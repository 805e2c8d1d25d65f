"""kexec_reboot's controller side: start the reboot, wait for a new boot_id, verify.

The waits run on a fake clock (see conftest.Harness): sleeping advances it,
nothing sleeps for real (bounded() itself, which takes real time, is tested in
tests/unit/plugins/plugin_utils/test__bounded_connection.py). The looks at sshd are
scripted Sights (conftest.Target.look_at_sshd); the banner watch's sockets are tested
with BannerWatch itself.
"""

import itertools
import re
import threading

import pytest
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.kernel.kexec.plugins.action.kexec_reboot import STATE_COMMAND
from ansible_collections.kernel.kexec.plugins.plugin_utils._bounded_connection import RemoteCallTimeout

from ..fakes.host import OLD_RELEASE, RELEASE
from ansible_collections.kernel.kexec.plugins.plugin_utils._banner_watch import (
    BANNER, ENDED, NOTHING, REFUSED, Sight,
)

from .conftest import (
    BACK, GONE, HOST, LOADED_CMDLINE, NEW_BOOT, OLD_BOOT, PORT, SILENT, START, FakeConnection, boot, is_old_boot_read,
    is_read, kexec_plan,
)


# --- before the reboot ---------------------------------------------------------------------------------

def test_local_connection_is_refused(harness):
    harness.connection.transport = "local"
    result = harness.run()
    assert result["failed"] is True and result["rebooted"] is False
    assert "would reboot the controller" in result["msg"]
    assert harness.events == []  # the module never ran


def test_unknown_option_is_refused(harness):
    with pytest.raises(AnsibleActionFail, match="Invalid options for kernel.kexec.kexec_reboot: reboot_delay"):
        harness.run(reboot_delay=5)
    assert harness.events == []


def test_module_gets_the_task_arguments(harness):
    harness.run(initrd="/boot/initrd.img-%s" % RELEASE, append=["console=ttyS0"], reboot_timeout=60)
    [call] = harness.target.module_calls
    assert call["module_name"] == "kernel.kexec.kexec_reboot"
    assert call["module_args"].pop("nonce")  # this run's, see test_kexec_reboot_nonce.py
    assert call["module_args"] == {"initrd": "/boot/initrd.img-%s" % RELEASE, "append": ["console=ttyS0"],
                                   "reboot_timeout": 60}
    assert call["task_vars"] == {"inventory_hostname": "guest"}


def test_paths_are_resolved_on_the_target_not_the_controller(harness, monkeypatch):
    monkeypatch.setenv("HOME", "/home/controller-user")
    monkeypatch.setenv("KVER", "controller-value")
    harness.run(kernel="~/vmlinuz-$KVER")
    assert harness.target.module_calls[0]["module_args"]["kernel"] == "~/vmlinuz-$KVER"


def test_controller_options_get_their_defaults(harness):
    harness.connection.options["timeout"] = 30
    harness.target.sights = [GONE, SILENT]
    result = harness.run()
    assert result["elapsed"] == 600.0  # reboot_timeout: looks of 5 s
    assert harness.events[1] == "timeout=10"  # connect_timeout
    assert harness.events[-1] == "timeout=30"


def test_module_failure_is_returned_as_is(harness):
    harness.target.plan = {"failed": True, "msg": "kexec is disabled on this host"}
    result = harness.run()
    assert result == {"failed": True, "msg": "kexec is disabled on this host", "rebooted": False,
                      "previous_boot_id": None}
    assert harness.events == ["module"]


def test_check_mode_returns_without_waiting(harness):
    result = harness.run(check_mode=True)
    assert (result["rebooted"], result["method"], result["previous_boot_id"]) == (False, "kexec", OLD_BOOT)
    assert result["expected"] == {"release": RELEASE, "cmdline": LOADED_CMDLINE}
    assert "boot_id" not in result and "failed" not in result
    assert harness.events == ["module"]  # no connect timeout change, no reset, no probe
    assert harness.target.looks == []


# --- waiting for the new boot --------------------------------------------------------------------------

def test_waits_for_a_new_boot_id(harness):
    harness.target.sights = [GONE, SILENT, SILENT, SILENT, BACK]
    harness.target.reads = [boot(NEW_BOOT)]
    result = harness.run(post_reboot_delay=2, connect_timeout=5)

    assert harness.events == (
        ["module", "timeout=5", "reset", "sleep 2"]  # reset right after the start: no stale control master
        + ["look gone"]  # the connections the old sshd answered were ended by its shutdown
        + ["look silent"] * 3  # down: only the watch looks, no read
        + ["look banner", "read new", "timeout=10"])  # sshd answers anew: back; the connect timeout restored
    assert harness.target.looks[0] == (HOST, PORT, 5.0)
    assert harness.target.commands == [(STATE_COMMAND, False)]
    assert "failed" not in result
    assert (result["rebooted"], result["changed"], result["method"]) == (True, True, "kexec")
    assert (result["kernel"], result["cmdline"]) == (RELEASE, LOADED_CMDLINE)
    assert (result["boot_id"], result["previous_boot_id"]) == (NEW_BOOT, OLD_BOOT)
    assert result["elapsed"] == 17.0  # 2 + 3 looks of 5 s on the fake clock


def test_a_banner_from_the_old_boot_after_it_seemed_gone_is_not_back(harness):
    # The read after sshd answers anew finds the old boot: the wait goes back to the old boot's scheduled
    # reads (at 5 s), which gather its signs of a shutdown again.
    harness.target.sights = [GONE, BACK, Sight(NOTHING, True)]
    harness.target.reads = [boot(OLD_BOOT), boot(NEW_BOOT)]
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    assert harness.events[4:] == ["look gone", "look banner", "read old", "reset", "look held", "read new",
                                  "timeout=10"]
    assert [is_old_boot_read(cmd) for cmd, _sudoable in harness.target.commands] == [False, True]
    assert harness.clock.now - START == 5


def test_host_never_returns(harness):
    harness.target.module_seconds = 4.5  # the deadline counts from before the module ran
    harness.target.sights = [GONE, SILENT]
    result = harness.run(reboot_timeout=30)
    assert result["failed"] is True and result["rebooted"] is True
    assert result["msg"] == ("the host did not come back within reboot_timeout; last seen: no SSH banner from "
                             "%s:%s" % (HOST, PORT))
    # looks of 5 s from 4.5 s reach 29.5 s; the last one gets only the 0.5 s left
    assert [look[2] for look in harness.target.looks[-2:]] == [5.0, 0.5]
    assert harness.clock.now - START == 30
    assert result["elapsed"] == round(harness.clock.now - START, 1)
    assert harness.target.commands == []
    assert harness.events[-1] == "timeout=10" and harness.connection.options["timeout"] == 10


def test_no_read_in_the_first_seconds_while_the_old_sshd_still_answers(harness):
    # A read sent while the old boot shuts down can hang: probes only, until the first old-boot read.
    harness.target.reads = [boot(OLD_BOOT)]
    harness.target.module_seconds = 6  # the deadline counts from before the module: 4 s of waiting
    result = harness.run(reboot_timeout=10)
    assert result["failed"] is True
    assert "last seen: sshd of the old boot still answering" in result["msg"]
    assert harness.target.commands == []


def test_old_boot_reads_back_off_while_sshd_never_goes(harness):
    # The old boot is shutting down (systemd: stopping) but sshd keeps answering: the boot_id is read
    # at 5, 10, 20, 40 and 80 s of the wait, not at every probe, and the wait ends at the deadline.
    harness.target.reads = [boot(OLD_BOOT)]
    read_times = []
    execute = harness.target.execute

    def timed(cmd, **kwargs):
        read_times.append(harness.clock.now - START)
        return execute(cmd, **kwargs)

    action = harness.action({"reboot_timeout": 120})
    action._low_level_execute_command = timed
    result = action.run(task_vars={"inventory_hostname": "guest"})
    assert result["failed"] is True
    assert "last seen: the old boot %s still answering (systemd: stopping; no status" % OLD_BOOT in result["msg"]
    # (each read is followed by a quarter-second sleep, so the later ones drift by that much)
    assert [int(t) for t in read_times] == [5, 10, 20, 40, 80]
    assert all(is_old_boot_read(cmd) for cmd, _sudoable in harness.target.commands)


def test_old_boot_read_times_are_the_table_then_every_last_interval(harness):
    times = harness.action({}).old_boot_read_times(1000.5)
    assert list(itertools.islice(times, 8)) == [1005.5, 1010.5, 1020.5, 1040.5, 1080.5, 1120.5, 1160.5, 1200.5]


def test_shutdown_quicker_than_the_probes_is_noticed_by_a_read(harness):
    # The probes never see sshd go (a fast kexec); the read at 5 s finds the new boot: no blind grace.
    harness.target.reads = [boot(NEW_BOOT)]
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    assert 5 <= harness.clock.now - START < 6


def test_reboot_that_never_started_fails_fast(harness):
    # The old boot shows no shutdown 30 s (+ logind's 5 s for inhibitors) after the reboot was due: it never began.
    harness.target.reads = [boot(OLD_BOOT)]
    harness.target.system = "running"
    result = harness.run(reboot_timeout=600)
    assert result["failed"] is True
    assert re.match(r"the reboot did not start: 4[01] s after it was due \(pre_reboot_delay 0 s after the module "
                    r"answered\) the host still runs boot %s, and nothing shows a shutdown under way \(systemd "
                    r"calls it running, " % OLD_BOOT, result["msg"])
    assert harness.clock.now - START < 41
    assert harness.count("read old") == 4


def test_old_boot_without_systemd_state_waits_for_the_deadline(harness):
    # No systemctl answer (a host without systemd): nothing proves the reboot did not start.
    harness.target.reads = [boot(OLD_BOOT)]
    harness.target.system = ""
    result = harness.run(reboot_timeout=60)
    assert result["failed"] is True and "did not come back within reboot_timeout" in result["msg"]


READ_FAILURES = [
    pytest.param(AnsibleConnectionFailure("Failed to connect to the host via ssh: Connection reset by peer"),
                 "Connection reset by peer", id="connection-failure"),
    pytest.param({"rc": 1, "stdout": "", "stderr": "cat: /proc/cmdline: Permission denied\n"},
                 "rc=1: cat: /proc/cmdline: Permission denied", id="rc"),
    pytest.param({"rc": 0, "stdout": "%s\n%s\n" % (NEW_BOOT, RELEASE), "stderr": ""}, "returned rc=0",
                 id="short-output"),
]


@pytest.mark.parametrize("failure, words", READ_FAILURES)
def test_failed_read_is_retried(harness, failure, words):
    # After a failed read the next waits for sshd to answer a fresh connection.
    harness.target.sights = [GONE, BACK]
    harness.target.reads = [failure, failure, boot(NEW_BOOT)]
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    read = "read raises" if isinstance(failure, Exception) else "read rc=%s" % failure["rc"]
    assert harness.events == (["module", "timeout=10", "reset", "sleep 0", "look gone"]
                              + ["look banner", read, "reset"] * 2
                              + ["look banner", "read new", "timeout=10"])


@pytest.mark.parametrize("failure, words", READ_FAILURES)
def test_failed_read_until_timeout_says_so(harness, failure, words):
    harness.target.sights = [GONE, BACK]
    harness.target.reads = [failure]
    result = harness.run(reboot_timeout=10)
    assert result["failed"] is True
    assert "did not come back" in result["msg"]
    assert "last seen: reading the boot_id failed: " in result["msg"]
    assert words in result["msg"]
    # each read is a new SSH connection: with the module's, 4 in 31 s, then none before the deadline
    assert len(harness.target.commands) == 3


def test_hung_read_is_cut_and_retried(harness):
    released = threading.Event()
    harness.target.reads = [released, boot(NEW_BOOT)]
    action = harness.action({"connect_timeout": 1})
    action._join = lambda thread, timeout: thread.join(0.05)  # the real bound is connect_timeout + 20 s
    action._fresh_connection = lambda old: FakeConnection(harness.events)  # see test_kexec_reboot_bounded.py
    try:
        result = action.run(task_vars={})
    finally:
        released.set()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    hang = harness.events.index("read hangs")
    # bounded() resets the connection it gives up, the failed read drops the connection; the wait looks on
    assert harness.events[hang:hang + 4] == ["read hangs", "reset", "reset", "look held"]


def test_non_ssh_connection_skips_banner_probes(harness):
    harness.connection.transport = "community.general.lxd"
    harness.target.reads = [AnsibleConnectionFailure("unreachable"), boot(NEW_BOOT)]
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    assert harness.target.looks == []
    assert harness.events[-4:] == ["reset", "sleep 0.25", "read new", "timeout=10"]


@pytest.mark.parametrize("transport, options, endpoint", [
    ("ssh", {"port": 2200}, (HOST, 2200)),
    ("ssh", {"port": "2200"}, (HOST, 2200)),
    ("ansible.builtin.ssh", {"port": None}, (HOST, 22)),
    ("paramiko", {}, (HOST, 22)),  # no port option: KeyError
    ("community.docker.docker", {"port": 2200}, (None, None)),
])
def test_ssh_endpoint(harness, transport, options, endpoint):
    harness.connection.transport = transport
    harness.connection.options = options
    assert harness.action()._ssh_endpoint() == endpoint


# --- verification --------------------------------------------------------------------------------------

@pytest.mark.parametrize("plan, running_release, running_cmdline, problem", [
    pytest.param(kexec_plan(), RELEASE, "BOOT_IMAGE=x console=ttyS0 quiet ro " + LOADED_CMDLINE.split()[0] + " nosmt",
                 None, id="same-arguments-any-order-and-extra"),
    pytest.param(kexec_plan(), OLD_RELEASE, LOADED_CMDLINE,
                 "kernel %s is running, %s was loaded" % (OLD_RELEASE, RELEASE), id="other-release"),
    pytest.param(kexec_plan(), RELEASE, LOADED_CMDLINE.replace(" console=ttyS0", ""),
                 "arguments missing from /proc/cmdline: console=ttyS0", id="missing-argument"),
    pytest.param(kexec_plan(method="full", loaded=None, expected={"release": None, "cmdline": None},
                            fallback_reason="kexec is disabled"),
                 OLD_RELEASE, "ro single", None, id="full-checks-boot-id-only"),
    pytest.param(kexec_plan(expected={"release": None, "cmdline": None}),  # loaded by another tool
                 OLD_RELEASE, "ro", None, id="unknown-image-checks-boot-id-only"),
])
def test_verification(harness, plan, running_release, running_cmdline, problem):
    harness.target.plan = plan
    harness.target.reads = [boot(NEW_BOOT, running_release, running_cmdline)]
    result = harness.run()
    assert result["rebooted"] is True and result["method"] == (plan["method"] if problem is None else "unknown")
    if problem is None:
        assert "failed" not in result
        assert (result["kernel"], result["cmdline"], result["boot_id"]) == (running_release, running_cmdline, NEW_BOOT)
    else:
        assert result["failed"] is True
        assert result["msg"].startswith("the host came back (boot_id %s) but not into the loaded kernel" % NEW_BOOT)
        assert problem in result["msg"]
        assert "probably rebooted through firmware" in result["msg"]


def test_fallback_reason_is_reported(harness):
    harness.target.plan = kexec_plan(method="full", loaded=None, expected={"release": None, "cmdline": None},
                                     fallback_reason="kexec is disabled on this host")
    result = harness.run()
    assert (result["method"], result["fallback_reason"]) == ("full", "kexec is disabled on this host")


@pytest.mark.parametrize("answer, problem", [
    ({"rc": 0, "stdout": "running\n", "stderr": ""}, None),
    ({"rc": 1, "stdout": "degraded\n", "stderr": ""},
     "test_command 'systemctl is-system-running' failed after the reboot (rc=1): degraded"),
    ({"rc": 127, "stdout": "", "stderr": "sh: systemctl: not found"}, "(rc=127): sh: systemctl: not found"),
    # both streams, on one line; and a command that prints nothing still says so
    ({"rc": 1, "stdout": "degraded\n", "stderr": "Failed to query: timeout\n"},
     "(rc=1): degraded | Failed to query: timeout"),
    ({"rc": 3, "stdout": "", "stderr": ""}, "(rc=3): it printed nothing"),
])
def test_test_command(harness, answer, problem):
    harness.target.test_result = answer
    result = harness.run(test_command="systemctl is-system-running")
    assert harness.events[-3:] == ["read new", "test systemctl is-system-running", "timeout=10"]
    assert harness.target.commands[-1] == ("systemctl is-system-running", True)  # with become
    if problem is None:
        assert "failed" not in result and result["boot_id"] == NEW_BOOT
    else:
        assert result["failed"] is True and problem in result["msg"]


# --- the banner watch (BannerWatch itself: tests/unit/plugins/plugin_utils) ------------------------------

def test_looks_of_one_wait_share_a_watch_that_the_wait_closes(harness, monkeypatch):
    made = []

    class Watch:
        def __init__(self, host, port, gate=None, hold=0, clock=None):
            self.host, self.port, self.gate, self.hold, self.clock = host, port, gate, hold, clock
            self.looks, self.closed = 0, False
            made.append(self)

        def look(self, timeout):
            self.looks += 1
            if self.looks == 1:
                return Sight(ENDED, False)  # the connections the old sshd answered ended with its shutdown
            if self.looks < 4:
                harness.clock.now += timeout
                return Sight(NOTHING, False)
            return Sight(BANNER, True)  # the new boot's sshd

        def close(self):
            self.closed = True

    monkeypatch.setattr("ansible_collections.kernel.kexec.plugins.action.kexec_reboot.BannerWatch", Watch)
    action = harness.action()
    del action.look_at_sshd  # the real method, over the fake watch
    result = action.run(task_vars={})
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    assert len(made) == 1 and made[0].looks == 4 and made[0].closed
    assert (made[0].host, made[0].port, made[0].hold) == (HOST, PORT, action.HOLD)
    # every new connection takes its place among the task's; the watch runs on the action's clock
    assert made[0].gate is action._gate and made[0].clock is harness.clock
    assert action._banner_watch is None


def test_the_watch_is_closed_when_the_wait_fails(harness, monkeypatch):
    closed = []

    def close(watch):
        closed.append(watch)
    monkeypatch.setattr("ansible_collections.kernel.kexec.plugins.action.kexec_reboot.BannerWatch.look",
                        lambda self, timeout: Sight(NOTHING, False))  # at once, as for a name that does not resolve
    monkeypatch.setattr("ansible_collections.kernel.kexec.plugins.action.kexec_reboot.BannerWatch.close",
                        close)
    harness.target.reads = [boot(OLD_BOOT)]
    action = harness.action({"reboot_timeout": 10})
    del action.look_at_sshd
    result = action.run(task_vars={})
    assert result["failed"] is True and "did not come back" in result["msg"]
    assert len(closed) == 1 and action._banner_watch is None
    assert harness.clock.now - START == 10  # a look that ends early still waits out its time


@pytest.mark.parametrize("sight, endpoint", [
    (BACK, (HOST, PORT)),
    (Sight(REFUSED, False), (HOST, PORT)),  # something refuses at that address: a rate limit, or sshd going
    (SILENT, (None, None)),  # nothing answers: not reachable from the controller
], ids=["banner", "refused", "silent"])
def test_probe_endpoint_is_used_unless_nothing_answers_before_the_reboot(harness, sight, endpoint):
    action = harness.action()
    del action.probe_endpoint  # the real method
    harness.target.sights = [sight]
    assert action.probe_endpoint() == endpoint
    assert harness.target.looks == [(HOST, PORT, action.PRE_PROBE_TIMEOUT)]


def test_unreachable_ssh_port_waits_with_reads_alone(harness):
    # Behind a jump host the banner probe never succeeds: the wait must not depend on it.
    harness.target.reachable = False
    harness.target.reads = [boot(OLD_BOOT), AnsibleConnectionFailure("down"), boot(NEW_BOOT)]
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    assert harness.target.looks == []


def test_nothing_follows_the_module_to_the_host_going_down(harness, monkeypatch):
    # The reboot's child removes the module's tmp dir on the target (the module hands it over with
    # _ansible_suppress_tmpdir_delete): a command sent now could hang on the closing host.
    action = harness.action()
    harness.connection._shell.tmpdir = "/root/.ansible/tmp/ansible-tmp-1"
    monkeypatch.setattr(action, "_remove_tmp_path", lambda *args, **kwargs: pytest.fail("tmp removal sent"))
    result = action.run(task_vars={})
    assert "failed" not in result and result["boot_id"] == NEW_BOOT
    assert is_read(harness.target.commands[0][0])  # the first command is a read
    assert harness.connection._shell.tmpdir is None  # nothing left for cleanup() on the new boot


def test_the_health_gate_is_bounded_by_what_is_left_of_reboot_timeout(harness):
    """Not by connect_timeout + 20 s: a gate that waits for a slow boot (is-system-running --wait) gets the rest."""
    action = harness.action({"test_command": "systemctl is-system-running --wait", "reboot_timeout": 600,
                             "connect_timeout": 10})
    bounds = []
    bounded = action.bounded

    def recording(call, timeout):
        bounds.append(timeout)
        return bounded(call, timeout)
    action.bounded = recording
    harness.target.module_seconds = 7  # the deadline counts from before the module ran
    result = action.run(task_vars={"inventory_hostname": "guest"})
    assert "failed" not in result
    gate_started = START + 600 - bounds[-1]
    assert bounds[-1] > 10 + action.EXTRA_CALL_TIME and gate_started == harness.clock.now
    assert harness.target.commands[-1] == ("systemctl is-system-running --wait", True)


def test_a_health_gate_that_outlasts_reboot_timeout_names_the_command(harness):
    action = harness.action({"test_command": "systemctl is-system-running --wait", "reboot_timeout": 120})
    reads = action.bounded

    def bounded(call, timeout):
        if "read new" in harness.events:  # the host is back: this is the gate, and it hangs past its bound
            raise RemoteCallTimeout("a remote call took longer than %.1fs" % timeout)
        return reads(call, timeout)
    action.bounded = bounded
    result = action.run(task_vars={"inventory_hostname": "guest"})
    assert result["failed"] is True and result["rebooted"] is True and result["boot_id"] == NEW_BOOT
    assert result["msg"].startswith("test_command 'systemctl is-system-running --wait' did not finish within the ")
    assert "s left of reboot_timeout" in result["msg"]


def test_a_health_gate_with_no_time_left_does_not_run(harness):
    action = harness.action({"test_command": "true", "reboot_timeout": 30})
    harness.target.module_seconds = 30  # the module itself took all of reboot_timeout... almost: the wait ends
    action.wait_for_new_boot = lambda *args: {"release": RELEASE, "cmdline": "ro", "boot_id": NEW_BOOT}
    action.verify = lambda prepared, state, nonce: {"verified": True}
    result = action.run(task_vars={"inventory_hostname": "guest"})
    assert result["failed"] is True
    assert result["msg"] == "test_command 'true' did not run: the wait for the host used up reboot_timeout"
    assert ("true", True) not in harness.target.commands
