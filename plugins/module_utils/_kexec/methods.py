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
  or Secure Boot policy; built for x86_64 only; not used in confidential guests
  (AMD SEV-SNP, Intel TDX), whose next kernel needs what only the kernel's own
  loader hands on.

:func:`assess` is the one judgement of which methods can work on a host now and
why the others cannot; :func:`usable` (the loader's and kexec_reboot's
question) and kexec_info's ``methods`` and ``method_reasons`` all come from it.
"""

from __future__ import annotations


class Method:
    def __init__(self, name, syscall, config, arches, under_lockdown, in_confidential_guest):
        self.name = name
        self.syscall = syscall
        self.config = config              # the kernel option that provides the syscall
        self.arches = arches              # machines the collection builds loads for (None: all)
        self.under_lockdown = under_lockdown
        self.in_confidential_guest = in_confidential_guest

    def supports(self, machine):
        return self.arches is None or machine in self.arches

    def refusal(self, state, machine, config):
        """Why this method cannot load on a host that can kexec at all; None when it can.

        ``config``: the running kernel's options (empty without /boot/config-RELEASE).
        """
        if not self.supports(machine):
            return "kernel.kexec builds %s loads for %s only, not for %s" % (
                self.syscall, ", ".join(self.arches), machine)
        # No config file: assume a modern kernel. In a config file an option that is off is
        # only a comment ("# CONFIG_KEXEC_FILE is not set"), so absent means off.
        if config and config.get(self.config) != "y":
            return "%s is off in /boot/config-%s: the running kernel has no %s" % (
                self.config, state.release, self.syscall)
        if state.locked_down and not self.under_lockdown:
            return "kernel lockdown (%s) refuses %s" % (state.lockdown, self.syscall)
        if not self.in_confidential_guest:
            return confidential_guest_refusal(state)
        return None


METHODS = {
    "file": Method("file", "kexec_file_load", "CONFIG_KEXEC_FILE", None, under_lockdown=True,
                   in_confidential_guest=True),
    "legacy": Method("legacy", "kexec_load", "CONFIG_KEXEC", ("x86_64",), under_lockdown=False,
                     in_confidential_guest=False),
}


def confidential_guest_refusal(state):
    """Why segments built by kernel.kexec cannot start a kernel in this confidential guest; None elsewhere.

    The next kernel of an SEV-SNP or TDX guest must find what the guest's firmware and first
    kernel set up for it (SEV-SNP's CC blob with its CPUID and secrets pages, the table of memory
    not yet accepted); kexec_file_load hands on what the kernel itself knows of it, the legacy
    segments were never made for it.
    """
    guest = state.confidential_guest
    if guest is None:
        return None
    return ("this is an %s guest: its next kernel must find the confidential-computing state the firmware set up "
            "(SEV-SNP's CC blob, the memory not yet accepted), which kexec_file_load hands on and the kexec_load "
            "segments kernel.kexec builds do not; use method=file" % guest)


def host_refusal(state, machine, supported_arches):
    """Why no method can load on this host now; None when the host can kexec at all."""
    if machine not in supported_arches:
        return "kernel.kexec does not know the kexec syscalls of %s (it knows %s)" % (
            machine, ", ".join(sorted(supported_arches)))
    if not state.kexec_supported:
        return "the running kernel has no kexec (no /sys/kernel/kexec_loaded: built without CONFIG_KEXEC_CORE)"
    if state.kexec_load_disabled:
        return "/proc/sys/kernel/kexec_load_disabled is 1: the kernel refuses every kexec load until the next boot"
    return None


def assess(state, machine, supported_arches):
    """Every method's name with None where it can work on this host now, else one sentence why not.

    Judged from the architecture, kexec in the kernel, kexec_load_disabled, the
    kernel's config, lockdown and a confidential guest, in that order (the first reason that applies
    is given). ``supported_arches``: machines whose syscall numbers the
    collection knows.
    """
    reason = host_refusal(state, machine, supported_arches)
    config = None if reason else state.kernel_config()
    return dict((name, reason or method.refusal(state, machine, config)) for name, method in METHODS.items())


def usable_in(assessment):
    """The names an :func:`assess` result says are usable, in table order."""
    return [name for name, reason in assessment.items() if reason is None]


def usable(state, machine, supported_arches):
    """Names of the methods that can work on this host now (see :func:`assess`)."""
    return usable_in(assess(state, machine, supported_arches))


__all__ = ("METHODS", "Method", "assess", "confidential_guest_refusal", "host_refusal", "usable", "usable_in")
