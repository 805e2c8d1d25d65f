# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by kexec_load and kexec_reboot.

Private to the kernel.kexec collection. The matching documentation is the doc
fragment kernel.kexec.load_options; keep the two in step.
"""

from __future__ import annotations

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
)


def load_request(params, kind="default"):
    """A LoadRequest from module parameters."""
    return LoadRequest(
        kernel=params["kernel"], initrd=params["initrd"], cmdline=params["cmdline"],
        append=params["append"], remove=params["remove"], reuse_cmdline=params["reuse_cmdline"],
        kind=kind, method=params["method"], force=params["force"],
    )


__all__ = ("LOAD_OPTIONS", "REBOOT_OPTIONS", "load_request")
