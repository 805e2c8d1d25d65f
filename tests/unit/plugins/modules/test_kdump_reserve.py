"""kdump_reserve: main() end to end on a fake Debian host, with fake GRUB tools.

main() passes runner=module.run_command; the stand-in for ensure_reservation below replaces
it (and root, machine) so nothing outside the fake tree runs. A functools.partial would not
do: the keyword main() passes would win over the partial's.
"""

import json
import subprocess

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel import reserve
from ansible_collections.kernel.kexec.plugins.modules import kdump_reserve

from ..fakes import bootloader as bf

MIB = 1 << 20
DEFAULTS = "etc/default/grub"
CFG = "boot/grub/grub.cfg"


@pytest.fixture(autouse=True)
def no_real_commands(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a real command was about to run: %r" % (args,))
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(AnsibleModule, "run_command", refuse)


class FakeReserve:
    """Stands in for kdump_reserve.ensure_reservation: records main()'s arguments, runs on the fake host."""

    def __init__(self, host):
        self.host = host
        self.tools = bf.grub_tools(host.root)
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(dict(kwargs))
        kwargs.update(root=self.host.root, runner=self.tools, machine="x86_64")
        return reserve.ensure_reservation(**kwargs)


@pytest.fixture
def fake(host, which, monkeypatch):
    host.write(DEFAULTS, bf.default_grub())
    fake = FakeReserve(host)
    monkeypatch.setattr(kdump_reserve, "ensure_reservation", fake)
    return fake


def test_present_sets_it_and_regenerates(host, fake, run_module):
    rc, result = run_module(kdump_reserve, size="256M", bootloader="grub")
    assert rc == 0
    assert result["changed"] is True
    assert (result["crashkernel"], result["active"], result["bootloader"]) == ("256M", "384M-:128M", "grub")
    assert (result["expected"], result["reserved"], result["reboot_required"]) == (256 * MIB, 144 * MIB, True)
    assert result["changed_files"] == [host.path(DEFAULTS)]
    assert (result["backup_files"], result["backups"]) == ({}, [])  # backup: false, as lineinfile's default
    assert not [path for path in host.snapshot() if path.endswith(".kexec-bak")]
    assert "diff" not in result  # only with --diff
    assert bf.effective_args(host.root) == "crashkernel=256M quiet"
    assert fake.tools.names() == ["grub-mkconfig", "grub-script-check"]
    assert "ro crashkernel=256M quiet\n" in host.read(CFG)

    rc, again = run_module(kdump_reserve, size="256M", bootloader="grub")
    assert (rc, again["changed"], len(fake.tools.calls)) == (0, False, 2)


def test_main_passes_its_parameters(fake, run_module):
    run_module(kdump_reserve, size="256M", state="present", bootloader="grub", kernel="6.1.0-28-amd64",
               shrink_to="144M")
    [call] = fake.calls
    runner = call.pop("runner")
    assert runner.__qualname__ == "tool_runner.<locals>.run"
    assert call == {"size": "256M", "state": "present", "bootloader_name": "grub", "kernel": "6.1.0-28-amd64",
                    "shrink_to": "144M", "check_mode": False, "force": False, "backup": False}


def test_defaults_are_auto(fake, run_module):
    rc, result = run_module(kdump_reserve)
    assert rc == 0
    assert (fake.calls[0]["size"], fake.calls[0]["state"], fake.calls[0]["bootloader_name"]) == (
        "auto", "present", "auto")
    assert fake.calls[0]["kernel"] is None and fake.calls[0]["shrink_to"] is None
    assert result["crashkernel"] == "2G-64G:256M,64G-:512M"
    assert "reserves 256M" in result["explanation"]


def test_diff_only_with_diff_mode(host, fake, run_module):
    old = host.read(DEFAULTS)
    rc, result = run_module(kdump_reserve, size="256M", _ansible_diff=True)
    assert rc == 0
    assert result["diff"] == [{"before": old, "after": host.read(DEFAULTS),
                               "before_header": "/etc/default/grub", "after_header": "/etc/default/grub"}]


@pytest.mark.parametrize("size, problem", [
    ("256Q", "crashkernel=256Q: unknown size suffix 'Q' at position 3"),
    ("2G-1G:256M", "range end 1G is not above its start 2G"),
])
def test_bad_size_fails_with_the_reason_and_writes_nothing(host, fake, run_module, size, problem):
    before = host.snapshot()
    rc, result = run_module(kdump_reserve, size=size, _ansible_diff=True)
    assert rc == 1
    assert result["failed"] is True
    assert problem in result["msg"]
    assert "changed" not in result or result["changed"] is False
    assert host.snapshot() == before
    assert fake.tools.calls == []


def test_auto_without_root_fails_asking_for_become(host, fake, run_module):
    host.write("proc/iomem", "00000000-00000000 : System RAM\n")
    rc, result = run_module(kdump_reserve)
    assert rc == 1 and "become: true" in result["msg"]


def test_check_mode_writes_nothing(host, fake, run_module):
    before = host.snapshot()
    rc, result = run_module(kdump_reserve, size="256M", _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0
    assert fake.calls[0]["check_mode"] is True
    assert (result["changed"], result["crashkernel"], result["expected"]) == (True, "256M", 256 * MIB)
    assert result["backups"] == []
    assert len(result["diff"]) == 1 and "crashkernel=256M" in result["diff"][0]["after"]
    assert host.snapshot() == before
    assert fake.tools.calls == []


def test_absent_removes_it(host, fake, run_module):
    host.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    rc, result = run_module(kdump_reserve, state="absent")
    assert rc == 0
    assert (result["changed"], result["crashkernel"], result["expected"]) == (True, None, 0)
    assert result["reboot_required"] is True  # the running kernel has crashkernel=384M-:128M
    assert "explanation" not in result
    assert bf.effective_args(host.root) == "quiet"


def test_shrink_to(host, fake, run_module):
    rc, result = run_module(kdump_reserve, size="256M", shrink_to="128M", _ansible_check_mode=True)
    assert (rc, result["changed"]) == (0, True)
    assert host.read("sys/kernel/kexec_crash_size") == "%d\n" % 0x9000000
    rc, result = run_module(kdump_reserve, size="256M", shrink_to="1G")
    assert rc == 1 and "larger than the %d bytes reserved" % 0x9000000 in result["msg"]


def test_unknown_state_is_refused_by_the_argument_spec(fake, run_module):
    rc, result = run_module(kdump_reserve, state="gone")
    assert rc == 1 and "state" in result["msg"]
    assert fake.calls == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_value_that_reserves_nothing_here_fails_and_writes_nothing(host, fake, run_module, check_mode):
    before = host.snapshot()
    rc, result = run_module(kdump_reserve, size="16G-:512M", _ansible_check_mode=check_mode)
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"].startswith("crashkernel=16G-:512M refused, nothing was changed: ")
    assert "matches no range" in result["msg"] and "force: true" in result["msg"]
    assert (result["crashkernel"], result["computed"]["size"], result["computed"]["compared_ram"]) == (
        "16G-:512M", 0, 8 << 30)
    assert host.snapshot() == before
    assert fake.tools.calls == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_force_writes_it_with_a_warning(host, fake, run_module, check_mode):
    rc, result = run_module(kdump_reserve, size="256M,low", force=True, _ansible_check_mode=check_mode)
    assert (rc, result["changed"], result["crashkernel"], result["expected"]) == (0, True, "256M,low", 0)
    assert fake.calls[0]["force"] is True
    # a string before ansible-core 2.19, a dict with the message after
    [warning] = result["warnings"]
    assert "force: true writes it anyway: ',low' alone reserves nothing" in json.dumps(warning)
    assert ("crashkernel=256M,low" in bf.effective_args(host.root)) is not check_mode


def test_a_tool_that_cannot_start_is_raised_to_the_backend_not_failed_at_once(monkeypatch):
    # fail_json inside run_command would exit before the backend restores what it wrote.
    seen = []

    def run_command(self, argv, **kwargs):
        seen.append((argv, kwargs))
        raise FileNotFoundError(2, "No such file or directory", argv[0])
    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    module = AnsibleModule.__new__(AnsibleModule)
    with pytest.raises(FileNotFoundError):
        kdump_reserve.tool_runner(module)(["zipl"])
    assert seen == [(["zipl"], {"handle_exceptions": False})]


def test_backup_true_keeps_and_returns_backup_files(host, fake, run_module):
    old = host.read(DEFAULTS)
    rc, result = run_module(kdump_reserve, size="256M", bootloader="grub", backup=True)
    assert (rc, result["changed"], fake.calls[0]["backup"]) == (0, True, True)
    files = result["backup_files"]
    assert sorted(files) == sorted([host.path(DEFAULTS), host.path(CFG)])
    assert result["backups"] == sorted(files.values())
    with open(files[host.path(DEFAULTS)]) as handle:
        assert handle.read() == old
