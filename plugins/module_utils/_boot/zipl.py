# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zipl on s390x: the ``parameters`` of the sections in /etc/zipl.conf.

Private to the kernel.kexec collection. Every boot section's parameters line
is edited (or only sections whose image matches ``kernel``), then ``zipl``
writes the boot record; if zipl fails the file is restored. s390x hosts with
BLS entries (RHEL 8 and later) are the grubby backend's.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import Bootloader, FileChange, kernel_names, read_text
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

CONF = "etc/zipl.conf"
_SECTION = re.compile(r"^\s*(\[.+\]|:\S+)\s*$")  # [name], or :name for a menu
_KEY = re.compile(r"^(\s*)(\w+)(\s*=\s*)(.*?)\s*$")


def _sections(lines):
    """(name, first line, end line) of each section; 'defaultboot' and menus are not boot sections."""
    found = []
    for index, line in enumerate(lines):
        match = _SECTION.match(line)
        if match:
            if found:
                found[-1][2] = index
            found.append([match.group(1).strip("[]").strip(), index, len(lines)])
    return [tuple(s) for s in found if s[0] != "defaultboot" and not s[0].startswith(":")]


def _image_matches(image, names):
    """True when a section's image is exactly that kernel (6.1.0-1 never matches 6.1.0-18-amd64)."""
    release, name = names
    return os.path.basename(image.strip('"')) in (name, "vmlinuz-" + release, "image-" + release)


class Zipl(Bootloader):
    name = "zipl"

    @classmethod
    def detect(cls, root):
        return os.path.exists(os.path.join(root, CONF))

    def _lines(self):
        text = read_text(self.path(CONF))
        if text is None:
            raise KexecError("/%s does not exist" % CONF)
        return text, text.splitlines()

    def _targets(self, lines):
        names = kernel_names(self.kernel)
        for name, start, end in _sections(lines):
            keys = {}
            for index in range(start + 1, end):
                match = _KEY.match(lines[index])
                if match:
                    keys[match.group(2)] = (index, match)
            if "image" not in keys:
                continue
            if names and not _image_matches(keys["image"][1].group(4), names):
                continue
            yield name, start, keys

    def configured_args(self):
        _text, lines = self._lines()
        for _name, _start, keys in self._targets(lines):
            if "parameters" in keys:
                return keys["parameters"][1].group(4).strip('"')
            return ""
        return ""

    def plan_edit(self, edit):
        text, lines = self._lines()
        inserts = []
        targets = list(self._targets(lines))
        if not targets:
            raise KexecError("/%s has no boot section%s" % (CONF, " for %s" % self.kernel if kernel_names(self.kernel) else ""))
        for _name, start, keys in targets:
            if "parameters" in keys:
                index, match = keys["parameters"]
                value = edit(match.group(4).strip('"'))
                lines[index] = '%s%s%s"%s"' % (match.group(1), match.group(2), match.group(3), value)
            elif edit(""):  # a removal from a section without parameters changes nothing
                indent = keys["image"][1].group(1)
                inserts.append((keys["image"][0] + 1, '%sparameters = "%s"' % (indent, edit(""))))
        for index, line in sorted(inserts, reverse=True):
            lines.insert(index, line)
        after = "\n".join(lines) + "\n"
        return [] if after.rstrip("\n") == text.rstrip("\n") else [FileChange(self.path(CONF), text, after)]

    def regenerate(self, edit):
        self.run(["zipl"], "zipl (writing the boot record)")


__all__ = ("Zipl",)
