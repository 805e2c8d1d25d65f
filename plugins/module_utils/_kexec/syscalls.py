# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kexec_file_load, kexec_load and reboot syscalls through ctypes.

Private to the kernel.kexec collection. This is the only file that uses ctypes
and the only one that can change the running kernel's state: every call goes
through :func:`_raw_syscall`, which unit tests replace (their conftest makes an
unmocked call fail loudly instead of reaching the host's kernel).
"""

from __future__ import annotations

import ctypes
import os

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, syscall_error
from ansible_collections.kernel.kexec.plugins.module_utils._host.arch import host_machine

# kexec_file_load flags (include/uapi/linux/kexec.h)
KEXEC_FILE_UNLOAD = 0x1
KEXEC_FILE_ON_CRASH = 0x2
KEXEC_FILE_NO_INITRAMFS = 0x4

# kexec_load flags; the architecture goes in the high 16 bits
KEXEC_ON_CRASH = 0x1
KEXEC_PRESERVE_CONTEXT = 0x2
KEXEC_SEGMENT_MAX = 16

# reboot(2): magic numbers and the command that boots the loaded kernel
LINUX_REBOOT_MAGIC1 = 0xfee1dead
LINUX_REBOOT_MAGIC2 = 0x28121969
LINUX_REBOOT_CMD_KEXEC = 0x45584543
LINUX_REBOOT_CMD_RESTART = 0x01234567


class Arch:
    """Syscall numbers and the kexec_load architecture word for one machine."""

    def __init__(self, name, kexec_load, kexec_file_load, reboot, kexec_arch):
        self.name = name
        self.kexec_load = kexec_load
        self.kexec_file_load = kexec_file_load
        self.reboot = reboot
        self.kexec_arch = kexec_arch  # KEXEC_ARCH_* (ELF machine number) << 16


# Numbers from the kernel's syscall tables; KEXEC_ARCH_* from include/uapi/linux/kexec.h.
ARCHES = {
    "x86_64": Arch("x86_64", 246, 320, 169, 62 << 16),
    "aarch64": Arch("aarch64", 104, 294, 142, 183 << 16),
    "riscv64": Arch("riscv64", 104, 294, 142, 243 << 16),
    "ppc64le": Arch("ppc64le", 268, 382, 88, 21 << 16),
    "s390x": Arch("s390x", 277, 381, 88, 22 << 16),
}


def current_arch(machine=None):
    """The :class:`Arch` of this host (or of ``machine``), or a clear error."""
    machine = host_machine(machine)
    try:
        return ARCHES[machine]
    except KeyError:
        raise KexecError(
            "architecture %s is not supported; supported: %s" % (machine, ", ".join(sorted(ARCHES))))


class KexecSegment(ctypes.Structure):
    """struct kexec_segment: a user buffer and where the kernel puts it."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("bufsz", ctypes.c_size_t),
        ("mem", ctypes.c_ulong),
        ("memsz", ctypes.c_size_t),
    ]


_libc = None


def _raw_syscall(number, *args):
    """syscall(2): returns the result, or raises OSError with errno.

    The one door to the kernel. Unit tests replace it; nothing else in the
    collection calls libc.
    """
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ret = _libc.syscall(ctypes.c_long(number), *args)
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def kexec_file_load(kernel_fd, initrd_fd, cmdline, flags, arch=None):
    """Load (or with KEXEC_FILE_UNLOAD, unload) through kexec_file_load.

    ``cmdline`` is text or None; its length passed to the kernel counts the
    trailing NUL, which the kernel requires (EINVAL without it).
    """
    arch = arch or current_arch()
    if cmdline is None:
        buf, length = None, 0
    else:
        buf = cmdline.encode("utf-8") + b"\0"
        length = len(buf)
    try:
        _raw_syscall(arch.kexec_file_load, ctypes.c_int(kernel_fd), ctypes.c_int(initrd_fd),
                     ctypes.c_ulong(length), ctypes.c_char_p(buf), ctypes.c_ulong(flags))
    except OSError as exc:
        raise syscall_error("kexec_file_load", exc.errno)


def _user_buffer(data):
    """(object to keep alive, address) of ``data`` without copying it.

    The kernel copies each segment from user memory during the call; a kernel
    and initrd are tens of MB, so the buffer the caller already holds is
    passed as it is: bytes by their internal buffer, writable buffers
    (bytearray, memoryview) through ctypes.from_buffer.
    """
    if isinstance(data, bytes):
        keep = ctypes.c_char_p(data)
        return keep, ctypes.cast(keep, ctypes.c_void_p).value
    keep = (ctypes.c_char * len(data)).from_buffer(data)
    return keep, ctypes.addressof(keep)


def kexec_load(entry, segments, flags, arch=None):
    """Load through the legacy kexec_load; ``segments`` is a list of
    (bytes, mem, memsz). No segments unloads."""
    arch = arch or current_arch()
    if len(segments) > KEXEC_SEGMENT_MAX:
        raise KexecError("kexec_load takes at most %d segments, the plan has %d" % (KEXEC_SEGMENT_MAX, len(segments)))
    table = (KexecSegment * max(len(segments), 1))()
    buffers = []  # keep the buffers alive until the syscall returns
    for slot, (data, mem, memsz) in zip(table, segments):
        buf, address = _user_buffer(data)
        buffers.append(buf)
        slot.buf = address
        slot.bufsz = len(data)
        slot.mem = mem
        slot.memsz = memsz
    try:
        _raw_syscall(arch.kexec_load, ctypes.c_ulong(entry), ctypes.c_ulong(len(segments)),
                     table if segments else None, ctypes.c_ulong(flags | arch.kexec_arch))
    except OSError as exc:
        raise syscall_error("kexec_load", exc.errno)


def reboot(command, arch=None):
    """reboot(2) with LINUX_REBOOT_CMD_KEXEC (boot the loaded kernel) or
    LINUX_REBOOT_CMD_RESTART (firmware reboot), after sync.

    It acts at once: no service stop, no unmount. Only for hosts without
    systemd; elsewhere ``systemctl kexec`` / ``systemctl reboot`` shut down cleanly.
    """
    arch = arch or current_arch()
    os.sync()
    try:
        _raw_syscall(arch.reboot, ctypes.c_uint(LINUX_REBOOT_MAGIC1), ctypes.c_uint(LINUX_REBOOT_MAGIC2),
                     ctypes.c_uint(command), None)
    except OSError as exc:
        raise syscall_error("reboot", exc.errno)


__all__ = (
    "ARCHES", "Arch", "KEXEC_FILE_NO_INITRAMFS", "KEXEC_FILE_ON_CRASH", "KEXEC_FILE_UNLOAD",
    "KEXEC_ON_CRASH", "KEXEC_PRESERVE_CONTEXT", "KEXEC_SEGMENT_MAX", "KexecSegment",
    "LINUX_REBOOT_CMD_KEXEC", "LINUX_REBOOT_CMD_RESTART", "current_arch", "kexec_file_load", "kexec_load", "reboot",
)
