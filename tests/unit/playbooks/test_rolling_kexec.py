"""playbooks/rolling_kexec.yml as written, with ansible-core's own templating: what the reboot task is given
(the health gate and its time bound) and what the summary says of a host whose gate failed. No host is
rebooted here; the run on guests is a molecule scenario's.
"""

import os

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(REPO, "playbooks", "rolling_kexec.yml")
GATE_FAILED = ("test_command 'systemctl is-system-running --wait' failed after the reboot (rc=1): degraded | "
               "Failed to start slow.service")


def plays():
    return DataLoader().load_from_file(PLAYBOOK, trusted_as_template=True)


def reboot_task():
    return plays()[1]["tasks"][0]


def template(text, variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text))


@pytest.mark.parametrize("extra, test_command, reboot_timeout", [
    ({}, "systemctl is-system-running --wait", 600),
    ({"rolling_kexec_reboot_timeout": "900", "rolling_kexec_test_command": "/usr/local/bin/healthy"},
     "/usr/local/bin/healthy", 900),
])
def test_the_gate_runs_within_the_reboot_timeout_it_is_given(extra, test_command, reboot_timeout):
    """The gate is the module's test_command, so its bound is what is left of reboot_timeout (the action
    plugin's tests prove that bound); connect_timeout bounds connections only."""
    args = reboot_task()["kernel.kexec.kexec_reboot"]
    assert template(args["test_command"], dict(extra)) == test_command
    assert template(args["reboot_timeout"], dict(extra)) == reboot_timeout
    assert template(args["connect_timeout"], dict(extra)) == 10


def test_an_empty_test_command_runs_no_gate():
    args = reboot_task()["kernel.kexec.kexec_reboot"]
    omit = "__omit_place_holder__test"
    assert template(args["test_command"].replace("omit", "'%s'" % omit),
                    {"rolling_kexec_test_command": ""}) == omit


def test_the_summary_quotes_a_failed_gate():
    """A host whose gate failed has no rolling_kexec_result: its summary entry is built from the task's
    result, and carries the error that names the command and what it printed."""
    summary = plays()[2]["tasks"][0]
    variables = dict(summary["vars"])
    variables.update(item="web1", hostvars={"web1": {"rolling_kexec_reboot": {
        "failed": True, "rebooted": True, "kernel": "6.12.0-1-amd64", "boot_id": "new", "previous_boot_id": "old",
        "method": "kexec", "msg": GATE_FAILED}}})
    entry = template(summary["ansible.builtin.debug"]["msg"], variables)
    assert entry["failed"] is True and entry["rebooted"] is True and entry["msg"] == GATE_FAILED
