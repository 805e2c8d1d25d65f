"""kexec_reboot's module side: load or pick the image, then hand the reboot to start_reboot.

reboot.start_reboot is replaced by a recorder in every test, and os.fork/os.execvpe
refuse, so nothing here can fork a child that reboots the host running the tests.
"""

import json
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES, KEXEC_FILE_UNLOAD
from ansible_collections.kernel.kexec.plugins.modules import kexec_reboot, kexec_load

from ..fakes.host import BOOT_ID, OLD_RELEASE, RELEASE, ROOT_UUID
from ..fakes.init_systems import Tree


@pytest.fixture(autouse=True)
def reboot_auto_loads_by_file(monkeypatch):
    """These tests follow kexec_reboot's file-syscall path; its choice of the legacy loader for
    ``method: auto`` on BIOS x86_64 hosts is tested in test_reboot_method.py."""
    monkeypatch.setattr(reboot, "reboot_method", lambda kexec: ("auto", None))


ENTRY_ARGS = "root=UUID=%s ro quiet" % ROOT_UUID


class Started(list):
    """Calls of reboot.start_reboot as (command, delay): the RebootOrder's argv (None for the reboot
    syscall) and pre_reboot_delay. ``orders``, ``statuses``, ``units``, ``remove_dirs``: each call's."""

    def __init__(self):
        super().__init__()
        self.orders, self.statuses, self.units, self.remove_dirs = [], [], [], []

    def __call__(self, order, status, delay=0, runner=None, unit=None, root="/", arch=None, remove_dir=None):
        assert callable(runner)
        self.append((order.argv, delay))
        self.orders.append(order)
        self.statuses.append(status)
        self.units.append(unit)
        self.remove_dirs.append(remove_dir)


@pytest.fixture
def started(monkeypatch):
    """Calls of reboot.start_reboot; os.fork and os.execvpe refuse in case anything slips past."""
    def refuse(*args):
        raise AssertionError("a real fork or exec was attempted")
    monkeypatch.setattr(reboot.os, "fork", refuse)
    monkeypatch.setattr(reboot.os, "execvpe", refuse)
    calls = Started()
    monkeypatch.setattr(reboot, "start_reboot", calls)
    return calls


@pytest.fixture
def euid(monkeypatch):
    """The module's view of os.geteuid(); root unless a test says otherwise."""
    ids = {"euid": 0}
    monkeypatch.setattr(kexec_reboot.os, "geteuid", lambda: ids["euid"])
    return ids


@pytest.fixture
def run(monkeypatch, host, run_module, started, euid):
    def fake_tree_kexec():
        return Kexec(root=host.root, arch=ARCHES["x86_64"], euid=euid["euid"])
    monkeypatch.setattr(kexec_reboot, "Kexec", fake_tree_kexec)
    monkeypatch.setattr(kexec_load, "Kexec", fake_tree_kexec)
    return lambda module=kexec_reboot, **args: run_module(module, **args)


SYSTEMCTL_KEXEC = ["systemctl", "kexec", "--no-block", "--message=Reboot initiated by Ansible (kernel.kexec.kexec_reboot)"]
NONCE = "5f0c3a9e1b7d4c2e8a6f0b1d3c5e7a90"


def test_loads_then_starts_the_reboot(run, host, kernel, started):
    rc, result = run(pre_reboot_delay=7, msg="patch night", nonce=NONCE)
    assert (rc, result["changed"], result["method"], result["boot_id"]) == (0, True, "kexec", BOOT_ID)
    assert result["expected"]["release"] == RELEASE
    assert result["reboot_by"] == "systemctl kexec --no-block --message=patch night"
    assert [load["kernel"] for load in kernel.loads] == [host.kernel()]
    assert started == [(["systemctl", "kexec", "--no-block", "--message=patch night"], 7)]
    # The run's status file and, where systemd runs, the scope its child is moved into: both named by the nonce.
    assert started.statuses == [host.path("run/kernel-kexec-reboot/%s.status" % NONCE)]
    assert started.units == ["kexec-reboot-%s.scope" % NONCE]


ANSIBLE_TMPDIR = "/root/.ansible/tmp/ansible-tmp-1796180670.47-27622-1234/"


@pytest.mark.parametrize("extra, removed", [
    ({"_ansible_tmpdir": ANSIBLE_TMPDIR}, ANSIBLE_TMPDIR),
    ({"_ansible_tmpdir": ANSIBLE_TMPDIR, "_ansible_keep_remote_files": True}, None),  # the user keeps them
    ({"_ansible_tmpdir": "/root/work/"}, None),  # not a directory Ansible named: never removed
    ({}, None),  # pipelining: no tmp dir
])
def test_reboot_child_takes_over_the_tmp_dir(run, kernel, started, extra, removed):
    rc, result = run(**extra)
    assert rc == 0 and started.remove_dirs == [removed]
    # The controller's cue (it pops the key) to leave the directory to the target and send nothing more.
    assert result.get("_ansible_suppress_tmpdir_delete", False) is (removed is not None)


def test_check_mode_starts_nothing(run, kernel, started):
    rc, result = run(_ansible_check_mode=True)
    assert (rc, result["method"], result["expected"]) == (0, "kexec", {"release": RELEASE, "cmdline": ENTRY_ARGS})
    assert started == []
    assert kernel.recorder.calls == []


def test_needs_root(run, host, kernel, started, euid):
    run(kexec_load, kernel=host.kernel())  # loaded: nothing left that would need root but the reboot itself
    euid["euid"] = 1000
    rc, result = run()
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"] == "rebooting needs root (CAP_SYS_BOOT): use become: true"
    assert started == []
    assert len(kernel.recorder.calls) == 1  # the load above


def test_kernel_loaded_by_another_tool_is_booted_with_a_warning(run, host, kernel, started):
    host.set_sys("sys/kernel/kexec_loaded", 1)
    rc, result = run()
    assert (rc, result["method"], result["expected"]) == (0, "kexec", {"release": None, "cmdline": None})
    # a list of str before ansible-core 2.19, of WarningSummary dicts since
    assert "only the new boot_id can be verified" in json.dumps(result["warnings"])
    assert "warning" not in result
    assert kernel.recorder.calls == []
    assert started == [(SYSTEMCTL_KEXEC, 0)]


def test_fallback_full_unloads_then_reboots_through_firmware(run, host, kernel, started):
    run(kexec_load, kernel=host.kernel(OLD_RELEASE))  # an image is loaded before kexec gets disabled
    host.set_sys("proc/sys/kernel/kexec_load_disabled", 1)
    rc, result = run(kernel=host.kernel(), fallback="full")
    assert (rc, result["method"], result["loaded"]) == (0, "full", None)
    assert "kexec is disabled" in result["fallback_reason"]
    assert kernel.recorder.calls[-1][1][4].value == KEXEC_FILE_UNLOAD  # or newer systemd would kexec it anyway
    assert host.read("sys/kernel/kexec_loaded").strip() == "0"
    assert started == [(["systemctl", "reboot", "--no-block",
                         "--message=Reboot initiated by Ansible (kernel.kexec.kexec_reboot)"], 0)]
    assert started.orders[0].env == {"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"}  # or newer systemd would kexec anyway


def test_fallback_full_in_check_mode_unloads_nothing(run, host, kernel, started):
    run(kexec_load, kernel=host.kernel(OLD_RELEASE))
    host.set_sys("proc/sys/kernel/kexec_load_disabled", 1)
    rc, result = run(kernel=host.kernel(), fallback="full", _ansible_check_mode=True)
    assert (rc, result["method"]) == (0, "full")
    assert len(kernel.recorder.calls) == 1  # the earlier load only
    assert started == []


@pytest.mark.parametrize("args, message", [
    ({}, "kexec is disabled"),  # fallback none: the host cannot kexec
    ({"kernel": "/nonexistent/vmlinuz", "fallback": "full"}, "does not exist"),  # input errors fail either way
])
def test_fails_without_rebooting(run, host, kernel, started, args, message):
    host.set_sys("proc/sys/kernel/kexec_load_disabled", 1)
    rc, result = run(**args)
    assert (rc, result["failed"]) == (1, True)
    assert message in result["msg"]
    assert started == []
    assert kernel.recorder.calls == []


# --- the init system: a clean reboot through it, or none without allow_unclean_reboot --------------------

def without_systemd(host):
    """The fake host's init system becomes Debian's sysvinit (runlevel 6 kexecs only with kexec-tools' script)."""
    os.rmdir(host.path("run/systemd/system"))
    return Tree(host.root)


def test_a_host_whose_init_system_cannot_kexec_cleanly_is_refused(run, host, kernel, started):
    without_systemd(host).sysvinit(kexec_script=False)
    rc, result = run()
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"].startswith("refusing an unclean kexec reboot: runlevel 6 reboots through firmware")
    assert "Set allow_unclean_reboot: true" in result["msg"]
    assert started == [] and kernel.recorder.calls == []


def test_allow_unclean_reboot_says_so(run, host, kernel, started):
    without_systemd(host).pid1("tini")
    rc, result = run(allow_unclean_reboot=True)
    assert rc == 0 and result["method"] == "kexec"
    assert result["reboot_by"].startswith("sync, then the reboot syscall at once (unclean")
    assert "the reboot is unclean (allow_unclean_reboot)" in json.dumps(result["warnings"])
    assert started == [(None, 0)] and started.units == [None]


@pytest.mark.parametrize("build, argv", [
    (Tree.openrc_init, ["/sbin/openrc-shutdown", "--kexec", "now"]),
    (Tree.runit, ["/usr/bin/runit-init", "6"]),
    (Tree.sysvinit, ["/sbin/telinit", "6"]),
], ids=["openrc-init", "runit", "sysvinit"])
def test_reboots_through_the_init_system(run, host, kernel, started, build, argv):
    build(without_systemd(host))
    rc, result = run()
    assert (rc, result["method"], result["reboot_by"]) == (0, "kexec", " ".join(argv))
    assert "warnings" not in result
    assert started == [(argv, 0)] and started.units == [None]  # no systemd: no scope to move the child into


def test_fallback_full_reboots_through_the_init_system_where_it_cannot_kexec_cleanly(run, host, kernel, started):
    without_systemd(host).busybox()
    rc, result = run(fallback="full")
    assert (rc, result["method"], result["reboot_by"]) == (0, "full", "/sbin/reboot")
    assert "busybox init has no kexec" in result["fallback_reason"]
    assert started == [(["/sbin/reboot"], 0)] and kernel.recorder.calls == []


def test_commands_run_with_their_arguments_as_they_are():
    # The reboot's child runs the command after the module answered: no fail_json, no $VAR or ~ expansion of
    # a msg, the environment added.
    calls = []

    class Module:
        def run_command(self, argv, **kwargs):
            calls.append((argv, kwargs))
            return 0, "", ""
    run = kexec_reboot.command_runner(Module())
    assert run(["systemctl", "reboot", "--message=$HOME ~"], {"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"}) == (0, "", "")
    assert calls == [(["systemctl", "reboot", "--message=$HOME ~"],
                      {"environ_update": {"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"}, "expand_user_and_vars": False,
                       "handle_exceptions": False})]
