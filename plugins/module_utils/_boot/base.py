# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bootloader interface and the safe file edits every backend shares.

Private to the kernel.kexec collection. A backend reads the kernel arguments
it configures, plans an edit as a list of file changes (nothing written), and
applies the plan: each file is written atomically (temp file in the same
directory, fsync, rename) after a backup copy, then the backend's generator
runs (update-grub, grubby, zipl ...) and its output is validated; when that
fails every file is put back as it was. Planning is pure, so check mode and
diff mode show exactly what apply would write.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError


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
    try:
        with open(path, "r") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half of one."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o7777
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def backup_path(path, stamp):
    """PATH.STAMP.kexec-bak, with a counter when one from the same second exists (never overwrite a backup)."""
    candidate = "%s.%s.kexec-bak" % (path, stamp)
    count = 1
    while os.path.exists(candidate):
        candidate = "%s.%s-%d.kexec-bak" % (path, stamp, count)
        count += 1
    return candidate


class Bootloader:
    """One bootloader's way of holding kernel arguments. Subclasses fill in the hooks."""

    name = None

    def __init__(self, root="/", runner=run_command, kernel=None):
        self.root = root
        self.runner = runner
        self.kernel = kernel  # limit the edit to one kernel's entries where the backend can; None: all

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
        rc, out, err = self.runner(argv)
        if rc != 0:
            raise KexecError("%s failed (%s, rc=%d): %s" % (what, " ".join(argv), rc, (err or out).strip()))
        return out

    def apply(self, changes, edit, regenerate=True):
        """Write the changes with backups, regenerate, and restore everything if that fails.

        Returns the backup paths (None for files that did not exist).
        """
        stamp = time.strftime("%Y%m%dT%H%M%S")
        backups = {}
        try:
            for change in changes:
                if change.before is not None:
                    # Registered only once the copy is complete: a half-written backup
                    # (disk full) must not be "restored" over a file not yet touched.
                    backup = backup_path(change.path, stamp)
                    shutil.copy2(change.path, backup)
                    backups[change.path] = backup
                else:
                    backups[change.path] = None
                write_atomic(change.path, change.after)
            if regenerate:
                self.regenerate(edit)
        except BaseException:
            self._restore(backups)
            raise
        return backups

    @staticmethod
    def _restore(backups):
        for path, backup in backups.items():
            if backup is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                shutil.copy2(backup, path)


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


__all__ = ("ArgEdit", "Bootloader", "FileChange", "backup_path", "read_text", "run_command", "set_crashkernel", "write_atomic")
