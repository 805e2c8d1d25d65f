# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the kernel, initrd and arguments the bootloader boots by default.

Private to the kernel.kexec collection. Read-only: GRUB's generated grub.cfg
(with grubenv's saved_entry), BLS entries (/boot/loader/entries, as grubby and
systemd-boot use them), and as the last resort the running release's
/boot/vmlinuz-RELEASE. Each finder takes ``root`` so tests use fake trees.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kernel.kexec.plugins.module_utils._errors import Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_text

GRUB_CONFIGS = ("boot/grub/grub.cfg", "boot/grub2/grub.cfg")
GRUBENV = ("boot/grub/grubenv", "boot/grub2/grubenv")
BLS_DIRS = ("boot/loader/entries", "efi/loader/entries", "boot/efi/loader/entries")


class BootEntry:
    """A bootable kernel with its initrd and arguments; ``source`` says where it came from."""

    def __init__(self, kernel, initrd, args, source, title=None):
        self.kernel = kernel
        self.initrd = initrd
        self.args = args
        self.source = source
        self.title = title

    def as_dict(self):
        return {"kernel": self.kernel, "initrd": self.initrd, "args": self.args,
                "source": self.source, "title": self.title}


def _read(root, name):
    """Text of the boot file ``name`` below ``root``; None when it is missing.

    A file that is there but cannot be read is Unreadable, never taken for missing:
    grub.cfg is 0600 on Fedora, and without it the default entry is unknown, not absent.
    """
    try:
        return read_text(os.path.join(root, name), missing=None)
    except Unreadable:
        raise Unreadable("/" + name)  # the host's path: kexec_info reports it as a fact


def _entry_names(root, directory):
    """The ``*.conf`` files of a BLS entry directory below ``root`` (as names below it); [] when it is missing."""
    try:
        names = os.listdir(os.path.join(root, directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        raise Unreadable("/" + directory)
    return [os.path.join(directory, name) for name in names if name.endswith(".conf") and not name.startswith(".")]


def _host_path(root, path, partition=""):
    """A path from a boot config, as a path under ``root``.

    A boot loader names files relative to the partition it reads them from:
    with a separate /boot partition '/vmlinuz-X' means '/boot/vmlinuz-X', and
    a systemd-boot entry on the ESP at /boot/efi means '/boot/efi/debian/X/linux'
    by '/debian/X/linux'. ``partition`` is where the config itself lives.
    """
    for candidate in (partition + path, path, "/boot" + path):
        if os.path.exists(os.path.join(root, candidate.lstrip("/"))):
            return os.path.join(root, candidate.lstrip("/"))
    return os.path.join(root, path.lstrip("/"))


def _read_grubenv(root):
    env = {}
    for name in GRUBENV:
        for line in (_read(root, name) or "").splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                env[key] = value
    return env


_TITLE = re.compile(r"""^\s*(menuentry|submenu)\s+(?:'([^']*)'|"([^"]*)"|(\S+))(.*?)\{\s*$""")
_ID = re.compile(r"""\$menuentry_id_option\s+'([^']*)'""")
_DEFAULT = re.compile(r"""^\s*set\s+default=(?:"([^"]*)"|'([^']*)'|(\S*))\s*$""")
# grub-mkconfig sets default="${next_entry}" (grub-reboot's one-shot choice) before the configured default.
_ONE_SHOT = "${next_entry}"


class _Menu:
    def __init__(self, kind, title, ident):
        self.kind = kind
        self.title = title
        self.ident = ident
        self.children = []
        self.linux = None
        self.initrd = None


def parse_grub_cfg(text):
    """Top-level menu items of a grub.cfg and its first ``set default=``.

    Understands what grub-mkconfig writes: menuentry/submenu blocks with
    ``linux`` and ``initrd`` lines. Returns (items, default).
    """
    top = _Menu("submenu", None, None)
    stack = [top]
    default = None
    for line in text.splitlines():
        match = _TITLE.match(line)
        if match:
            title = match.group(2) or match.group(3) or match.group(4)
            ident = _ID.search(match.group(5) or "")
            item = _Menu(match.group(1), title, ident.group(1) if ident else None)
            stack[-1].children.append(item)
            stack.append(item)
            continue
        stripped = line.strip()
        if stripped == "}" and len(stack) > 1:
            stack.pop()
            continue
        words = stripped.split()
        if not words:
            continue
        if len(stack) > 1 and stack[-1].kind == "menuentry":
            if words[0] in ("linux", "linux16", "linuxefi") and len(words) > 1:
                stack[-1].linux = (words[1], " ".join(words[2:]))
            elif words[0] in ("initrd", "initrd16", "initrdefi") and len(words) > 1:
                stack[-1].initrd = words[1]
        elif default is None and len(stack) == 1:
            found = _DEFAULT.match(line)
            if found:
                value = next(group for group in found.groups() if group is not None)
                if value != _ONE_SHOT:
                    default = value
    return top.children, default


def _pick(items, selector):
    """GRUB's default: an index, 'N>M' for a submenu entry, or a title / id."""
    parts = selector.split(">")
    current = items
    chosen = None
    for part in parts:
        chosen = None
        if part.isdigit():
            index = int(part)
            chosen = current[index] if index < len(current) else None
        else:
            chosen = next((item for item in current if part in (item.title, item.ident)), None)
        if chosen is None:
            return None
        current = chosen.children
    return chosen if chosen and chosen.kind == "menuentry" else None


def grub_default_entry(root):
    for name in GRUB_CONFIGS:
        text = _read(root, name)
        if text is None:
            continue
        items, default = parse_grub_cfg(text)
        selector = default or "0"
        if selector.startswith("${"):  # "${saved_entry}" or "${next_entry}"
            selector = _read_grubenv(root).get("saved_entry") or "0"
        entry = _pick(items, selector) or _pick(items, "0")
        if entry is None or entry.linux is None:
            continue
        kernel, args = entry.linux
        initrd = _host_path(root, entry.initrd) if entry.initrd else None
        return BootEntry(_host_path(root, kernel), initrd, args, "/" + name, entry.title)
    return None


_BLS_LINE = re.compile(r"^\s*(\S*)(\s*)(.*?)\s*$")


def split_bls_line(line):
    """(key, separator, value) of a type 1 entry's line: any run of whitespace separates the key from the
    value (kernel-install aligns the values with spaces, other tools use a tab)."""
    return _BLS_LINE.match(line).groups()


def parse_bls(text):
    fields = {}
    for line in text.splitlines():
        key, _sep, value = split_bls_line(line)
        if key and not key.startswith("#"):
            fields.setdefault(key, value)
    return fields


def _bls_sort_key(path):
    # Newest first as grubby shows them: by file name, versions compared as numbers.
    name = os.path.basename(path)
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def bls_default_entry(root):
    for directory in BLS_DIRS:
        names = sorted(_entry_names(root, directory), key=_bls_sort_key, reverse=True)
        if not names:
            continue
        grubenv = _read_grubenv(root)  # only where there are entries: a GRUB host may never need it
        saved = grubenv.get("saved_entry")
        chosen = next((name for name in names if saved and os.path.basename(name)[:-5] == saved), names[0])
        fields = parse_bls(_read(root, chosen) or "")
        if "linux" not in fields:
            continue
        initrd = fields.get("initrd")
        # Older grubby keeps the shared arguments in grubenv and writes "$kernelopts" here.
        options = fields.get("options", "").replace("$kernelopts", grubenv.get("kernelopts", ""))
        # Type 1 entries name files relative to the partition that holds loader/entries (the ESP or XBOOTLDR).
        partition = "/" + os.path.dirname(os.path.dirname(directory))
        return BootEntry(_host_path(root, fields["linux"], partition),
                         _host_path(root, initrd, partition) if initrd else None,
                         options.strip(), "/" + chosen, fields.get("title"))
    return None


def running_release_entry(root, release):
    kernel = os.path.join(root, "boot", "vmlinuz-%s" % release)
    if not os.path.exists(kernel):
        return None
    initrd = os.path.join(root, "boot", "initrd.img-%s" % release)
    if not os.path.exists(initrd):
        initrd = os.path.join(root, "boot", "initramfs-%s.img" % release)
    return BootEntry(kernel, initrd if os.path.exists(initrd) else None, None,
                     "running release %s" % release)


def default_entry(root, release):
    """The bootloader's default entry; else the running release's files; else None."""
    return bls_default_entry(root) or grub_default_entry(root) or running_release_entry(root, release)


__all__ = ("BootEntry", "bls_default_entry", "default_entry", "grub_default_entry",
           "parse_bls", "parse_grub_cfg", "running_release_entry", "split_bls_line")
