"""Only regular files are read: a FIFO, a device, a socket or a directory is refused at once, never read."""

import os
import socket

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import FileRead, identity, open_regular, read_regular, read_whole


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
