"""Cheap checks before expensive reads: a huge file named as the kernel or the initrd is refused at once.

A disk image or a sparse file of 8 GiB given as the kernel is refused by its header (a bounded read
of the descriptor it would be hashed from), and an initrd larger than the host can hold by its size,
before any file is read whole or hashed: by every method (auto, file, legacy), for default and crash
loads, a named kernel or the default boot entry's, in check mode too. Nothing is loaded, the record
and the digest cache stay as they were, and the error is one KexecError (never KexecUnavailable, so
kexec_reboot's fallback: full does not turn it into a firmware reboot).
"""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import digests
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.digests import CACHE_FILE
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest

from ...fakes.files import ReadCounter
from .legacy import legacy_fakes
from .test_loader import preload, record_rel

GIB = 1 << 30
HUGE = 8 * GIB
HEADER_READS = 1024  # the setup header and the version string a bzImage points at, no more


def no_hashing(monkeypatch):
    """Fail the test if anything is hashed: a file through its descriptor, or bytes a plan read."""
    monkeypatch.setattr(digests, "sha256_of", lambda handle: pytest.fail("a file was hashed"))
    monkeypatch.setattr(digests, "sha256_of_parts", lambda parts: pytest.fail("bytes read whole were hashed"))


def grow(path, size):
    with open(path, "r+b" if os.path.exists(path) else "wb") as handle:
        handle.truncate(size)
    return path


def sparse_disk(path):
    """8 GiB of zeros taking no disk space: a blank disk image, or a sparse file, named as the kernel."""
    os.unlink(path)
    return grow(path, HUGE)


def bzimage_on_8_gib(path):
    """A complete bzImage header (init_size 38 MiB) at the start of 8 GiB: a kernel with a disk appended."""
    return grow(legacy_fakes.bzimage(path), HUGE)


KERNELS = [
    pytest.param(sparse_disk, "is not a kernel image: its first 624 bytes are all zero", id="no-header"),
    pytest.param(bzimage_on_8_gib, "is %d bytes, more than its x86 setup header allows" % HUGE, id="bzimage-header"),
]


def load(legacy_host, named, **fields):
    """A request for the fake host's kernel (named, or as the default boot entry's) and its initrd."""
    if named:
        fields.update(kernel=legacy_host.kernel(), initrd=legacy_host.initrd())
    return LoadRequest(**fields)


def refused(kexec, legacy_host, fake_syscall, request, check_mode, message):
    """The load is refused with ``message``; nothing loaded, the record and the digest cache as they were."""
    old = preload(legacy_host, request.kind)
    with pytest.raises(KexecError) as info:
        kexec.ensure_loaded(request, check_mode=check_mode)
    assert message in info.value.msg
    assert not isinstance(info.value, KexecUnavailable)  # a bad input, not a host that cannot kexec
    assert fake_syscall.calls == []
    assert legacy_host.read_bytes(record_rel(request.kind)) == old
    assert not legacy_host.exists(CACHE_FILE)
    return info.value


def refused_unhashed(kexec, legacy_host, fake_syscall, monkeypatch, path, request, check_mode, message):
    """refused(), with nothing hashed; (the error, the bytes each opening of ``path`` read)."""
    no_hashing(monkeypatch)
    reads = ReadCounter(monkeypatch)
    error = refused(kexec, legacy_host, fake_syscall, request, check_mode, message)
    return error, reads.of(os.stat(path))


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("kind", ["default", "crash"])
@pytest.mark.parametrize("method", ["auto", "file", "legacy"])
@pytest.mark.parametrize("named", [True, False], ids=["named", "default-entry"])
@pytest.mark.parametrize("make, message", KERNELS)
def test_a_huge_kernel_is_refused_by_its_header_before_any_hash(kexec, legacy_host, fake_syscall, monkeypatch, make,
                                                                message, named, method, kind, check_mode):
    make(legacy_host.kernel())
    error, counts = refused_unhashed(kexec, legacy_host, fake_syscall, monkeypatch, legacy_host.kernel(),
                                     load(legacy_host, named, method=method, kind=kind), check_mode, message)
    assert legacy_host.kernel() in error.msg
    assert counts and all(count <= HEADER_READS for count in counts), counts


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("kind, message", [
    ("default", "the kernel refuses a kexec segment larger than half of its RAM (MemTotal 1966.4 MiB"),
    ("crash", "the largest 'Crash kernel' range of /proc/iomem is 256.0 MiB"),
])
@pytest.mark.parametrize("method", ["auto", "file", "legacy"])
@pytest.mark.parametrize("named", [True, False], ids=["named", "default-entry"])
def test_an_initrd_the_host_cannot_hold_is_refused_before_it_is_read(kexec, legacy_host, fake_syscall, monkeypatch,
                                                                     named, method, kind, message, check_mode):
    """An 8 GiB initrd on a 2 GiB host: no byte of it is read, and neither file is hashed."""
    sparse_disk(legacy_host.initrd())
    error, counts = refused_unhashed(kexec, legacy_host, fake_syscall, monkeypatch, legacy_host.initrd(),
                                     load(legacy_host, named, method=method, kind=kind), check_mode, message)
    assert error.msg.startswith("initrd %s is 8192.0 MiB (%d bytes), more than this host can load: "
                                % (legacy_host.initrd(), HUGE))
    assert set(counts) == {0}


@pytest.mark.parametrize("method", ["auto", "legacy"])
def test_the_kernel_size_bound_is_its_header_s_to_the_byte(kexec, legacy_host, kernel, monkeypatch, method):
    """One byte past setup + init_size is refused unread; at the bound, with a 64 MiB initrd, the load goes on."""
    grow(legacy_fakes.bzimage(legacy_host.kernel()), 28 * 512 + 0x2600000 + 1)
    grow(legacy_host.initrd(), 64 << 20)
    with pytest.raises(KexecError, match="more than its x86 setup header allows"):
        kexec.ensure_loaded(load(legacy_host, True, method=method))
    grow(legacy_host.kernel(), 28 * 512 + 0x2600000)
    result = kexec.ensure_loaded(load(legacy_host, True, method=method))
    assert result["changed"] and len(kernel.loads) == 1
