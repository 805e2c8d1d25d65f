# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading a kernel for kexec, and rebooting into it.

Private to the kernel.kexec collection. Start at ``loader.Kexec``, all of
kexec_load: it plans a load, checks what the kernel would refuse and makes the
one syscall through ``syscalls``, the one door to the kernel.
``reboot.prepare`` and ``reboot.start_reboot`` are kexec_reboot's target side on
top of it. ``methods.METHODS`` is the table of load methods that kexec_info
reads too; ``legacy`` builds the segments of method legacy.
``crash_hotplug.stale`` tells when a crash image loaded earlier no longer
describes the host's CPUs and memory.
"""
