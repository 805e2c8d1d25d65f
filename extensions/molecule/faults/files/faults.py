# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The faults scenario's helper on the guest (run as root by converge.yml and tests/test_faults.py).

    python3 faults.py save DIR       record the start: DIR/start.json and a copy of each bootloader file
    python3 faults.py snapshot DIR   print the state now, as JSON (same shape as start.json)
    python3 faults.py restore DIR    put the bootloader files back as recorded, remove what the scenario added

A snapshot holds, for each bootloader file: whether it exists, the symlink target, the sha256 of what it
reads (through a link), mode, owner, and the crashkernel= arguments in it; the backups (*.kexec-bak) with
their sha256; temporary files an interrupted write could leave (the litter); the kernel's kexec state and
the boot_id; whether /boot/grub is a mount point. Only regular files are read (a FIFO never hangs this).
Python 3.8+, standard library only.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import stat
import sys

BOOT_GRUB = "/boot/grub"
# Every file kdump_reserve's GRUB backend reads or writes, and the symlink case's target.
FIXED = ("/etc/default/grub", "/etc/default/grub.real", "/boot/grub/grub.cfg", "/boot/grub/grubenv")
DROPINS = "/etc/default/grub.d/*"
BACKUPS = ("/etc/default/grub*.kexec-bak", "/etc/default/grub.d/*.kexec-bak", "/boot/grub/grub.cfg*.kexec-bak")
# What a write interrupted half way leaves: write_atomic's temp files, grub.cfg.new (and grub-mkconfig's own .new.new).
LITTER = ("/etc/default/.grub*", "/etc/default/grub.d/.*", "/boot/grub/.grub.cfg*", "/boot/grub/grub.cfg.new*")
KEXEC = {
    "kexec_loaded": "/sys/kernel/kexec_loaded",
    "kexec_crash_loaded": "/sys/kernel/kexec_crash_loaded",
    "kexec_crash_size": "/sys/kernel/kexec_crash_size",
    "boot_id": "/proc/sys/kernel/random/boot_id",
}
CRASHKERNEL = re.compile(r"(?<![\w.-])crashkernel=[^\s\"']*")


def watched():
    return sorted(set(FIXED) | set(path for path in glob.glob(DROPINS) if not path.endswith(".kexec-bak")))


def matching(patterns):
    return sorted(set(path for pattern in patterns for path in glob.glob(pattern)))


def read_regular(path):
    """The bytes of ``path`` (through a symlink) when it is a regular file, else None; never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def sha256(data):
    return None if data is None else hashlib.sha256(data).hexdigest()


def file_state(path):
    if not os.path.lexists(path):
        return {"exists": False}
    data = read_regular(path)
    state = {"exists": True, "link": os.readlink(path) if os.path.islink(path) else None, "sha256": sha256(data)}
    try:
        status = os.stat(path)
    except OSError:  # a dangling link
        return state
    text = (data or b"").decode("utf-8", "replace")
    state.update(mode="%04o" % stat.S_IMODE(status.st_mode), uid=status.st_uid, gid=status.st_gid,
                 crashkernel=sorted(set(CRASHKERNEL.findall(text))))
    return state


def read_line(path):
    data = read_regular(path)
    return None if data is None else data.decode("ascii", "replace").strip()


def snapshot(directory, extra=()):
    return {
        "files": dict((path, file_state(path)) for path in watched() + list(extra)),
        "backups": dict((path, sha256(read_regular(path))) for path in matching(BACKUPS)),
        "litter": matching(LITTER),
        "kexec": dict((name, read_line(path)) for name, path in KEXEC.items()),
        "mounts": {BOOT_GRUB: os.path.ismount(BOOT_GRUB), directory: mounts_under(directory)},
    }


def mounts_under(directory):
    """Mount points at or below ``directory`` (none may be left when the scenario removes it)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [point for point in points if point == directory or point.startswith(directory + "/")]


def saved_copy(directory, path):
    return os.path.join(directory, "saved", path.strip("/").replace("/", "%"))


def save(directory):
    """Record the start. A start.json an interrupted run left is the state before that run: put it back first."""
    record = os.path.join(directory, "start.json")
    if os.path.exists(record):
        restore(directory)
    start = snapshot(directory)
    os.makedirs(os.path.join(directory, "saved"), mode=0o700, exist_ok=True)
    for path, state in start["files"].items():
        if state["exists"]:
            data = read_regular(path)
            if data is None or state["link"] is not None:
                raise SystemExit("%s is not a regular file at the start: the scenario expects the image's GRUB files"
                                 % path)
            write_file(saved_copy(directory, path), data, 0o600, 0, 0)
    write_file(record, json.dumps(start, indent=1, sort_keys=True).encode() + b"\n", 0o600, 0, 0)
    return start


def write_file(path, data, mode, uid, gid):
    """Replace ``path`` (a link at ``path`` is replaced, not followed) by a complete file, atomically."""
    tmp = "%s.kexec-faults-tmp" % path
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore(directory):
    """Put every bootloader file back as save() found it; remove files, backups and litter added since."""
    with open(os.path.join(directory, "start.json"), encoding="utf-8") as handle:
        start = json.load(handle)
    if os.path.ismount(BOOT_GRUB) and not start["mounts"][BOOT_GRUB]:
        raise SystemExit("%s is still a mount point: unmount the fault first, the files go to the real one" % BOOT_GRUB)
    done = []
    now = snapshot(directory)
    for path in sorted(set(start["files"]) | set(now["files"])):
        was = start["files"].get(path, {"exists": False})
        state = now["files"].get(path) or file_state(path)
        if was["exists"]:
            if state == was:
                continue
            with open(saved_copy(directory, path), "rb") as handle:
                data = handle.read()
            write_file(path, data, int(was["mode"], 8), was["uid"], was["gid"])
            done.append("restored " + path)
        elif state["exists"]:
            os.unlink(path)  # a file (or the symlink case's grub.real) the scenario made
            done.append("removed " + path)
    for path in sorted(set(now["backups"]) - set(start["backups"])) + sorted(set(now["litter"]) - set(start["litter"])):
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
            done.append("removed " + path)
    return {"changed": bool(done), "done": done}


def main(argv):
    if len(argv) < 3 or argv[1] not in ("save", "snapshot", "restore"):
        raise SystemExit("usage: faults.py save|snapshot|restore DIR [EXTRA_FILE ...]")
    directory = os.path.abspath(argv[2])
    if argv[1] == "save":
        result = save(directory)
    elif argv[1] == "snapshot":
        result = snapshot(directory, argv[3:])
    else:
        result = restore(directory)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
