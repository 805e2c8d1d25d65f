# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""crashkernel=: what the kernel reads and reserves, the auto sizes, and kdump_reserve's logic.

Private to the kernel.kexec collection. Start at ``reserve.ensure_reservation``,
all of kdump_reserve. ``kernel.current_value`` answers which crashkernel= of a
command line the kernel uses (kexec_info), and ``value.parse`` is the strict
parser of a value a user gives.
"""
