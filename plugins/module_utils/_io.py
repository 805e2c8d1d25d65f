# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opening the files a user names (kernels, initrds) with one clear message per failure.

Private to the kernel.kexec collection.

Only regular files are accepted: a FIFO would block the read for ever (in
check mode too), ``/dev/zero`` would never end, a directory or socket is a
mistake. The open is non-blocking so that even a FIFO with no writer cannot
hang it; the type is checked on the open descriptor, so the file checked is
the file read.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path, what, missing_hint=""):
    """A binary file object for the regular file ``path``; KexecError naming ``what`` otherwise."""
    if not path or "\0" in path:
        raise KexecError("%s path %r is not a usable path (empty or with a NUL byte)" % (what, path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KexecError("%s %s does not exist%s" % (what, path, missing_hint))
    except PermissionError:
        raise KexecError("%s %s cannot be read: run as root (become: true)" % (what, path))
    except OSError as exc:
        raise KexecError("%s %s cannot be opened: %s" % (what, path, exc.strerror))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
        raise KexecError("%s %s is %s, not a regular file" % (what, path, kind))
    return os.fdopen(fd, "rb")


def read_regular(path, what, size=-1, offset=0):
    """Up to ``size`` bytes (all with -1) of the regular file ``path``, from ``offset`` on."""
    with open_regular(path, what) as handle:
        if offset:
            handle.seek(offset)
        return handle.read(size)


__all__ = ("open_regular", "read_regular")
