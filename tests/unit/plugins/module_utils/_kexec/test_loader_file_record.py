"""The file syscall's record names the bytes the kernel read: kexec_file_load gets the very descriptors the
record's digests come from, even where a file is replaced between the plan and the load."""

import hashlib
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import digests, loader
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec, LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import read_record

from ...fakes import host as fakes
from ...fakes.host import BOOT_ID

NEW_RELEASE = "6.1.0-99-amd64"


def replace_after_the_checks(monkeypatch, host, name, content):
    """Replace the file ``name`` ("kernel" or "initrd") by a new one (rename over it, as package managers do)
    once the load's checks have passed, that is after the plan hashed it and before the syscall."""
    checks = Kexec.check_can_load

    def check_then_replace(self, request, plan):
        checks(self, request, plan)
        path = getattr(plan, name)
        fakes.write_file(path + ".new", content)
        os.replace(path + ".new", path)
    monkeypatch.setattr(Kexec, "check_can_load", check_then_replace)


@pytest.mark.parametrize("name, content", [
    ("kernel", fakes.bzimage_bytes(release=NEW_RELEASE)),
    ("initrd", fakes.GZIP_INITRD + b"another initrd"),
])
def test_the_record_names_what_the_kernel_read_when_a_file_is_replaced_before_the_load(
        kexec, host, kernel, monkeypatch, name, content):
    replace_after_the_checks(monkeypatch, host, name, content)
    result = kexec.ensure_loaded(LoadRequest(kernel=host.kernel(), initrd=host.initrd(), method="file"))
    read = kernel.loads[0]
    assert read[name + "_sha256"] == hashlib.sha256(content).hexdigest()
    record = read_record(host.root, "default", BOOT_ID)
    for key in ("kernel_sha256", "initrd_sha256"):
        assert record[key] == result["loaded"][key] == read[key]
    if name == "kernel":
        assert record["kernel_release"] == result["kernel_release"] == NEW_RELEASE


def test_the_load_hashes_nothing_again_while_the_files_are_the_ones_planned(kexec, host, kernel, monkeypatch):
    real = digests.sha256_of
    hashed = []

    def counting(handle):
        hashed.append(handle.name)
        return real(handle)
    monkeypatch.setattr(digests, "sha256_of", counting)
    kexec.ensure_loaded(LoadRequest(kernel=host.kernel(), initrd=host.initrd(), method="file"))
    assert len(hashed) == 2  # the plan's two digests; the load's come from the cache
    assert kernel.loads[0]["kernel_sha256"] == read_record(host.root, "default", BOOT_ID)["kernel_sha256"]


@pytest.mark.parametrize("kind", ["default", "crash"])
def test_a_load_whose_record_cannot_be_written_is_unloaded_again(kexec, host, kernel, monkeypatch, kind):
    """A full /run after the syscall: no image stays loaded that no record (or an older one) describes."""
    crash = kind == "crash"
    request = LoadRequest(kernel=host.kernel(), initrd=host.initrd(), method="file", kind=kind)
    kexec.ensure_loaded(request)
    assert read_record(host.root, kind, BOOT_ID)

    def full(root, kind, record):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(loader, "write_record", full)
    with pytest.raises(KexecError) as failure:
        kexec.ensure_loaded(LoadRequest(kernel=host.kernel(), initrd=host.initrd(), method="file", kind=kind,
                                        append=["another=1"]))
    assert "No space left on device" in failure.value.msg and "unloaded it again" in failure.value.msg
    assert not kexec.state.loaded(crash)
    assert read_record(host.root, kind, BOOT_ID) is None
