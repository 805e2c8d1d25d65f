# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The x86_64 planner of method legacy.

Private to the kernel.kexec collection. ``plan.plan`` is the one entry point:
it returns a ``plan.LegacyPlan`` (kernel, initrd, boot_params, entry stub and,
for a crash load, the ELF core header) and calls ``boot_params.build``,
``stub.build`` and ``efi.read`` for the zero page, the entry code and
what the firmware hands on.
"""
