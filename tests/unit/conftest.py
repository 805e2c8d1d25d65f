"""Shared fixtures for the unit tests.

The collection is imported as ``ansible_collections.kernel.kexec`` from a
temporary tree that links to this checkout, so the tests run from any clone.

Safety: the autouse ``no_real_syscalls`` fixture replaces the one door to the
kernel (``syscalls._raw_syscall``) with a function that fails the test. A test
that forgets to mock the syscall boundary fails loudly; it never reaches the
host's kexec_load, kexec_file_load or reboot.
"""

import os
import signal
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_on_path():
    parts = REPO.split(os.sep)
    if parts[-3:] == ["ansible_collections", "kernel", "kexec"]:
        sys.path.insert(0, os.sep.join(parts[:-3]) or os.sep)
        return
    top = tempfile.mkdtemp(prefix="kexec-units-")
    os.makedirs(os.path.join(top, "ansible_collections", "kernel"))
    os.symlink(REPO, os.path.join(top, "ansible_collections", "kernel", "kexec"))
    sys.path.insert(0, top)


_collection_on_path()

from ansible_collections.kernel.kexec.plugins.module_utils._kexec import syscalls  # noqa: E402


class SyscallRecorder:
    """Stands in for syscalls._raw_syscall: records calls, returns or raises as told."""

    def __init__(self):
        self.calls = []
        self.errors = []  # errno values to raise, in order; 0 means succeed
        self.on_call = None  # optional hook(number, args) run before returning

    def __call__(self, number, *args):
        self.calls.append((number, args))
        if self.on_call:
            self.on_call(number, args)
        if self.errors:
            err = self.errors.pop(0)
            if err:
                raise OSError(err, os.strerror(err))
        return 0


@pytest.fixture(autouse=True)
def no_real_syscalls(monkeypatch):
    def refuse(number, *args):
        raise AssertionError("unmocked syscall %d reached the syscall boundary: use the fake_syscall fixture" % number)
    monkeypatch.setattr(syscalls, "_raw_syscall", refuse)


@pytest.fixture
def fake_syscall(monkeypatch):
    recorder = SyscallRecorder()
    monkeypatch.setattr(syscalls, "_raw_syscall", recorder)
    return recorder


@pytest.fixture
def no_hang():
    """Fail the test instead of hanging it: a FIFO opened or read the blocking way never returns."""
    def alarm(signum, frame):
        raise AssertionError("hung on a special file")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
