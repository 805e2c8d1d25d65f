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
import re
import shutil

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import Bootloader, FileChange, kernel_names, read_text
from ansible_collections.kernel.kexec.plugins.module_utils._boot.entry import (
    BLS_DIRS, GRUBENV, bls_default_entry, parse_bls, split_bls_line,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import refuse_hard_links

KERNEL_CMDLINE = "etc/kernel/cmdline"
ETC_DEFAULT_GRUB = "etc/default/grub"
KERNELOPTS = "$kernelopts"
_VARIABLE = re.compile(r"^\$(\w+)$")


def entry_matches(fields, names):
    """True when the BLS entry (parsed fields) boots exactly that kernel: never a prefix of another release.

    systemd-boot entries name their kernel /MACHINE-ID/RELEASE/linux, so their ``version`` counts too.
    """
    release, name = names
    linux = os.path.basename(fields.get("linux", ""))
    return linux in (name, "vmlinuz-" + release) or fields.get("version") == release


def _options_value(text):
    return next((value for key, _sep, value in map(split_bls_line, text.splitlines()) if key == "options"), None)


def _edit_options(text, edit):
    """An entry's text with its options line edited (added when missing)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, separator, value = split_bls_line(line)
        if key == "options":
            if KERNELOPTS in value.split():
                raise KexecError("this BLS entry takes its options from grubenv ($kernelopts): run "
                                 "'grub2-mkconfig' once to convert, or use bootloader=grubby")
            # The line keeps its own separator: kernel-install aligns the values of an entry.
            lines[index] = "options%s%s" % (separator or " ", edit(value))
            return "\n".join(lines) + "\n"
    if not edit(""):  # nothing to add (a removal): no empty options line
        return text
    lines.append("options %s" % edit(""))
    return "\n".join(lines) + "\n"


def _expand(args, env):
    """Arguments with each $NAME token that grubenv defines replaced by its value, as grubby reads them."""
    words = []
    for token in cmdline_args.split(args):
        match = _VARIABLE.match(token)
        if match and env.get(match.group(1)):
            words.extend(cmdline_args.split(env[match.group(1)]))
        else:
            words.append(token)
    return words


def _entry_shape(text, env):
    """An entry's other lines, and the arguments it boots with ($variables expanded) as a sorted list.

    grubby puts --args where it likes: older versions replace a value in place,
    newer ones (grubby-bls update_args) drop every NAME= and append at the end;
    with --update-kernel=ALL it may also write ``$kernelopts`` for options equal to grubenv's.
    """
    others, options = [], []
    for line in (text or "").splitlines():
        key, _sep, value = split_bls_line(line)
        if key == "options":
            options.extend(_expand(value, env))
        else:
            others.append(line.rstrip())
    return others, sorted(options)


def parse_grubenv(text):
    env = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            env[key] = value
    return env


def set_grubenv(text, name, value):
    """A grubenv block with ``name`` set in its place, '#'-padded to the old size as grub2-editenv keeps it."""
    lines = text.splitlines(True)
    header, body = lines[:1], [line for line in lines[1:] if "=" in line]  # the padding has no '='
    setting = "%s=%s\n" % (name, value)
    names = [line.partition("=")[0] for line in body]
    if name in names:
        body[names.index(name)] = setting
    else:
        body.append(setting)
    block = "".join(header + body)
    return block + "#" * max(0, len(text) - len(block))


class BlsEntries(Bootloader):
    """systemd-boot / kernel-install: edit the entries and /etc/kernel/cmdline directly."""

    name = "systemd-boot"
    loader_confs = ("boot/loader/loader.conf", "efi/loader/loader.conf", "boot/efi/loader/loader.conf")

    @classmethod
    def detect(cls, root):
        return any(os.path.exists(os.path.join(root, conf)) for conf in cls.loader_confs)

    def all_entries(self):
        paths = []
        for directory in BLS_DIRS:
            paths.extend(sorted(glob.glob(self.path(os.path.join(directory, "*.conf")))))
        return paths

    def entries(self):
        """The entries to edit: all, or those of ``kernel`` matched exactly."""
        paths = self.all_entries()
        names = kernel_names(self.kernel)
        if names:
            paths = [p for p in paths if entry_matches(parse_bls(read_text(p) or ""), names)]
            if not paths:
                raise KexecError("no boot entry boots kernel %s (looked for linux .../vmlinuz-%s or version %s)"
                                 % (self.kernel, names[0], names[0]))
        return paths

    def configured_args(self):
        entry = bls_default_entry(self.root)
        if entry is not None:
            return entry.args or ""
        return (read_text(self.path(KERNEL_CMDLINE)) or "").strip()

    def plan_entry(self, text, edit):
        """The entry's text after ``edit``."""
        return _edit_options(text, edit)

    def plan_edit(self, edit):
        changes = []
        for path in self.entries():
            before = read_text(path)
            after = self.plan_entry(before, edit)
            if after != before:
                changes.append(FileChange(path, before, after))
        changes.extend(self.plan_extra(edit))
        cmdline_file = self.path(KERNEL_CMDLINE)
        before = read_text(cmdline_file)
        if before is not None or not kernel_names(self.kernel):
            base = before.strip() if before is not None else self._running_base()
            after = edit(base) + "\n"
            if after != before:
                changes.append(FileChange(cmdline_file, before, after))
        return changes

    def plan_extra(self, edit):
        """Changes to files other than the entries and /etc/kernel/cmdline (none here)."""
        return []

    def _running_base(self):
        """kernel-install falls back to /proc/cmdline without BOOT_IMAGE=/initrd=; so do we."""
        text = read_text(self.path("proc/cmdline")) or ""
        return cmdline_args.edit(text.strip(), remove=["BOOT_IMAGE", "initrd"])


class Grubby(BlsEntries):
    """grubby --update-kernel: Fedora, RHEL, CentOS Stream, Alma, Rocky.

    What grubby (grubby-bls) writes besides the entries, all planned, backed up and checked here:
    with --update-kernel=ALL it sets grubenv's ``kernelopts`` (the arguments of stock entries whose
    options line is ``$kernelopts``) and /etc/kernel/cmdline, and without --no-etc-grub-update it
    rewrites every GRUB_CMDLINE_LINUX* line of /etc/default/grub, so that flag is always passed.
    For one kernel it writes that kernel's entries only, expanding ``$kernelopts`` into them. On
    s390x the entries are read by zipl, which must then write the boot record again.
    """

    name = "grubby"

    @classmethod
    def detect(cls, root):
        has_entries = any(glob.glob(os.path.join(root, d, "*.conf")) for d in BLS_DIRS)
        return has_entries and shutil.which("grubby") is not None

    # --- plan ------------------------------------------------------------

    def grubenv_path(self):
        """The grubenv grubby edits (grub2's first), or None when there is none (zipl, or no GRUB)."""
        for name in reversed(GRUBENV):
            if os.path.exists(self.path(name)):
                return self.path(name)
        return None

    def grubenv(self):
        path = self.grubenv_path()
        return parse_grubenv(read_text(path)) if path else {}

    def plan_entry(self, text, edit):
        options = _options_value(text)
        if options is None or KERNELOPTS not in options.split():
            return _edit_options(text, edit)
        if not self.grubenv().get("kernelopts"):
            raise KexecError("the BLS entries take their options from grubenv's kernelopts ($kernelopts), "
                             "but no grubenv sets kernelopts: run 'grub2-mkconfig' once, or set it with "
                             "grub2-editenv")
        if not kernel_names(self.kernel):
            return text  # --update-kernel=ALL edits grubenv's kernelopts instead (plan_extra)
        # For one kernel grubby writes the expanded, edited arguments into the entry itself.
        expanded = " ".join(_expand(options, self.grubenv()))
        return _edit_options(text.replace(options, expanded, 1), edit)

    def plan_extra(self, edit):
        path = self.grubenv_path()
        if kernel_names(self.kernel) or path is None or self.machine == "s390x":
            return []
        before = read_text(path)
        kernelopts = parse_grubenv(before).get("kernelopts")
        # grubby edits a kernelopts that is set whether or not an entry still uses it (an upgraded
        # host keeps a stale one): planned all the same, or the check after grubby would fail.
        if not kernelopts or edit(kernelopts) == kernelopts:
            return []
        return [FileChange(path, before, set_grubenv(before, "kernelopts", edit(kernelopts)))]

    # --- apply -----------------------------------------------------------

    def _targets(self):
        """The --update-kernel values: ALL, or each matched entry's own ``linux`` path.

        grubby compares the value with the entries' linux lines, so a bare release would match
        nothing; the entry's own path is what it accepts whether /boot is a partition or not.
        """
        if not kernel_names(self.kernel):
            return ["ALL"]
        targets = []
        for path in self.entries():
            linux = parse_bls(read_text(path) or "").get("linux")
            if linux and linux not in targets:
                targets.append(linux)
        return targets

    def tool_files(self):
        """Every file a grubby run may write: the entries it edits, and for ALL the files beside them."""
        if kernel_names(self.kernel):
            return self.entries()
        files = self.all_entries() + [self.path(KERNEL_CMDLINE)]
        if self.grubenv_path():
            files.append(self.grubenv_path())
        if os.path.exists(self.path(ETC_DEFAULT_GRUB)):
            files.append(self.path(ETC_DEFAULT_GRUB))
        return files

    def grubby_argv(self, target, edit):
        argv = ["grubby", "--update-kernel=%s" % target]
        if edit.append:
            argv.append("--args=%s" % " ".join(edit.append))
        if edit.remove:
            argv.append("--remove-args=%s" % " ".join(edit.remove))
        # Last on purpose: grubby-bls shifts once more after this flag, so it swallows the option
        # after it ("--update-kernel" first would leave "ALL" as an invalid option).
        argv.append("--no-etc-grub-update")
        return argv

    def apply(self, changes, edit, regenerate=True, backup=True):
        """/etc/kernel/cmdline is written like every file; the rest is grubby's to write.

        Every file grubby may write is backed up first; afterwards each must hold what the plan
        says (files outside the plan: what they held), then zipl runs on s390x. If anything
        fails, every file is restored. ``backup`` and the result: as Bootloader.apply.
        """
        for change in changes:
            refuse_hard_links(change.path)
        cmdline_file = self.path(KERNEL_CMDLINE)
        ours = [c for c in changes if c.path == cmdline_file]
        for_grubby = [c for c in changes if c.path != cmdline_file]
        watched = self.tool_files()
        expected = dict((path, read_text(path)) for path in watched)
        expected.update((c.path, c.after) for c in changes)

        def steps(backups):
            backups.copy(watched)
            self._write_with_backups(ours, backups)
            if for_grubby:
                for target in self._targets():
                    self.run(self.grubby_argv(target, edit), "grubby")
                self._check(expected)
                if regenerate:
                    self.regenerate(edit)
        return self._edit(steps, backup)

    def _check(self, expected):
        env_after = self.grubenv()
        env_planned = parse_grubenv(expected.get(self.grubenv_path())) if self.grubenv_path() else {}
        wrong = [path for path, text in expected.items()
                 if self._shape(path, read_text(path), env_after) != self._shape(path, text, env_planned)]
        if wrong:
            raise KexecError("after grubby, %s do not hold the planned options" % ", ".join(sorted(wrong)))

    def _shape(self, path, text, env):
        """What must match after grubby, where grubby may order arguments its own way."""
        if text is None:
            return None
        if path == self.grubenv_path():
            values = parse_grubenv(text)
            kernelopts = values.pop("kernelopts", "")
            return sorted(values.items()), sorted(cmdline_args.split(kernelopts))
        if path == self.path(KERNEL_CMDLINE):
            return sorted(cmdline_args.split(text))
        if path.endswith(".conf"):
            return _entry_shape(text, env)
        return text

    def regenerate(self, edit):
        """On s390x zipl reads the BLS entries into the boot record: run it, as grubby does not."""
        if self.machine == "s390x":
            self.run(["zipl"], "zipl (writing the boot record)")


__all__ = ("BlsEntries", "Grubby", "KERNEL_CMDLINE", "entry_matches", "parse_grubenv", "set_grubenv")
