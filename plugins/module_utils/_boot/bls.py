# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot Loader Specification entries: grubby (Fedora, RHEL and clones) and systemd-boot.

Private to the kernel.kexec collection. Both keep each kernel's arguments on
the ``options`` line of /boot/loader/entries/*.conf and the arguments for
kernels installed later in /etc/kernel/cmdline. The systemd-boot backend edits
those files itself (atomically, with backups); the grubby backend plans the
same edits for check and diff mode but applies them with ``grubby
--update-kernel``, the tool those distributions support, and then checks that
every entry carries the result.
"""

from __future__ import annotations

import glob
import os
import shutil

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import (
    Bootloader, FileChange, read_text, write_atomic,
)
from ansible_collections.kernel.kexec.plugins.module_utils._boot.entry import BLS_DIRS, bls_default_entry
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

KERNEL_CMDLINE = "etc/kernel/cmdline"


def _edit_options(text, edit):
    """An entry's text with its options line edited (added when missing)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, _sep, value = line.strip().partition(" ")
        if key == "options":
            if "$kernelopts" in value:
                raise KexecError("this BLS entry takes its options from grubenv ($kernelopts): run "
                                 "'grub2-mkconfig' once to convert, or use bootloader=grubby")
            lines[index] = "options %s" % edit(value.strip())
            return "\n".join(lines) + "\n"
    if not edit(""):  # nothing to add (a removal): no empty options line
        return text
    lines.append("options %s" % edit(""))
    return "\n".join(lines) + "\n"


def _entry_shape(text):
    """An entry's other lines, and its options as a sorted argument list.

    grubby puts --args where it likes: older versions replace a value in place,
    newer ones (grubby-bls update_args) drop every NAME= and append at the end.
    """
    others, options = [], []
    for line in (text or "").splitlines():
        key, _sep, value = line.strip().partition(" ")
        if key == "options":
            options.extend(cmdline_args.split(value))
        else:
            others.append(line.rstrip())
    return others, sorted(options)


class BlsEntries(Bootloader):
    """systemd-boot / kernel-install: edit the entries and /etc/kernel/cmdline directly."""

    name = "systemd-boot"
    loader_confs = ("boot/loader/loader.conf", "efi/loader/loader.conf", "boot/efi/loader/loader.conf")

    @classmethod
    def detect(cls, root):
        return any(os.path.exists(os.path.join(root, conf)) for conf in cls.loader_confs)

    def entries(self):
        paths = []
        for directory in BLS_DIRS:
            paths.extend(sorted(glob.glob(self.path(os.path.join(directory, "*.conf")))))
        if self.kernel:
            paths = [p for p in paths if self.kernel in (read_text(p) or "")]
            if not paths:
                raise KexecError("no boot entry mentions kernel %s" % self.kernel)
        return paths

    def configured_args(self):
        entry = bls_default_entry(self.root)
        if entry is not None:
            return entry.args or ""
        return (read_text(self.path(KERNEL_CMDLINE)) or "").strip()

    def plan_edit(self, edit):
        changes = []
        for path in self.entries():
            before = read_text(path)
            after = _edit_options(before, edit)
            if after != before:
                changes.append(FileChange(path, before, after))
        cmdline_file = self.path(KERNEL_CMDLINE)
        before = read_text(cmdline_file)
        if before is not None or not self.kernel:
            base = before.strip() if before is not None else self._running_base()
            after = edit(base) + "\n"
            if after != before:
                changes.append(FileChange(cmdline_file, before, after))
        return changes

    def _running_base(self):
        """kernel-install falls back to /proc/cmdline without BOOT_IMAGE=/initrd=; so do we."""
        text = read_text(self.path("proc/cmdline")) or ""
        return cmdline_args.edit(text.strip(), remove=["BOOT_IMAGE", "initrd"])


class Grubby(BlsEntries):
    """grubby --update-kernel: Fedora, RHEL, CentOS Stream, Alma, Rocky."""

    name = "grubby"

    @classmethod
    def detect(cls, root):
        has_entries = any(glob.glob(os.path.join(root, d, "*.conf")) for d in BLS_DIRS)
        return has_entries and shutil.which("grubby") is not None

    def apply(self, changes, edit, regenerate=True):
        """/etc/kernel/cmdline is written like every file; the entries are grubby's to edit.

        Afterwards every entry must hold exactly the planned text; if not, all is restored.
        """
        ours = [c for c in changes if c.path == self.path(KERNEL_CMDLINE)]
        entries = [c for c in changes if c not in ours]
        # --update-kernel=ALL rewrites entries the plan left alone too: keep them all.
        before = dict((path, read_text(path)) for directory in BLS_DIRS
                      for path in glob.glob(self.path(os.path.join(directory, "*.conf"))))
        backups = super(Grubby, self).apply(ours, edit, regenerate=False)
        try:
            if entries:
                argv = ["grubby", "--update-kernel=%s" % (self.kernel or "ALL")]
                if edit.append:
                    argv.append("--args=%s" % " ".join(edit.append))
                if edit.remove:
                    argv.append("--remove-args=%s" % " ".join(edit.remove))
                self.run(argv, "grubby")
            wrong = [c.path for c in entries if _entry_shape(read_text(c.path)) != _entry_shape(c.after)]
            if wrong:
                raise KexecError("after grubby, %s do not hold the planned options" % ", ".join(wrong))
        except BaseException:
            self._restore(backups)
            for path, text in before.items():
                if read_text(path) != text:
                    write_atomic(path, text)
            raise
        return backups


__all__ = ("BlsEntries", "Grubby", "KERNEL_CMDLINE")
