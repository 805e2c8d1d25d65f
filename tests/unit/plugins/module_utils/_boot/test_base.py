"""bootloader.base: edits with backups, restore on failure, command errors, ArgEdit (the atomic writer: test_io.py)."""

import errno
import os
import re
import shutil

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot import base
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import (
    ArgEdit, Bootloader, FileChange, backup_path, set_crashkernel,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

from ...fakes import host as fakes
from ...fakes.host import mode_of, read_bytes, write_bytes

BACKUP = re.compile(r"^(?P<name>.+)\.\d{8}T\d{6}\.kexec-bak$")


def backups_in(directory):
    return sorted(name for name in os.listdir(str(directory)) if BACKUP.match(name))


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
    """Two existing files with awkward bytes (CRLF, no final newline, non-ASCII) and one not yet there.

    /etc/default/grub is 0640, not mkstemp's 0600: a write or restore that lost the mode would show."""
    return {
        "grub": write_bytes(tmp_path / "etc/default/grub", b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9', 0o640),
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
    assert mode_of(files["grub"]) == 0o640
    # a backup of a drop-in must not be sourced by grub-mkconfig as one more *.cfg
    assert not backups[files["dropin"]].endswith(".cfg")


def test_apply_without_regenerate_does_not_call_it(tmp_path, files):
    loader = Recording(str(tmp_path), fail=AssertionError("regenerate must not run"))
    loader.watch = []
    loader.apply(changes_for(files), set_crashkernel("256M"), regenerate=False)
    assert read_bytes(files["dropin"]) == b"X=2\n"


@pytest.mark.parametrize("backup", [True, False], ids=["backup", "no-backup"])
@pytest.mark.parametrize("error", [KexecError("grub-mkconfig failed"), KeyboardInterrupt()])
def test_regenerate_failure_restores_every_file_exactly(tmp_path, files, error, backup):
    """backup: false too: the files are copied before they are written, restored from the copies, and only
    then are the copies removed."""
    before = dict((key, read_bytes(files[key])) for key in ("grub", "dropin"))
    loader = Recording(str(tmp_path), fail=error)
    loader.watch = [files["grub"], files["dropin"], files["new"]]
    with pytest.raises(type(error)):
        loader.apply(changes_for(files), set_crashkernel("256M"), backup=backup)
    assert loader.seen[files["dropin"]] == b"X=2\n"  # the new content had been written
    for key in ("grub", "dropin"):
        assert read_bytes(files[key]) == before[key]
    assert mode_of(files["grub"]) == 0o640
    assert not os.path.exists(files["new"])
    assert [len(base.own_backups(files[key])) for key in ("grub", "dropin")] == [1, 1] if backup else [0, 0]


def test_a_file_gone_when_the_restore_runs_comes_back_with_its_mode(tmp_path, files):
    """The failing step removed a file that was written: the restore creates it again from its backup,
    bytes and mode."""
    loader = Recording(str(tmp_path), fail=KexecError("grub-mkconfig failed"))
    loader.watch = []

    def remove_then_fail(edit):
        os.unlink(files["grub"])
        Recording.regenerate(loader, edit)
    loader.regenerate = remove_then_fail
    with pytest.raises(KexecError, match="grub-mkconfig failed"):
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert read_bytes(files["grub"]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert mode_of(files["grub"]) == 0o640


def test_failure_writing_a_later_file_restores_the_earlier_ones(tmp_path, files, monkeypatch):
    real = base.write_atomic

    def failing(path, text, mode=0o644):
        if path == files["new"]:
            raise OSError(28, "No space left on device")
        return real(path, text, mode)
    monkeypatch.setattr(base, "write_atomic", failing)
    loader = Recording(str(tmp_path), fail=AssertionError("regenerate must not run"))
    with pytest.raises(KexecError) as caught:
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert caught.value.msg == ("writing the boot configuration failed: No space left on device; "
                                "every file was restored")
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
    with pytest.raises(KexecError, match="No space left on device; every file was restored"):
        loader.apply(changes_for(files), set_crashkernel("256M"))
    monkeypatch.undo()
    assert read_bytes(files["dropin"]) == b"X=1\n"
    assert read_bytes(files["grub"]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert not os.path.exists(files["new"])
    assert base.own_backups(files["dropin"]) == []  # the half-written copy is no backup: removed


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


# --- files with hard links ----------------------------------------------------------------


def test_apply_refuses_before_writing_anything_when_one_file_has_hard_links(tmp_path, files):
    os.link(files["dropin"], files["dropin"] + ".other")
    before = dict((key, read_bytes(files[key])) for key in ("grub", "dropin"))
    loader = Recording(str(tmp_path), fail=AssertionError("regenerate must not run"))
    with pytest.raises(KexecError, match="kdump-tools.cfg has 2 hard links"):
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert dict((key, read_bytes(files[key])) for key in ("grub", "dropin")) == before
    assert not os.path.exists(files["new"])
    assert backups_in(os.path.dirname(files["grub"])) == []


# --- restore -------------------------------------------------------------------------------


def test_restore_replaces_each_file_atomically_and_keeps_a_symlink(tmp_path, files):
    link = str(tmp_path / "etc/grub2.cfg")
    os.symlink("default/grub", link)
    loader = Recording(str(tmp_path), fail=KexecError("grub-mkconfig failed"))
    loader.watch = []
    changes = [FileChange(link, base.read_text(link), "edited\n")]
    inodes = []
    loader.regenerate = lambda edit: (inodes.append(os.stat(files["grub"]).st_ino), Recording.regenerate(loader, edit))
    with pytest.raises(KexecError, match="grub-mkconfig failed"):
        loader.apply(changes, set_crashkernel("256M"))
    assert os.path.islink(link) and os.readlink(link) == "default/grub"
    assert read_bytes(files["grub"]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert os.stat(files["grub"]).st_ino != inodes[0]  # renamed into place again, never rewritten in place
    assert mode_of(files["grub"]) == 0o640


def test_restore_tries_every_file_and_names_each_one_it_could_not_restore(tmp_path, files, monkeypatch):
    loader = Recording(str(tmp_path), fail=KexecError("grub-mkconfig failed (rc=1): syntax error"))
    loader.watch = []
    real = base.write_atomic
    restoring = []

    def write(path, content, mode=0o644):
        if isinstance(content, bytes):  # the restore writes the backup's bytes
            restoring.append(path)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real(path, content, mode)
    monkeypatch.setattr(base, "write_atomic", write)
    with pytest.raises(KexecError) as caught:
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert restoring == [files["grub"], files["dropin"]]
    assert not os.path.exists(files["new"])  # the files after a failed one were still restored
    msg = caught.value.msg
    assert msg.startswith("grub-mkconfig failed (rc=1): syntax error; and these files could not be restored, "
                          "put them back from their backups by hand: ")
    for key in ("grub", "dropin"):
        assert "%s (backup %s.2" % (files[key], files[key]) in msg
    assert msg.count("Read-only file system") == 2
    assert "Traceback" not in msg


def test_restore_leaves_an_untouched_file_alone(tmp_path, files):
    backups = base.Backups()
    backups.copy([files["dropin"]])
    inode = os.stat(files["dropin"]).st_ino
    assert backups.restore() == {}
    assert os.stat(files["dropin"]).st_ino == inode


def test_a_read_only_file_system_is_one_clear_error_and_changes_nothing(tmp_path, files, monkeypatch):
    # /etc or /boot mounted read-only: the first backup copy fails. One KexecError naming the file
    # system's refusal, no traceback, nothing written, nothing left behind.
    loader = Recording(str(tmp_path))
    loader.watch = []
    before = {key: read_bytes(path) for key, path in files.items() if os.path.exists(path)}
    listing = sorted(os.listdir(os.path.dirname(files["grub"])))

    def read_only(src, dst, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dst)
    monkeypatch.setattr(base.shutil, "copy2", read_only)
    with pytest.raises(KexecError) as caught:
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert "Read-only file system" in caught.value.msg and "Traceback" not in caught.value.msg
    assert {key: read_bytes(path) for key, path in files.items() if os.path.exists(path)} == before
    assert sorted(os.listdir(os.path.dirname(files["grub"]))) == listing


# --- backups kept, bounded, or only for the restore ----------------------------------------------------


def old_backups(path, count, day=1):
    """``count`` backups of ``path`` from earlier edits, as backup_path named them (one a second, January 2024)."""
    made = []
    for index in range(count):
        made.append(write_bytes("%s.202401%02dT0000%02d.kexec-bak" % (path, day, index), b"old %d\n" % index))
    return made


def decoys(path):
    """Files beside ``path`` that look like backups but are not the collection's: never to be deleted."""
    directory = os.path.dirname(path)
    found = [write_bytes(path + ".bak", b"a user's backup\n"),
             write_bytes(path + ".20240101T000000.kexec-bak.old", b"renamed by hand\n"),
             write_bytes(path + "x.20240101T000000.kexec-bak", b"another file's backup\n"),
             write_bytes(path + ".2024-01-01.kexec-bak", b"not our stamp\n"),
             write_bytes(os.path.join(directory, "unrelated.cfg"), b"X=1\n")]
    os.mkdir(path + ".20230101T000000.kexec-bak")  # our name, but a directory
    os.symlink(found[-1], path + ".20230102T000000.kexec-bak")  # our name, but a symlink
    return found + [path + ".20230101T000000.kexec-bak", path + ".20230102T000000.kexec-bak"]


def test_a_backup_in_the_same_second_sorts_after_every_one_before_it(tmp_path, files):
    """Pruning frees the low counters of a second: the next name still goes past the highest, so the newest
    sorts last; a name taken by anything (a dangling symlink too) is never written through."""
    stamp = "20240102T030405"
    path = files["grub"]
    write_bytes("%s.%s.kexec-bak" % (path, stamp), b"a")
    write_bytes("%s.%s-5.kexec-bak" % (path, stamp), b"b")
    os.symlink(str(tmp_path / "nowhere"), "%s.%s-6.kexec-bak" % (path, stamp))
    assert backup_path(path, stamp) == "%s.%s-7.kexec-bak" % (path, stamp)
    assert backup_path(path, "20240102T030406") == "%s.20240102T030406.kexec-bak" % path


def test_own_backups_are_our_names_only_oldest_first(tmp_path, files):
    path = files["grub"]
    planted = decoys(path)
    made = [write_bytes(path + name, b"x") for name in (
        ".20240102T000000.kexec-bak", ".20240101T000000-1.kexec-bak", ".20240101T000000.kexec-bak",
        ".20240101T000000-10.kexec-bak", ".20240101T000000-2.kexec-bak")]
    assert base.own_backups(path) == [made[2], made[1], made[4], made[3], made[0]]  # stamp, then counter
    assert not set(base.own_backups(path)) & set(planted)
    assert base.own_backups(str(tmp_path / "nowhere" / "grub")) == []


def test_at_most_keep_backups_of_our_own_stay_per_file_and_nothing_else_is_deleted(tmp_path, files):
    assert base.KEEP_BACKUPS == 5  # documented in kdump_reserve's backup option and the roles' READMEs
    old = {key: old_backups(files[key], count) for key, count in (("grub", 8), ("dropin", 2))}
    planted = decoys(files["grub"])
    loader = Recording(str(tmp_path))
    loader.watch = []
    kept = loader.apply(changes_for(files), set_crashkernel("256M"), backup=True)
    # grub: this edit's backup and the four newest before it; the three oldest are gone
    assert base.own_backups(files["grub"]) == old["grub"][4:] + [kept[files["grub"]]]
    assert read_bytes(kept[files["grub"]]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    # dropin: three in all, below the bound: none deleted
    assert base.own_backups(files["dropin"]) == old["dropin"] + [kept[files["dropin"]]]
    assert all(os.path.lexists(path) for path in planted)
    assert kept == {files["grub"]: kept[files["grub"]], files["dropin"]: kept[files["dropin"]], files["new"]: None}
    assert loader.backup_warnings == []


def test_backup_false_leaves_no_copy_after_success(tmp_path, files):
    old = old_backups(files["grub"], 2)
    loader = Recording(str(tmp_path))
    loader.watch = [files["grub"], files["dropin"], files["new"]]
    assert loader.apply(changes_for(files), set_crashkernel("256M"), backup=False) == {}
    assert read_bytes(files["dropin"]) == b"X=2\n" and read_bytes(files["new"]) == b"quiet crashkernel=256M\n"
    assert base.own_backups(files["grub"]) == old  # earlier backups are not this edit's to touch
    assert base.own_backups(files["dropin"]) == base.own_backups(files["new"]) == []


def test_backup_false_keeps_the_copy_of_a_file_it_could_not_put_back(tmp_path, files, monkeypatch):
    loader = Recording(str(tmp_path), fail=KexecError("grub-mkconfig failed"))
    loader.watch = []
    real = base.write_atomic

    def write(path, content, mode=0o644):
        if isinstance(content, bytes) and path == files["grub"]:  # the restore of this one file fails
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real(path, content, mode)
    monkeypatch.setattr(base, "write_atomic", write)
    with pytest.raises(KexecError) as caught:
        loader.apply(changes_for(files), set_crashkernel("256M"), backup=False)
    [copy] = base.own_backups(files["grub"])
    assert "%s (backup %s): Read-only file system" % (files["grub"], copy) in caught.value.msg
    assert read_bytes(copy) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'
    assert base.own_backups(files["dropin"]) == []  # put back: its copy is gone


def test_an_old_backup_that_cannot_be_deleted_is_a_warning_not_a_failure(tmp_path, files, monkeypatch):
    old = old_backups(files["grub"], base.KEEP_BACKUPS)
    real = os.unlink

    def unlink(path, *args, **kwargs):
        if path == old[0]:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(base.os, "unlink", unlink)
    loader = Recording(str(tmp_path))
    loader.watch = []
    kept = loader.apply(changes_for(files), set_crashkernel("256M"), backup=True)
    assert read_bytes(files["dropin"]) == b"X=2\n" and kept[files["grub"]]
    assert loader.backup_warnings == ["the backup %s could not be removed: Read-only file system (%s)"
                                      % (old[0], old[0])]


def test_a_file_replaced_by_a_fifo_before_the_restore_is_named_without_hanging(tmp_path, files, no_hang):
    loader = Recording(str(tmp_path), fail=KexecError("grub-mkconfig failed"))
    loader.watch = []

    def fifo_then_fail(edit):
        fakes.no_regular_file(files["dropin"], "fifo")
        Recording.regenerate(loader, edit)
    loader.regenerate = fifo_then_fail
    with pytest.raises(KexecError) as caught:
        loader.apply(changes_for(files), set_crashkernel("256M"))
    assert "%s (backup %s." % (files["dropin"], files["dropin"]) in caught.value.msg
    assert "%s is a FIFO, not a regular file" % files["dropin"] in caught.value.msg
    assert read_bytes(files["grub"]) == b'GRUB_CMDLINE_LINUX="quiet"\r\n# caf\xc3\xa9'  # the others restored
