"""kexec_reboot refuses bad options on the controller, before any remote call.

A bad option must give one clear error with nothing loaded and nothing
rebooted: no banner probe, no module run (the module is what loads and
reboots). Today's failure: reboot_timeout 0 rebooted the host and then failed.
"""

import pytest

from .conftest import BACK, GONE, NEW_BOOT


def refused(harness, **args):
    result = harness.run(**args)
    assert result["failed"] is True and result["rebooted"] is False
    assert harness.events == [] and harness.target.looks == [] and harness.target.module_calls == []
    return result["msg"]


@pytest.mark.parametrize("args, words", [
    pytest.param({"reboot_timeout": 0}, "reboot_timeout is 0; it must be 10 to 86400 seconds", id="reboot_timeout-0"),
    pytest.param({"reboot_timeout": -5}, "reboot_timeout is -5", id="reboot_timeout-negative"),
    pytest.param({"reboot_timeout": 9}, "reboot_timeout is 9", id="reboot_timeout-too-short"),
    pytest.param({"reboot_timeout": 86401}, "reboot_timeout is 86401", id="reboot_timeout-too-long"),
    pytest.param({"connect_timeout": 0}, "connect_timeout is 0; it must be 1 to 3600 seconds", id="connect_timeout-0"),
    pytest.param({"connect_timeout": -1}, "connect_timeout is -1", id="connect_timeout-negative"),
    pytest.param({"connect_timeout": 120, "reboot_timeout": 60},
                 "connect_timeout (120 s) is longer than reboot_timeout (60 s)", id="connect-longer-than-reboot"),
    pytest.param({"pre_reboot_delay": -1}, "pre_reboot_delay is -1; it must be 0 to 3600 seconds", id="pre-negative"),
    pytest.param({"post_reboot_delay": -1}, "post_reboot_delay is -1", id="post-negative"),
    pytest.param({"post_reboot_delay": 3601, "reboot_timeout": 7200}, "post_reboot_delay is 3601", id="post-too-long"),
    pytest.param({"pre_reboot_delay": 300, "post_reboot_delay": 295, "reboot_timeout": 600},
                 "pre_reboot_delay + post_reboot_delay (595 s) leave less than 10 s of reboot_timeout (600 s)",
                 id="delays-eat-the-timeout"),
    pytest.param({"msg": "patch\0night"}, "msg holds a NUL byte", id="msg-nul"),
    pytest.param({"test_command": "true\0"}, "test_command holds a NUL byte", id="test_command-nul"),
    pytest.param({"test_command": ""}, "test_command is an empty string", id="test_command-empty"),
    # the load inputs, checked here too (the module checks them again on the target)
    pytest.param({"kernel": ""}, "kernel is an empty string", id="kernel-empty"),
    pytest.param({"initrd": ""}, "initrd is an empty string", id="initrd-empty"),
    pytest.param({"kernel": "/boot/vmlinuz\0x"}, "kernel holds a NUL byte", id="kernel-nul"),
    pytest.param({"cmdline": "ro\0quiet"}, "cmdline holds a NUL byte", id="cmdline-nul"),
    pytest.param({"append": ["console=ttyS0\0"]}, "holds a NUL byte", id="append-nul"),
    pytest.param({"remove": ["quiet=1"]}, "is not an argument name", id="remove-with-value"),
])
def test_bad_option_is_refused_before_any_remote_call(harness, args, words):
    msg = refused(harness, **args)
    assert words in msg
    assert "nothing was loaded or rebooted" in msg


def test_every_problem_in_one_message(harness):
    msg = refused(harness, reboot_timeout=0, connect_timeout=0, pre_reboot_delay=-1, msg="a\0b")
    for name in ("reboot_timeout is 0", "connect_timeout is 0", "pre_reboot_delay is -1", "msg holds a NUL byte"):
        assert name in msg


def test_check_mode_refuses_too(harness):
    result = harness.run(check_mode=True, reboot_timeout=0)
    assert result["failed"] is True and harness.target.module_calls == []


def test_limits_themselves_are_accepted(harness):
    harness.target.sights = [GONE, BACK]
    result = harness.run(reboot_timeout=10, connect_timeout=1, pre_reboot_delay=0, post_reboot_delay=0, msg="")
    assert "failed" not in result and result["boot_id"] == NEW_BOOT


def test_explicit_empty_cmdline_is_passed_on(harness):
    harness.target.sights = [GONE, BACK]
    result = harness.run(cmdline="")
    assert "failed" not in result
    assert harness.target.module_calls[0]["module_args"]["cmdline"] == ""
