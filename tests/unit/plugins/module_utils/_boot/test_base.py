"""bootloader.base: atomic writes, backups, restore on failure, command errors, ArgEdit."""

import os
import re
import shutil

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot import base
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import (
    ArgEdit, Bootloader, FileChange, backup_path, set_crashkernel, write_atomic,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

BACKUP = re.compile(r"^(?P<name>.+)\.\d{8}T\d{6}\.kexec-bak$")


def write_bytes(path, data, mode=None):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "wb") as handle:
        handle.write(data)
    if mode is not None:
        os.chmod(str(path), mode)
    return str(path)


def read_bytes(path):
    with open(str(path), "rb") as handle:
        return handle.read()


def mode_of(path):
    return os.stat(str(path)).st_mode & 0o7777


def backups_in(directory):
    return sorted(name for name in os.listdir(str(directory)) if BACKUP.match(name))


# --- write_atomic -----------------------------------------------------------------


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
    monkeypatch.setattr(base.os, failing, boom)
    with pytest.raises(OSError):
        write_atomic(path, "GRUB_CMDLINE_LINUX=\"quiet crashkernel=256M\"\n")
    monkeypatch.undo()
    assert read_bytes(path) == b"GRUB_CMDLINE_LINUX=\"quiet\"\n"
    assert mode_of(path) == 0o600
    assert os.listdir(str(tmp_path)) == ["grub"]


# --- FileChange.diff ---------------------------------------------------------------


def test_diff_headers_are_relative_to_root(tmp_path):
    root = str(tmp_path)
    change = FileChange(os.path.join(root, "etc/default/grub"), "a\n", "b\n")
    assert change.diff(root) == {"before": "a\n", "after": "b\n",
                                 "before_header": "/etc/default/grub", "after_header": "/etc/default/grub"}
    assert change.diff(root + "/")["before_header"] == "/etc/default/grub"


def test_diff_of_a_new_file_says_absent(tmp_path):
    root = str(tmp_path)
    diff = FileChange(os.path.join(root, "etc/kernel/cmdline"), None, "quiet\n").diff(root)
    assert diff["before"] == ""
    assert diff["before_header"] == "/etc/kernel/cmdline (absent)"
    assert diff["after_header"] == "/etc/kernel/cmdline"


def test_diff_on_the_real_root_shows_the_path_as_is():
    change = FileChange("/etc/default/grub", "a\n", "b\n")
    assert change.diff("/")["before_header"] == "/etc/default/grub"
    assert change.diff("/")["after_header"] == "/etc/default/grub"


# --- Bootloader.apply ------------------------------------------------------------


class Recording(Bootloader):
    """A backend whose regenerate step records what it saw on disk, or fails."""

    name = "recording"

    def __init__(self, root, fail=None):
        super(Recording, self).__init__(root, runner=self.refuse)
        self.fail = fail
        self.seen = None

    @staticmethod
    def refuse(argv):
        raise AssertionError("no command expected: %r" % (argv,))

    def regenerate(self, edit):
        self.seen = dict((p, read_bytes(p)) for p in sorted(self.watch))
        if self.fail:
            raise self.fail


@pytest.fixture
def files(tmp_path):
    """Two existing files with awkward bytes (CRLF, no final newline, non-ASCII) and one not yet there."""
    return {
        "grub": write_bytes(tmp_path / "etc/default/grub", b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9', 0o600),
        "dropin": write_bytes(tmp_path / "etc/default/grub.d/kdump-tools.cfg", b"X=1\n", 0o644),
        "new": str(tmp_path / "etc/kernel/cmdline"),
    }


def changes_for(files):
    return [FileChange(files["grub"], base.read_text(files["grub"]), 'GRUB_CMDLINE_LINUX="quiet crashkernel=256M"\n'),
            FileChange(files["dropin"], "X=1\n", "X=2\n"),
            FileChange(files["new"], None, "quiet crashkernel=256M\n")]


def test_apply_writes_backs_up_and_regenerates(tmp_path, files):
    loader = Recording(str(tmp_path))
    loader.watch = [files["grub"], files["dropin"], files["new"]]
    backups = loader.apply(changes_for(files), set_crashkernel("256M"))
    # regenerate ran after every file was written
    assert loader.seen == {files["grub"]: b'GRUB_CMDLINE_LINUX="quiet crashkernel=256M"\n',
                           files["dropin"]: b"X=2\n", files["new"]: b"quiet crashkernel=256M\n"}
    assert backups[files["new"]] is None
    for key in ("grub", "dropin"):
        backup = backups[files[key]]
        match = BACKUP.match(os.path.basename(backup))
        assert match and match.group("name") == os.path.basename(files[key])
        assert os.path.dirname(backup) == os.path.dirname(files[key])
    assert read_bytes(backups[files["grub"]]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert read_bytes(backups[files["dropin"]]) == b"X=1\n"
    assert mode_of(files["grub"]) == 0o600
    # a backup of a drop-in must not be sourced by grub-mkconfig as one more *.cfg
    assert not backups[files["dropin"]].endswith(".cfg")


def test_apply_without_regenerate_does_not_call_it(tmp_path, files):
    loader = Recording(str(tmp_path), fail=AssertionError("regenerate must not run"))
    loader.watch = []
    loader.apply(changes_for(files), set_crashkernel("256M"), regenerate=False)
    assert read_bytes(files["dropin"]) == b"X=2\n"


@pytest.mark.parametrize("error", [KexecError("grub-mkconfig failed"), KeyboardInterrupt()])
def test_regenerate_failure_restores_every_file_exactly(tmp_path, files, error):
    before = dict((key, read_bytes(files[key])) for key in ("grub", "dropin"))
    loader = Recording(str(tmp_path), fail=error)
    loader.watch = [files["grub"], files["dropin"], files["new"]]
    with pytest.raises(type(error)):
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert loader.seen[files["dropin"]] == b"X=2\n"  # the new content had been written
    for key in ("grub", "dropin"):
        assert read_bytes(files[key]) == before[key]
    assert mode_of(files["grub"]) == 0o600
    assert not os.path.exists(files["new"])


def test_failure_writing_a_later_file_restores_the_earlier_ones(tmp_path, files, monkeypatch):
    real = base.write_atomic

    def failing(path, text, mode=0o644):
        if path == files["new"]:
            raise OSError(28, "No space left on device")
        return real(path, text, mode)
    monkeypatch.setattr(base, "write_atomic", failing)
    loader = Recording(str(tmp_path), fail=AssertionError("regenerate must not run"))
    with pytest.raises(OSError):
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert read_bytes(files["grub"]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert read_bytes(files["dropin"]) == b"X=1\n"
    assert not os.path.exists(files["new"])


def test_failed_backup_copy_never_overwrites_an_untouched_file(tmp_path, files, monkeypatch):
    """The disk fills up while backing up the second file: that file was never written, so it must not be
    'restored' from its half-written backup."""
    real = shutil.copy2

    def copy2(src, dst, **kwargs):
        if src == files["dropin"] and dst.endswith(".kexec-bak"):
            write_bytes(dst, b"X=")  # truncated
            raise OSError(28, "No space left on device")
        return real(src, dst, **kwargs)
    monkeypatch.setattr(base.shutil, "copy2", copy2)
    loader = Recording(str(tmp_path), fail=AssertionError("regenerate must not run"))
    with pytest.raises(OSError):
        loader.apply(changes_for(files), set_crashkernel("256M"))
    monkeypatch.undo()
    assert read_bytes(files["dropin"]) == b"X=1\n"
    assert read_bytes(files["grub"]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert not os.path.exists(files["new"])


def test_backup_path_pattern():
    assert backup_path("/etc/default/grub", "20240102T030405") == "/etc/default/grub.20240102T030405.kexec-bak"


# --- run ----------------------------------------------------------------------------


def test_run_returns_stdout_on_success(tmp_path):
    calls = []
    loader = Bootloader(str(tmp_path), runner=lambda argv: calls.append(argv) or (0, "done\n", "warning\n"))
    assert loader.run(["zipl"], "zipl") == "done\n"
    assert calls == [["zipl"]]


def test_run_failure_names_argv_rc_and_stderr(tmp_path):
    loader = Bootloader(str(tmp_path), runner=lambda argv: (2, "some output\n", "  /boot/grub/grub.cfg.new: error\n"))
    with pytest.raises(KexecError) as caught:
        loader.run(["grub-mkconfig", "-o", "/boot/grub/grub.cfg.new"], "generating the GRUB configuration")
    msg = caught.value.msg
    assert msg.startswith("generating the GRUB configuration failed")
    assert "grub-mkconfig -o /boot/grub/grub.cfg.new" in msg
    assert "rc=2" in msg
    assert msg.endswith("/boot/grub/grub.cfg.new: error")


def test_run_failure_falls_back_to_stdout_when_stderr_is_empty(tmp_path):
    loader = Bootloader(str(tmp_path), runner=lambda argv: (1, "Error: no target\n", ""))
    with pytest.raises(KexecError, match=r"zipl failed \(zipl, rc=1\): Error: no target$"):
        loader.run(["zipl"], "zipl")


# --- ArgEdit and set_crashkernel --------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    ("root=/dev/vda1 ro quiet", "root=/dev/vda1 ro quiet crashkernel=256M"),
    ("root=/dev/vda1 crashkernel=128M ro quiet", "root=/dev/vda1 crashkernel=256M ro quiet"),
    ("crashkernel=1G-4G:192M crashkernel=64M,low quiet crashkernel=auto", "crashkernel=256M quiet"),
    ("ro quiet -- single", "ro quiet crashkernel=256M -- single"),
    ("", "crashkernel=256M"),
])
def test_set_crashkernel(args, expected):
    assert set_crashkernel("256M")(args) == expected


@pytest.mark.parametrize("args, expected", [
    ("root=/dev/vda1 crashkernel=128M ro crashkernel=64M,low quiet", "root=/dev/vda1 ro quiet"),
    ("root=/dev/vda1 ro", "root=/dev/vda1 ro"),
    ("crashkernel=auto", ""),
    ("ro -- crashkernel=256M", "ro -- crashkernel=256M"),  # after '--' it is init's, not the kernel's
])
def test_set_crashkernel_none_removes_every_occurrence(args, expected):
    assert set_crashkernel(None)(args) == expected


def test_set_crashkernel_keeps_its_intent_for_tools():
    edit = set_crashkernel("1G-4G:192M,4G-64G:256M")
    assert (edit.append, edit.remove, edit.names) == (["crashkernel=1G-4G:192M,4G-64G:256M"], [], ["crashkernel"])
    edit = set_crashkernel(None)
    assert (edit.append, edit.remove, edit.names) == ([], ["crashkernel"], ["crashkernel"])


def test_argedit_names_and_edit():
    edit = ArgEdit(append=["console=ttyS0", "console=tty0", "quiet"], remove=["rhgb", "console"])
    assert edit.names == ["console", "quiet", "rhgb"]
    assert edit("rhgb console=tty1 ro") == "console=ttyS0 console=tty0 ro quiet"


def test_argedit_rejects_an_argument_that_is_not_one_token():
    with pytest.raises(KexecError, match="not a single kernel argument"):
        ArgEdit(append=["crashkernel=256M quiet"])("ro")


def test_a_backend_without_a_runner_runs_nothing(tmp_path):
    """module_utils never starts processes itself: a backend built without the module's runner refuses."""
    loader = Bootloader(str(tmp_path))
    assert loader.runner is base.run_command
    with pytest.raises(KexecError, match="no command runner to run zipl"):
        loader.run(["zipl"], "zipl")
