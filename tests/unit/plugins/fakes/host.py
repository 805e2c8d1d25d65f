"""Fake kernel images, fake host trees and a fake kernel for the unit tests.

Everything here writes below a directory the test owns (pytest's tmp_path);
nothing touches the host's /boot, /proc, /sys or /run.
"""

import builtins
import ctypes
import errno
import hashlib
import os
import struct

RELEASE = "6.1.0-28-amd64"
OLD_RELEASE = "6.1.0-27-amd64"
BOOT_ID = "2c4f7f0e-6a7d-4b7e-9a51-3f0c2b1d9e10"
ROOT_UUID = "0b1c5e7a-93d2-4c41-a1f3-7d2b4e6f8a90"
CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-%s root=UUID=%s ro quiet crashkernel=384M-:128M" % (RELEASE, ROOT_UUID)
LOCKDOWN_NONE = "[none] integrity confidentiality"

# Two crash regions (low and high), nested under System RAM as the kernel prints them.
IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-0009ffff : Reserved
000f0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-bffdafff : System RAM
  2a000000-31ffffff : Crash kernel
  5f200000-60001fff : Kernel code
bffdb000-bfffffff : Reserved
100000000-23fffffff : System RAM
  23f000000-23fffffff : Crash kernel
"""
CRASH_LOW = (0x2a000000, 0x31ffffff)
CRASH_HIGH = (0x23f000000, 0x23fffffff)
IOMEM_NO_CRASH = "\n".join(line for line in IOMEM.splitlines() if "Crash kernel" not in line) + "\n"

GZIP_INITRD = b"\x1f\x8b\x08\x00" + bytes(2000)

# FakeHost.confidential_guest's kinds and the name the collection gives each.
CONFIDENTIAL_GUESTS = {"tdx": "Intel TDX", "sev-snp": "AMD SEV-SNP"}

# The firmware's SecureBoot variable as efivarfs shows it: 4 bytes of attributes (little-endian
# EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS), then the 1-byte value.
SECURE_BOOT_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
EFI_VAR_ATTRIBUTES = b"\x06\x00\x00\x00"


def bzimage_bytes(release=RELEASE, protocol=0x020f, loadflags=0x01, xloadflags=0x03, cmdline_size=2047,
                  version_pointer=0x3c0, size=0x1000, cut=0):
    """An x86 bzImage header: only the fields kernel_image reads are set.

    setup_sects is 0 (four sectors, 2560 bytes of setup); syssize counts the rest
    of ``size`` in 16-byte paragraphs, so the image is complete as its header says,
    unless ``cut`` bytes are taken off its end.
    """
    data = bytearray(size)
    struct.pack_into("<I", data, 0x1f4, (size - 5 * 512) // 16)
    struct.pack_into("<H", data, 0x1fe, 0xAA55)
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, protocol)
    struct.pack_into("<H", data, 0x20e, version_pointer if release else 0)
    data[0x211] = loadflags
    struct.pack_into("<H", data, 0x236, xloadflags)
    struct.pack_into("<I", data, 0x238, cmdline_size)
    if release:
        text = ("%s (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian" % release).encode() + b"\0"
        at = version_pointer + 0x200
        data[at:at + len(text)] = text
    return bytes(data[:len(data) - cut])


def write_file(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)
    return path


def write_bytes(path, data, mode=None):
    """write_file, then ``mode`` (when given); the path as a string."""
    path = write_file(str(path), data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def read_bytes(path):
    with open(str(path), "rb") as handle:
        return handle.read()


def mode_of(path):
    return os.stat(str(path)).st_mode & 0o7777


def no_regular_file(path, kind):
    """A FIFO or a directory (``kind``: fifo, directory) at ``path``, in place of any file there; returns how
    _io names it in its error ("a FIFO")."""
    if os.path.lexists(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.mkdir(path)
    return {"fifo": "a FIFO", "directory": "a directory"}[kind]


def write_bzimage(path, **fields):
    return write_file(str(path), bzimage_bytes(**fields))


def debian_grub_cfg(default="0", releases=(RELEASE, OLD_RELEASE), prefix="/boot", linux="linux", initrd="initrd"):
    """grub.cfg as Debian's grub-mkconfig writes it (header, simple entry, 'Advanced options' submenu).

    ``prefix`` is "" for a separate /boot partition, where GRUB names files from that partition's root.
    Normal entries boot with ``quiet``, recovery entries with ``single``.
    """
    def entry(title, ident, release, args, indent=""):
        return ("{i}menuentry '{title}' --class debian --class gnu-linux --class gnu --class os "
                "$menuentry_id_option '{ident}' {{\n"
                "{i}\tload_video\n"
                "{i}\tinsmod gzio\n"
                "{i}\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
                "{i}\tinsmod part_gpt\n"
                "{i}\tinsmod ext2\n"
                "{i}\tsearch --no-floppy --fs-uuid --set=root {uuid}\n"
                "{i}\techo\t'Loading Linux {release} ...'\n"
                "{i}\t{linux}\t{prefix}/vmlinuz-{release} root=UUID={uuid} ro {args}\n"
                "{i}\techo\t'Loading initial ramdisk ...'\n"
                "{i}\t{initrd}\t{prefix}/initrd.img-{release}\n"
                "{i}}}\n").format(i=indent, title=title, ident=ident, release=release, args=args,
                                  uuid=ROOT_UUID, prefix=prefix, linux=linux, initrd=initrd)

    parts = ["""\
#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#

### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="%s"
fi

if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  else
    insmod efi_gop
  fi
}

set timeout=5
### END /etc/grub.d/00_header ###

### BEGIN /etc/grub.d/10_linux ###
""" % default]
    parts.append(entry("Debian GNU/Linux", "gnulinux-simple-%s" % ROOT_UUID, releases[0], "quiet"))
    parts.append("submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option "
                 "'gnulinux-advanced-%s' {\n" % ROOT_UUID)
    for release in releases:
        parts.append(entry("Debian GNU/Linux, with Linux %s" % release,
                           "gnulinux-%s-advanced-%s" % (release, ROOT_UUID), release, "quiet", "\t"))
        parts.append(entry("Debian GNU/Linux, with Linux %s (recovery mode)" % release,
                           "gnulinux-%s-recovery-%s" % (release, ROOT_UUID), release, "single", "\t"))
    parts.append("}\n\n### END /etc/grub.d/10_linux ###\n\n### BEGIN /etc/grub.d/30_uefi-firmware ###\n"
                 "menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {\n"
                 "\tfwsetup\n}\n### END /etc/grub.d/30_uefi-firmware ###\n")
    return "".join(parts)


def grubenv(**values):
    """A grubenv block: the header, key=value lines, '#' padding to 1024 bytes."""
    text = "# GRUB Environment Block\n" + "".join("%s=%s\n" % item for item in values.items())
    return text + "#" * (1024 - len(text))


class FakeHost:
    """A fake / tree: the files KernelState, boot_entry and loaded read."""

    def __init__(self, root):
        self.root = str(root)

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def write(self, rel, content):
        return write_file(self.path(rel), content)

    def read(self, rel):
        with open(self.path(rel)) as handle:
            return handle.read()

    def read_bytes(self, rel):
        with open(self.path(rel), "rb") as handle:
            return handle.read()

    def exists(self, rel):
        return os.path.exists(self.path(rel))

    def remove(self, rel):
        os.unlink(self.path(rel))

    def snapshot(self, backups=True):
        """Every file under the tree with its bytes, by path relative to the root (*.kexec-bak if asked)."""
        found = {}
        for top, _dirs, names in os.walk(self.root):
            for name in names:
                if name.endswith(".kexec-bak") and not backups:
                    continue
                path = os.path.join(top, name)
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, self.root)] = handle.read()
        return found

    def set_sys(self, name, value):
        """Write one /sys/kernel or /proc/sys/kernel value, as the kernel would show it."""
        self.write(name, "%s\n" % value)

    def boot_by_efi(self, secure_boot=None):
        """Make the tree an EFI boot's: /sys/firmware/efi with efivars. ``secure_boot``: None, no SecureBoot
        variable (efivarfs not mounted, or firmware without Secure Boot); a number, its value byte; bytes,
        the whole file as efivarfs would show it."""
        os.makedirs(self.path("sys/firmware/efi/efivars"), exist_ok=True)
        if isinstance(secure_boot, int):
            secure_boot = EFI_VAR_ATTRIBUTES + bytes([secure_boot])
        if secure_boot is not None:
            self.write(SECURE_BOOT_VAR, secure_boot)
        return self

    def cpu_flags(self, *flags):
        """Write /proc/cpuinfo for two CPUs with ``flags`` (besides a few every x86_64 CPU has), as x86 shows it."""
        line = " ".join(("fpu", "pae", "lm") + flags)
        cpu = "processor\t: %d\nvendor_id\t: GenuineIntel\nflags\t\t: %s\nbugs\t\t: spectre_v1\n\n"
        self.write("proc/cpuinfo", "".join(cpu % (index, line) for index in range(2)))
        return self

    def sev_snp_guest(self, path="sys/devices/platform/sev-guest"):
        """Make the tree an AMD SEV-SNP guest's: the directory its kernel makes only there."""
        os.makedirs(self.path(path), exist_ok=True)
        return self

    def confidential_guest(self, kind):
        """Make the tree a confidential guest's, of a kind CONFIDENTIAL_GUESTS names."""
        return self.cpu_flags("tdx_guest") if kind == "tdx" else self.sev_snp_guest()

    def kernel(self, release=RELEASE):
        return self.path("boot/vmlinuz-%s" % release)

    def initrd(self, release=RELEASE):
        return self.path("boot/initrd.img-%s" % release)


def fake_host(root, release=RELEASE, cmdline=CMDLINE, loaded=0, crash_loaded=0, crash_size=0x9000000,
              iomem=IOMEM, boot_id=BOOT_ID, load_disabled=0, lockdown=LOCKDOWN_NONE,
              grub_cfg="default", kernels=(RELEASE, OLD_RELEASE), config="CONFIG_KEXEC=y\nCONFIG_KEXEC_FILE=y\n",
              systemd=True):
    """Build a host tree under ``root``; a None value leaves that file out.

    ``grub_cfg="default"`` writes debian_grub_cfg() for ``kernels``. ``systemd``: /run/systemd/system
    exists, as where systemd runs as PID 1 (kexec_reboot then reboots by systemctl).
    """
    host = FakeHost(root)
    if systemd:
        os.makedirs(host.path("run/systemd/system"))
    files = {
        "sys/kernel/kexec_loaded": loaded,
        "sys/kernel/kexec_crash_loaded": crash_loaded,
        "sys/kernel/kexec_crash_size": crash_size,
        "proc/sys/kernel/osrelease": release,
        "proc/sys/kernel/random/boot_id": boot_id,
        "proc/sys/kernel/kexec_load_disabled": load_disabled,
        "sys/kernel/security/lockdown": lockdown,
    }
    for rel, value in files.items():
        if value is not None:
            host.set_sys(rel, value)
    if cmdline is not None:
        host.write("proc/cmdline", cmdline + "\n")
    if iomem is not None:
        host.write("proc/iomem", iomem)
    if grub_cfg == "default":
        grub_cfg = debian_grub_cfg(releases=kernels)
    if grub_cfg is not None:
        host.write("boot/grub/grub.cfg", grub_cfg)
    for name in kernels:
        write_bzimage(host.kernel(name), release=name)
        host.write("boot/initrd.img-%s" % name, GZIP_INITRD + name.encode())
    if config is not None and release:
        host.write("boot/config-%s" % release, config)
    return host


def deny_reads(monkeypatch, *paths):
    """open(), os.open() and os.listdir() of exactly ``paths`` raise PermissionError, as for a non-root reader
    of a root-only file (the unit tests may run as root, which reads everything whatever its mode)."""
    denied = set(paths)
    real_open, real_os_open, real_listdir = builtins.open, os.open, os.listdir

    def guarded(real):
        def call(path, *args, **kwargs):
            if path in denied:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return real(path, *args, **kwargs)
        return call
    monkeypatch.setattr(builtins, "open", guarded(real_open))
    monkeypatch.setattr(os, "open", guarded(real_os_open))
    monkeypatch.setattr(os, "listdir", guarded(real_listdir))


def fd_path(fd):
    return os.readlink("/proc/self/fd/%d" % fd) if fd >= 0 else None


def fd_sha256(fd):
    """sha256 of what the open descriptor ``fd`` holds, read from its start as kexec_file_load reads it."""
    if fd < 0:
        return None
    digest, offset = hashlib.sha256(), 0
    for block in iter(lambda: os.pread(fd, 1 << 20, offset), b""):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


# The sysfs files of a kernel with CONFIG_CRASH_HOTPLUG (Linux 6.6 on), and crash_elfcorehdr_size as Debian 13's
# 6.12 shows it: (2 + NR_CPUS_DEFAULT 8192 + CRASH_MAX_MEMORY_RANGES 8192) program headers of 56 bytes.
CRASH_HOTPLUG_FILES = ("sys/devices/system/cpu/crash_hotplug", "sys/devices/system/memory/crash_hotplug")
CRASH_ELFCOREHDR_SIZE = (2 + 8192 + 8192) * 56
# The kexec_load flags (beyond the architecture) a kernel accepts (KEXEC_FLAGS, kernel/kexec.c): Linux 6.1 knows
# KEXEC_ON_CRASH and KEXEC_PRESERVE_CONTEXT, 6.6 adds KEXEC_UPDATE_ELFCOREHDR, 6.10 KEXEC_CRASH_HOTPLUG_SUPPORT.
KEXEC_FLAGS_6_1 = 0x3
KEXEC_FLAGS_6_6 = 0x7
KEXEC_FLAGS_6_10 = 0xf


def crash_hotplug_kernel(host, size=CRASH_ELFCOREHDR_SIZE):
    """Make the tree a crash-hotplug kernel's: both crash_hotplug files (0: no crash image loaded yet) and
    /sys/kernel/crash_elfcorehdr_size."""
    for path in CRASH_HOTPLUG_FILES:
        host.set_sys(path, 0)
    host.set_sys("sys/kernel/crash_elfcorehdr_size", size)
    return host


class FakeKernel:
    """on_call hook for the SyscallRecorder that acts like the kernel on a fake tree.

    A kexec_file_load or kexec_load that is about to succeed sets or clears
    sys/kernel/kexec_(crash_)loaded, and on a crash-hotplug kernel (crash_hotplug_kernel) the crash_hotplug
    files as the kernel answers for the new crash image: 1 for kexec_file_load, for kexec_load only with
    KEXEC_UPDATE_ELFCOREHDR or KEXEC_CRASH_HOTPLUG_SUPPORT. With ``kexec_flags`` set, a kexec_load with a flag
    outside it fails with EINVAL, as kexec_load_check() refuses it. While the call runs it also notes what
    the file descriptors point at, the sha256 of what they hold and the exact command line bytes, which are
    gone once the call returns.
    """

    def __init__(self, host, recorder, arch, kexec_flags=None):
        self.host = host
        self.recorder = recorder
        self.arch = arch
        self.kexec_flags = kexec_flags
        self.loads = []  # dicts: kernel, initrd (paths behind the fds), cmdline (bytes incl. NUL), flags
        recorder.on_call = self

    def _flip(self, crash, value, hotplug=False):
        self.host.set_sys("sys/kernel/kexec_crash_loaded" if crash else "sys/kernel/kexec_loaded", value)
        for path in CRASH_HOTPLUG_FILES if crash else ():
            if self.host.exists(path):
                self.host.set_sys(path, int(bool(value and hotplug)))

    def __call__(self, number, args):
        if self.recorder.errors and self.recorder.errors[0]:
            return  # this call is going to fail: the kernel changes nothing
        if number == self.arch.kexec_file_load:
            flags = args[4].value
            if flags & 0x1:  # KEXEC_FILE_UNLOAD
                self._flip(flags & 0x2, 0)
                return
            length = args[2].value
            self.loads.append({
                "kernel": fd_path(args[0].value),
                "initrd": fd_path(args[1].value),
                "kernel_sha256": fd_sha256(args[0].value),
                "initrd_sha256": fd_sha256(args[1].value),
                "cmdline": ctypes.string_at(args[3], length) if length else None,
                "flags": flags,
            })
            self._flip(flags & 0x2, 1, hotplug=True)
            return
        if number != self.arch.kexec_load:
            return
        flags = args[3].value
        if self.kexec_flags is not None and flags & 0xffff & ~self.kexec_flags:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if args[1].value == 0:  # unload through kexec_load
            self._flip(flags & 0x1, 0)
        else:
            table, count = args[2], args[1].value
            self.loads.append({
                "entry": args[0].value,
                "segments": [(ctypes.string_at(table[i].buf, table[i].bufsz), table[i].mem, table[i].memsz)
                             for i in range(count)],
                "flags": flags,
            })
            self._flip(flags & 0x1, 1, hotplug=bool(flags & 0xc))
