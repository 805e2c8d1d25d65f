# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the running kernel keeps the low 1 MiB out of use, as crash loads by method legacy need.

Private to the kernel.kexec collection. Host state, read-only.

A capture kernel loaded by method legacy gets the low 1 MiB of RAM to run in
(plan.capture_e820), and the ELF core header leaves that range out of the dump
(crash_sources.dump_ranges), as the kernel's own kexec_file does from Linux 5.5
on. That loses nothing only where the crashed kernel never kept data there:

* Linux 5.13 and later reserve the whole low 1 MiB on every boot (f1d4d47c5851
  "x86/setup: Always reserve the first 1M of RAM", which also stopped
  efi_free_boot_services from freeing EFI boot-services memory below 1 MiB);
* Linux 5.5 to 5.12 reserve it when ``crashkernel=`` is on the command line
  (6f599d84231f, crash_reserve_low_1M), which every host with a crash region was
  booted with; but on an EFI boot efi_free_boot_services later hands the EFI
  boot-services memory below 1 MiB to the page allocator all the same;
* before 5.5 nothing reserves it: kexec-tools and kexec_file had purgatory copy
  the first 640 KiB to a backup region at the crash and point the dump there;
  kernel.kexec's entry stub does not.

Elsewhere the capture kernel would overwrite pages of the crashed kernel and the
dump would miss them without a word, so such crash loads are refused; the file
syscall, whose loader belongs to the running kernel, still loads. The release
string is all that is read: a distribution's stable kernel before 5.13 that took
one of the commits (5.4.69 took 6f599d84231f) is refused as well.
"""

from __future__ import annotations

ALWAYS_RESERVED = (5, 13)
RESERVED_WITH_CRASHKERNEL = (5, 5)


def crash_refusal(state):
    """Why a legacy crash load would lose the low memory of the running kernel (a KernelState); None where it
    would not. A release that does not start with major.minor is taken for a modern kernel."""
    version = state.release_version
    if version is None or version >= ALWAYS_RESERVED:
        return None
    if version < RESERVED_WITH_CRASHKERNEL:
        why = ("Linux before 5.5 does not reserve it, and kexec-tools and kexec_file back up its first 640 KiB at "
               "the crash, which method legacy does not")
    elif state.efi:
        why = ("booted by EFI, Linux before 5.13 hands the EFI boot-services memory below 1 MiB to the page "
               "allocator")
    else:
        return None
    return ("the running kernel %s may keep data in the low 1 MiB of RAM, which a capture kernel loaded by method "
            "legacy reuses and its dump leaves out (%s): use method=file for crash loads on this kernel"
            % (state.release, why))


__all__ = ("crash_refusal",)
