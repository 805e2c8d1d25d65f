# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by kexec_load and kexec_reboot.

Private to the kernel.kexec collection. The matching documentation is the doc
fragment kernel.kexec.load_options; keep the two in step.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest

LOAD_OPTIONS = dict(
    kernel=dict(type="path"),
    initrd=dict(type="path"),
    cmdline=dict(type="str"),
    append=dict(type="list", elements="str", default=[]),
    remove=dict(type="list", elements="str", default=[]),
    reuse_cmdline=dict(type="bool", default=True),
    method=dict(type="str", default="auto", choices=["auto", "file", "legacy"]),
    force=dict(type="bool", default=False),
)


# kexec_reboot's own options; the action plugin uses them, the module accepts them.
REBOOT_OPTIONS = dict(
    reboot_timeout=dict(type="int", default=600),
    connect_timeout=dict(type="int", default=10),
    test_command=dict(type="str"),
    pre_reboot_delay=dict(type="int", default=0),
    post_reboot_delay=dict(type="int", default=0),
    msg=dict(type="str", default="Reboot initiated by Ansible (kernel.kexec.kexec_reboot)"),
    fallback=dict(type="str", default="none", choices=["none", "full"]),
    allow_unclean_reboot=dict(type="bool", default=False),
)


# Seconds each reboot option may take: the bounds say "positive and sane". reboot_timeout has a
# floor because no host comes back from a reboot in less; connect_timeout 0 would mean ssh's
# ConnectTimeout=0, the system's (minutes long) TCP timeout.
REBOOT_LIMITS = (
    ("reboot_timeout", 10, 86400),
    ("connect_timeout", 1, 3600),
    ("pre_reboot_delay", 0, 3600),
    ("post_reboot_delay", 0, 3600),
)
MIN_TIME_TO_COME_BACK = REBOOT_LIMITS[0][1]


def check_reboot_options(params):
    """kexec_reboot's options (its own and the load inputs) at once: one KexecError naming every problem.

    The action plugin calls it before any remote call, the module before it loads anything."""
    problems = ["%s is %s; it must be %d to %d seconds" % (name, params[name], low, high)
                for name, low, high in REBOOT_LIMITS if params[name] is None or not low <= params[name] <= high]
    if not problems:
        if params["connect_timeout"] > params["reboot_timeout"]:
            problems.append("connect_timeout (%s s) is longer than reboot_timeout (%s s)"
                            % (params["connect_timeout"], params["reboot_timeout"]))
        delays = params["pre_reboot_delay"] + params["post_reboot_delay"]
        if params["reboot_timeout"] - delays < MIN_TIME_TO_COME_BACK:
            problems.append("pre_reboot_delay + post_reboot_delay (%s s) leave less than %s s of reboot_timeout "
                            "(%s s) for the host to come back" % (delays, MIN_TIME_TO_COME_BACK,
                                                                  params["reboot_timeout"]))
    for name in ("msg", "test_command"):
        if params[name] is not None and "\0" in params[name]:
            problems.append("%s holds a NUL byte" % name)
    if params["test_command"] == "":
        problems.append("test_command is an empty string: leave it out to run none")
    try:
        load_request(params)
    except KexecError as exc:
        problems.append(exc.msg)
    if problems:
        raise KexecError("kexec_reboot options refused (nothing was loaded or rebooted): %s" % "; ".join(problems))


def load_request(params, kind="default"):
    """A LoadRequest from module parameters."""
    return LoadRequest(
        kernel=params["kernel"], initrd=params["initrd"], cmdline=params["cmdline"],
        append=params["append"], remove=params["remove"], reuse_cmdline=params["reuse_cmdline"],
        kind=kind, method=params["method"], force=params["force"],
    )


__all__ = ("LOAD_OPTIONS", "REBOOT_LIMITS", "REBOOT_OPTIONS", "check_reboot_options", "load_request")
