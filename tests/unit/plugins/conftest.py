"""Fixtures shared by the module_utils and modules tests: a fake host tree,
a Kexec bound to it, a fake kernel behind the mocked syscall boundary, and
fake GRUB tools on the grub backend's PATH (``which``)."""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot import grub as grub_module
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import syscalls
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec

from .fakes import host as fakes

X86_64 = syscalls.ARCHES["x86_64"]


@pytest.fixture
def host(tmp_path):
    """A Debian-like host: two kernels, grub.cfg, crash memory reserved, nothing loaded."""
    return fakes.fake_host(tmp_path)


@pytest.fixture
def kexec(host):
    return Kexec(root=host.root, arch=X86_64, euid=0)


@pytest.fixture
def kernel(host, fake_syscall):
    """The mocked syscall boundary, acting like the kernel on ``host``: ``kernel.recorder.calls``."""
    return fakes.FakeKernel(host, fake_syscall, X86_64)


@pytest.fixture
def which(monkeypatch):
    """shutil.which as seen by the grub backend: the named tools are 'installed' (a set the test may change)."""
    installed = {"grub-mkconfig", "grub-script-check"}

    def fake_which(name):
        return "/usr/sbin/%s" % name if name in installed else None
    monkeypatch.setattr(grub_module.shutil, "which", fake_which)
    return installed
