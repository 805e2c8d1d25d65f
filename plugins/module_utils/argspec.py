# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by kexec_load and kexec_reboot.

Private to the kernel.kexec collection. The matching documentation is the doc
fragment kernel.kexec.load_options; keep the two in step.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.module_utils.loader import LoadRequest

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


def load_request(params, kind="default"):
    """A LoadRequest from module parameters."""
    return LoadRequest(
        kernel=params["kernel"], initrd=params["initrd"], cmdline=params["cmdline"],
        append=params["append"], remove=params["remove"], reuse_cmdline=params["reuse_cmdline"],
        kind=kind, method=params["method"], force=params["force"],
    )


__all__ = ("LOAD_OPTIONS", "load_request")
