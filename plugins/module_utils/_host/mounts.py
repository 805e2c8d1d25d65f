# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which file system holds a file, from /proc/self/mountinfo.

Private to the kernel.kexec collection. Host state, read-only.

A mountinfo line (Documentation/filesystems/proc.rst) gives the mount's device as
``major:minor`` in its third field, the ``st_dev`` of every file on it, and its file
system type right after the `` - `` separator; paths in it escape spaces, so the
separator cannot occur inside one.
"""

from __future__ import annotations

import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._io import read_regular

MOUNTINFO = "proc/self/mountinfo"


def parse_mountinfo(text):
    """{(major, minor): file system type} of every mount in ``text``; lines that do not parse are skipped."""
    types = {}
    for line in text.splitlines():
        mount, sep, fs = line.partition(" - ")
        fields, fs_fields = mount.split(), fs.split()
        if not sep or len(fields) < 3 or not fs_fields:
            continue
        major, colon, minor = fields[2].partition(":")
        if colon and major.isdigit() and minor.isdigit():
            types[(int(major), int(minor))] = fs_fields[0]
    return types


def file_system_types(root="/"):
    """parse_mountinfo() of this process's mounts below ``root``; {} where mountinfo cannot be read."""
    try:
        return parse_mountinfo(read_regular(os.path.join(root, MOUNTINFO), "mount table").decode("utf-8", "replace"))
    except (KexecError, OSError):
        return {}


def device_key(st_dev):
    """The (major, minor) mountinfo names the device ``st_dev`` (of a stat result) by."""
    return os.major(st_dev), os.minor(st_dev)


__all__ = ("device_key", "file_system_types", "parse_mountinfo")
