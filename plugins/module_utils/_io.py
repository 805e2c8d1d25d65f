# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opening the files a user names (kernels, initrds) with one clear message per failure.

Private to the kernel.kexec collection.

Only regular files are accepted: a FIFO would block the read for ever (in
check mode too), ``/dev/zero`` would never end, a directory or socket is a
mistake. The open is non-blocking so that even a FIFO with no writer cannot
hang it; the type is checked on the open descriptor, so the file checked is
the file read.

:class:`FileRead` keeps what one open of a file read together with who the
file was (fstat of that descriptor): the legacy loader hands those very bytes
to kexec_load, and the digest cache files their sha256 under that identity.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path, what, missing_hint=""):
    """A binary file object for the regular file ``path``; KexecError naming ``what`` otherwise."""
    if not path or "\0" in path:
        raise KexecError("%s path %r is not a usable path (empty or with a NUL byte)" % (what, path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KexecError("%s %s does not exist%s" % (what, path, missing_hint))
    except PermissionError:
        raise KexecError("%s %s cannot be read: run as root (become: true)" % (what, path))
    except OSError as exc:
        raise KexecError("%s %s cannot be opened: %s" % (what, path, exc.strerror))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
        raise KexecError("%s %s is %s, not a regular file" % (what, path, kind))
    return os.fdopen(fd, "rb")


def identity(status):
    """Who a file version is: device, inode, size, mtime and ctime (nanoseconds), from a stat result.

    No call a program can make sets ctime; every write, rename or chmod moves it.
    """
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]


class FileRead:
    """The bytes one open of a regular file read (``parts``, in file order) and who that file was.

    ``status`` is fstat of the descriptor the bytes come from, taken before the
    first read: a file renamed over the path meanwhile does not lend its
    identity to these bytes. After :meth:`done`, ``whole`` says the parts are
    the whole file and nothing changed it while it was read (the same identity
    after the last read, as many bytes as its size): only then may a digest of
    the parts stand for that identity.
    """

    def __init__(self, path, handle):
        self.path = path
        self.parts = []
        self.status = os.fstat(handle.fileno())
        self.whole = False
        self._handle = handle

    @property
    def identity(self):
        return identity(self.status)

    def read(self, size=-1):
        """Read on (all the rest with -1), keep the bytes as the next part and return them."""
        data = self._handle.read(size)
        self.parts.append(data)
        return data

    def done(self):
        """Stop reading: decide ``whole`` by a second fstat of the same descriptor. Returns self."""
        after = os.fstat(self._handle.fileno())
        self.whole = identity(after) == self.identity and sum(len(part) for part in self.parts) == after.st_size
        self._handle = None
        return self


def read_whole(path, what, check=None):
    """All of the regular file ``path`` as one part of a :class:`FileRead`, through one descriptor.

    ``check(handle)``, when given, runs on that descriptor before the read: a cheap
    check (its size, its first bytes) that may raise KexecError, so a file that
    must be refused is never read whole. The read then starts from the beginning.
    """
    with open_regular(path, what) as handle:
        if check is not None:
            check(handle)
            handle.seek(0)
        read = FileRead(path, handle)
        read.read()
        return read.done()


def read_regular(path, what, size=-1, offset=0):
    """Up to ``size`` bytes (all with -1) of the regular file ``path``, from ``offset`` on."""
    with open_regular(path, what) as handle:
        if offset:
            handle.seek(offset)
        return handle.read(size)


__all__ = ("FileRead", "identity", "open_regular", "read_regular", "read_whole")
