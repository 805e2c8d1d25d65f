# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sha256 of kernels and initrds, computed once per file version and remembered.

Private to the kernel.kexec collection.

The load record names what was loaded by its sha256, so a second identical
run reports ``changed: false``. Hashing a kernel and its initrd (40-60 MB)
costs seconds on a slow or emulated machine, on every run. A file that has
not changed since it was hashed has the same identity: device, inode, size,
mtime and ctime (nanoseconds; _io.identity). ctime cannot be set by any call a
program can make; every write, rename or chmod moves it. So a digest is
reused while the identity is unchanged, and computed again otherwise.

That holds only where the file system keeps a real ctime and stable inode
numbers. FAT (vfat, msdos: kernels on the EFI system partition) and exFAT keep
no change time (Linux shows the mtime, kept to 2 s on FAT, or on older kernels
the creation time in its place: neither moves when a program rewrites a file
and puts its mtime back) and number inodes anew on every mount, so a same-size
rewrite, or a new file after a reboot, can show the identity of the old one; FUSE
block file systems (fuseblk: exfat-fuse, ntfs-3g) report what their daemon
makes up. On those (UNTRUSTED_FILE_SYSTEMS, told by the file's device in
/proc/self/mountinfo) the cache is neither read nor written: the file is hashed
on every run.

A digest is always of bytes read through one descriptor, filed under the
identity fstat gave for that descriptor before the read, and only when a
second fstat after the read shows the file unchanged. Where the caller reads
the file anyway (the legacy loader's segments), :meth:`DigestCache.of_read`
hashes those bytes instead of reading the file again.

The cache lives in ``/var/cache/kernel-kexec/digests.json`` (it survives a
reboot, so a kexec reboot's load reuses the digest its predecessor computed).
It is only a cache: unreadable or corrupt, it is ignored; unwritable (a
read-only /var, a full disk), digests are simply computed each time. Each
write drops the entries of files that are gone or have changed, keeps at most
MAX_ENTRIES (this run's first, then the newest), and replaces the file
atomically. Check mode never writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
import time

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import mounts
from ansible_collections.kernel.kexec.plugins.module_utils._io import identity, open_regular, write_atomic

CACHE_FILE = "var/cache/kernel-kexec/digests.json"
CHUNK = 1 << 20
# The kernels and initrds of a few boot entries, with room to spare; the cache file stays a few KB.
MAX_ENTRIES = 32
# Far more than MAX_ENTRIES take: a larger file is not one this module wrote, and is ignored.
MAX_CACHE_BYTES = 1 << 20
# File systems whose identity cannot tell two versions of a file apart (module docstring).
UNTRUSTED_FILE_SYSTEMS = ("vfat", "msdos", "exfat", "fuseblk")


def sha256_of(handle):
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_of_parts(parts):
    """The sha256 of the bytes ``parts`` (bytes-like, in order) hold together."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _valid(path, entry):
    """Whether ``path``: ``entry`` is an entry as save() writes it (anything else is dropped on reading)."""
    if not (isinstance(path, str) and isinstance(entry, dict)):
        return False
    ident, value = entry.get("identity"), entry.get("sha256")
    return (isinstance(ident, list) and len(ident) == 5
            and all(isinstance(item, int) and not isinstance(item, bool) for item in ident)
            and isinstance(value, str) and len(value) == 64 and all(char in string.hexdigits for char in value))


def _stored(entry):
    """When ``entry`` was computed (0 for entries written before the time was kept)."""
    stored = entry.get("stored")
    return stored if isinstance(stored, (int, float)) and not isinstance(stored, bool) else 0


class DigestCache:
    """sha256 by path, trusted while the file's identity is the one it was computed for."""

    def __init__(self, root="/", limit=MAX_ENTRIES):
        self.root = root
        self.path = os.path.join(root, CACHE_FILE)
        self.limit = limit
        self.entries = self._read()
        self.changed = False
        self.computed = []  # paths hashed by this run (the rest came from the cache)
        self.used = set()  # paths this run hashed or found: kept first when the cache is cut to its limit
        self._file_systems = None  # mounts.file_system_types(), read when first needed

    def _read(self):
        """The entries of the cache file; {} for a missing, unreadable, oversized or corrupt file."""
        try:
            with open_regular(self.path, "digest cache") as handle:  # never blocks, even on a FIFO
                data = handle.read(MAX_CACHE_BYTES + 1)
            entries = json.loads(data) if len(data) <= MAX_CACHE_BYTES else None
        except (KexecError, OSError, ValueError, RecursionError):
            return {}
        if not isinstance(entries, dict):
            return {}
        return dict((path, entry) for path, entry in entries.items() if _valid(path, entry))

    def trusted(self, current):
        """Whether the identity ``current`` tells versions of its file apart: not on UNTRUSTED_FILE_SYSTEMS."""
        if self._file_systems is None:
            self._file_systems = mounts.file_system_types(self.root)
        return self._file_systems.get(mounts.device_key(current[0])) not in UNTRUSTED_FILE_SYSTEMS

    def cached(self, path, current):
        """The digest filed for ``path`` under the identity ``current``, or None."""
        entry = self.entries.get(path)
        if entry is None or entry["identity"] != current or not self.trusted(current):
            return None
        self.used.add(path)
        return entry["sha256"]

    def sha256(self, path, what, compute=True):
        """The sha256 of the regular file ``path`` (``what`` names it in errors): :meth:`of_open` on it."""
        with open_regular(path, what) as handle:
            return self.of_open(path, handle, compute)

    def of_open(self, path, handle, compute=True):
        """The sha256 of the open regular file ``handle`` (``path`` files it), from its start.

        From the cache while the file's identity holds. On a miss the file is
        hashed through this descriptor, so a caller that checked the file's header
        on it first hashes the very file it checked; with ``compute`` false the
        result is None instead, for a caller that reads the file anyway and hands
        its bytes to :meth:`of_read`.
        """
        current = identity(os.fstat(handle.fileno()))
        value = self.cached(path, current)
        if value is None and compute:
            handle.seek(0)
            value = sha256_of(handle)
            self.computed.append(path)
            if identity(os.fstat(handle.fileno())) == current:  # not written to while it was hashed
                self._store(path, current, value)
        return value

    def of_read(self, read):
        """The sha256 of the bytes ``read`` (an _io.FileRead) holds, without reading the file again.

        From the cache while the identity of the descriptor the bytes came from
        holds; otherwise computed from the bytes themselves, and filed under that
        identity if they are the whole file as it was.
        """
        if read.whole:
            value = self.cached(read.path, read.identity)
            if value is not None:
                return value
        value = sha256_of_parts(read.parts)
        self.computed.append(read.path)
        if read.whole:
            self._store(read.path, read.identity, value)
        return value

    def _store(self, path, current, value):
        if not self.trusted(current):
            return
        self.entries[path] = {"identity": current, "sha256": value, "stored": time.time()}
        self.changed = True
        self.used.add(path)

    def prune(self):
        """Drop entries whose file is gone or is no longer the version hashed; keep at most ``limit``,
        the ones this run used first, then the most recently computed."""
        kept = {}
        for path, entry in self.entries.items():
            try:
                current = identity(os.stat(path))
            except OSError:
                continue
            if current == entry["identity"]:
                kept[path] = entry
        order = sorted(kept, key=lambda path: (path in self.used, _stored(kept[path])), reverse=True)
        self.entries = dict((path, kept[path]) for path in order[:self.limit])

    def save(self):
        """Prune and write the cache atomically if anything new was computed; a failure only costs speed later."""
        if not self.changed:
            return
        self.prune()
        try:
            # write_atomic fsyncs: a crash right after a load (kdump tests do that) keeps the cache
            write_atomic(self.path, json.dumps(self.entries, indent=1, sort_keys=True), mode=0o600, directory_mode=0o755)
        except (KexecError, OSError, ValueError):
            return
        self.changed = False


__all__ = ("CACHE_FILE", "MAX_ENTRIES", "UNTRUSTED_FILE_SYSTEMS", "DigestCache", "identity", "sha256_of", "sha256_of_parts")
