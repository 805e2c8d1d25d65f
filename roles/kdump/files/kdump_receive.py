# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The forced command of a kdump client's key on the SSH dump server (installed by the kernel.kexec.kdump role).

sshd runs ``/usr/bin/python3 -I kdump-receive DIR`` for every connection made with that client's key, whatever the client asked
for; the request is in SSH_ORIGINAL_COMMAND. This does what the capture services ask of a dump server, inside
DIR only, and refuses everything else (a shell, any read, another command, a path outside DIR):

    mkdir -p PATH                     create PATH and its missing parents (kdump-tools, kdumpctl)
    dd [bs=N] of=PATH                 write standard input to the file PATH (makedumpfile -F | ssh ... dd of=)
    umask 0077 && dd [bs=N] of=PATH   the same, as kdumpctl's capture script asks for it
    mv PATH PATH                      rename a file written here (kdump-tools: dump-incomplete to dump.STAMP)
    mktemp -dqp PATH                  create a new directory in PATH and print its path (kdumpctl's write check)
    rmdir PATH                        remove an empty directory below DIR (the same check, afterwards)

A PATH is absolute and inside DIR: DIR, a slash, then names of letters, digits and ``._:-`` joined by single
slashes ("." and ".." are not names). No name on the way is followed when it is a symbolic link, and a file is
only written or renamed when it is a regular file (or does not exist yet). Files are made 0600, directories 0700.
Copies by scp or sftp are refused: the SFTP server would reach every file of the account.

Exit status 0 when done; 1 with one line on standard error, "kdump-receive: ...", when refused or failed.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import sys

MAX_COMMAND = 4096  # the longest request taken; the services' requests are a few hundred bytes
NAME = re.compile(r"[A-Za-z0-9._:-]+\Z")
REQUEST_CHARACTERS = re.compile(r"[A-Za-z0-9 ._/=:&-]*\Z")  # no quote, $, `, ;, |, >, newline or control byte
BLOCK_SIZE = re.compile(r"bs=[1-9][0-9]{0,8}\Z")
CHUNK = 1 << 20


class Refused(Exception):
    """A request this command does not carry out; its message says why."""


def names_below(directory, path):
    """The names of ``path`` below ``directory`` ([] for the directory itself); Refused outside it."""
    if path == directory:
        return []
    if not path.startswith(directory + "/"):
        raise Refused("%s is not inside %s" % (path, directory))
    names = path[len(directory) + 1:].split("/")
    for name in names:
        if name in (".", "..") or not NAME.match(name):
            raise Refused("%s: the name %r is not allowed" % (path, name))
    return names


def open_directory(root_fd, names, create=False):
    """A descriptor of the directory ``names`` below ``root_fd``, never through a symbolic link; with
    ``create``, the missing ones are made (0700)."""
    fd = os.dup(root_fd)
    try:
        for name in names:
            if create:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError:
        os.close(fd)
        raise
    return fd


def regular_or_missing(name, dir_fd, path):
    """Refused when ``name`` exists in ``dir_fd`` and is not a regular file (a link, a directory, a fifo)."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise Refused("%s is not a regular file" % path)


def parse(request, directory):
    """(operation, arguments) for ``request`` (SSH_ORIGINAL_COMMAND); Refused for anything not listed above."""
    if request is None or not request.strip():
        raise Refused("no command given: this key opens no shell")
    if len(request) > MAX_COMMAND:
        raise Refused("the command is longer than %d characters" % MAX_COMMAND)
    if "\0" in request or not REQUEST_CHARACTERS.match(request):
        raise Refused("the command holds a character no dump service sends (quotes, $, `, ;, |, >, control bytes)")
    words = request.split()
    if words[:3] == ["umask", "0077", "&&"]:
        words = words[3:]
    if words[:1] == ["mkdir"] and words[1:2] == ["-p"] and len(words) == 3:
        return "mkdir", [names_below(directory, words[2])]
    if words[:1] == ["dd"] and 2 <= len(words) <= 3 and words[-1].startswith("of=") and \
            all(BLOCK_SIZE.match(word) for word in words[1:-1]):
        target = names_below(directory, words[-1][len("of="):])
        if not target:
            raise Refused("dd of= names the client's directory itself, not a file")
        return "write", [target]
    if words[:1] == ["mv"] and len(words) == 3:
        source, target = names_below(directory, words[1]), names_below(directory, words[2])
        if not source or not target:
            raise Refused("mv takes two files below the client's directory")
        return "rename", [source, target]
    if words[:2] == ["mktemp", "-dqp"] and len(words) == 3:
        return "mktemp", [names_below(directory, words[2])]
    if words[:1] == ["rmdir"] and len(words) == 2:
        names = names_below(directory, words[1])
        if not names:
            raise Refused("rmdir of the client's directory itself")
        return "rmdir", [names]
    raise Refused("%r is not a dump write (allowed: mkdir -p, dd of=, mv, mktemp -dqp, rmdir)" % " ".join(words[:2]))


def carry_out(operation, arguments, root_fd, directory, stdin, stdout):
    """Do what parse() allowed, below ``root_fd`` (``directory``), never through a symbolic link."""
    if operation == "mkdir":
        os.close(open_directory(root_fd, arguments[0], create=True))
    elif operation == "write":
        names = arguments[0]
        parent = open_directory(root_fd, names[:-1])
        try:
            regular_or_missing(names[-1], parent, "/".join([directory] + names))
            fd = os.open(names[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
        finally:
            os.close(parent)
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stdin.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
    elif operation == "rename":
        source, target = arguments
        source_fd = open_directory(root_fd, source[:-1])
        try:
            target_fd = open_directory(root_fd, target[:-1])
            try:
                regular_or_missing(source[-1], source_fd, "/".join([directory] + source))
                regular_or_missing(target[-1], target_fd, "/".join([directory] + target))
                os.rename(source[-1], target[-1], src_dir_fd=source_fd, dst_dir_fd=target_fd)
            finally:
                os.close(target_fd)
        finally:
            os.close(source_fd)
    elif operation == "mktemp":
        names = arguments[0]
        parent = open_directory(root_fd, names)
        try:
            name = "tmp." + secrets.token_hex(6)
            os.mkdir(name, 0o700, dir_fd=parent)
        finally:
            os.close(parent)
        stdout.write("/".join([directory] + names + [name]) + "\n")
    elif operation == "rmdir":
        names = arguments[0]
        parent = open_directory(root_fd, names[:-1])
        try:
            os.rmdir(names[-1], dir_fd=parent)
        finally:
            os.close(parent)


def main(argv, environ, stdin, stdout, stderr):
    """Run one request; returns the exit status."""
    if len(argv) != 2 or not argv[1].startswith("/") or argv[1] != os.path.normpath(argv[1]):
        stderr.write("kdump-receive: usage: kdump-receive /ABSOLUTE/CLIENT/DIRECTORY (from authorized_keys)\n")
        return 1
    directory = argv[1]
    try:
        operation, arguments = parse(environ.get("SSH_ORIGINAL_COMMAND"), directory)
        root_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            carry_out(operation, arguments, root_fd, directory, stdin, stdout)
        finally:
            os.close(root_fd)
    except Refused as exc:
        stderr.write("kdump-receive: refused: %s\n" % exc)
        return 1
    except OSError as exc:
        stderr.write("kdump-receive: %s: %s\n" % (exc.filename or directory, exc.strerror))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ, sys.stdin.buffer, sys.stdout, sys.stderr))
