# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Method legacy: kexec_load(2) with segments this collection builds.

Private to the kernel.kexec collection. The loader calls an architecture's
planner, ``x86_64.plan.plan``; what no architecture owns stays here and is
called by it: ``segments.MemoryHoles`` and ``segments.check_segments``
(placement in free memory, the kernel's segment rules), ``elfcore.build`` (a
crash load's ELF core header) and ``crash_sources.elf_contents`` (what that
header describes). Another architecture adds one package beside x86_64.
"""
