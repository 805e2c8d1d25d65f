"""The record's digests by method legacy: of the very bytes kexec_load got, each file read once.

On a digest-cache miss the segment plan's own bytes are hashed (no second
read of the kernel or the initrd); the cache files that digest under the
identity of the descriptor the bytes came from. A cache hit hashes nothing.
"""

import hashlib
import json
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import identity
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import bzimage, digests, loader
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.digests import CACHE_FILE, DigestCache
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec, LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import read_record
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES

from ...fakes.files import ReadCounter
from ...fakes.host import BOOT_ID
from .legacy import legacy_fakes

X86_64 = ARCHES["x86_64"]
HEADER_READS = 1024  # kernel_image.inspect reads the setup header and the version string, no more


@pytest.fixture
def legacy_host(host):
    """The fake host, with what the legacy loader reads, a bzImage and a 64 KiB initrd."""
    legacy_fakes.host(host.root)
    legacy_fakes.bzimage(host.kernel())
    with open(host.initrd(), "wb") as handle:
        handle.write(b"\x1f\x8b\x08\x00" + os.urandom(0x10000))
    return host


def request(host, **fields):
    fields.setdefault("kernel", host.kernel())
    fields.setdefault("initrd", host.initrd())
    fields.setdefault("cmdline", "root=/dev/vda1 ro")
    fields.setdefault("method", "legacy")
    return LoadRequest(**fields)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def segment_bytes(result, load):
    """{segment name: the bytes the (mocked) kexec_load got}; the result's table is in the same order."""
    names = [seg["name"] for seg in result["segments"]["segments"]]
    return dict((name, data) for name, (data, _mem, _memsz) in zip(names, load["segments"]))


def cache_entries(host):
    with open(os.path.join(host.root, CACHE_FILE)) as handle:
        return json.load(handle)


def replace(path, content):
    """Put a new file (new inode) with ``content`` at ``path``, as a package upgrade does."""
    with open(path + ".new", "wb") as handle:
        handle.write(content)
    os.rename(path + ".new", path)


def test_plan_load_leaves_only_legacys_uncached_digests_unknown(kexec, legacy_host, kernel):
    assert loader._unknown_digests(kexec.plan_load(request(legacy_host))) == ["kernel", "initrd"]
    assert loader._unknown_digests(kexec.plan_load(request(legacy_host, initrd=None))) == ["kernel"]
    assert loader._unknown_digests(kexec.plan_load(request(legacy_host, method="file"))) == []  # hashed, and cached
    assert loader._unknown_digests(kexec.plan_load(request(legacy_host))) == []


def test_a_miss_reads_each_file_once(kexec, legacy_host, kernel, monkeypatch):
    files = [legacy_host.kernel(), legacy_host.initrd()]
    statuses = [os.stat(path) for path in files]
    reads = ReadCounter(monkeypatch)
    result = kexec.ensure_loaded(request(legacy_host))
    assert result["changed"] and result["method"] == "legacy"
    for path, status in zip(files, statuses):
        counts = reads.of(status)
        assert sorted(counts)[-1] == status.st_size, (path, counts)  # one opening read it all ...
        assert all(count <= HEADER_READS for count in sorted(counts)[:-1]), (path, counts)  # ... no other did
    assert reads.of(statuses[1]).count(0) == len(reads.of(statuses[1])) - 1  # the initrd: only the plan read it
    assert kexec.digests.computed == files


def test_the_record_names_the_bytes_kexec_load_got(kexec, legacy_host, kernel):
    result = kexec.ensure_loaded(request(legacy_host))
    segments = segment_bytes(result, kernel.loads[0])
    record = read_record(legacy_host.root, "default", BOOT_ID)
    setup = open(legacy_host.kernel(), "rb").read()[:bzimage.read_header(legacy_host.kernel()).setup_size]
    assert record["initrd_sha256"] == sha256(segments["initrd"]) == result["initrd_sha256"]
    assert record["kernel_sha256"] == sha256(setup + segments["kernel"]) == result["kernel_sha256"]
    # ... which are the files' own digests, the ones method file and kexec_info name them by
    assert record["kernel_sha256"] == sha256(open(legacy_host.kernel(), "rb").read())
    entries = cache_entries(legacy_host)
    for name in ("kernel", "initrd"):
        path = getattr(legacy_host, name)()
        assert entries[path]["sha256"] == record[name + "_sha256"]
        assert entries[path]["identity"] == identity(os.stat(path))


def test_a_hit_hashes_nothing_and_gives_the_cached_digest(kexec, legacy_host, kernel, monkeypatch):
    warm = DigestCache(legacy_host.root)
    expected = [warm.sha256(legacy_host.kernel(), "kernel"), warm.sha256(legacy_host.initrd(), "initrd")]
    warm.save()
    monkeypatch.setattr(digests, "sha256_of", lambda handle: pytest.fail("hashed a file"))
    monkeypatch.setattr(digests, "sha256_of_parts", lambda parts: pytest.fail("hashed the plan's bytes"))
    fresh = Kexec(root=legacy_host.root, arch=X86_64, euid=0)
    result = fresh.ensure_loaded(request(legacy_host))
    assert [result["kernel_sha256"], result["initrd_sha256"]] == expected
    assert fresh.digests.computed == [] and not fresh.digests.changed


@pytest.mark.parametrize("warm", [False, True], ids=["miss", "hit"])
def test_a_file_replaced_before_the_plan_reads_it_is_recorded_as_read(kexec, legacy_host, kernel, monkeypatch,
                                                                      warm):
    """plan_load saw the old initrd (or its cached digest); the plan read the new one: the record names the new."""
    if warm:
        cache = DigestCache(legacy_host.root)
        cache.sha256(legacy_host.initrd(), "initrd")
        cache.save()
        kexec = Kexec(root=legacy_host.root, arch=X86_64, euid=0)  # reads the warm cache (the fixture's read none)
        assert kexec.digests.cached(legacy_host.initrd(), identity(os.stat(legacy_host.initrd())))
    real_plan = loader.LEGACY_PLANNERS["x86_64"]
    new = b"\x1f\x8b\x08\x00 a new initrd" + bytes(0x3000)

    def upgrade_first(*args):
        replace(legacy_host.initrd(), new)
        return real_plan(*args)
    monkeypatch.setitem(loader.LEGACY_PLANNERS, "x86_64", upgrade_first)
    result = kexec.ensure_loaded(request(legacy_host))
    assert segment_bytes(result, kernel.loads[0])["initrd"] == new
    assert read_record(legacy_host.root, "default", BOOT_ID)["initrd_sha256"] == sha256(new)
    entry = cache_entries(legacy_host)[legacy_host.initrd()]
    assert entry == dict(entry, sha256=sha256(new), identity=identity(os.stat(legacy_host.initrd())))


def test_a_file_replaced_after_the_plan_read_it_lends_no_identity(kexec, legacy_host, kernel, monkeypatch):
    """The digest of the bytes read is never filed under the identity of the file now at the path."""
    old = open(legacy_host.initrd(), "rb").read()
    real_plan = loader.LEGACY_PLANNERS["x86_64"]
    new = b"\x1f\x8b\x08\x00 a new initrd" + bytes(0x3000)

    def upgrade_after(*args):
        planned = real_plan(*args)
        replace(legacy_host.initrd(), new)
        return planned
    monkeypatch.setitem(loader.LEGACY_PLANNERS, "x86_64", upgrade_after)
    result = kexec.ensure_loaded(request(legacy_host))
    assert segment_bytes(result, kernel.loads[0])["initrd"] == old
    assert read_record(legacy_host.root, "default", BOOT_ID)["initrd_sha256"] == sha256(old)
    assert DigestCache(legacy_host.root).sha256(legacy_host.initrd(), "initrd", compute=False) is None
    assert DigestCache(legacy_host.root).sha256(legacy_host.initrd(), "initrd") == sha256(new)


def test_check_mode_plans_once_and_writes_no_cache(kexec, legacy_host, fake_syscall, monkeypatch):
    statuses = [os.stat(legacy_host.kernel()), os.stat(legacy_host.initrd())]
    expected = sha256(open(legacy_host.initrd(), "rb").read())
    reads = ReadCounter(monkeypatch)
    result = kexec.ensure_loaded(request(legacy_host), check_mode=True)
    assert result["changed"] and fake_syscall.calls == []
    assert result["initrd_sha256"] == expected
    assert [sorted(reads.of(status))[-1] for status in statuses] == [status.st_size for status in statuses]
    assert [count > HEADER_READS for status in statuses for count in reads.of(status)].count(True) == 2
    assert not legacy_host.exists(CACHE_FILE)


def test_a_second_run_with_the_cache_lost_is_still_idempotent(kexec, legacy_host, kernel):
    kexec.ensure_loaded(request(legacy_host))
    legacy_host.remove(CACHE_FILE)
    again = Kexec(root=legacy_host.root, arch=X86_64, euid=0).ensure_loaded(request(legacy_host))
    assert not again["changed"] and len(kernel.recorder.calls) == 1


@pytest.mark.parametrize("changed", [False, True], ids=["same-files", "new-initrd"])
def test_a_refusal_with_the_cache_lost_still_tells_an_image_already_loaded(kexec, legacy_host, kernel, changed):
    """No loads left: the same image already loaded is no error (as with a warm cache); another one is."""
    kexec.ensure_loaded(request(legacy_host))
    legacy_host.remove(CACHE_FILE)
    legacy_host.set_sys("proc/sys/kernel/kexec_load_limit_reboot", 0)
    if changed:
        replace(legacy_host.initrd(), b"\x1f\x8b\x08\x00 another initrd")
    again = Kexec(root=legacy_host.root, arch=X86_64, euid=0)
    if changed:
        with pytest.raises(KexecError, match="no kexec loads left"):
            again.ensure_loaded(request(legacy_host))
    else:
        assert not again.ensure_loaded(request(legacy_host))["changed"]
    assert len(kernel.recorder.calls) == 1


def test_auto_fallback_reuses_the_digest_of_the_unchanged_file(kexec, legacy_host, kernel, monkeypatch):
    """method auto hashed the files for kexec_file_load; its fallback's plan reads the same versions."""
    monkeypatch.setattr(digests, "sha256_of_parts", lambda parts: pytest.fail("hashed the plan's bytes again"))
    kernel.recorder.errors = [22, 0]  # EINVAL from kexec_file_load, then kexec_load succeeds
    result = kexec.ensure_loaded(request(legacy_host, method="auto"))
    assert result["method"] == "legacy"
    assert result["initrd_sha256"] == sha256(segment_bytes(result, kernel.loads[0])["initrd"])


def test_an_unwritable_cache_does_not_fail_the_load(kexec, legacy_host, kernel):
    legacy_host.write("var/cache/kernel-kexec", "a file where the cache directory would be")
    result = kexec.ensure_loaded(request(legacy_host))
    assert result["changed"] and read_record(legacy_host.root, "default", BOOT_ID)["method"] == "legacy"
