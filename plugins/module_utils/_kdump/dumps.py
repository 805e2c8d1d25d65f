# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dumps a capture service left in a local directory, newest first.

Private to the kernel.kexec collection. Every service writes one directory per
crash below its path, and the dump in it:

- kdump-tools: ``<KDUMP_COREDIR>/<YYYYmmddHHMM>/dump.<stamp>`` (makedumpfile's
  flattened format, ``.gz``/``.bz2``/``.xz``/``.lz4`` with KDUMP_COMPRESSION),
  ``vmcore.<stamp>`` where makedumpfile failed and it copied /proc/vmcore, and
  the crashed kernel's log as ``dmesg.<stamp>``;
- kdump-utils: ``<path>/<address>-<date>/vmcore`` (``vmcore.flat`` over ssh)
  and ``vmcore-dmesg.txt``;
- SUSE kdump: ``<savedir>/<date>/vmcore`` (or ``vmcore.<format>``) and
  ``dmesg.txt``.

Half-written dumps (``dump-incomplete``, ``vmcore-incomplete``) do not count.
"""

from __future__ import annotations

import fnmatch
import os

DUMP_NAMES = ("dump.*", "vmcore", "vmcore.*")
LOG_NAMES = ("dmesg.*", "vmcore-dmesg.txt")


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def list_dumps(root, path):
    """[{'path', 'size', 'mtime', 'dmesg'}] of the dumps one directory below the host path ``path``, newest first."""
    top = os.path.join(root, path.lstrip("/"))
    try:
        crashes = sorted(os.listdir(top))
    except OSError:
        return []
    found = []
    for crash in crashes:
        directory = os.path.join(top, crash)
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        logs = [name for name in names if _matches(name, LOG_NAMES)]
        for name in names:
            full = os.path.join(directory, name)
            if not _matches(name, DUMP_NAMES) or not os.path.isfile(full):
                continue
            stat = os.stat(full)
            host_dir = os.path.join(path, crash)
            found.append({"path": os.path.join(host_dir, name), "size": stat.st_size, "mtime": int(stat.st_mtime),
                          "dmesg": os.path.join(host_dir, logs[0]) if logs else None})
    found.sort(key=lambda dump: (dump["mtime"], dump["path"]), reverse=True)
    return found


__all__ = ("DUMP_NAMES", "LOG_NAMES", "list_dumps")
