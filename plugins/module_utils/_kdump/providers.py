# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The distributions' kdump capture services, read from their configuration files.

Private to the kernel.kexec collection. Three services load the crash kernel at
every boot and save the dump from the capture kernel:

- Debian/Ubuntu ``kdump-tools`` (``/etc/default/kdump-tools``, shell variables;
  kdump-config 1.8.1 read for the defaults);
- Fedora/RHEL ``kdump`` from kdump-utils (kexec-tools before Fedora 40 and
  RHEL 10): ``/etc/kdump.conf``, one ``option value`` a line;
- SUSE ``kdump`` (``/etc/sysconfig/kdump``, ``KDUMP_SAVEDIR`` a URL).

Each is recognised by its configuration file under ``root`` and says where its
dumps go and which kernel and initrd it loads into the crash region. Paths in
the results are the host's (``/var/crash``), never the fake root's. Nothing
here writes or runs a command.
"""

from __future__ import annotations

import os
import re
import shlex

from ansible_collections.kernel.kexec.plugins.module_utils._io import read_text

DEFAULT_PATH = "/var/crash"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_config(root, path):
    """Text of the host file ``path`` below ``root``, or None when it is missing.

    One that is there but cannot be read as text is a KexecError (Unreadable without root): settings
    taken from an empty file would say where dumps go, and be wrong.
    """
    return read_text(os.path.join(root, path.lstrip("/")), "kdump configuration", missing=None)


def parse_shell_vars(text):
    """``NAME=value`` assignments of a sourced shell file, quotes removed; other lines ignored."""
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        if not sep or not _NAME.match(name):
            continue
        try:
            values[name] = " ".join(shlex.split(value, comments=True))
        except ValueError:  # an unbalanced quote: the shell would refuse the file too
            continue
    return values


def parse_kdump_conf(text):
    """``option value`` lines of kdump.conf(5) as a dict (the last of an option wins, as kdumpctl reads it)."""
    options = {}
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split(None, 1)
        if words:
            options[words[0]] = words[1].strip() if len(words) > 1 else ""
    return options


def host_file(root, path, hops=16):
    """The regular file the host path ``path`` names, links followed inside ``root``; None when missing."""
    current = path
    for _hop in range(hops):
        full = os.path.join(root, current.lstrip("/"))
        if not os.path.islink(full):
            return current if os.path.isfile(full) else None
        target = os.readlink(full)
        current = target if target.startswith("/") else os.path.join(os.path.dirname(current), target)
    return None


def _first_file(root, candidates):
    for candidate in candidates:
        found = host_file(root, candidate)
        if found:
            return found
    return None


class Provider:
    """One capture service: its unit, its configuration, its dump target and its capture files."""

    name = None  # what the distribution calls the package family
    service = None  # the systemd unit, without .service
    config = None  # the file that marks it installed

    def __init__(self, root, release):
        self.root = root
        self.release = release
        self.text = read_config(root, self.config)

    @classmethod
    def present(cls, root):
        return os.path.isfile(os.path.join(root, cls.config.lstrip("/")))

    def settings(self):
        """{'target', 'location', 'path', 'config_enabled'} as the configuration says."""
        raise NotImplementedError

    def capture_files(self):
        """(kernel, initrd): host paths of what the service loads as the crash kernel; None when missing."""
        raise NotImplementedError


class KdumpTools(Provider):
    """Debian/Ubuntu kdump-tools: kdump-config loads KDUMP_KERNEL/KDUMP_INITRD (links it keeps in
    /var/lib/kdump, the initrd built there with MODULES=dep at the first load)."""

    name = "kdump-tools"
    service = "kdump-tools"
    config = "/etc/default/kdump-tools"

    def settings(self):
        values = parse_shell_vars(self.text)
        target, location = "local", None
        for key in ("SSH", "NFS", "FTP"):  # kdump-config savecore tries them in this order
            if values.get(key):
                target, location = key.lower(), values[key]
                break
        return {"target": target, "location": location, "path": values.get("KDUMP_COREDIR") or DEFAULT_PATH,
                "config_enabled": values.get("USE_KDUMP", "0") not in ("", "0")}

    def capture_files(self):
        values = parse_shell_vars(self.text)
        # Without KDUMP_KERNEL kdump-config takes the running kernel and its initrd from /boot.
        kernel = values.get("KDUMP_KERNEL") or "/boot/vmlinuz-%s" % self.release
        initrd = values.get("KDUMP_INITRD") or "/boot/initrd.img-%s" % self.release
        return host_file(self.root, kernel), host_file(self.root, initrd)


class KdumpUtils(Provider):
    """Fedora/RHEL kdump-utils (kexec-tools before Fedora 40 and RHEL 10): kdumpctl, mkdumprd."""

    name = "kdump-utils"
    service = "kdump"
    config = "/etc/kdump.conf"
    # kdump.conf(5) dump targets; none of them means the local path.
    TARGETS = ("ssh", "nfs", "raw", "ext2", "ext3", "ext4", "xfs", "btrfs", "minix", "virtiofs")

    def settings(self):
        options = parse_kdump_conf(self.text)
        target, location = "local", None
        for key in self.TARGETS:
            if key in options:
                target, location = key, options[key]
                break
        return {"target": target, "location": location, "path": options.get("path") or DEFAULT_PATH,
                "config_enabled": None}

    def capture_files(self):
        sysconfig = parse_shell_vars(read_config(self.root, "/etc/sysconfig/kdump"))
        release = sysconfig.get("KDUMP_KERNELVER") or self.release
        kernel = _first_file(self.root, ["/boot/vmlinuz-%s" % release])
        # mkdumprd writes to /boot, or to /var/lib/kdump where /boot is not writable.
        initrd = _first_file(self.root, ["/boot/initramfs-%skdump.img" % release,
                                         "/var/lib/kdump/initramfs-%skdump.img" % release])
        return kernel, initrd


class SuseKdump(Provider):
    """SUSE kdump: kdumptool, KDUMP_SAVEDIR as a URL (file://, ssh://, sftp://, nfs://, ...)."""

    name = "suse-kdump"
    service = "kdump"
    config = "/etc/sysconfig/kdump"
    SCHEMES = {"file": "local", "ssh": "ssh", "sftp": "ssh", "nfs": "nfs", "cifs": "cifs", "smb": "cifs", "ftp": "ftp"}

    def settings(self):
        values = parse_shell_vars(self.text)
        savedir = (values.get("KDUMP_SAVEDIR") or "file://" + DEFAULT_PATH).split()[0]
        scheme, sep, rest = savedir.partition("://")
        if not sep:  # a plain path
            return {"target": "local", "location": None, "path": savedir, "config_enabled": None}
        if scheme == "file":
            return {"target": "local", "location": None, "path": rest or DEFAULT_PATH, "config_enabled": None}
        host, _slash, path = rest.partition("/")
        return {"target": self.SCHEMES.get(scheme, scheme), "location": host, "path": "/" + path,
                "config_enabled": None}

    def capture_files(self):
        kernel = _first_file(self.root, ["/boot/vmlinuz-%s" % self.release, "/boot/Image-%s" % self.release])
        initrd = _first_file(self.root, ["/boot/initrd-%s-kdump" % self.release])
        return kernel, initrd


# kdump.conf first: Fedora and RHEL have /etc/sysconfig/kdump as well.
PROVIDERS = (KdumpUtils, KdumpTools, SuseKdump)


def detect(root, release):
    """The capture service configured under ``root``, or None when none is installed."""
    for provider in PROVIDERS:
        if provider.present(root):
            return provider(root, release)
    return None


__all__ = ("DEFAULT_PATH", "PROVIDERS", "KdumpTools", "KdumpUtils", "Provider", "SuseKdump", "detect", "host_file",
           "parse_kdump_conf", "parse_shell_vars", "read_config")
