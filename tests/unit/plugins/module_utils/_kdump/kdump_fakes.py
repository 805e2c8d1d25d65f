"""Fake capture-service trees for the _kdump tests: config files, kernels with a known footprint, dumps."""

import os
import struct

from ...fakes import host as fakes

MIB = 1 << 20
# The init_size of Debian bookworm's 6.1 amd64 kernel (63.6 MiB), read from the test guest's vmlinuz.
DEBIAN_INIT_SIZE = 0x3f98000


def kernel_with_init_size(init_size, release=fakes.RELEASE):
    """A bzImage header whose init_size field says ``init_size``."""
    data = bytearray(fakes.bzimage_bytes(release=release))
    struct.pack_into("<I", data, 0x260, init_size)
    return bytes(data)


def arm64_image(image_size):
    """The 64-byte header of an arm64 Image (booting.rst): image_size at 16, "ARM\\x64" at 56."""
    data = bytearray(64)
    struct.pack_into("<Q", data, 16, image_size)
    data[56:60] = b"ARM\x64"
    return bytes(data) + bytes(4096)


def debian_kdump_tools(root, config=None, initrd_size=12 * MIB, built=True, crash_size=256 * MIB):
    """A Debian host with kdump-tools configured and, when ``built``, the links and small initrd kdump-config makes."""
    iomem = "00100000-7fffffff : System RAM\n  2a000000-%08x : Crash kernel\n" % (0x2a000000 + crash_size - 1)
    host = fakes.fake_host(root, crash_size=crash_size, iomem=iomem)
    host.write("etc/default/kdump-tools", config if config is not None else
               'USE_KDUMP=1\nKDUMP_KERNEL="/var/lib/kdump/vmlinuz"\nKDUMP_INITRD="/var/lib/kdump/initrd.img"\n'
               'KDUMP_COREDIR="/var/crash"\n')
    host.write("boot/vmlinuz-%s" % fakes.RELEASE, kernel_with_init_size(DEBIAN_INIT_SIZE))
    if built:
        host.write("var/lib/kdump/initrd.img-%s" % fakes.RELEASE, bytes(initrd_size))
        os.symlink("/boot/vmlinuz-%s" % fakes.RELEASE, host.path("var/lib/kdump/vmlinuz"))
        os.symlink("/var/lib/kdump/initrd.img-%s" % fakes.RELEASE, host.path("var/lib/kdump/initrd.img"))
    return host


def write_dump(host, directory, name, content=b"makedumpfile\0\0\0\0", mtime=None, log=None):
    """A dump file ``directory/name`` (host paths) with its mtime, and a log beside it when ``log`` is a name."""
    path = host.write(os.path.join(directory, name).lstrip("/"), content)
    if log:
        host.write(os.path.join(directory, log).lstrip("/"), "[  1.0] sysrq: Trigger a crash\n")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path
