"""What the old boot says while kexec_reboot waits: the remote command, busctl's formats, the verdict.

The command is run for real by sh here, with fake systemctl and busctl first on PATH (scripts in the
test's tmp_path that print what the real ones print); it reads only this machine's boot_id, release
and command line besides.
"""

import json
import os
import subprocess

import pytest

from ansible_collections.kernel.kexec.plugins.plugin_utils._old_boot import OldBoot, busctl_value, command

STATE = "cat /proc/sys/kernel/random/boot_id /proc/sys/kernel/osrelease /proc/cmdline"


@pytest.mark.parametrize("text, value", [
    ("b true", True),
    ("b false", False),
    ("b true\n", True),
    ("t 5000000", 5000000),
    ("t 120000000", 120000000),
    ("u 3", 3),
    ('s "shutdown:sleep"', "shutdown:sleep"),
    ('s "delay"', "delay"),
    ('s ""', ""),
    ("", None),  # no busctl, no logind: the command left the line empty
    (None, None),
    ("b yes", None),
    ("t -1", None),
    ("t", None),
    ("s unquoted", None),
    ("Failed to get property PreparingForShutdown on interface org.freedesktop.login1.Manager: Unknown object", None),
])
def test_busctl_value(text, value):
    assert busctl_value(text) == value


def signs(system="running", jobs="", preparing="b false", inhibited='s ""', max_delay="t 5000000", status=""):
    return ["system: %s" % system, "jobs: %s" % jobs, "PreparingForShutdown: %s" % preparing,
            "DelayInhibited: %s" % inhibited, "InhibitDelayMaxUSec: %s" % max_delay, "status: %s" % status]


@pytest.mark.parametrize("lines, no_shutdown", [
    (signs(), True),
    (signs(system="degraded"), True),
    (signs(system="maintenance"), True),
    (signs(system="stopping"), False),
    (signs(system="starting"), False),  # boot still under way: says nothing about the reboot
    (signs(system="initializing"), False),
    (signs(system="offline"), False),
    (signs(system=""), False),  # no systemd
    (signs(jobs="kexec.target systemd-kexec.service"), False),
    (signs(jobs="reboot.target"), False),
    (signs(jobs="apt-daily.service"), True),  # a job, but not a shutdown
    (signs(preparing="b true", inhibited='s "shutdown:sleep"'), False),
    (signs(inhibited='s "shutdown:sleep"'), True),  # inhibitors held, but no shutdown asked for
    ([], False),
], ids=lambda value: value if isinstance(value, bool) else None)
def test_shows_no_shutdown_only_when_the_host_says_so_plainly(lines, no_shutdown):
    assert OldBoot(lines).shows_no_shutdown() is no_shutdown


@pytest.mark.parametrize("max_delay, seconds", [("t 5000000", 5.0), ("t 120000000", 120.0), ("", 0.0), ("b true", 0.0)])
def test_inhibit_delay_max(max_delay, seconds):
    assert OldBoot(signs(max_delay=max_delay)).inhibit_delay_max == seconds


def test_status_file_and_summary():
    status = {"state": "issued", "command": "systemctl kexec --no-block", "rc": 0, "stderr": ""}
    old = OldBoot(signs(preparing="b true", inhibited='s "shutdown:sleep"', max_delay="t 120000000",
                        status=json.dumps(status)))
    assert old.status == status
    assert old.summary() == ("systemd: running; logind is preparing for shutdown; delay inhibitors on shutdown:sleep "
                             "(logind waits up to 120 s); the reboot's child ran systemctl kexec --no-block, which "
                             "exited 0")


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null"])
def test_a_missing_or_broken_status_file_is_no_status(text):
    assert OldBoot(signs(status=text)).status is None


# --- the remote command, run by sh against fake systemctl and busctl --------------------------------------

FAKE_SYSTEMCTL = """#!/bin/sh
case "$1" in
  is-system-running) echo running; exit 0 ;;
  list-jobs) printf '%s\\n' '1201 kexec.target          start waiting' '1202 systemd-kexec.service start waiting' ;;
esac
"""
# busctl get-property prints the type letter, a space and the value (strings quoted).
FAKE_BUSCTL = """#!/bin/sh
case "$6" in
  PreparingForShutdown) echo 'b true' ;;
  DelayInhibited) echo 's "shutdown:sleep"' ;;
  InhibitDelayMaxUSec) echo 't 120000000' ;;
esac
"""


def fake_bin(tmp_path, programs):
    directory = tmp_path / "bin"
    directory.mkdir()
    for name, text in programs.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    return str(directory)


def run_command(tmp_path, programs, status_text=None):
    status = tmp_path / "run/kernel-kexec-reboot/abc.status"
    if status_text is not None:
        status.parent.mkdir(parents=True)
        status.write_text(status_text)
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % fake_bin(tmp_path, programs))
    done = subprocess.run(["sh", "-c", command(STATE, str(status))], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_command_prints_every_sign_as_the_tools_print_them(tmp_path):
    status = {"state": "issued", "command": "systemctl kexec --no-block", "rc": 0, "stderr": "a: b\n"}
    lines = run_command(tmp_path, {"systemctl": FAKE_SYSTEMCTL, "busctl": FAKE_BUSCTL}, json.dumps(status) + "\n")
    with open("/proc/sys/kernel/random/boot_id") as handle:
        assert lines[0] == handle.read().strip()
    old = OldBoot(lines[3:])
    assert (old.system, old.jobs, old.preparing) == ("running", ["kexec.target", "systemd-kexec.service"], True)
    assert (old.delay_inhibited, old.inhibit_delay_max, old.status) == ("shutdown:sleep", 120.0, status)
    assert not old.shows_no_shutdown()


def test_the_command_on_a_host_without_systemd_logind_or_status(tmp_path):
    # Every tool fails as it does where it is missing; the boot's identity still comes first, rc 0.
    missing = "#!/bin/sh\necho \"$0: not found\" >&2\nexit 127\n"
    lines = run_command(tmp_path, {"systemctl": missing, "busctl": missing})
    assert lines[3:] == ["system: ", "jobs: ", "PreparingForShutdown: ", "DelayInhibited: ", "InhibitDelayMaxUSec: ",
                         "status: "]
    old = OldBoot(lines[3:])
    assert (old.system, old.jobs, old.preparing, old.status, old.inhibit_delay_max) == (None, [], False, None, 0.0)
