# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing files, with one policy for every file the collection touches.

Private to the kernel.kexec collection.

Reading. Only regular files are read: a FIFO would block the read for ever
(in check mode too), ``/dev/zero`` would never end, a directory or socket is a
mistake. The open is non-blocking so that even a FIFO with no writer cannot
hang it; the type is checked on the open descriptor, so the file checked is
the file read. Each failure is one KexecError naming the file: :class:`Missing`
where it does not exist, :class:`Unreadable` where this user may not read it,
and for text, a NUL byte or bytes that are not UTF-8. A caller that takes a
missing file for an absent one says so (``missing=None``); nothing else is ever
taken for missing.

:class:`FileRead` keeps what one open of a file read together with who the
file was (fstat of that descriptor): the legacy loader hands those very bytes
to kexec_load, and the digest cache files their sha256 under that identity.

Writing. :func:`write_atomic` replaces a file so that a reader, or the file
system after a crash, sees the old file or the new one, never half: a
temporary file in the same directory, fsync'd with its directory, renamed over
the old one, which keeps what it was (owner, group, mode, SELinux context; a
symlink stays a link to its target, which is replaced). Whatever fails, the old
file stays and no temporary file is left.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Missing, Unreadable

KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


# A reader's ``missing`` when the caller gave none: a missing file is an error.
REQUIRED = object()


def _named(what, path):
    return "%s %s" % (what, path) if what else path


def open_regular(path, what, missing_hint=""):
    """A binary file object for the regular file ``path``; KexecError naming ``what`` otherwise.

    :class:`Missing` where it or a directory on its way does not exist, :class:`Unreadable` where
    this user may not open it.
    """
    if not path or "\0" in path:
        raise KexecError("%s path %r is not a usable path (empty or with a NUL byte)" % (what, path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise Missing("%s does not exist%s" % (_named(what, path), missing_hint), path)
    except PermissionError:
        raise Unreadable(path, what)
    except OSError as exc:
        raise KexecError("%s cannot be opened: %s" % (_named(what, path), exc.strerror))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
        raise KexecError("%s is %s, not a regular file" % (_named(what, path), kind))
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


def read_regular(path, what, size=-1, offset=0, missing=REQUIRED):
    """Up to ``size`` bytes (all with -1) of the regular file ``path``, from ``offset`` on.

    ``missing`` is returned where the file does not exist; without it that is :class:`Missing`.
    A read the file system fails (efivarfs where the firmware does: EIO) is a KexecError too.
    """
    try:
        with open_regular(path, what) as handle:
            if offset:
                handle.seek(offset)
            return handle.read(size)
    except Missing:
        if missing is REQUIRED:
            raise
        return missing
    except PermissionError:
        raise Unreadable(path, what)
    except OSError as exc:
        raise KexecError("%s cannot be read: %s" % (_named(what, path), exc.strerror))


def read_text(path, what="", missing=REQUIRED):
    """The UTF-8 text of the regular file ``path``, lines ended by "\\n" as open(path, "r") gives them.

    As :func:`read_regular`; and a NUL byte, or bytes that are not UTF-8, are a KexecError naming the file.
    """
    try:
        data = read_regular(path, what)
    except Missing:
        if missing is REQUIRED:
            raise
        return missing
    if b"\0" in data:
        raise KexecError("%s holds a NUL byte: it is not a text file" % _named(what, path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KexecError("%s is not UTF-8 text (byte %d)" % (_named(what, path), exc.start))
    return text.replace("\r\n", "\n").replace("\r", "\n")


SELINUX_XATTR = "security.selinux"
# What getxattr/setxattr say when the file system or kernel has no such label: nothing to keep.
_NO_LABEL = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)


def _fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _selinux_label(path):
    """The file's SELinux context, or None where the host or file system has none."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        return os.getxattr(path, SELINUX_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_LABEL:
            return None
        raise


def _keep_attributes(tmp, status, label):
    """Give the new file the old one's owner, group, mode and SELinux context."""
    mine = os.stat(tmp)
    if (mine.st_uid, mine.st_gid) != (status.st_uid, status.st_gid):
        os.chown(tmp, status.st_uid, status.st_gid)
    os.chmod(tmp, status.st_mode & 0o7777)  # after chown, which clears set-id bits
    if label is not None:
        try:
            os.setxattr(tmp, SELINUX_XATTR, label)
        except OSError as exc:
            if exc.errno not in _NO_LABEL:
                raise


def refuse_hard_links(path):
    """A file with more than one name cannot be replaced by rename without splitting it.

    The rename would give ``path`` a new inode while the other names keep the old text, so the
    bootloader could read a file that was never edited. Writing in place would keep the links but
    a crash half way would leave a truncated boot configuration. Neither is safe: refuse, say why.
    """
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(status.st_mode) and status.st_nlink > 1:
        raise KexecError("%s has %d hard links: replacing it would leave the other names with the old text "
                         "and writing it in place is not atomic; make it a single file (or a symlink) and run again"
                         % (path, status.st_nlink))


def real_path(path):
    """The file a write to ``path`` must replace: a symlink's target, so that the link stays a link."""
    return os.path.realpath(path) if os.path.islink(path) else path


def install(tmp, path, mode=None):
    """Rename the complete file ``tmp`` (in ``path``'s directory) over ``path``, keeping what path was.

    Owner, group, mode and SELinux context of the old file go to the new one (``mode``, when given,
    is for a new file); the file and its directory are fsync'd before the rename and the directory again
    after it, so a crash leaves the old or the new file on disk, never neither.
    """
    refuse_hard_links(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if mode is not None:
            os.chmod(tmp, mode)
    else:
        _keep_attributes(tmp, status, _selinux_label(path))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    directory = os.path.dirname(path)
    _fsync_directory(directory)
    os.rename(tmp, path)
    _fsync_directory(directory)


def write_atomic(path, content, mode=0o644, directory_mode=0o777):
    """Write ``content`` (text, as UTF-8, or bytes) to ``path`` so that readers see the old or the new file, never half.

    The file keeps what it was: a symlink stays a symlink (its target is replaced, from a temp file
    in the target's directory, so the rename never crosses file systems), see :func:`install`;
    ``mode`` is for a new file, ``directory_mode`` for the directories made for it (as os.makedirs).
    An OSError (a full disk, a read-only file system) leaves the old file as it was and no temp file.
    """
    path = real_path(path)
    refuse_hard_links(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=directory_mode, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
        finally:
            os.close(handle)
        install(tmp, path, mode)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = ("REQUIRED", "FileRead", "identity", "install", "open_regular", "read_regular", "read_text", "read_whole",
           "real_path", "refuse_hard_links", "write_atomic")
