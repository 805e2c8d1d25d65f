"""Digests are computed once per file version: reused while the identity holds, computed again when it moves;
the cache stays small and never fails a load."""

import errno
import hashlib
import json
import os
import tempfile

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import FileRead, identity, open_regular, read_whole
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


def test_not_a_regular_file_is_refused(tmp_path, no_hang):
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


# --- digests of bytes already read (the legacy plan's) ------------------------

def test_of_read_hashes_the_bytes_read_and_files_them_under_that_descriptor(tmp_path, kernel):
    with open_regular(kernel, "kernel") as handle:
        read = FileRead(kernel, handle)
        read.read(100)
        read.read()
        read.done()
    cache = DigestCache(str(tmp_path))
    assert cache.of_read(read) == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    assert cache.computed == [kernel] and cache.entries[kernel]["identity"] == identity(os.stat(kernel))
    assert DigestCache(str(tmp_path)).sha256(kernel, "kernel", compute=False) is None  # not saved yet
    cache.save()
    assert DigestCache(str(tmp_path)).sha256(kernel, "kernel", compute=False) == cache.of_read(read)


def test_of_read_takes_the_cached_digest_while_the_identity_holds(tmp_path, kernel, monkeypatch):
    cache = DigestCache(str(tmp_path))
    value = cache.sha256(kernel, "kernel")
    monkeypatch.setattr(digests, "sha256_of_parts", lambda parts: pytest.fail("hashed again"))
    assert cache.of_read(read_whole(kernel, "kernel")) == value


def test_bytes_of_a_file_written_while_read_are_hashed_but_not_filed(tmp_path, kernel):
    cache = DigestCache(str(tmp_path))
    cache.sha256(kernel, "kernel")  # the cached digest of the version before the write
    with open_regular(kernel, "kernel") as handle:
        read = FileRead(kernel, handle)
        read.read()
        with open(kernel, "ab") as writer:
            writer.write(b"appended while it was read")
        read.done()
    assert not read.whole
    assert cache.of_read(read) == hashlib.sha256(b"kernel v1" * 1000).hexdigest()  # what was read
    assert cache.computed == [kernel, kernel]
    assert cache.entries[kernel]["identity"] != identity(os.stat(kernel))  # not filed as the new version


def test_a_file_written_while_hashed_is_not_filed(tmp_path, kernel, monkeypatch):
    real = digests.sha256_of

    def hash_then_write(handle):
        value = real(handle)
        with open(kernel, "ab") as writer:
            writer.write(b"more")
        return value
    monkeypatch.setattr(digests, "sha256_of", hash_then_write)
    cache = DigestCache(str(tmp_path))
    assert cache.sha256(kernel, "kernel") == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    assert cache.entries == {} and not cache.changed


# --- pruning --------------------------------------------------------------------

def files(tmp_path, count):
    paths = []
    (tmp_path / "boot").mkdir(exist_ok=True)
    for index in range(count):
        path = tmp_path / "boot" / ("initrd-%d" % index)
        path.write_bytes(b"initrd %d" % index)
        paths.append(str(path))
    return paths


def test_a_write_drops_entries_of_files_gone_or_changed(tmp_path, kernel):
    gone, changed, kept, new = files(tmp_path, 4)
    cache = DigestCache(str(tmp_path))
    for path in (kernel, gone, changed, kept):
        cache.sha256(path, "initrd")
    cache.save()
    os.unlink(gone)
    os.utime(changed, ns=(1, 1))
    later = DigestCache(str(tmp_path))
    later.sha256(new, "initrd")
    later.save()
    assert sorted(json.load(open(str(tmp_path / CACHE_FILE)))) == sorted([kernel, kept, new])


def test_a_write_keeps_the_entries_this_run_used_then_the_newest(tmp_path, monkeypatch):
    old, older, newer, new = files(tmp_path, 4)
    clock = iter(range(100, 200))
    monkeypatch.setattr(digests.time, "time", lambda: next(clock))
    first = DigestCache(str(tmp_path))
    for path in (old, older, newer):  # stored at 100, 101, 102
        first.sha256(path, "initrd")
    first.save()
    second = DigestCache(str(tmp_path), limit=3)
    assert second.sha256(old, "initrd", compute=False)  # found: used by this run
    second.sha256(new, "initrd")
    second.save()
    assert sorted(json.load(open(str(tmp_path / CACHE_FILE)))) == sorted([old, newer, new])


def test_the_cache_never_holds_more_than_max_entries(tmp_path):
    paths = files(tmp_path, digests.MAX_ENTRIES + 8)
    cache = DigestCache(str(tmp_path))
    for path in paths:
        cache.sha256(path, "initrd")
        cache.save()
    saved = json.load(open(str(tmp_path / CACHE_FILE)))
    assert sorted(saved) == sorted(paths[-digests.MAX_ENTRIES:])


# --- a corrupt or unwritable cache ------------------------------------------------

CORRUPT = {
    "not-json": b"{not json",
    "binary": b"\xff\xfe\x00\x01\x80",
    "empty": b"",
    "a-list": b"[]",
    "a-string": b'"digests"',
    "deeply-nested": b"[" * 100000,
    "oversized": json.dumps({"/boot/x": {"identity": [1, 2, 3, 4, 5], "sha256": "0" * 64}}).encode()
    + b" " * digests.MAX_CACHE_BYTES,
    "bad-entries": json.dumps({
        "/boot/a": 5, "/boot/b": {"identity": "x", "sha256": "0" * 64},
        "/boot/c": {"identity": [1, 2, 3, 4, 5], "sha256": "not hex"},
        "/boot/d": {"identity": [1, 2, 3, True, 5], "sha256": "0" * 64}}).encode(),
}


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_a_corrupt_cache_is_taken_as_empty_and_rewritten(tmp_path, kernel, content):
    path = tmp_path / CACHE_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    cache = DigestCache(str(tmp_path))
    assert cache.entries == {}
    assert cache.sha256(kernel, "kernel") == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    cache.save()
    assert sorted(json.load(open(str(path)))) == [kernel]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_cache_path_that_is_no_file_is_ignored_without_hanging(tmp_path, kernel, kind, no_hang):
    path = tmp_path / CACHE_FILE
    path.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(str(path))
    else:
        path.mkdir()
    cache = DigestCache(str(tmp_path))
    assert cache.entries == {}
    cache.sha256(kernel, "kernel")
    cache.save()  # replacing a FIFO works, a directory is left alone: neither raises


@pytest.mark.parametrize("failure", ["read-only", "full-disk", "rename"])
def test_a_failed_write_leaves_the_old_cache_and_no_temporary_file(tmp_path, kernel, monkeypatch, failure):
    first = DigestCache(str(tmp_path))
    first.sha256(kernel, "kernel")
    first.save()
    path = tmp_path / CACHE_FILE
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(errno.EROFS if failure == "read-only" else errno.ENOSPC, "refused")
    target = {"read-only": (tempfile, "mkstemp"), "full-disk": (digests.os, "fsync"),
              "rename": (digests.os, "rename")}[failure]
    other = files(tmp_path, 1)[0]
    cache = DigestCache(str(tmp_path))
    cache.sha256(other, "initrd")
    monkeypatch.setattr(*target, fail)
    cache.save()  # no exception
    assert cache.changed  # still to be written, by a later run
    assert path.read_bytes() == before
    assert os.listdir(str(path.parent)) == ["digests.json"]


def mount_as(root, path, fs_type):
    """A /proc/self/mountinfo below ``root`` that shows the file system holding ``path`` as ``fs_type``."""
    dev = os.stat(path).st_dev
    line = "31 22 %d:%d / /boot/efi rw,relatime shared:20 - %s /dev/vda2 rw\n" % (os.major(dev), os.minor(dev), fs_type)
    mountinfo = os.path.join(str(root), "proc/self/mountinfo")
    os.makedirs(os.path.dirname(mountinfo), exist_ok=True)
    with open(mountinfo, "w") as handle:
        handle.write("22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n" + line)


def stale_entry(tmp_path, kernel):
    """A cache holding ``kernel``'s present identity with the digest of other bytes: what a same-size rewrite that
    restored the mtime leaves on a file system whose identity cannot tell the two versions apart."""
    path = tmp_path / CACHE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({kernel: {"identity": identity(os.stat(kernel)), "sha256": "0" * 64}}))


@pytest.mark.parametrize("fs_type", ["vfat", "msdos", "exfat", "fuseblk"])
def test_the_cache_is_not_trusted_on_a_file_system_whose_identity_cannot_tell_a_rewrite(tmp_path, kernel, fs_type):
    mount_as(tmp_path, kernel, fs_type)
    stale_entry(tmp_path, kernel)
    cache = DigestCache(str(tmp_path))
    assert cache.sha256(kernel, "kernel") == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    assert cache.computed == [kernel]
    assert cache.entries[kernel]["sha256"] == "0" * 64 and not cache.changed  # nothing filed in its place


@pytest.mark.parametrize("fs_type", ["ext4", "xfs", "btrfs", "tmpfs"])
def test_the_cache_is_trusted_where_ctime_and_inodes_are_real(tmp_path, kernel, fs_type):
    mount_as(tmp_path, kernel, fs_type)
    stale_entry(tmp_path, kernel)
    assert DigestCache(str(tmp_path)).sha256(kernel, "kernel") == "0" * 64  # the entry is believed, as it should be


def test_the_legacy_plans_digest_is_not_filed_on_vfat(tmp_path, kernel):
    mount_as(tmp_path, kernel, "vfat")
    cache = DigestCache(str(tmp_path))
    read = read_whole(kernel, "kernel")
    assert cache.of_read(read) == hashlib.sha256(b"kernel v1" * 1000).hexdigest()
    assert cache.entries == {} and not cache.changed
