import ctypes
import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._host import arch as host_arch
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import syscalls

X86_64 = syscalls.ARCHES["x86_64"]


@pytest.fixture(autouse=True)
def syncs(monkeypatch):
    """os.sync as seen by syscalls: recorded, never run."""
    calls = []
    monkeypatch.setattr(syscalls.os, "sync", lambda: calls.append("sync"))
    return calls


# The kernel's syscall tables and KEXEC_ARCH_* (EM_* << 16): a wrong number would call another syscall.
@pytest.mark.parametrize("machine, numbers", [
    ("x86_64", (246, 320, 169, 62 << 16)),
    ("aarch64", (104, 294, 142, 183 << 16)),
    ("riscv64", (104, 294, 142, 243 << 16)),
    ("ppc64le", (268, 382, 88, 21 << 16)),
    ("s390x", (277, 381, 88, 22 << 16)),
])
def test_current_arch(monkeypatch, machine, numbers):
    monkeypatch.setattr(host_arch.platform, "machine", lambda: machine)
    arch = syscalls.current_arch()
    assert arch is syscalls.current_arch(machine)
    assert (arch.name, (arch.kexec_load, arch.kexec_file_load, arch.reboot, arch.kexec_arch)) == (machine, numbers)


def test_unknown_arch():
    with pytest.raises(KexecError, match="architecture mips is not supported; supported: aarch64, ppc64le, "
                                         "riscv64, s390x, x86_64"):
        syscalls.current_arch("mips")


@pytest.mark.parametrize("machine", sorted(syscalls.ARCHES))
def test_kexec_file_load_marshals_arguments(monkeypatch, fake_syscall, machine):
    monkeypatch.setattr(host_arch.platform, "machine", lambda: machine)
    syscalls.kexec_file_load(7, 8, 'root=/dev/vda1 foo="\u00e9 x"', syscalls.KEXEC_FILE_ON_CRASH)
    [(number, args)] = fake_syscall.calls
    assert number == syscalls.ARCHES[machine].kexec_file_load
    assert [type(arg) for arg in args] == [ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong]
    expected = 'root=/dev/vda1 foo="\u00e9 x"'.encode() + b"\0"
    assert (args[0].value, args[1].value, args[2].value, args[4].value) == (7, 8, len(expected), 2)
    assert ctypes.string_at(args[3], args[2].value) == expected


def test_kexec_file_load_without_cmdline(fake_syscall):
    syscalls.kexec_file_load(-1, -1, None, syscalls.KEXEC_FILE_UNLOAD, arch=X86_64)
    [(number, args)] = fake_syscall.calls
    assert (number, args[2].value, args[3].value, args[4].value) == (320, 0, None, syscalls.KEXEC_FILE_UNLOAD)


def test_kexec_load_refuses_too_many_segments_before_the_syscall(fake_syscall):
    with pytest.raises(KexecError, match="at most 16 segments, the plan has 17"):
        syscalls.kexec_load(0x1000000, [(b"x", 0x100000 * n, 0x1000) for n in range(17)], 0, arch=X86_64)
    assert fake_syscall.calls == []
    syscalls.kexec_load(0x1000000, [(b"x", 0x100000 * n, 0x1000) for n in range(16)], 0, arch=X86_64)
    assert fake_syscall.calls[0][1][1].value == 16


@pytest.mark.parametrize("machine, arch_word", [("x86_64", 62 << 16), ("aarch64", 183 << 16)])
def test_kexec_load_marshals_segments_and_arch_word(fake_syscall, machine, arch_word):
    arch = syscalls.ARCHES[machine]
    seen = []

    def read_table(number, args):  # the segment buffers live only during the call
        table = ctypes.cast(args[2], ctypes.POINTER(syscalls.KexecSegment))
        for i in range(args[1].value):
            seg = table[i]
            seen.append((ctypes.string_at(seg.buf, seg.bufsz), seg.mem, seg.memsz))

    fake_syscall.on_call = read_table
    segments = [(b"setup\0code", 0x100000, 0x2000), (bytearray(b"initrd"), 0x7f000000, 0x1000)]
    syscalls.kexec_load(0x1000200, segments, syscalls.KEXEC_ON_CRASH, arch=arch)
    [(number, args)] = fake_syscall.calls
    assert number == arch.kexec_load
    assert (args[0].value, args[1].value, args[3].value) == (0x1000200, 2, syscalls.KEXEC_ON_CRASH | arch_word)
    assert seen == [(b"setup\0code", 0x100000, 0x2000), (b"initrd", 0x7f000000, 0x1000)]


def test_kexec_load_without_segments_unloads(fake_syscall):
    syscalls.kexec_load(0, [], 0, arch=X86_64)
    [(number, args)] = fake_syscall.calls
    assert (number, args[0].value, args[1].value, args[2], args[3].value) == (246, 0, 0, None, 62 << 16)


@pytest.mark.parametrize("command, value", [
    (syscalls.LINUX_REBOOT_CMD_KEXEC, 0x45584543),
    (syscalls.LINUX_REBOOT_CMD_RESTART, 0x01234567),
])
def test_reboot_syncs_then_passes_the_magic_numbers(fake_syscall, syncs, command, value):
    fake_syscall.on_call = lambda number, args: syncs.append("reboot")
    syscalls.reboot(command, arch=X86_64)
    assert syncs == ["sync", "reboot"]
    [(number, args)] = fake_syscall.calls
    assert number == 169
    assert [arg.value for arg in args[:3]] == [0xfee1dead, 0x28121969, value]
    assert args[3] is None


@pytest.mark.parametrize("call, name", [
    (lambda: syscalls.kexec_file_load(3, -1, "ro", 0, arch=X86_64), "kexec_file_load"),
    (lambda: syscalls.kexec_load(0, [], 0, arch=X86_64), "kexec_load"),
    (lambda: syscalls.reboot(syscalls.LINUX_REBOOT_CMD_KEXEC, arch=X86_64), "reboot"),
], ids=["kexec_file_load", "kexec_load", "reboot"])
@pytest.mark.parametrize("err, errno_name, advice", [
    (errno.EPERM, "EPERM", "run as root (CAP_SYS_BOOT)"),
    (errno.EKEYREJECTED, "EKEYREJECTED", "signature was rejected"),
    (errno.EBUSY, "EBUSY", "try again"),
    (errno.E2BIG, "E2BIG", "): " + os.strerror(errno.E2BIG)),  # no advice: strerror again
])
def test_errno_becomes_syscall_error(fake_syscall, call, name, err, errno_name, advice):
    fake_syscall.errors = [err]
    with pytest.raises(SyscallError) as info:
        call()
    exc = info.value
    assert (exc.call, exc.errno) == (name, err)
    assert exc.extra == {"errno": err, "errno_name": errno_name}
    assert exc.msg.startswith("%s failed with %s (%s): " % (name, errno_name, os.strerror(err)))
    assert advice in exc.msg


def test_kexec_load_passes_the_callers_buffers_without_copying(fake_syscall):
    data = b"k" * 4096
    writable = bytearray(b"i" * 4096)
    addresses = []

    def read_table(number, args):
        table = ctypes.cast(args[2], ctypes.POINTER(syscalls.KexecSegment))
        addresses.extend(table[i].buf for i in range(args[1].value))

    fake_syscall.on_call = read_table
    syscalls.kexec_load(0x1000, [(data, 0x100000, 0x1000), (writable, 0x200000, 0x1000)], 0, arch=X86_64)
    assert addresses[0] == ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value  # the bytes object itself
    assert addresses[1] == ctypes.addressof((ctypes.c_char * 4096).from_buffer(writable))
