"""The crashkernel role passes its options on to kdump_reserve as written: backup among them."""

import os

from ansible.parsing.dataloader import DataLoader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ROLE = os.path.join(REPO, "roles", "crashkernel")


def load(name):
    return DataLoader().load_from_file(os.path.join(ROLE, name))


def test_backup_is_passed_to_kdump_reserve_and_off_by_default():
    """backup: false is what ansible.builtin.lineinfile and template users expect; the edit is restored on a
    failure either way."""
    [task] = [task for task in load("tasks/main.yml") if "kernel.kexec.kdump_reserve" in task]
    assert task["kernel.kexec.kdump_reserve"]["backup"] == "{{ crashkernel_backup }}"
    assert load("defaults/main.yml")["crashkernel_backup"] is False
    spec = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]["crashkernel_backup"]
    assert (spec["type"], spec["default"]) == ("bool", False)
