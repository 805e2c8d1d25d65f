# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the running host says about itself, read-only.

Private to the kernel.kexec collection. ``state.KernelState`` reads the kexec
state below one root (/ on a host, a fake tree in unit tests);
``arch.host_machine`` is the one answer to which architecture this is; and
``memmap.firmware_memmap`` is the physical memory map a loader that builds its
own segments needs.
"""
