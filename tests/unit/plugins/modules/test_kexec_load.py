import errno
import os
import socket

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import RECORD_DIR, read_record, record_path
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import (
    ARCHES, KEXEC_FILE_ON_CRASH, KEXEC_FILE_UNLOAD,
)
from ansible_collections.kernel.kexec.plugins.modules import kexec_load

from ..fakes.host import BOOT_ID, ROOT_UUID


@pytest.fixture
def run(monkeypatch, host, run_module):
    monkeypatch.setattr(kexec_load, "Kexec", lambda: Kexec(root=host.root, arch=ARCHES["x86_64"], euid=0))
    return lambda **args: run_module(kexec_load, **args)


def test_load_then_again_unchanged(run, host, kernel):
    rc, result = run(kernel=host.kernel(), initrd=host.initrd(), append=["console=ttyS0"], remove=["quiet"])
    cmdline = "root=UUID=%s ro crashkernel=384M-:128M console=ttyS0" % ROOT_UUID
    assert (rc, result["changed"], result["cmdline"], result["method"]) == (0, True, cmdline, "file")
    assert "diff" not in result
    assert kernel.loads[0]["cmdline"] == cmdline.encode() + b"\0"
    assert result["loaded"] == read_record(host.root, "default", BOOT_ID)

    rc, again = run(kernel=host.kernel(), initrd=host.initrd(), append=["console=ttyS0"], remove=["quiet"])
    assert (rc, again["changed"]) == (0, False)
    assert len(kernel.recorder.calls) == 1


def test_default_entry_crash_load(run, host, kernel):
    rc, result = run(type="crash", append=["irqpoll", "nr_cpus=1"])
    assert (rc, result["changed"], result["type"], result["source"]) == (0, True, "crash", "/boot/grub/grub.cfg")
    assert kernel.loads[0]["flags"] == KEXEC_FILE_ON_CRASH
    assert kernel.loads[0]["kernel"] == host.kernel()


@pytest.mark.parametrize("args, message", [
    ({"kernel": "/nonexistent/vmlinuz-6.1"}, "kernel /nonexistent/vmlinuz-6.1 does not exist"),
    ({"append": ["quiet splash"]}, "is not a single kernel argument"),
    ({"method": "legacy"}, "cannot be loaded by the legacy kexec_load"),  # the fake header has no init_size
])
def test_refused_request_fails_without_syscall(run, kernel, args, message):
    rc, result = run(**args)
    assert rc == 1 and result["failed"] is True
    assert message in result["msg"]
    assert kernel.recorder.calls == []


def test_syscall_failure_reports_errno(run, host, kernel):
    kernel.recorder.errors = [errno.EKEYREJECTED]
    rc, result = run(kernel=host.kernel())
    assert (rc, result["failed"]) == (1, True)
    assert (result["errno"], result["errno_name"]) == (errno.EKEYREJECTED, "EKEYREJECTED")
    assert "signature was rejected" in result["msg"]
    assert not host.exists(RECORD_DIR)


def test_check_mode(run, host, kernel):
    rc, result = run(kernel=host.kernel(), _ansible_check_mode=True)
    assert (rc, result["changed"], result["loaded"]) == (0, True, None)
    assert kernel.recorder.calls == []
    assert not host.exists(RECORD_DIR)


@pytest.mark.parametrize("state", ["loaded", "unloaded"])
def test_diff_only_in_diff_mode(run, host, kernel, state):
    if state == "unloaded":
        run(kernel=host.kernel())
    rc, result = run(state=state, kernel=host.kernel(), _ansible_diff=True)
    assert rc == 0 and result["changed"] is True
    loaded_text = "loaded: true\ntype: default\nmethod: file\nkernel: %s\n" % host.kernel()
    before, after = ("loaded: false\n", loaded_text) if state == "loaded" else (loaded_text, "loaded: false\n")
    assert result["diff"]["before"].startswith(before)
    assert result["diff"]["after"].startswith(after)


@pytest.mark.parametrize("type_, flags", [
    ("default", KEXEC_FILE_UNLOAD),
    ("crash", KEXEC_FILE_UNLOAD | KEXEC_FILE_ON_CRASH),
])
def test_unload(run, host, kernel, type_, flags):
    run(kernel=host.kernel(), type=type_)
    rc, result = run(state="unloaded", type=type_)
    assert (rc, result["changed"], result["loaded"], result["type"]) == (0, True, None, type_)
    assert kernel.recorder.calls[-1][1][4].value == flags
    assert not host.exists(record_path("", type_))

    rc, again = run(state="unloaded", type=type_)
    assert (rc, again["changed"]) == (0, False)
    assert len(kernel.recorder.calls) == 2


# --- kernel and initrd must be regular files: refused at once, never read, in check mode too ----


@pytest.fixture
def special_file(tmp_path):
    """A path of each kind that is no regular file; the socket is bound (listening) while the test runs."""
    sockets = []

    def make(kind):
        path = str(tmp_path / kind)
        if kind == "fifo":
            os.mkfifo(path)  # no writer: a blocking open or read would hang for ever
        elif kind == "socket":
            server = socket.socket(socket.AF_UNIX)
            server.bind(path)
            sockets.append(server)
        elif kind == "directory":
            os.mkdir(path)
        else:
            path = "/dev/zero"  # a read would never end
        return path
    yield make
    for server in sockets:
        server.close()


@pytest.mark.parametrize("kind, words", [
    ("fifo", "is a FIFO, not a regular file"),
    ("character-device", "/dev/zero is a character device, not a regular file"),
    ("socket", "cannot be opened: No such device or address"),  # Linux refuses open() of a socket: ENXIO
    ("directory", "is a directory, not a regular file"),
])
@pytest.mark.parametrize("option", ["kernel", "initrd"])
@pytest.mark.parametrize("method", ["auto", "file", "legacy"])
@pytest.mark.parametrize("check_mode", [False, True])
def test_kernel_and_initrd_must_be_regular_files(run, host, kernel, special_file, no_hang, kind, words, option,
                                                 method, check_mode):
    args = {"kernel": host.kernel(), "initrd": host.initrd(), "method": method, "_ansible_check_mode": check_mode}
    args[option] = special_file(kind)
    rc, result = run(**args)
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"].startswith("%s %s " % (option, args[option]))
    assert words in result["msg"]
    assert kernel.recorder.calls == []
    assert not host.exists(RECORD_DIR)
