# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GRUB configured through /etc/default/grub (Debian, Ubuntu, SUSE, older RHEL).

Private to the kernel.kexec collection. Kernel arguments live in the shell
assignments GRUB_CMDLINE_LINUX (every entry) and GRUB_CMDLINE_LINUX_DEFAULT
(normal entries), in /etc/default/grub and the drop-ins grub-mkconfig sources
after it (/etc/default/grub.d/*.cfg, as kdump-tools writes one). An edit
changes the value where the argument already is (the last assignment that
has it wins, like the kernel's last crashkernel=) and drops it from the other
assignments, or else adds it to the last GRUB_CMDLINE_LINUX (the one in
/etc/default/grub unless a drop-in sets it again; a new line when none does).
The boot config is then generated to a new file with grub-mkconfig, checked
with grub-script-check, and only then renamed over grub.cfg.
"""

from __future__ import annotations

import glob
import os
import re
import shutil

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import Bootloader, FileChange, read_text
from ansible_collections.kernel.kexec.plugins.module_utils._boot.entry import GRUB_CONFIGS, parse_grub_cfg
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import install, real_path

DEFAULTS = "etc/default/grub"
DROPINS = "etc/default/grub.d/*.cfg"
VARIABLES = ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT")
_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?)(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(.*?)\s*$")
_EXPANSION = re.compile(r"\$\{?(\w+)\}?")


class Assignment:
    """One ``GRUB_CMDLINE_LINUX...=value`` line of one file."""

    def __init__(self, path, index, prefix, name, raw):
        self.path = path
        self.index = index
        self.prefix = prefix
        self.name = name
        self.quote, self.value = _unquote(raw, path, index)

    def line(self, value):
        quote = self.quote or ('"' if " " in value or not value else "")
        raw = "%s%s%s" % (quote, value, quote)
        try:
            readable = _unquote(raw, self.path, self.index) == (quote, value)
        except KexecError:
            readable = False
        if not readable:  # a quote inside would end the string early: the shell would run the rest
            raise KexecError("%s line %d: %s cannot hold %r in %s quoting; edit it by hand"
                             % (self.path, self.index + 1, self.name, value, quote or "no"))
        return "%s%s=%s" % (self.prefix, self.name, raw)


def _unquote(raw, path, index):
    if not raw:  # NAME= is an empty value, like NAME=""
        return "", ""
    for quote in ('"', "'"):
        if len(raw) >= 2 and raw[0] == quote and raw[-1] == quote and quote not in raw[1:-1]:
            if quote == '"' and re.search(r'[`\\]|\$\(', raw):
                break
            return quote, raw[1:-1]
    if raw and not re.search(r"[\s\"'`\\;&|]|\$\(", raw):
        return "", raw
    raise KexecError("%s line %d: cannot edit this assignment safely (%s); write it as NAME=\"args\""
                     % (path, index + 1, raw))


def _first_linux_args(items):
    """The arguments of the first menu entry, in file order, that boots Linux; None without one."""
    for item in items:
        if item.linux is not None:
            return item.linux[1]
        found = _first_linux_args(item.children)
        if found is not None:
            return found
    return None


class GrubDefaults(Bootloader):
    name = "grub"

    @classmethod
    def detect(cls, root):
        return os.path.exists(os.path.join(root, DEFAULTS))

    def files(self):
        return [self.path(DEFAULTS)] + sorted(glob.glob(self.path(DROPINS)))

    def assignments(self, texts):
        found = []
        for path in self.files():
            for index, line in enumerate((texts.get(path) or "").splitlines()):
                match = _ASSIGNMENT.match(line)
                if match:
                    found.append(Assignment(path, index, match.group(1), match.group(2), match.group(3)))
        return found

    def _texts(self):
        return dict((path, read_text(path)) for path in self.files())

    def configured_args(self):
        """GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT, as grub-mkconfig puts them in a normal entry."""
        env = {}
        for assignment in self.assignments(self._texts()):
            env[assignment.name] = _EXPANSION.sub(lambda m: env.get(m.group(1), ""), assignment.value).strip()
        return " ".join(env.get(name, "") for name in VARIABLES).strip()

    def plan_edit(self, edit):
        """Changes that make the effective arguments equal ``edit(args)``."""
        names = edit.names
        texts = self._texts()
        if texts[self.path(DEFAULTS)] is None:
            raise KexecError("/%s does not exist: is GRUB configured here? Set bootloader explicitly" % DEFAULTS)
        assignments = self.assignments(texts)
        holders = [a for a in assignments if any(cmdline_args.arg_name(t) in names
                                                 for t in cmdline_args.split(a.value))]
        # Else the last GRUB_CMDLINE_LINUX: an earlier one is overwritten by it (a second line in
        # /etc/default/grub, or a drop-in that sets it), so an argument added there would be lost.
        target = holders[-1] if holders else next(
            (a for a in reversed(assignments) if a.name == "GRUB_CMDLINE_LINUX"), None)
        lines = dict((path, text.splitlines()) for path, text in texts.items() if text is not None)
        for assignment in holders:
            if assignment is not target:
                kept = cmdline_args.edit(assignment.value, remove=names)
                lines[assignment.path][assignment.index] = assignment.line(kept)
        if target is None:
            new_value = edit("")
            if new_value:
                lines[self.path(DEFAULTS)].append('GRUB_CMDLINE_LINUX="%s"' % new_value)
        else:
            lines[target.path][target.index] = target.line(edit(target.value))
        changes = []
        for path, new_lines in lines.items():
            after = "\n".join(new_lines) + "\n"
            if after.rstrip("\n") != texts[path].rstrip("\n"):
                changes.append(FileChange(path, texts[path], after))
        return changes

    def grub_cfg(self):
        for name in GRUB_CONFIGS:
            if os.path.exists(self.path(name)):
                return self.path(name)
        return self.path(GRUB_CONFIGS[0])

    def needs_regenerate(self, edit):
        """True when grub.cfg was not generated from the defaults as they are (a missed update-grub).

        Judged by the first Linux entry grub-mkconfig writes (10_linux's normal entry of the newest
        kernel, which gets GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT), never by the default
        entry: that may be a recovery entry (no GRUB_CMDLINE_LINUX_DEFAULT), another kernel or a
        custom entry, which would carry other arguments for ever and report a change on every run.
        A grub.cfg without Linux entries (BLS, blscfg) gives nothing to judge by: no regeneration.
        """
        text = read_text(self.grub_cfg())
        if text is None:
            return True
        args = _first_linux_args(parse_grub_cfg(text)[0])
        if args is None:
            return False
        return sorted(cmdline_args.split(edit(args))) != sorted(cmdline_args.split(args))

    def _tool(self, *names):
        for name in names:
            if shutil.which(name):
                return name
        raise KexecError("none of %s is installed: cannot regenerate the GRUB configuration" % ", ".join(names))

    def regenerate(self, edit):
        # A symlinked grub.cfg stays a link: the new file is generated beside its target.
        cfg = real_path(self.grub_cfg())
        new = cfg + ".new"
        try:
            self.run([self._tool("grub-mkconfig", "grub2-mkconfig"), "-o", new], "generating the GRUB configuration")
            self.run([self._tool("grub-script-check", "grub2-script-check"), new], "checking the new grub.cfg")
            if os.path.exists(cfg):
                self.back_up_aside(cfg)
            install(new, cfg)  # a first grub.cfg keeps the mode grub-mkconfig gave it
        finally:
            if os.path.exists(new):
                os.unlink(new)


__all__ = ("GrubDefaults",)
