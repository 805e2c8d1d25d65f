# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load methods, in one table the loader and kexec_info both read.

Private to the kernel.kexec collection.

* ``file``: kexec_file_load(2). The kernel parses the image, checks its
  signature, builds purgatory (which verifies every segment's sha256 before
  the new kernel runs). Allowed under lockdown with a signed kernel.
* ``legacy``: kexec_load(2) with segments this collection builds
  (_kexec/legacy/). Needs CONFIG_KEXEC; refused under lockdown and by an IMA
  or Secure Boot policy; built for x86_64 only.
"""

from __future__ import annotations


class Method:
    def __init__(self, name, config, arches, under_lockdown):
        self.name = name
        self.config = config              # the kernel option that provides the syscall
        self.arches = arches              # machines the collection builds loads for (None: all)
        self.under_lockdown = under_lockdown

    def supports(self, machine):
        return self.arches is None or machine in self.arches


METHODS = {
    "file": Method("file", "CONFIG_KEXEC_FILE", None, under_lockdown=True),
    "legacy": Method("legacy", "CONFIG_KEXEC", ("x86_64",), under_lockdown=False),
}


def usable(state, machine, supported_arches):
    """Names of the methods that can work on this host now, judged from config, lockdown and arch.

    ``supported_arches``: machines whose syscall numbers the collection knows.
    """
    if machine not in supported_arches or not state.kexec_supported or state.kexec_load_disabled:
        return []
    config = state.kernel_config()

    def enabled(option):
        # No config file: assume a modern kernel. In a config file an option that is off is
        # only a comment ("# CONFIG_KEXEC_FILE is not set"), so absent means off.
        return config.get(option) == "y" if config else True

    return [method.name for method in METHODS.values()
            if enabled(method.config) and method.supports(machine) and (method.under_lockdown or not state.locked_down)]


__all__ = ("METHODS", "Method", "usable")
