# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel command lines: split, join, and add / remove / replace arguments.

Private to the kernel.kexec collection. Splitting follows the kernel's own
``next_arg()``: arguments are separated by white space outside double quotes,
and quotes may open anywhere in an argument (``foo="a b"``). Tokens keep their
text as written, so ``join(split(x))`` only normalises white space.
Arguments after a lone ``--`` belong to init; edits never move them.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

INIT_SEPARATOR = "--"


def split(text):
    """Split a command line into arguments; an unclosed quote is an error."""
    tokens = []
    current = []
    in_quote = False
    for char in text:
        if char.isspace() and not in_quote:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        if char == '"':
            in_quote = not in_quote
        current.append(char)
    if in_quote:
        raise KexecError("kernel command line has an unclosed double quote: %r; close it or drop it" % text)
    if current:
        tokens.append("".join(current))
    return tokens


def join(tokens):
    return " ".join(tokens)


def arg_name(token):
    """The parameter name: text before the first '=', without quotes."""
    return token.split("=", 1)[0].strip('"')


def _kernel_and_init(tokens):
    if INIT_SEPARATOR in tokens:
        at = tokens.index(INIT_SEPARATOR)
        return tokens[:at], tokens[at:]
    return tokens, []


def check_argument(token):
    """One argument as a user wrote it in ``append``: must be one token."""
    if isinstance(token, str) and "\0" in token:
        raise KexecError("kernel argument %r holds a NUL byte: the kernel would cut the command line there" % (token,))
    if not isinstance(token, str) or split(token) != [token]:
        raise KexecError("%r is not a single kernel argument: quote values that hold spaces "
                         "(name=\"a b\") and give each argument as its own list item" % (token,))
    if token == INIT_SEPARATOR:
        raise KexecError("'--' cannot be appended: it would hand the arguments after it to init")
    return token


def check_name(name):
    """One name as a user wrote it in ``remove``: a parameter name, no value, quote or white space."""
    if (not isinstance(name, str) or not name or "=" in name or '"' in name or "\0" in name
            or any(char.isspace() for char in name)):
        raise KexecError("%r is not an argument name: remove takes names only (quiet, console), without '=', "
                         "a value, quotes or spaces; to keep some values of a repeatable argument, list them "
                         "in append" % (name,))
    return name


def edit(text, append=(), remove=()):
    """Return ``text`` with every argument named in ``remove`` dropped and each
    ``append`` argument set: its values replace all arguments of the same name,
    in the place of the first of them (so a changed value is a one-word diff),
    or go to the end of the kernel's part. Repeatable parameters (``console=``)
    are set by listing every wanted value in ``append``."""
    kernel, init = _kernel_and_init(split(text))
    wanted = {}
    for token in (check_argument(token) for token in append):
        values = wanted.setdefault(arg_name(token), [])
        if token not in values:
            values.append(token)
    drop = set(remove) | set(wanted)
    kept = []
    for token in kernel:
        name = arg_name(token)
        if name in wanted:
            kept.extend(wanted.pop(name))  # first of its name: the new values go here
        elif name not in drop:
            kept.append(token)
    for values in wanted.values():
        kept.extend(values)
    return join(kept + init)


def has_arguments(text, wanted):
    """True when every argument in ``wanted`` appears verbatim in ``text``."""
    present = set(split(text))
    return all(token in present for token in wanted)


__all__ = ("INIT_SEPARATOR", "arg_name", "check_argument", "check_name", "edit", "has_arguments", "join", "split")
