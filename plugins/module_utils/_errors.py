# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception family for the collection, and errno -> advice.

Private to the kernel.kexec collection: no compatibility promise to other code.
Modules catch only :class:`KexecError` and call :meth:`KexecError.fail`.
"""

from __future__ import annotations

import errno
import os


class KexecError(Exception):
    """An error a person can act on: ``msg`` says what went wrong and what to do.

    ``extra`` holds result keys returned beside ``msg`` (for example the plan
    that was refused), so a failed task still shows what it would have done.
    """

    def __init__(self, msg, **extra):
        super(KexecError, self).__init__(msg)
        self.msg = msg
        self.extra = extra

    def __str__(self):
        # The whole message, as the task shows it, in tracebacks too.
        return self.msg

    def fail(self, module, **more):
        result = dict(self.extra)
        result.update(more)
        module.fail_json(msg=self.msg, **result)


class KexecUnavailable(KexecError):
    """This host cannot kexec now (disabled, unsupported, limit reached), whatever the input.

    kexec_reboot's ``fallback: full`` turns exactly these into a firmware reboot;
    mistakes in the input stay errors.
    """


class Missing(KexecError):
    """A file that does not exist (nor a directory on its way): the reader's caller says whether that is an error."""

    def __init__(self, msg, path):
        super(Missing, self).__init__(msg, path=path)
        self.path = path


class Unreadable(KexecError):
    """A file that is there but this user may not read (PermissionError): never taken for a missing one.

    ``what`` names the file's role before its path; ``advice`` says what to do.
    """

    def __init__(self, path, what="", advice="run as root (become: true)"):
        named = "%s %s" % (what, path) if what else path
        super(Unreadable, self).__init__("%s cannot be read: %s" % (named, advice), path=path)
        self.path = path


class SyscallError(KexecError):
    """A syscall returned -1: keeps the call name and errno for the caller."""

    def __init__(self, call, err, msg, **extra):
        super(SyscallError, self).__init__(msg, errno=err, errno_name=errno.errorcode.get(err, str(err)), **extra)
        self.call = call
        self.errno = err


# What each errno means for kexec_file_load / kexec_load / reboot, and what to do.
# EPERM is explained with the host's state by the caller (see loader.explain_eperm).
ADVICE = {
    errno.EPERM: "the kernel refused: run as root (CAP_SYS_BOOT), and check "
                 "/proc/sys/kernel/kexec_load_disabled, the kexec_load_limit_* sysctls and lockdown",
    errno.EADDRNOTAVAIL: "the image does not fit the destination memory; for a crash kernel: no or too little "
                         "crash memory is reserved (boot with crashkernel=, see kernel.kexec.kdump_reserve)",
    errno.ENOEXEC: "the file is not a kernel image this kernel can load (wrong architecture or format)",
    errno.EKEYREJECTED: "the kernel's signature was rejected (secure boot or lockdown needs a signed kernel)",
    errno.ENOKEY: "the kernel is not signed with a key the running kernel trusts",
    errno.ENOPKG: "the running kernel lacks the crypto needed to check the kernel's signature",
    errno.EBADMSG: "the kernel's signature is malformed",
    errno.ENODATA: "the kernel carries no signature and the running kernel requires one",
    errno.EMSGSIZE: "the kernel's signature is too large or truncated",
    errno.EBUSY: "another kexec load or unload is in progress; try again",
    errno.ENOSYS: "the running kernel was built without this kexec syscall",
    errno.EINVAL: "the kernel rejected the arguments (command line too long, bad flags, or nothing loaded to boot)",
    errno.ENOMEM: "not enough memory to stage the image",
    errno.EOPNOTSUPP: "the running kernel does not support this operation",
    errno.ENOENT: "a file the kernel needed is missing",
}


def run_module(module, call):
    """The end of every module: run ``call``, fail on a KexecError, drop ``diff`` unless asked, exit."""
    try:
        result = call()
    except KexecError as exc:
        exc.fail(module)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


def syscall_error(call, err, context=""):
    """Build a SyscallError for ``call`` failing with ``err``."""
    advice = ADVICE.get(err, os.strerror(err))
    msg = "%s failed with %s (%s): %s" % (call, errno.errorcode.get(err, err), os.strerror(err), advice)
    if context:
        msg = "%s %s" % (msg, context)
    return SyscallError(call, err, msg)


__all__ = ("KexecError", "KexecUnavailable", "Missing", "SyscallError", "Unreadable", "ADVICE", "run_module", "syscall_error")
