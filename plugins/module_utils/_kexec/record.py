# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of what this collection loaded, kept under /run.

Private to the kernel.kexec collection. The kernel says only *whether* an
image is loaded (/sys/kernel/kexec_loaded), not which. The record says which:
sha256 of kernel and initrd, the command line, type and method. It lives on
/run (tmpfs) so it dies with the kernel that holds the image, and carries the
boot_id as a second guard. It is written only after a successful load and
removed only after a successful unload, so it never claims a load that failed.
A record is trusted only while the kernel also reports an image loaded.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import Missing, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular, read_regular, write_atomic

RECORD_DIR = "run/kernel-kexec"


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open_regular(path, "file") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def record_path(root, kind):
    return os.path.join(root, RECORD_DIR, "%s.json" % kind)


def read_record(root, kind, boot_id):
    """The record for ``kind`` ('default' or 'crash') if it belongs to this boot."""
    try:
        record = json.loads(read_regular(record_path(root, kind), "load record"))
    except (Missing, ValueError):
        return None
    if not isinstance(record, dict) or record.get("boot_id") != boot_id:
        return None
    return record


def write_record(root, kind, record):
    """Write atomically: a reader sees the old record or the new, never half."""
    write_atomic(record_path(root, kind), json.dumps(record, indent=1, sort_keys=True) + "\n", mode=0o600,
                 directory_mode=0o700)


def current_load(root, state, kind):
    """What is loaded now: the record if the kernel agrees, else a bare fact.

    ``state`` is a _host.state.KernelState for the same root.
    """
    if not state.loaded(kind == "crash"):
        return None
    try:
        record = read_record(root, kind, state.boot_id)
    except Unreadable:
        # The record directory is root's (0700): without root, that something is loaded is known, not what.
        return {"type": kind, "by": "unknown (the record in /%s is readable by root only: use become: true)"
                % RECORD_DIR}
    return record or {"type": kind, "by": "unknown (not loaded by kernel.kexec)"}


def remove_record(root, kind):
    try:
        os.unlink(record_path(root, kind))
    except FileNotFoundError:
        pass


__all__ = ("RECORD_DIR", "current_load", "read_record", "record_path", "remove_record", "sha256_file", "write_record")
