#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_info
short_description: Report the kexec and crash-kernel state of a Linux host
version_added: 0.1.0
description:
  - Reads C(/sys/kernel/kexec_*), C(/proc/iomem), C(/proc/cmdline), lockdown, the kexec sysctls
    and the bootloader's default entry. Changes nothing.
  - Addresses in C(/proc/iomem) are shown to root only; without root the crash region reads as zeros.
author:
  - kernel.kexec maintainers (@kernel-kexec)
options: {}
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Reports no changes.
  platform:
    support: full
    platforms: posix
    description: Linux only; reads C(/proc) and C(/sys).
seealso:
  - module: kernel.kexec.kexec_load
"""

EXAMPLES = r"""
- name: Read the kexec state
  kernel.kexec.kexec_info:
  become: true
  register: kexec

- name: Fail unless crash memory is reserved
  ansible.builtin.assert:
    that: kexec.crash_reserved > 0
    fail_msg: "no crashkernel= reservation on {{ inventory_hostname }}"
"""

RETURN = r"""
arch:
  description: The machine architecture.
  returned: always
  type: str
  sample: x86_64
kexec_supported:
  description: Whether the kernel has kexec (C(/sys/kernel/kexec_loaded) exists).
  returned: always
  type: bool
loaded:
  description: Whether an image for kexec reboot is loaded (C(/sys/kernel/kexec_loaded)).
  returned: always
  type: bool
crash_loaded:
  description: Whether a crash (panic) kernel is loaded (C(/sys/kernel/kexec_crash_loaded)).
  returned: always
  type: bool
loaded_image:
  description: The record of what kernel.kexec loaded for kexec reboot; null when nothing is loaded.
  returned: always
  type: dict
crash_image:
  description: The record of the crash kernel kernel.kexec loaded; null when none is loaded.
  returned: always
  type: dict
crash_size:
  description: C(/sys/kernel/kexec_crash_size) in bytes; null where the file is missing.
  returned: always
  type: int
crash_regions:
  description: The C(Crash kernel) regions of C(/proc/iomem) (start, end inclusive, size).
  returned: always
  type: list
  elements: dict
crash_reserved:
  description: Bytes reserved for the crash kernel, summed over the regions.
  returned: always
  type: int
lockdown:
  description: The kernel lockdown mode (V(none), V(integrity), V(confidentiality)); null without the lockdown LSM.
  returned: always
  type: str
load_disabled:
  description: Whether C(/proc/sys/kernel/kexec_load_disabled) is set (one-way until reboot).
  returned: always
  type: bool
load_limits:
  description: Loads left per C(kexec_load_limit_reboot) and C(kexec_load_limit_panic) (-1 unlimited, null on older kernels).
  returned: always
  type: dict
methods:
  description: Load methods usable here now (V(file), V(legacy)); empty when kexec cannot load at all.
  returned: always
  type: list
  elements: str
kernel_release:
  description: The running kernel release.
  returned: always
  type: str
cmdline:
  description: The running kernel command line.
  returned: always
  type: str
boot_id:
  description: The running boot's id; it changes on every boot, kexec included.
  returned: always
  type: str
default_entry:
  description: The bootloader's default entry (kernel, initrd, args, source, title); null when none is found.
  returned: always
  type: dict
crashkernel:
  description: The C(crashkernel=) value active (from C(/proc/cmdline)) and configured (in the default entry).
  returned: always
  type: dict
  sample: {active: 256M, configured: 256M}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.kexec.plugins.module_utils._errors import run_module
from ansible_collections.kernel.kexec.plugins.module_utils._info import gather


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    run_module(module, lambda: dict(gather(), changed=False))


if __name__ == "__main__":
    main()
