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
  - Reads the kdump capture service's configuration (Debian/Ubuntu kdump-tools, Fedora/RHEL kdump-utils,
    SUSE kdump), its unit's state (C(systemctl show)), the dumps in a local target and whether the crash
    reservation is large enough for the capture kernel (RV(kdump.capture)).
  - Addresses in C(/proc/iomem) are shown to root only; without root the crash region reads as zeros. Any other
    file it reads that only root may read (a 0600 kdump configuration) fails the task with advice to use
    C(become), rather than report facts it could not see.
author:
  - kernel.kexec maintainers (@kernel-kexec)
requirements:
  - Python on the target (no C(kexec-tools)); a Linux kernel, with or without kexec (the result says which
    methods it allows and why not the others)
  - Root for the crash region's addresses and for boot configuration only root can read
extends_documentation_fragment:
  - kernel.kexec.attributes
  - kernel.kexec.attributes.platform
  - kernel.kexec.attributes.action_group
options: {}
attributes:
  check_mode:
    support: full
    details: Read-only, so it runs the same in check mode.
  diff_mode:
    support: N/A
    details: Read-only; there is nothing to diff.
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

- name: Show the kdump state a person checks first
  ansible.builtin.debug:
    msg: >-
      {{ kexec.kdump.service }} active={{ kexec.kdump.active }} enabled={{ kexec.kdump.enabled }},
      crash kernel loaded={{ kexec.crash_loaded }}, dumps to {{ kexec.kdump.target }}:{{ kexec.kdump.path }},
      newest {{ kexec.kdump.newest_dump.path | default('none') }}; {{ kexec.kdump.capture.explanation | default('') }}
"""

RETURN = r"""
arch:
  description: The machine architecture.
  returned: always
  type: str
  sample: x86_64
firmware:
  description:
    - What booted the running kernel. V(efi) where C(/sys/firmware/efi) exists (the kernel makes it only when UEFI
      firmware booted it); V(bios) on x86 (RV(arch) V(x86_64), V(i386) to V(i686)) without it; null on other
      architectures without it (arm64 or riscv64 booted by U-Boot with a device tree, ppc64le, s390x).
    - V(bios) is told by the absence of EFI, so a kernel a hypervisor started directly, or one a kexec started
      without passing the EFI tables on, reads as V(bios) too.
  returned: always
  type: str
  sample: efi
secure_boot:
  description:
    - Whether UEFI Secure Boot is on, from the firmware's C(SecureBoot) variable
      (C(/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c); not 0 is on).
    - Null where RV(firmware) is not V(efi), where the variable is missing (firmware without Secure Boot, efivarfs
      not mounted), and where it cannot be read or is malformed (not 4 bytes of attributes and a 1-byte value);
      the last two with a warning.
    - The kernel's own restrictions are RV(lockdown); RV(method_reasons) says what they mean for loading.
  returned: always
  type: bool
  sample: true
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
crash_hotplug:
  description:
    - What keeps a crash image right when CPUs or memory are added or removed after it was loaded.
    - V(kernel) where the kernel rewrites the crash image's ELF core header itself (C(CONFIG_CRASH_HOTPLUG), Linux
      6.6 on, where C(/sys/devices/system/cpu/crash_hotplug) or C(/sys/devices/system/memory/crash_hotplug) and
      C(/sys/kernel/crash_elfcorehdr_size) exist). With a crash image loaded, the kernel says so for that image
      (C(crash_hotplug) reads 1); with none, a load by M(kernel.kexec.kexec_load), by either method, gets it.
    - V(reload) where it does not (an older kernel, or a crash image loaded without asking, as kexec-tools without
      C(--hotplug) loads it). M(kernel.kexec.kexec_load) records the CPUs and System RAM the header describes and
      loads it again when they changed, so rerun it after a CPU or memory change.
    - V(unsupported) where the kernel cannot load a crash kernel at all (no C(/sys/kernel/kexec_crash_loaded)).
    - Null where a crash image is loaded and the kernel's answer for it cannot be read.
  returned: always
  type: str
  sample: kernel
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
  description:
    - Load methods usable here now (V(file), V(legacy)); empty when kexec cannot load at all.
    - The keys of RV(method_reasons) whose value is null.
  returned: always
  type: list
  elements: str
  sample: [file]
method_reasons:
  description:
    - Every load method (V(file), V(legacy)) with null when it is usable here now, else one sentence why not.
    - The reasons, the first that applies. The architecture is not one kernel.kexec knows the kexec syscalls of;
      the kernel has no kexec (no C(/sys/kernel/kexec_loaded)); C(/proc/sys/kernel/kexec_load_disabled) is 1;
      kernel.kexec builds the method's loads for other architectures (V(legacy) is x86_64 only); the method's
      option (C(CONFIG_KEXEC_FILE), C(CONFIG_KEXEC)) is off in C(/boot/config-RELEASE) (without that file it is
      taken to be on); kernel lockdown, whose mode is named, refuses the method's syscall (V(legacy)); the host is
      a confidential guest, AMD SEV-SNP (C(/sys/devices/platform/sev-guest) or C(/sys/devices/system/cpu/sev)) or
      Intel TDX (C(tdx_guest) in C(/proc/cpuinfo)), whose next kernel needs what only C(kexec_file_load) hands on
      (V(legacy)).
  returned: always
  type: dict
  sample: {file: null, legacy: kernel lockdown (integrity) refuses kexec_load}
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
  description:
    - The bootloader's default entry (kernel, initrd, args, source, title); null when none is found.
    - When a file that decides it is there but cannot be read (not root; C(grub.cfg) is 0600 on Fedora), every
      key is null and C(unreadable) names that file; a warning says to run as root.
  returned: always
  type: dict
crashkernel:
  description:
    - The C(crashkernel=) value active (from C(/proc/cmdline)) and configured (in the default entry; null when
      the entry has none or is unknown).
  returned: always
  type: dict
  sample: {active: 256M, configured: 256M}
kdump:
  description:
    - The kdump capture service, from its configuration files and its unit. Every value is null when no
      capture service is installed (none of C(/etc/kdump.conf), C(/etc/default/kdump-tools),
      C(/etc/sysconfig/kdump) exists).
  returned: always
  type: dict
  contains:
    service:
      description: The systemd unit that loads the crash kernel at boot (without C(.service)).
      type: str
      sample: kdump-tools
    provider:
      description: V(kdump-tools) (Debian, Ubuntu), V(kdump-utils) (Fedora, RHEL) or V(suse-kdump).
      type: str
    config:
      description: The configuration file read for the target.
      type: str
      sample: /etc/default/kdump-tools
    config_enabled:
      description: kdump-tools only, C(USE_KDUMP) is not 0 (with 0 the service starts and loads nothing); null elsewhere.
      type: bool
    installed:
      description: The unit is known to systemd; null when systemd could not be asked.
      type: bool
    active:
      description: The unit is active (C(ActiveState=active)); null when systemd could not be asked.
      type: bool
    enabled:
      description: The unit starts at boot (C(UnitFileState) V(enabled) or V(enabled-runtime)); null when unknown.
      type: bool
    active_state:
      description: C(ActiveState) as systemd reports it.
      type: str
    unit_file_state:
      description: C(UnitFileState) as systemd reports it.
      type: str
    target:
      description: Where dumps go, V(local) or the configured remote or device target (V(ssh), V(nfs), V(ftp), V(ext4) ...).
      type: str
    location:
      description: The remote or device part of the target (C(user@host), C(server:/export), a device); null for V(local).
      type: str
    path:
      description: The dump directory (on the remote side for remote targets; for kdump-tools with NFS, the mount point).
      type: str
      sample: /var/crash
    dumps:
      description: How many dumps the local target holds; null for remote targets.
      type: int
    newest_dump:
      description: >-
        The newest dump in a local target (C(path), C(size) in bytes, C(mtime) in seconds since the epoch, and
        C(dmesg), the crashed kernel's log saved beside it or null); null when there is none or the target is remote.
      type: dict
      sample: {path: /var/crash/202512011200/dump.202512011200, size: 35651584, mtime: 1764590400,
               dmesg: /var/crash/202512011200/dmesg.202512011200}
    capture:
      description:
        - Whether the crash reservation holds the capture kernel the service loads, by the rule
          C(required = kernel footprint + 4 x capture initrd + 64 MiB). The footprint is C(init_size) of an x86 boot
          header or C(image_size) of an arm64 Image; 4 x the initrd counts the image and its unpacked content;
          64 MiB is what the capture kernel and its user space need to run. A floor, not a proof; a test crash is the proof.
        - C(kernel), C(initrd) (host paths or null), C(kernel_memsz), C(initrd_size), C(margin), C(required),
          C(reserved) (bytes), C(fits) (null when the rule cannot be applied, for example before the initrd is built)
          and C(explanation).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.kexec.plugins.module_utils._errors import run_module
from ansible_collections.kernel.kexec.plugins.module_utils._info import gather
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.facts import add_service_state


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    # systemctl answers for the kdump unit's state; without it (no systemd) that state stays null.
    runner = module.run_command if module.get_bin_path("systemctl") else None

    def info():
        facts = gather()
        for warning in facts.pop("warnings", []):
            module.warn(warning)
        return dict(add_service_state(facts, runner), changed=False)
    run_module(module, info)


if __name__ == "__main__":
    main()
