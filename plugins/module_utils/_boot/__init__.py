# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot entries, and the bootloader backends that change kernel arguments.

Private to the kernel.kexec collection. Two entry points: ``entry.default_entry``
reads the kernel, initrd and arguments the bootloader boots by default
(read-only; kexec_load and kexec_info), and ``detect.create`` picks the backend,
by name or by what the host has, whose edits kdump_reserve plans and applies.
Every backend implements ``base.Bootloader``.
"""
