"""kexec_reboot never reports a firmware boot as a kexec.

The action plugin makes a nonce per run and passes it to the module, which puts
``kexec_reboot.boot=<nonce>`` on the command line of the image it loads. Only
that image can bring it into the new /proc/cmdline: the bootloader's default
entry, booted through firmware after a failed kexec, has the same release and
arguments but not the nonce. Today's failure: such a boot passed verification.
"""

import re

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.kernel.kexec.plugins.action.kexec_reboot import ActionModule

from ..fakes.host import RELEASE
from .conftest import LOADED_CMDLINE, NEW_BOOT, OLD_BOOT, boot, kexec_plan

NONCE = "5f0c3a9e1b7d4c2e8a6f0b1d3c5e7a9f"
MARK = "kexec_reboot.boot=" + NONCE


@pytest.fixture
def nonce(monkeypatch):
    monkeypatch.setattr(ActionModule, "_new_nonce", staticmethod(lambda: NONCE))
    return NONCE


def loaded_by_this_task(nonce=NONCE, cmdline=LOADED_CMDLINE, **more):
    """The module's answer after loading an image with the nonce on its command line."""
    line = "%s kexec_reboot.boot=%s" % (cmdline, nonce)
    return kexec_plan(cmdline=line, expected={"release": RELEASE, "cmdline": line, "nonce": nonce}, **more)


def test_each_run_passes_a_new_nonce_to_the_module(harness):
    harness.run()
    harness.run()
    first, second = (call["module_args"]["nonce"] for call in harness.target.module_calls)
    assert re.match(r"^[0-9a-f]{32}$", first) and first != second


def test_a_task_cannot_set_the_nonce(harness):
    with pytest.raises(AnsibleActionFail, match="Invalid options for kernel.kexec.kexec_reboot: nonce"):
        harness.run(nonce=NONCE)
    assert harness.events == []


def test_nonce_goes_to_the_module_in_check_mode_too(harness, nonce):
    harness.run(check_mode=True)
    assert harness.target.module_calls[0]["module_args"]["nonce"] == NONCE


def test_kexec_proven_by_the_nonce(harness, nonce):
    harness.target.plan = loaded_by_this_task()
    harness.target.reads = [boot(NEW_BOOT, cmdline="BOOT_IMAGE=x %s %s" % (LOADED_CMDLINE, MARK))]
    result = harness.run()
    assert "failed" not in result
    assert (result["method"], result["verified"]) == ("kexec", True)
    assert MARK in result["verification"]


def test_firmware_boot_of_the_same_kernel_is_not_a_kexec(harness, nonce):
    # The kexec failed and the host came back through firmware into the default entry: same release,
    # every loaded argument present, but not the nonce.
    harness.target.plan = loaded_by_this_task()
    harness.target.reads = [boot(NEW_BOOT, cmdline="BOOT_IMAGE=/vmlinuz-%s %s" % (RELEASE, LOADED_CMDLINE))]
    result = harness.run()
    assert result["failed"] is True and result["rebooted"] is True
    assert "the host came back through firmware (or another boot path), not by the kexec" in result["msg"]
    assert MARK in result["msg"] and NEW_BOOT in result["msg"]
    assert result["method"] != "kexec" and result["verified"] is False


def test_nonce_of_another_run_proves_nothing(harness, nonce):
    other = "0" * 32
    harness.target.plan = loaded_by_this_task()
    harness.target.reads = [boot(NEW_BOOT, cmdline="%s kexec_reboot.boot=%s" % (LOADED_CMDLINE, other))]
    result = harness.run()
    assert result["failed"] is True and result["method"] != "kexec"


def test_image_loaded_before_the_task_is_not_claimed(harness, nonce):
    # Nothing named and an image already loaded (by kexec_load or another tool): the plugin only
    # triggers the reboot, and nothing on the new boot can prove it came from that image.
    harness.target.plan = kexec_plan(load_changed=False)
    result = harness.run()
    assert "failed" not in result
    assert (result["method"], result["verified"]) == ("kexec", False)
    assert "not proven" in result["verification"]


def test_unknown_image_mismatch_is_not_reported_as_kexec(harness, nonce):
    harness.target.reads = [boot(NEW_BOOT, release="5.10.0-1-amd64")]
    result = harness.run()
    assert result["failed"] is True
    assert result["method"] != "kexec" and result["verified"] is False


def test_firmware_fallback_makes_no_kexec_claim(harness, nonce):
    harness.target.plan = kexec_plan(method="full", loaded=None, expected={"release": None, "cmdline": None},
                                     fallback_reason="kexec is disabled")
    result = harness.run()
    assert "failed" not in result and result["method"] == "full"
    assert "verified" not in result


def test_previous_boot_still_reported(harness, nonce):
    harness.target.plan = loaded_by_this_task()
    harness.target.reads = [boot(NEW_BOOT, cmdline="%s %s" % (LOADED_CMDLINE, MARK))]
    result = harness.run()
    assert (result["previous_boot_id"], result["boot_id"]) == (OLD_BOOT, NEW_BOOT)
