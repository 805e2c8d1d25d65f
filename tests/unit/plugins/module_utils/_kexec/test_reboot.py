"""Target side of kexec_reboot: load_requested, prepare, unload_for_full_reboot.

start_reboot (the fork and the reboot's child) is tested in test_reboot_child.py. Every
test here runs with os.fork, os.execvpe and os._exit refusing (autouse guard).
"""

import errno

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import RECORD_DIR, read_record, record_path
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import KEXEC_FILE_UNLOAD

from ...fakes import host as fakes
from ...fakes.host import BOOT_ID, OLD_RELEASE, RELEASE, ROOT_UUID


@pytest.fixture(autouse=True)
def reboot_auto_loads_by_file(monkeypatch):
    """These tests follow kexec_reboot's file-syscall path; its choice of the legacy loader for
    ``method: auto`` on BIOS x86_64 hosts is tested in test_reboot_method.py."""
    monkeypatch.setattr(reboot, "reboot_method", lambda kexec: ("auto", None))


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


# --- load_requested ----------------------------------------------------------------------------------

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
