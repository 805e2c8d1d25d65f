"""Target side of kexec_reboot: load_requested, prepare, unload_for_full_reboot, start_reboot.

Safety: start_reboot forks, execs systemctl or makes the reboot syscall. Every
test here runs with os.fork, os.execvpe and os._exit refusing (autouse guard);
the start_reboot tests replace them, and everything else the child would
touch, with recorders. The reboot syscall only ever reaches fake_syscall.
"""

import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot, syscalls
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import RECORD_DIR, read_record, record_path
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES, KEXEC_FILE_UNLOAD

from ...fakes import host as fakes
from ...fakes.host import BOOT_ID, OLD_RELEASE, RELEASE, ROOT_UUID


@pytest.fixture(autouse=True)
def reboot_auto_loads_by_file(monkeypatch):
    """These tests follow kexec_reboot's file-syscall path; its choice of the legacy loader for
    ``method: auto`` on BIOS x86_64 hosts is tested in test_reboot_method.py."""
    monkeypatch.setattr(reboot, "reboot_method", lambda kexec: ("auto", None))


X86_64 = ARCHES["x86_64"]
ENTRY_ARGS = "root=UUID=%s ro quiet" % ROOT_UUID  # grub.cfg's default entry
NO_KEXEC_EXPECTED = {"release": None, "cmdline": None}


@pytest.fixture(autouse=True)
def no_fork_or_exec(monkeypatch):
    """Nothing in this file may fork, exec or exit for real."""
    def refuse(*args):
        raise AssertionError("unmocked process call reached os: %r" % (args,))
    for name in ("fork", "execvpe", "_exit", "setsid"):
        monkeypatch.setattr(reboot.os, name, refuse)


def load_old(kexec, host, kernel):
    """The older kernel loaded earlier through kernel.kexec; the recorded calls are cleared."""
    kexec.ensure_loaded(LoadRequest(kernel=host.kernel(OLD_RELEASE), cmdline="ro old"))
    del kernel.recorder.calls[:]


# --- load_requested / has_systemd ---------------------------------------------------------------------

@pytest.mark.parametrize("params, requested", [
    ({}, False),
    ({"kernel": None, "initrd": None, "cmdline": None, "append": [], "remove": [], "force": False}, False),
    ({"reuse_cmdline": False, "method": "file"}, False),  # how to load, not what
    ({"kernel": "/boot/vmlinuz"}, True),
    ({"initrd": "/boot/initrd.img"}, True),
    ({"cmdline": "ro"}, True),
    ({"append": ["console=ttyS0"]}, True),
    ({"remove": ["quiet"]}, True),
    ({"force": True}, True),
])
def test_load_requested(params, requested):
    assert bool(reboot.load_requested(params)) is requested


@pytest.mark.parametrize("run_systemd, expected", [(None, False), ("directory", True), ("file", False)])
def test_has_systemd(tmp_path, run_systemd, expected):
    (tmp_path / "run/systemd").mkdir(parents=True)
    if run_systemd == "directory":
        (tmp_path / "run/systemd/system").mkdir()
    elif run_systemd == "file":
        (tmp_path / "run/systemd/system").write_text("")
    assert reboot.has_systemd(str(tmp_path)) is expected


# --- prepare -------------------------------------------------------------------------------------------

def test_prepare_loads_default_entry_when_nothing_loaded(kexec, host, kernel):
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert (plan["method"], plan["load_changed"], plan["changed"], plan["boot_id"]) == ("kexec", True, True, BOOT_ID)
    assert plan["expected"] == {"release": RELEASE, "cmdline": ENTRY_ARGS}
    assert plan["loaded"] == {"kernel": host.kernel(), "kernel_release": RELEASE, "initrd": host.initrd(),
                              "cmdline": ENTRY_ARGS, "method": "file"}
    assert "warning" not in plan and "fallback_reason" not in plan
    assert [load["kernel"] for load in kernel.loads] == [host.kernel()]


def test_prepare_loads_when_asked_even_if_something_is_loaded(kexec, host, kernel):
    load_old(kexec, host, kernel)
    plan = reboot.prepare(kexec, LoadRequest(kernel=host.kernel(), append=["console=ttyS0"]), True, "none", False)
    assert plan["expected"]["release"] == RELEASE
    assert plan["expected"]["cmdline"].endswith(" console=ttyS0")
    assert plan["load_changed"] is True
    assert len(kernel.recorder.calls) == 1


def test_prepare_uses_what_is_loaded_when_nothing_named(kexec, host, kernel):
    load_old(kexec, host, kernel)
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert (plan["method"], plan["load_changed"]) == ("kexec", False)
    assert plan["expected"] == {"release": OLD_RELEASE, "cmdline": "ro old"}
    assert plan["loaded"] == read_record(host.root, "default", BOOT_ID)
    assert kernel.recorder.calls == []


def test_prepare_kernel_loaded_by_another_tool_warns(kexec, host, kernel):
    host.set_sys("sys/kernel/kexec_loaded", 1)  # loaded, but no record of ours
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert plan["method"] == "kexec"
    assert plan["expected"] == NO_KEXEC_EXPECTED
    assert "only the new boot_id can be verified" in plan["warning"]
    assert kernel.recorder.calls == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_prepare_reports_systemd(kexec, host, kernel, check_mode):
    assert reboot.prepare(kexec, LoadRequest(), False, "none", check_mode)["systemd"] is False
    os.makedirs(host.path("run/systemd/system"))
    assert reboot.prepare(kexec, LoadRequest(), False, "none", check_mode)["systemd"] is True


def test_prepare_check_mode_makes_no_syscall(kexec, host, kernel):
    plan = reboot.prepare(kexec, LoadRequest(kernel=host.kernel()), True, "none", True)
    assert (plan["method"], plan["load_changed"], plan["expected"]["release"]) == ("kexec", True, RELEASE)
    assert kernel.recorder.calls == []
    assert not host.exists(RECORD_DIR)


def _disable(host, kernel):
    host.set_sys("proc/sys/kernel/kexec_load_disabled", 1)


def _unsupported(host, kernel):
    host.remove("sys/kernel/kexec_loaded")


def _signature_rejected(host, kernel):
    kernel.recorder.errors = [errno.EKEYREJECTED]


# setup, error raised without fallback, words of the reason
HOST_CANNOT_KEXEC = [
    pytest.param(_disable, KexecUnavailable, "kexec is disabled", id="disabled"),
    pytest.param(_unsupported, KexecUnavailable, "no kexec support", id="unsupported"),
    pytest.param(_signature_rejected, SyscallError, "signature was rejected", id="syscall-refused"),
]


@pytest.mark.parametrize("setup, error, reason", HOST_CANNOT_KEXEC)
def test_prepare_falls_back_to_full(kexec, host, kernel, setup, error, reason):
    setup(host, kernel)
    plan = reboot.prepare(kexec, LoadRequest(kernel=host.kernel()), True, "full", False)
    assert (plan["method"], plan["loaded"], plan["expected"]) == ("full", None, NO_KEXEC_EXPECTED)
    assert reason in plan["fallback_reason"]
    assert (plan["boot_id"], plan["changed"]) == (BOOT_ID, True)


@pytest.mark.parametrize("setup, error, reason", HOST_CANNOT_KEXEC)
def test_prepare_without_fallback_raises(kexec, host, kernel, setup, error, reason):
    setup(host, kernel)
    with pytest.raises(error, match=reason):
        reboot.prepare(kexec, LoadRequest(kernel=host.kernel()), True, "none", False)


@pytest.mark.parametrize("request_fields, message", [
    ({"kernel": "/nonexistent/vmlinuz"}, "kernel /nonexistent/vmlinuz does not exist"),
    ({"append": ["quiet splash"]}, "is not a single kernel argument"),
    ({"method": "legacy"}, "cannot be loaded by the legacy kexec_load"),  # the fake header has no init_size
])
def test_prepare_input_errors_raise_even_with_fallback(kexec, host, kernel, request_fields, message):
    request = LoadRequest()
    for key, value in request_fields.items():  # set after LoadRequest's own check: prepare must refuse it
        setattr(request, key, value)
    with pytest.raises(KexecError, match=message) as info:
        reboot.prepare(kexec, request, True, "full", False)
    assert not isinstance(info.value, (KexecUnavailable, SyscallError))
    assert kernel.recorder.calls == []


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("request_fields", [{}, {"method": "file"}, {"method": "legacy"}],
                         ids=["default-entry", "file", "legacy"])
def test_prepare_refuses_a_truncated_kernel_even_with_fallback(kexec, host, kernel, request_fields, check_mode):
    """kexec_reboot's load: a cut default kernel is an error, never a kexec and never a firmware reboot instead."""
    fakes.write_bzimage(host.kernel(), release=RELEASE, cut=1)
    with pytest.raises(KexecError) as info:
        reboot.prepare(kexec, LoadRequest(**request_fields), bool(request_fields), "full", check_mode)
    assert info.value.msg.startswith("kernel %s is truncated: its x86 setup header" % host.kernel())
    assert "promises 4096 bytes, the file has 4095;" in info.value.msg
    assert not isinstance(info.value, (KexecUnavailable, SyscallError))
    assert kernel.recorder.calls == []


# --- unload_for_full_reboot ----------------------------------------------------------------------------

def test_unload_for_full_reboot_unloads(kexec, host, kernel):
    load_old(kexec, host, kernel)
    reboot.unload_for_full_reboot(kexec)
    assert [call[1][4].value for call in kernel.recorder.calls] == [KEXEC_FILE_UNLOAD]
    assert kexec.state.kexec_loaded is False
    assert not host.exists(record_path("", "default"))


def test_unload_for_full_reboot_nothing_loaded(kexec, kernel):
    reboot.unload_for_full_reboot(kexec)
    assert kernel.recorder.calls == []


def _kernel_refuses(kexec, kernel):
    kernel.recorder.errors = [errno.EPERM]


def _not_root(kexec, kernel):
    kexec.euid = 1000


def _kernel_keeps_the_image(kexec, kernel):
    kernel.recorder.on_call = None  # the syscall succeeds, yet kexec_loaded stays 1


@pytest.mark.parametrize("refusal", [_kernel_refuses, _not_root, _kernel_keeps_the_image])
def test_unload_for_full_reboot_ignores_refusal(kexec, host, kernel, refusal):
    load_old(kexec, host, kernel)
    refusal(kexec, kernel)
    reboot.unload_for_full_reboot(kexec)  # SYSTEMCTL_SKIP_AUTO_KEXEC still keeps systemd from kexec
    assert kexec.state.kexec_loaded is True


# --- reboot_command ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, msg, command", [
    ("kexec", None, ["systemctl", "kexec", "--no-block"]),
    ("full", "", ["systemctl", "reboot", "--no-block"]),
    ("kexec", "patch night", ["systemctl", "kexec", "--no-block", "--message=patch night"]),
    ("full", "fallback", ["systemctl", "reboot", "--no-block", "--message=fallback"]),
])
def test_reboot_command(method, msg, command):
    assert reboot.reboot_command(method, msg) == command


# --- start_reboot --------------------------------------------------------------------------------------

class ChildExit(Exception):
    """Raised by the mocked os._exit: the child ended here."""


class FakeProcess:
    """os and time as the forked child sees them, every call recorded in order in ``events``.

    The fakes are in place only while ``start`` runs: pytest's own output
    capture calls os.dup2 between tests and must reach the real one.
    """

    DEVNULL_FD = 917
    EXIT_SEEN_FD, HELD_FD = 31, 32  # the pipe: the child's end, the end the module holds until it exits

    def __init__(self, fork_returns):
        self.events = []
        self.fork_returns = fork_returns
        self.replace = {}  # os function name -> another fake, for one test

    def start(self, *args, **kwargs):
        """Call start_reboot; return ('returned', value) or ('_exit', code)."""
        fakes = {"pipe": self.pipe, "fork": self.fork, "close": self.close, "setsid": self.setsid, "open": self.open,
                 "dup2": self.dup2, "execvpe": self.execvpe, "_exit": self._exit}
        fakes.update(self.replace)
        with pytest.MonkeyPatch.context() as patch:
            for name, fake in fakes.items():
                patch.setattr(reboot.os, name, fake)
            patch.setattr(reboot.time, "sleep", self.sleep)
            patch.setattr(reboot.select, "select", self.select)
            patch.setattr(reboot.shutil, "rmtree", self.rmtree)
            patch.setattr(syscalls.os, "sync", lambda: self.events.append(("sync",)))
            try:
                return "returned", reboot.start_reboot(*args, **kwargs)
            except ChildExit as exited:
                return "_exit", exited.args[0]

    def pipe(self):
        self.events.append(("pipe",))
        return self.EXIT_SEEN_FD, self.HELD_FD

    def fork(self):
        self.events.append(("fork",))
        if isinstance(self.fork_returns, BaseException):
            raise self.fork_returns
        return self.fork_returns

    def close(self, fd):
        self.events.append(("close", fd))

    def select(self, readable, writable, errors, timeout):
        """The module's process has exited: end-of-file on the pipe."""
        self.events.append(("wait for exit", tuple(readable), timeout))
        return readable, [], []

    def rmtree(self, path, ignore_errors=False):
        self.events.append(("rmtree", path, ignore_errors))

    def setsid(self):
        self.events.append(("setsid",))

    def open(self, path, flags):
        self.events.append(("open", path, flags))
        return self.DEVNULL_FD

    def dup2(self, fd, fd2):
        self.events.append(("dup2", fd, fd2))

    def sleep(self, seconds):
        self.events.append(("sleep", seconds))

    def execvpe(self, file, args, env):
        """A real exec never returns: it replaces the process or raises. This one raises, as without systemctl."""
        self.events.append(("execvpe", file, args, dict(env)))
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", file)

    def _exit(self, code):
        self.events.append(("_exit", code))
        raise ChildExit(code)

    def names(self):
        return [event[0] for event in self.events]


@pytest.fixture
def child(monkeypatch):
    monkeypatch.delenv("SYSTEMCTL_SKIP_AUTO_KEXEC", raising=False)
    return FakeProcess(fork_returns=0)


def run_child(child, *args, **kwargs):
    ended, code = child.start(*args, **kwargs)
    assert ended == "_exit", "the child returned into the module instead of ending in os._exit"
    return code


DETACH = [("pipe",), ("fork",), ("close", FakeProcess.HELD_FD), ("setsid",), ("open", os.devnull, os.O_RDWR)] + [
    ("dup2", FakeProcess.DEVNULL_FD, fd) for fd in (0, 1, 2)] + [
    ("wait for exit", (FakeProcess.EXIT_SEEN_FD,), reboot.PARENT_EXIT_TIMEOUT)]


def test_parent_returns_at_once_holding_the_pipe(fake_syscall):
    parent = FakeProcess(fork_returns=4242)
    assert parent.start("kexec", True, delay=30, msg="m", remove_dir="/root/.ansible/tmp/ansible-tmp-1") == (
        "returned", None)
    # The write end stays open in the module's process until it exits: that is the child's cue.
    assert parent.events == [("pipe",), ("fork",), ("close", FakeProcess.EXIT_SEEN_FD)]
    assert fake_syscall.calls == []


def test_failed_fork_closes_the_pipe():
    parent = FakeProcess(fork_returns=OSError(errno.EAGAIN, "fork"))
    with pytest.raises(OSError):
        parent.start("kexec", True)
    assert parent.events == [("pipe",), ("fork",), ("close", FakeProcess.EXIT_SEEN_FD),
                             ("close", FakeProcess.HELD_FD)]


@pytest.mark.parametrize("delay, slept", [(0, reboot.SETTLE_DELAY), (0.1, reboot.SETTLE_DELAY), (7, 7)])
def test_child_waits_for_the_module_to_exit_then_the_delay(child, delay, slept):
    run_child(child, "kexec", True, delay=delay)
    assert child.events[len(DETACH) - 1][0] == "wait for exit"
    assert child.events[len(DETACH)] == ("sleep", slept)


def test_child_removes_the_tmp_dir_after_the_module_exited(child):
    run_child(child, "kexec", True, remove_dir="/root/.ansible/tmp/ansible-tmp-1")
    assert child.events[:len(DETACH)] == DETACH
    assert child.events[len(DETACH)] == ("rmtree", "/root/.ansible/tmp/ansible-tmp-1", True)
    assert child.names()[len(DETACH) + 1:] == ["sleep", "execvpe", "_exit"]


@pytest.mark.parametrize("method, msg, verb, skip_auto_kexec", [
    ("kexec", None, "kexec", None),
    ("kexec", "patch night", "kexec", None),
    ("full", "fallback", "reboot", "1"),
])
def test_child_with_systemd_execs_systemctl(child, fake_syscall, method, msg, verb, skip_auto_kexec):
    code = run_child(child, method, True, delay=3, msg=msg)
    assert child.events[:len(DETACH)] == DETACH
    assert child.names()[len(DETACH):] == ["sleep", "execvpe", "_exit"]
    file, argv, env = child.events[-2][1:]
    assert (file, argv) == ("systemctl", reboot.reboot_command(method, msg))
    assert argv[1] == verb
    assert env.get("SYSTEMCTL_SKIP_AUTO_KEXEC") == skip_auto_kexec
    assert code == 1
    assert fake_syscall.calls == []  # a failed exec must not fall through to the abrupt reboot syscall


@pytest.mark.parametrize("method, command", [
    ("kexec", syscalls.LINUX_REBOOT_CMD_KEXEC),
    ("full", syscalls.LINUX_REBOOT_CMD_RESTART),
])
def test_child_without_systemd_makes_the_reboot_syscall(child, fake_syscall, method, command):
    run_child(child, method, False, delay=0, msg="ignored", arch=X86_64)
    assert child.events[:len(DETACH)] == DETACH
    assert child.names()[len(DETACH):] == ["sleep", "sync", "_exit"]
    [(number, args)] = fake_syscall.calls
    assert number == X86_64.reboot
    assert [arg.value for arg in args[:3]] == [syscalls.LINUX_REBOOT_MAGIC1, syscalls.LINUX_REBOOT_MAGIC2, command]


def test_child_exits_when_the_reboot_syscall_fails(child, fake_syscall):
    fake_syscall.errors = [errno.EPERM]
    assert run_child(child, "kexec", False, arch=X86_64) == 1
    assert child.names()[-1] == "_exit"


def test_child_exits_when_detaching_fails(child, fake_syscall):
    def setsid():
        raise PermissionError(errno.EPERM, "setsid")
    child.replace["setsid"] = setsid
    assert run_child(child, "kexec", True) == 1
    assert child.names() == ["pipe", "fork", "close", "_exit"]
    assert fake_syscall.calls == []
