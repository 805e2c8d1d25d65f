import hashlib
import os
import stat

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import (
    RECORD_DIR, current_load, read_record, record_path, remove_record, sha256_file, write_record,
)

from ...fakes import host as fakes

RECORD = {"type": "default", "kernel": "/boot/vmlinuz-6.1.0-28-amd64", "kernel_sha256": "ab" * 32,
          "cmdline": "root=/dev/vda1 ro", "method": "file", "boot_id": fakes.BOOT_ID}


def record_dir(root):
    return os.path.join(str(root), RECORD_DIR)


def test_record_round_trip_per_kind(tmp_path):
    write_record(str(tmp_path), "default", RECORD)
    assert read_record(str(tmp_path), "default", fakes.BOOT_ID) == RECORD
    assert read_record(str(tmp_path), "crash", fakes.BOOT_ID) is None
    assert stat.S_IMODE(os.stat(record_dir(tmp_path)).st_mode) == 0o700


def test_record_of_another_boot_is_ignored(tmp_path):
    write_record(str(tmp_path), "default", RECORD)
    assert read_record(str(tmp_path), "default", "another-boot-id") is None


@pytest.mark.parametrize("content", ['{"type": "default", "boot_id": ', "[1, 2]", "null", b"\xff\xfe{"])
def test_unreadable_record_is_ignored(tmp_path, content):
    fakes.write_file(record_path(str(tmp_path), "default"), content)
    assert read_record(str(tmp_path), "default", fakes.BOOT_ID) is None


def test_write_replaces_atomically_and_leaves_no_temp_file(tmp_path):
    write_record(str(tmp_path), "default", RECORD)
    newer = dict(RECORD, cmdline="ro quiet")
    write_record(str(tmp_path), "default", newer)
    assert os.listdir(record_dir(tmp_path)) == ["default.json"]
    assert read_record(str(tmp_path), "default", fakes.BOOT_ID) == newer


def test_failed_write_keeps_old_record_and_removes_temp_file(tmp_path):
    write_record(str(tmp_path), "default", RECORD)
    with pytest.raises(TypeError):
        write_record(str(tmp_path), "default", dict(RECORD, cmdline=object()))
    assert os.listdir(record_dir(tmp_path)) == ["default.json"]
    assert read_record(str(tmp_path), "default", fakes.BOOT_ID) == RECORD


def test_remove_record(tmp_path):
    write_record(str(tmp_path), "crash", dict(RECORD, type="crash"))
    write_record(str(tmp_path), "default", RECORD)
    remove_record(str(tmp_path), "crash")
    remove_record(str(tmp_path), "crash")  # already gone: no error
    assert os.listdir(record_dir(tmp_path)) == ["default.json"]


@pytest.mark.parametrize("kind, loaded_flags, record_boot_id, expected", [
    ("default", (1, 0), fakes.BOOT_ID, "record"),
    ("default", (0, 0), fakes.BOOT_ID, None),  # the kernel says nothing is loaded: the record is stale
    ("default", (0, 1), fakes.BOOT_ID, None),  # only a crash kernel is loaded
    ("default", (1, 0), None, "unknown"),  # loaded by someone else
    ("default", (1, 0), "another-boot-id", "unknown"),
    ("crash", (0, 1), None, "unknown"),
    ("crash", (1, 0), None, None),
])
def test_current_load(tmp_path, kind, loaded_flags, record_boot_id, expected):
    host = fakes.fake_host(tmp_path, loaded=loaded_flags[0], crash_loaded=loaded_flags[1])
    record = dict(RECORD, type=kind, boot_id=record_boot_id)
    if record_boot_id:
        write_record(host.root, kind, record)
    current = current_load(host.root, KernelState(host.root), kind)
    if expected == "record":
        assert current == record
    elif expected == "unknown":
        assert current == {"type": kind, "by": "unknown (not loaded by kernel.kexec)"}
    else:
        assert current is None


def test_sha256_file_over_several_chunks(tmp_path):
    data = fakes.bzimage_bytes() + b"tail"
    path = fakes.write_file(str(tmp_path / "vmlinuz"), data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk=1000) == expected
    assert sha256_file(path) == expected


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_record_that_is_no_regular_file_is_one_error_without_hanging(tmp_path, kind, no_hang):
    path = record_path(str(tmp_path), "default")
    shown = fakes.no_regular_file(path, kind)
    with pytest.raises(KexecError, match="^load record %s is %s, not a regular file$" % (path, shown)):
        read_record(str(tmp_path), "default", fakes.BOOT_ID)


def test_a_record_written_through_a_symlink_replaces_the_target_and_keeps_its_mode(tmp_path):
    target = fakes.write_file(str(tmp_path / "elsewhere/default.json"), "{}\n")
    os.chmod(target, 0o640)
    path = record_path(str(tmp_path), "default")
    os.makedirs(os.path.dirname(path))
    os.symlink(target, path)
    write_record(str(tmp_path), "default", RECORD)
    assert os.path.islink(path) and read_record(str(tmp_path), "default", fakes.BOOT_ID) == RECORD
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
