"""Digests are computed once per file version: reused while the identity holds, computed again when it moves."""

import hashlib
import json
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import digests
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.digests import CACHE_FILE, DigestCache


@pytest.fixture
def kernel(tmp_path):
    path = tmp_path / "boot" / "vmlinuz"
    path.parent.mkdir()
    path.write_bytes(b"kernel v1" * 1000)
    return str(path)


def test_computed_once_then_reused_across_runs(tmp_path, kernel, monkeypatch):
    first = DigestCache(str(tmp_path))
    assert first.sha256(kernel, "kernel") == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    first.save()
    monkeypatch.setattr(digests, "sha256_of", lambda handle: pytest.fail("hashed again"))
    second = DigestCache(str(tmp_path))
    assert second.sha256(kernel, "kernel") == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    assert second.computed == []


@pytest.mark.parametrize("change", ["content", "touch", "replace"])
def test_a_changed_file_is_hashed_again(tmp_path, kernel, change):
    cache = DigestCache(str(tmp_path))
    cache.sha256(kernel, "kernel")
    cache.save()
    if change == "content":
        with open(kernel, "r+b") as handle:  # same size, new bytes
            handle.write(b"KERNEL")
    elif change == "touch":
        os.utime(kernel, ns=(1, 1))
    else:
        os.rename(kernel, kernel + ".old")
        with open(kernel, "wb") as handle:
            handle.write(b"kernel v1" * 1000)
    again = DigestCache(str(tmp_path))
    expected = hashlib.sha256(open(kernel, "rb").read()).hexdigest()
    assert again.sha256(kernel, "kernel") == expected
    assert again.computed == [kernel]


def test_corrupt_cache_is_ignored(tmp_path, kernel):
    path = tmp_path / CACHE_FILE
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert DigestCache(str(tmp_path)).sha256(kernel, "kernel")


def test_entry_without_identity_is_not_trusted(tmp_path, kernel):
    path = tmp_path / CACHE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({kernel: {"sha256": "0" * 64}}))
    assert DigestCache(str(tmp_path)).sha256(kernel, "kernel") != "0" * 64


def test_unwritable_cache_costs_nothing_but_speed(tmp_path, kernel):
    (tmp_path / "var").write_text("a file where the cache directory would be")
    cache = DigestCache(str(tmp_path))
    cache.sha256(kernel, "kernel")
    cache.save()  # no exception
    assert cache.changed


def test_not_a_regular_file_is_refused(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    with pytest.raises(KexecError, match="initrd .* is a FIFO"):
        DigestCache(str(tmp_path)).sha256(fifo, "initrd")


def test_loader_saves_the_cache_but_not_in_check_mode(host, fake_syscall):
    from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec, LoadRequest
    from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES
    request = LoadRequest(kernel=host.kernel(), initrd=host.initrd())
    Kexec(root=host.root, arch=ARCHES["x86_64"], euid=0).ensure_loaded(request, check_mode=True)
    assert not os.path.exists(os.path.join(host.root, CACHE_FILE))
    with pytest.raises(KexecError, match="returned success but"):  # the mocked kernel loads nothing
        Kexec(root=host.root, arch=ARCHES["x86_64"], euid=0).ensure_loaded(request)
    saved = json.load(open(os.path.join(host.root, CACHE_FILE)))
    assert sorted(saved) == sorted([host.kernel(), host.initrd()])
