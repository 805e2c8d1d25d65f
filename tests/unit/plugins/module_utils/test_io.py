"""_io: only regular files are read, a FIFO, a device, a socket or a directory refused at once, never read;
one error per failure, a missing file absent only where the caller says so; atomic writes that keep what the
file was and leave nothing half done."""

import errno
import os
import socket

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils import _io
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Missing, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._io import (
    FileRead, identity, open_regular, read_regular, read_text, read_whole, write_atomic,
)

from ..fakes import host as fakes
from ..fakes.host import mode_of, read_bytes, write_bytes


def test_regular_file_is_read(tmp_path):
    path = tmp_path / "vmlinuz"
    path.write_bytes(b"kernel bytes")
    assert read_regular(str(path), "kernel", 6) == b"kernel"


def test_fifo_without_writer_is_refused_without_blocking(tmp_path, no_hang):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    with pytest.raises(KexecError, match="initrd .*fifo is a FIFO, not a regular file"):
        open_regular(fifo, "initrd")


def test_character_device_is_refused():
    with pytest.raises(KexecError, match="kernel /dev/zero is a character device"):
        open_regular("/dev/zero", "kernel")


def test_socket_is_refused(tmp_path):
    path = str(tmp_path / "sock")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(path)
        with pytest.raises(KexecError, match="is a socket|cannot be opened"):
            open_regular(path, "kernel")
    finally:
        server.close()


def test_directory_is_refused(tmp_path):
    with pytest.raises(KexecError, match="is a directory, not a regular file"):
        open_regular(str(tmp_path), "kernel")


@pytest.mark.parametrize("path", ["", "/boot/vmlinuz\0x"])
def test_empty_path_or_nul_byte_is_refused(path):
    with pytest.raises(KexecError, match="not a usable path"):
        open_regular(path, "kernel")


def test_missing_file_names_the_hint(tmp_path):
    with pytest.raises(KexecError, match="kernel .*/nope does not exist; try this"):
        open_regular(str(tmp_path / "nope"), "kernel", "; try this")


def test_symlink_to_a_regular_file_is_followed(tmp_path):
    target = tmp_path / "vmlinuz-6.1"
    target.write_bytes(b"k")
    link = tmp_path / "vmlinuz"
    link.symlink_to(target)
    assert read_regular(str(link), "kernel") == b"k"


def test_read_whole_keeps_the_bytes_and_who_the_file_was(tmp_path):
    path = tmp_path / "initrd"
    path.write_bytes(b"initrd bytes")
    read = read_whole(str(path), "initrd")
    assert read.parts == [b"initrd bytes"] and read.whole
    assert read.identity == identity(os.stat(str(path)))


def test_a_file_renamed_over_the_path_lends_no_identity(tmp_path):
    """The bytes are the old file's, and so is the identity (fstat of the open descriptor, not stat of the path)."""
    path = str(tmp_path / "initrd")
    with open(path, "wb") as handle:
        handle.write(b"old")
    old_inode = os.stat(path).st_ino
    with open_regular(path, "initrd") as handle:
        with open(path + ".new", "wb") as new:  # replaced between the open and the read
            new.write(b"new!")
        os.rename(path + ".new", path)
        read = FileRead(path, handle)
        assert read.read() == b"old"
        read.done()
        assert read.identity == identity(os.fstat(handle.fileno()))
    assert read.whole  # the whole of the file the bytes came from
    assert read.identity[1] == old_inode and read.identity != identity(os.stat(path))


@pytest.mark.parametrize("change", ["append", "rewrite", "partial"])
def test_a_file_changed_while_read_or_read_in_part_is_not_whole(tmp_path, change):
    path = str(tmp_path / "initrd")
    with open(path, "wb") as handle:
        handle.write(b"0123456789")
    os.utime(path, ns=(1, 1))  # so a rewrite moves mtime even where timestamps are coarse
    with open_regular(path, "initrd") as handle:
        read = FileRead(path, handle)
        read.read(4)
        if change != "partial":
            with open(path, "ab" if change == "append" else "r+b") as writer:
                writer.write(b"X")
            read.read()
        read.done()
    assert not read.whole


def test_read_whole_runs_its_check_on_the_descriptor_before_reading(tmp_path):
    path = tmp_path / "initrd.img"
    path.write_bytes(b"\x1f\x8b" + bytes(100))
    seen = []

    def refuse_after_a_peek(handle):
        seen.append((os.fstat(handle.fileno()).st_size, handle.read(2)))
        raise KexecError("too big")
    with pytest.raises(KexecError, match="too big"):
        read_whole(str(path), "initrd", check=refuse_after_a_peek)
    assert seen == [(102, b"\x1f\x8b")]
    read = read_whole(str(path), "initrd", check=lambda handle: handle.read(2))  # a check that reads: from the start
    assert read.parts == [b"\x1f\x8b" + bytes(100)] and read.whole


# --- read_text and read_regular: one policy for every file read --------------------------------


def test_read_text_gives_the_text_as_open_would(tmp_path):
    path = write_bytes(tmp_path / "grub", b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9\rlast')
    with open(path, "r", encoding="utf-8") as handle:
        expected = handle.read()
    assert read_text(path) == expected == 'GRUB_CMDLINE_LINUX="quiet"\n# caf\xe9\nlast'


@pytest.mark.parametrize("where", ["nope", "file/below"], ids=["missing", "under-a-file"])
def test_a_missing_file_is_absent_only_where_the_caller_says_so(tmp_path, where):
    write_bytes(tmp_path / "file", b"x")
    path = str(tmp_path / where)
    assert read_text(path, missing=None) is None
    assert read_regular(path, "state", missing=b"") == b""
    with pytest.raises(Missing, match="^kdump configuration %s does not exist$" % path) as caught:
        read_text(path, "kdump configuration")
    assert caught.value.path == path


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_fifo_directory_or_device_is_one_error_never_read(tmp_path, kind, no_hang):
    path = {"fifo": str(tmp_path / "fifo"), "directory": str(tmp_path), "device": os.devnull}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    shown = {"fifo": "a FIFO", "directory": "a directory", "device": "a character device"}[kind]
    for read in (read_text, read_regular):
        with pytest.raises(KexecError, match="^state %s is %s, not a regular file$" % (path, shown)):
            read(path, "state", missing=None)  # there, so never taken for missing


def test_a_file_this_user_may_not_read_is_unreadable(tmp_path, monkeypatch):
    # the tests may run as root, who reads a 0600 file anyway: the open is refused as for another user
    path = write_bytes(tmp_path / "kdump.conf", b"path /var/crash\n", 0o600)
    fakes.deny_reads(monkeypatch, path)
    for read in (read_text, read_regular):
        with pytest.raises(Unreadable) as caught:
            read(path, "kdump configuration", missing=None)
        assert caught.value.msg == "kdump configuration %s cannot be read: run as root (become: true)" % path
        assert caught.value.path == path


def test_a_read_the_file_system_fails_is_one_error(tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "SecureBoot", b"\x06\x00\x00\x00\x01")
    real_fdopen = os.fdopen

    class FailingRead:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, *args):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FailingRead(real_fdopen(fd, mode)))
    with pytest.raises(KexecError) as caught:
        read_regular(path, "EFI variable")
    assert caught.value.msg == "EFI variable %s cannot be read: %s" % (path, os.strerror(errno.EIO))


@pytest.mark.parametrize("data, error", [
    (b"USE_KDUMP=1\n\0\0\0", "holds a NUL byte: it is not a text file"),
    (b"# caf\xe9 (Latin-1)\n", r"is not UTF-8 text \(byte 5\)"),
], ids=["nul", "latin-1"])
def test_text_with_a_nul_byte_or_not_utf8_is_one_error(tmp_path, data, error):
    path = write_bytes(tmp_path / "kdump-tools", data)
    with pytest.raises(KexecError, match="^kdump configuration %s %s$" % (path, error)):
        read_text(path, "kdump configuration")
    assert read_regular(path, "kdump configuration") == data  # bytes are bytes


# --- write_atomic: the one atomic writer --------------------------------------------------------


def test_write_atomic_creates_file_and_directories(tmp_path):
    path = str(tmp_path / "etc" / "kernel" / "cmdline")
    write_atomic(path, "root=/dev/vda1 ro crashkernel=256M\n")
    assert read_bytes(path) == b"root=/dev/vda1 ro crashkernel=256M\n"
    assert mode_of(path) == 0o644
    assert os.listdir(os.path.dirname(path)) == ["cmdline"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_write_atomic_replaces_content_and_keeps_mode(tmp_path, mode):
    path = write_bytes(tmp_path / "grub", b"old contents\n", mode)
    inode = os.stat(path).st_ino
    write_atomic(path, "new contents\n")
    assert read_bytes(path) == b"new contents\n"
    assert mode_of(path) == mode
    assert os.stat(path).st_ino != inode  # renamed into place, not rewritten where readers could see half
    assert os.listdir(str(tmp_path)) == ["grub"]  # no temp file left


@pytest.mark.parametrize("failing", ["fsync", "rename", "chmod"])
def test_write_atomic_failure_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    path = write_bytes(tmp_path / "grub", b"GRUB_CMDLINE_LINUX=\"quiet\"\n", 0o600)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError):
        write_atomic(path, "GRUB_CMDLINE_LINUX=\"quiet crashkernel=256M\"\n")
    monkeypatch.undo()
    assert read_bytes(path) == b"GRUB_CMDLINE_LINUX=\"quiet\"\n"
    assert mode_of(path) == 0o600
    assert os.listdir(str(tmp_path)) == ["grub"]


def test_write_atomic_through_a_symlink_edits_the_target_in_its_own_directory(tmp_path, monkeypatch):
    """/etc/grub2.cfg -> ../boot/grub2/grub.cfg (as on RHEL): the link stays, the target is replaced."""
    target = write_bytes(tmp_path / "boot/grub2/grub.cfg", b"old\n", 0o600)
    link = str(tmp_path / "etc/grub2.cfg")
    os.makedirs(os.path.dirname(link))
    os.symlink("../boot/grub2/grub.cfg", link)
    temp_dirs = []
    real_mkstemp = _io.tempfile.mkstemp

    def mkstemp(**kwargs):
        temp_dirs.append(kwargs["dir"])
        return real_mkstemp(**kwargs)
    monkeypatch.setattr(_io.tempfile, "mkstemp", mkstemp)
    write_atomic(link, "new\n")
    assert os.path.islink(link) and os.readlink(link) == "../boot/grub2/grub.cfg"
    assert read_bytes(target) == b"new\n" and mode_of(target) == 0o600
    assert temp_dirs == [os.path.dirname(target)]  # a rename never crosses file systems
    assert os.listdir(os.path.dirname(target)) == ["grub.cfg"]
    assert os.listdir(os.path.dirname(link)) == ["grub2.cfg"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_write_atomic_keeps_owner_group_and_mode(tmp_path):
    path = write_bytes(tmp_path / "grub", b"old\n", 0o640)
    os.chown(path, 1234, 5678)
    write_atomic(path, "new\n")
    status = os.stat(path)
    assert (status.st_uid, status.st_gid, mode_of(path)) == (1234, 5678, 0o640)


def test_write_atomic_gives_the_new_file_the_old_owner(tmp_path, monkeypatch):
    """Without root: the old file's owner is made to differ, and chown must be asked for it."""
    path = write_bytes(tmp_path / "grub", b"old\n", 0o640)
    real_stat = os.stat
    chowned = []

    def stat(name, *args, **kwargs):
        status = real_stat(name, *args, **kwargs)
        if name == path:  # the old file, as the writer sees it before the rename
            fields = list(status)
            fields[4], fields[5] = 1234, 5678
            return os.stat_result(fields)
        return status
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "chown", lambda name, uid, gid: chowned.append((os.path.dirname(name), uid, gid)))
    write_atomic(path, "new\n")
    assert chowned == [(str(tmp_path), 1234, 5678)]


class FakeSelinux:
    """getxattr/setxattr for security.selinux: the old file has a label; records what is set where."""

    def __init__(self, label=b"system_u:object_r:bootloader_etc_t:s0\x00", get_errno=None, set_errno=None):
        self.label = label
        self.get_errno = get_errno
        self.set_errno = set_errno
        self.set = []

    def getxattr(self, path, name, follow_symlinks=True):
        assert name == "security.selinux"
        if self.get_errno:
            raise OSError(self.get_errno, os.strerror(self.get_errno))
        return self.label

    def setxattr(self, path, name, value, *args, **kwargs):
        if self.set_errno:
            raise OSError(self.set_errno, os.strerror(self.set_errno))
        self.set.append((os.path.basename(path), name, value))


def test_write_atomic_keeps_the_selinux_context(tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "grub", b"old\n")
    selinux = FakeSelinux()
    monkeypatch.setattr(os, "getxattr", selinux.getxattr)
    monkeypatch.setattr(os, "setxattr", selinux.setxattr)
    write_atomic(path, "new\n")
    assert len(selinux.set) == 1
    temp, name, value = selinux.set[0]
    assert temp.startswith(".grub.") and name == "security.selinux" and value == selinux.label
    assert read_bytes(path) == b"new\n"


@pytest.mark.parametrize("get_errno, set_errno", [
    (errno.ENODATA, None), (errno.ENOTSUP, None), (errno.EOPNOTSUPP, None), (None, errno.ENOTSUP),
], ids=["no-label", "fs-without-xattrs", "eopnotsupp", "label-not-settable"])
def test_write_atomic_without_selinux_writes_all_the_same(tmp_path, monkeypatch, get_errno, set_errno):
    path = write_bytes(tmp_path / "grub", b"old\n")
    selinux = FakeSelinux(get_errno=get_errno, set_errno=set_errno)
    monkeypatch.setattr(os, "getxattr", selinux.getxattr)
    monkeypatch.setattr(os, "setxattr", selinux.setxattr)
    write_atomic(path, "new\n")
    assert read_bytes(path) == b"new\n"


def test_write_atomic_refuses_a_file_with_hard_links(tmp_path):
    path = write_bytes(tmp_path / "grub", b"old\n")
    os.link(path, str(tmp_path / "grub.link"))
    with pytest.raises(KexecError, match=r"grub has 2 hard links: replacing it would leave the other names"):
        write_atomic(path, "new\n")
    assert read_bytes(path) == read_bytes(tmp_path / "grub.link") == b"old\n"
    assert os.stat(path).st_nlink == 2
    assert sorted(os.listdir(str(tmp_path))) == ["grub", "grub.link"]


def test_write_atomic_fsyncs_file_and_directory_around_the_rename(tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "grub", b"old\n")
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        events.append(("fsync", os.readlink("/proc/self/fd/%d" % fd)))
        return real_fsync(fd)

    def rename(src, dst):
        events.append(("rename", dst))
        return real_rename(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    write_atomic(path, "new\n")
    assert [event[0] for event in events] == ["fsync", "fsync", "rename", "fsync"]
    assert os.path.basename(events[0][1]).startswith(".grub.")  # the new file's data
    assert events[1][1] == events[3][1] == str(tmp_path)  # its directory, before and after


def test_a_full_disk_half_way_through_the_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "digests.json", b"{}", 0o600)
    real_write = os.write
    written = []

    def write(fd, data):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(real_write(fd, data[:4]))  # a short write first: the rest must still be written
        return written[-1]
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OSError, match="No space left on device"):
        write_atomic(path, '{"a": 1}')
    assert written == [4]
    assert read_bytes(path) == b"{}" and mode_of(path) == 0o600
    assert os.listdir(str(tmp_path)) == ["digests.json"]


def test_a_short_write_is_continued_to_the_end(tmp_path, monkeypatch):
    path = str(tmp_path / "run/kernel-kexec/default.json")
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:3]))
    write_atomic(path, "caf\xe9 " * 100, mode=0o600, directory_mode=0o700)
    assert read_bytes(path) == "caf\xe9 ".encode("utf-8") * 100
    assert mode_of(path) == 0o600 and mode_of(os.path.dirname(path)) == 0o700
