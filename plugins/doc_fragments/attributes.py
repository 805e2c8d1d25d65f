# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What each attribute means, said once; each module states its own support (and details) for it.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and predict C(changed) without changing the target.
  diff_mode:
    description: Returns what changed (or would change, in check mode) when run with diff.
"""

    # Every module runs on Linux targets only: /proc, /sys and the kexec syscalls.
    PLATFORM = r"""
attributes:
  platform:
    description: Target operating systems the module can work on.
    support: N/A
    platforms: linux
"""

    # meta/runtime.yml's action group, which lists every module of the collection.
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/kernel.kexec.kexec) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - kernel.kexec.kexec
"""

    # Modules with an action plugin.
    FLOW = r"""
attributes:
  action:
    description: Has an action plugin, so part of the task runs on the controller.
  async:
    description: Can be used with the C(async) keyword.
"""
