import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kdump.systemd import unit_state


class FakeSystemctl:
    def __init__(self, rc=0, out=""):
        self.rc, self.out, self.calls = rc, out, []

    def __call__(self, argv):
        self.calls.append(argv)
        return self.rc, self.out, ""


@pytest.mark.parametrize("out, state", [
    ("LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n",
     {"installed": True, "active": True, "enabled": True, "active_state": "active", "unit_file_state": "enabled"}),
    ("LoadState=loaded\nActiveState=failed\nUnitFileState=disabled\n",
     {"installed": True, "active": False, "enabled": False, "active_state": "failed", "unit_file_state": "disabled"}),
    ("LoadState=not-found\nActiveState=inactive\nUnitFileState=\n",
     {"installed": False, "active": False, "enabled": False, "active_state": "inactive", "unit_file_state": None}),
])
def test_unit_state(out, state):
    runner = FakeSystemctl(out=out)
    assert unit_state(runner, "kdump-tools.service") == state
    assert runner.calls == [["systemctl", "show", "--property=LoadState,ActiveState,UnitFileState", "--",
                             "kdump-tools.service"]]


def test_no_systemd_no_state():
    assert unit_state(None, "kdump.service") is None
    assert unit_state(FakeSystemctl(rc=1), "kdump.service") is None
