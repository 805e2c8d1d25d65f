# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sha256 of kernels and initrds, computed once per file version and remembered.

Private to the kernel.kexec collection.

The load record names what was loaded by its sha256, so a second identical
run reports ``changed: false``. Hashing a kernel and its initrd (40-60 MB)
costs seconds on a slow or emulated machine, on every run. A file that has
not changed since it was hashed has the same identity: device, inode, size,
mtime and ctime (nanoseconds). ctime cannot be set by any call a program can
make; every write, rename or chmod moves it. So a digest is reused while the
identity is unchanged, and computed again otherwise.

The cache lives in ``/var/cache/kernel-kexec/digests.json`` (it survives a
reboot, so a kexec reboot's load reuses the digest its predecessor computed).
It is only a cache: unreadable or corrupt, it is ignored; unwritable (a
read-only /var), digests are simply computed each time. Check mode never
writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular

CACHE_FILE = "var/cache/kernel-kexec/digests.json"
CHUNK = 1 << 20


def identity(stat_result):
    return [stat_result.st_dev, stat_result.st_ino, stat_result.st_size, stat_result.st_mtime_ns,
            stat_result.st_ctime_ns]


def sha256_of(handle):
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


class DigestCache:
    """sha256 by path, trusted while the file's identity is the one it was computed for."""

    def __init__(self, root="/"):
        self.path = os.path.join(root, CACHE_FILE)
        self.entries = self._read()
        self.changed = False
        self.computed = []  # paths hashed by this run (the rest came from the cache)

    def _read(self):
        try:
            with open(self.path, "r") as handle:
                entries = json.load(handle)
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def sha256(self, path, what):
        """The sha256 of the regular file ``path`` (``what`` names it in errors)."""
        with open_regular(path, what) as handle:
            current = identity(os.fstat(handle.fileno()))
            entry = self.entries.get(path)
            if isinstance(entry, dict) and entry.get("identity") == current and entry.get("sha256"):
                return entry["sha256"]
            value = sha256_of(handle)
        self.entries[path] = {"identity": current, "sha256": value}
        self.changed = True
        self.computed.append(path)
        return value

    def save(self):
        """Write the cache atomically if anything new was computed; a failure only costs speed later."""
        if not self.changed:
            return
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=directory, prefix=".digests.")
            try:
                with os.fdopen(handle, "w") as out:
                    json.dump(self.entries, out, indent=1, sort_keys=True)
                os.rename(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return
        self.changed = False


__all__ = ("CACHE_FILE", "DigestCache", "identity", "sha256_of")
