"""A reboot that starts late for a good reason is waited for; only one that shows no sign of starting fails.

The old boot is read at 5, 10, 20, 40 s and every 40 s after (see test_kexec_reboot.py). Each read
answers, besides the boot_id, systemd's state, the queued jobs, logind's properties as busctl prints
them and the reboot child's status file (conftest.Target.old_boot_signs). The window after which an
old boot that shows nothing fails runs from when the reboot was due (the module's answer plus
pre_reboot_delay) and lasts NOT_STARTED_AFTER (30 s) plus logind's InhibitDelayMaxUSec.
"""

import re

import pytest

from ansible_collections.kernel.kexec.plugins.action.kexec_reboot import STATE_COMMAND

from .conftest import NEW_BOOT, OLD_BOOT, START, boot, is_old_boot_read

LOGIND_DELAYING = {"PreparingForShutdown": "b true", "DelayInhibited": 's "shutdown:sleep"',
                   "InhibitDelayMaxUSec": "t 120000000"}


def old_then_new(harness, old_reads):
    harness.target.reads = [boot(OLD_BOOT)] * old_reads + [boot(NEW_BOOT)]


def read_times(harness):
    times = []
    execute = harness.target.execute

    def timed(cmd, **kwargs):
        times.append(harness.clock.now - START)
        return execute(cmd, **kwargs)
    return times, timed


def run_timed(harness, **args):
    times, timed = read_times(harness)
    action = harness.action(args)
    action._low_level_execute_command = timed
    return action.run(task_vars={}), times


def test_pre_reboot_delay_longer_than_the_window_is_waited_for(harness):
    # pre_reboot_delay 45: the host runs on for 45 s by design; the window starts when the reboot is due.
    old_then_new(harness, 4)
    harness.target.system = "running"
    harness.target.status = {"state": "waiting", "command": "systemctl kexec --no-block", "delay": 45}
    result, times = run_timed(harness, pre_reboot_delay=45)
    assert "failed" not in result and result["boot_id"] == NEW_BOOT, result.get("msg")
    assert [int(t) for t in times] == [5, 10, 20, 40, 80]


def test_a_delay_inhibitor_held_longer_than_the_window_is_waited_for(harness):
    # systemctl kexec passed through logind, which waits for a delay inhibitor (kubelet's graceful node
    # shutdown: minutes); systemd calls the host running all the while, logind is preparing for shutdown.
    old_then_new(harness, 5)
    harness.target.system = "running"
    harness.target.logind = LOGIND_DELAYING
    harness.target.status = {"state": "issued", "command": "systemctl kexec --no-block", "rc": 0, "stderr": ""}
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT, result.get("msg")
    assert harness.count("read old") == 5  # 5, 10, 20, 40 and 80 s: well past the base window


@pytest.mark.parametrize("system", ["starting", "initializing"])
def test_a_system_still_starting_is_no_proof_the_reboot_did_not_start(harness, system):
    old_then_new(harness, 5)
    harness.target.system = system
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT, result.get("msg")


def test_a_queued_shutdown_job_counts_as_started(harness):
    old_then_new(harness, 5)
    harness.target.system = "running"
    harness.target.jobs = "kexec.target systemd-kexec.service"
    result = harness.run()
    assert "failed" not in result and result["boot_id"] == NEW_BOOT, result.get("msg")


def test_the_window_grows_by_the_longest_delay_logind_grants_inhibitors(harness):
    # logind may delay the shutdown up to InhibitDelayMaxUSec (here 120 s) before anything shows: the old
    # boot that shows nothing fails only after 30 + 120 s, at the first read past that (160 s).
    harness.target.reads = [boot(OLD_BOOT)]
    harness.target.system = "running"
    harness.target.logind = dict(LOGIND_DELAYING, PreparingForShutdown="b false", DelayInhibited='s ""')
    result, times = run_timed(harness, reboot_timeout=600)
    assert result["failed"] is True and result["msg"].startswith("the reboot did not start: 16")
    assert [int(t) for t in times] == [5, 10, 20, 40, 80, 120, 160]


@pytest.mark.parametrize("status, words", [
    ({"state": "issued", "command": "systemctl kexec --no-block", "rc": 1,
      "stderr": "Failed to start kexec.target: Transaction for kexec.target/start is destructive.\n"},
     "the reboot's child ran systemctl kexec --no-block, which exited 1: Failed to start kexec.target: Transaction "
     "for kexec.target/start is destructive."),
    ({"state": "waiting", "command": "systemctl kexec --no-block", "delay": 0,
      "session": "left in the login session (busctl StartTransientUnit failed (rc=1): x), which no logind runs to end"},
     "the reboot's child was waiting to run systemctl kexec --no-block (left in the login session"),
    ({"state": "failed", "command": "systemctl kexec --no-block", "error": "[Errno 2] No such file or directory"},
     "the reboot's child could not run systemctl kexec --no-block: [Errno 2] No such file or directory"),
    ({"state": "running", "command": "/sbin/telinit 6"}, "the reboot's child ran /sbin/telinit 6, which has not returned"),
    (None, "no status from the reboot's child"),
], ids=["command-failed", "child-never-ran-it", "command-missing", "command-never-returned", "no-status-file"])
def test_a_reboot_that_never_started_fails_with_what_the_status_file_says(harness, status, words):
    harness.target.reads = [boot(OLD_BOOT)]
    harness.target.system = "running"
    harness.target.status = status
    result = harness.run()
    assert result["failed"] is True
    nonce = harness.target.module_calls[0]["module_args"]["nonce"]
    assert re.match(r"the reboot did not start: 4[01] s after it was due .* The reboot's status "
                    r"\(/run/kernel-kexec-reboot/%s\.status\): " % nonce, result["msg"])
    assert words in result["msg"]
    assert harness.clock.now - START < 41


def test_the_old_boot_read_gathers_every_sign_without_become(harness):
    harness.target.reads = [boot(OLD_BOOT), boot(NEW_BOOT)]
    harness.run()
    nonce = harness.target.module_calls[0]["module_args"]["nonce"]
    command, sudoable = harness.target.commands[0]
    assert is_old_boot_read(command)
    assert command.startswith(STATE_COMMAND + " && {") and sudoable is False
    for part in ("systemctl is-system-running", "systemctl list-jobs --no-legend", "PreparingForShutdown",
                 "DelayInhibited", "InhibitDelayMaxUSec", "busctl --timeout=3 get-property org.freedesktop.login1",
                 "cat /run/kernel-kexec-reboot/%s.status" % nonce):
        assert part in command


def test_the_last_old_boot_read_is_in_the_timeout_message(harness):
    harness.target.reads = [boot(OLD_BOOT)]
    harness.target.system = ""  # no systemd: nothing can prove the reboot did not start
    harness.target.status = {"state": "issued", "command": "/sbin/telinit 6", "rc": 0, "stderr": ""}
    result = harness.run(reboot_timeout=60)
    assert result["failed"] is True
    assert result["msg"] == ("the host did not come back within reboot_timeout; last seen: the old boot %s still "
                             "answering (systemd: unknown; the reboot's child ran /sbin/telinit 6, which exited 0)"
                             % OLD_BOOT)
