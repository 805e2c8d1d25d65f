# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bootloader interface and the safe file edits every backend shares.

Private to the kernel.kexec collection. A backend reads the kernel arguments
it configures, plans an edit as a list of file changes (nothing written), and
applies the plan: each file is written atomically (_io.write_atomic) after a
backup copy, then the backend's generator
runs (update-grub, grubby, zipl ...) and its output is validated; when that
fails every file is put back as it was. Planning is pure, so check mode and
diff mode show exactly what apply would write.

The copies are :class:`Backups`: made on every edit, as the restore needs them;
kept afterwards only when asked (kdump_reserve's ``backup``), and then at most
KEEP_BACKUPS of the collection's own per file, so /boot never fills up with them.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils import _io
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import host_machine
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular, refuse_hard_links, write_atomic


def run_command(argv):
    """The runner of a backend built without one: commands are run by the module (module.run_command,
    passed as ``runner``), never from module_utils directly, so this refuses."""
    raise KexecError("no command runner to run %s: the module passes module.run_command as runner" % argv[0])


class FileChange:
    """One file's planned content; ``before`` is None for a new file."""

    def __init__(self, path, before, after):
        self.path = path
        self.before = before
        self.after = after

    def diff(self, root):
        shown = "/" + os.path.relpath(self.path, root) if root != "/" else self.path
        return {"before": self.before or "", "after": self.after or "",
                "before_header": shown + (" (absent)" if self.before is None else ""), "after_header": shown}


def read_text(path):
    """Text of the boot configuration file ``path``, or None when it does not exist (_io.read_text)."""
    return _io.read_text(path, missing=None)


def _reason(exc):
    """An OSError as a person reads it (strerror and the file), a KexecError as its message."""
    if isinstance(exc, KexecError):
        return exc.msg
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (" (%s)" % exc.filename if exc.filename else "")
    return str(exc)


BACKUP_SUFFIX = ".kexec-bak"
# The backups of one file kept after an edit that keeps backups: this edit's and the newest before it. /boot is
# often a few hundred MB and every kept grub.cfg copy stays there; five undo an edit, and the four before it.
KEEP_BACKUPS = 5


def backup_path(path, stamp):
    """PATH.STAMP.kexec-bak; a second one in the same second PATH.STAMP-N.kexec-bak, N past every backup of that
    second, so a backup is never overwritten and the newest sorts last, even after older ones were pruned."""
    counters = [counter for (when, counter), _backup in _own_backups(path) if when == stamp]
    count = max(counters) + 1 if counters else 0
    while True:
        candidate = "%s.%s%s%s" % (path, stamp, "-%d" % count if count else "", BACKUP_SUFFIX)
        if not os.path.lexists(candidate):
            return candidate
        count += 1


def own_backups(path):
    """The backups of ``path`` that backup_path names (PATH.STAMP.kexec-bak, PATH.STAMP-N.kexec-bak), oldest first.

    Regular files only (a symlink or directory of that name is no backup of ours), in ``path``'s directory;
    the order is the stamp's, then the counter's. Nothing else in the directory is ever listed.
    """
    return [backup for _key, backup in _own_backups(path)]


def _own_backups(path):
    """[((stamp, counter), backup)] of own_backups, sorted."""
    directory, name = os.path.split(path)
    pattern = re.compile(r"%s\.(\d{8}T\d{6})(?:-(\d+))?%s\Z" % (re.escape(name), re.escape(BACKUP_SUFFIX)))
    try:
        entries = os.listdir(directory or ".")
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.match(entry)
        if not match:
            continue
        full = os.path.join(directory, entry)
        try:
            if not stat.S_ISREG(os.lstat(full).st_mode):
                continue
        except OSError:
            continue
        found.append(((match.group(1), int(match.group(2) or 0)), full))
    return sorted(found)


class Backups:
    """The copies one edit makes, beside each file it may write: PATH.STAMP.kexec-bak.

    Every edit makes them, whatever the user asked: the restore after a failure puts
    the files back from them. ``keep`` (kdump_reserve's ``backup``) decides what
    stays after a successful edit (:meth:`finish`): with it this edit's copies stay,
    and of each file's own backups only the newest ``limit`` (this edit's among them);
    without it this edit's copies are removed. After a failure (:meth:`discard`) a
    copy that did not keep ``keep`` is removed once its file is back. Only this
    edit's copies and names own_backups lists are ever deleted.
    """

    def __init__(self, keep=True, limit=KEEP_BACKUPS):
        self.keep = keep
        self.limit = limit
        self.stamp = time.strftime("%Y%m%dT%H%M%S")
        self.made = {}  # path -> its copy, None for a file that did not exist
        self.warnings = []  # old backups that could not be deleted: said, never a failure

    def copy(self, paths):
        """Copy each file in ``paths`` aside (None for a missing one) unless it was copied already."""
        for path in paths:
            if path in self.made:
                continue
            if not os.path.lexists(path):
                self.made[path] = None
                continue
            # Registered only once the copy is complete: a half-written backup
            # (disk full) must not be "restored" over a file not yet touched; nor is it left behind.
            backup = backup_path(path, self.stamp)
            try:
                shutil.copy2(path, backup)
            except BaseException:
                self._remove([backup])
                raise
            self.made[path] = backup

    def restore(self):
        """Put each file back as its copy holds it (remove it if it did not exist), atomically per file.

        Tries every file whatever fails; returns {path: a line saying why} for each one it could not restore.
        """
        failed = {}
        for path, backup in self.made.items():
            try:
                if backup is None:
                    if os.path.lexists(path):
                        os.unlink(path)
                    continue
                saved = read_regular(backup, "backup")
                if read_regular(path, "", missing=None) == saved:
                    continue  # untouched: leave it (and its times) alone
                write_atomic(path, saved, mode=os.stat(backup).st_mode & 0o7777)
            except (OSError, KexecError) as exc:
                failed[path] = "%s (backup %s): %s" % (path, backup or "none, it was new", _reason(exc))
        return failed

    def finish(self):
        """After a successful edit: {path: backup} kept (empty without ``keep``); older own backups pruned."""
        if not self.keep:
            self._remove(backup for backup in self.made.values() if backup)
            return {}
        kept = dict((path, backup) for path, backup in self.made.items() if backup)
        for path, backup in kept.items():
            older = [other for other in own_backups(path) if other != backup]
            self._remove(older[:max(0, len(older) - (self.limit - 1))])
        return kept

    def discard(self, failed=()):
        """After a failed edit without ``keep``: remove the copies of the files put back (not of ``failed``)."""
        if not self.keep:
            self._remove(backup for path, backup in self.made.items() if backup and path not in failed)

    def _remove(self, backups):
        for backup in backups:
            try:
                os.unlink(backup)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.warnings.append("the backup %s could not be removed: %s" % (backup, _reason(exc)))


def kernel_names(kernel):
    """What a user's ``kernel`` names: (release, file name), or None for every kernel.

    Accepts the forms people write: a release (6.1.0-18-amd64), /boot/vmlinuz-RELEASE,
    /vmlinuz-RELEASE (as BLS entries and grubby --info name it), and ALL.
    """
    if not kernel or kernel.strip() == "ALL":
        return None
    name = os.path.basename(kernel.strip().rstrip("/"))
    release = name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else name
    return release, name


class Bootloader:
    """One bootloader's way of holding kernel arguments. Subclasses fill in the hooks."""

    name = None

    def __init__(self, root="/", runner=run_command, kernel=None, machine=None):
        self.root = root
        self.runner = runner
        self.kernel = kernel  # limit the edit to one kernel's entries where the backend can; None: all
        self.machine = host_machine(machine)  # s390x boots through zipl, whatever writes the entries

    def path(self, relative):
        return os.path.join(self.root, relative.lstrip("/"))

    # --- hooks -----------------------------------------------------------

    @classmethod
    def detect(cls, root):
        """True when this bootloader manages the host at ``root``."""
        raise NotImplementedError

    def configured_args(self):
        """The arguments the default boot entry gets (one string)."""
        raise NotImplementedError

    def plan_edit(self, edit):
        """File changes that apply ``edit`` (an ArgEdit); empty when none are needed."""
        raise NotImplementedError

    def regenerate(self, edit):
        """Run the bootloader's generator after the files changed; raise KexecError on failure."""

    def needs_regenerate(self, edit):
        """True when the files are right but the generated boot config is not (a missed update-grub)."""
        return False

    # --- shared ----------------------------------------------------------

    def run(self, argv, what):
        try:
            rc, out, err = self.runner(argv)
        except OSError as exc:  # not installed, not executable: the caller restores what it wrote
            raise KexecError("%s failed: %s could not be started: %s" % (what, argv[0], exc.strerror or exc))
        if rc != 0:
            raise KexecError("%s failed (%s, rc=%d): %s" % (what, " ".join(argv), rc, (err or out).strip()))
        return out

    def apply(self, changes, edit, regenerate=True, backup=True):
        """Write the changes with backups, regenerate, and restore everything if that fails.

        ``backup``: keep this edit's copies afterwards (see :class:`Backups`). Returns the
        kept copies, {path: backup} (None for a file that did not exist), empty without it.
        """
        for change in changes:  # before anything is written: refuse all or write all
            refuse_hard_links(change.path)

        def steps(backups):
            self._write_with_backups(changes, backups)
            if regenerate:
                self.regenerate(edit)
        return self._edit(steps, backup)

    backups = None  # the Backups of the edit apply is making, for a generator that replaces a file too
    backup_warnings = ()  # what the last edit could not clean up (an old backup it could not delete)

    def _edit(self, steps, backup):
        """Run ``steps(backups)`` with a new Backups: every file restored if it fails, the copies settled if not.

        Returns what apply returns."""
        backups = self.backups = Backups(keep=backup)
        try:
            try:
                steps(backups)
            except BaseException as exc:
                self._restore_or_explain(backups, exc)
                raise
            kept = backups.finish()
            if backup:
                kept.update((path, None) for path, copy in backups.made.items() if copy is None)
            return kept
        finally:
            self.backups = None
            self.backup_warnings = list(backups.warnings)

    def back_up_aside(self, path):
        """Copy ``path`` aside before a generator replaces it: into the running edit's Backups (kept, pruned and
        restored with the rest), or, outside apply, as a plain kept backup."""
        if self.backups is not None:
            self.backups.copy([path])
        elif os.path.exists(path):
            shutil.copy2(path, backup_path(path, time.strftime("%Y%m%dT%H%M%S")))

    def _write_with_backups(self, changes, backups):
        for change in changes:
            backups.copy([change.path])
            write_atomic(change.path, change.after)

    def _restore_or_explain(self, backups, exc):
        """Put every file back; when that or the failure itself is not a KexecError, say it in one.

        A failure to write (disk full, read-only file system) is an OSError: the person gets its
        message and the files it left as they were, never a traceback. Copies made only for the
        restore (no ``backup``) are removed once their file is back; a file that could not be put
        back keeps its copy, named in the message.
        """
        failed = backups.restore()
        backups.discard(failed)
        if not failed and not isinstance(exc, OSError):
            return
        what = exc.msg if isinstance(exc, KexecError) else "writing the boot configuration failed: %s" % _reason(exc)
        if failed:
            what += ("; and these files could not be restored, put them back from their backups by hand: %s"
                     % "; ".join(failed.values()))
        else:
            what += "; every file was restored"
        raise KexecError(what) from exc


class ArgEdit:
    """A command-line edit: call it on an argument string to get the edited one.

    Keeps ``append`` and ``remove`` so backends with their own tool (grubby)
    can pass the same intent on.
    """

    def __init__(self, append=(), remove=()):
        self.append = list(append)
        self.remove = list(remove)

    def __call__(self, args):
        return cmdline_args.edit(args, append=self.append, remove=self.remove)

    @property
    def names(self):
        return sorted(set(self.remove) | set(cmdline_args.arg_name(token) for token in self.append))


def set_crashkernel(value):
    """An edit that sets crashkernel= (one value) or, with None, removes every crashkernel=."""
    if value is None:
        return ArgEdit(remove=["crashkernel"])
    return ArgEdit(append=["crashkernel=%s" % value])


__all__ = ("ArgEdit", "BACKUP_SUFFIX", "Backups", "Bootloader", "FileChange", "KEEP_BACKUPS", "backup_path",
           "kernel_names", "own_backups", "read_text", "run_command", "set_crashkernel")
