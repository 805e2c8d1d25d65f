#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kdump_reserve
short_description: Reserve crash-kernel memory (crashkernel=) in the bootloader
version_added: 0.1.0
description:
  - Sets, changes or removes C(crashkernel=) in the bootloader's configuration, so that the next boot
    reserves memory for a kdump capture kernel, and reports whether the running kernel already has it.
  - Edits are atomic (temporary file and rename), touch no other kernel argument, and are validated before
    use; for GRUB the new C(grub.cfg) is generated to a side file, checked with C(grub-script-check) and only
    then renamed into place. Each file is copied aside first (C(FILE.STAMP.kexec-bak)); when generating
    fails, every file is restored from its copy, and a file that cannot be restored is named in the error,
    with its copy. Whether the copies stay afterwards is O(backup).
  - A file keeps what it was - a symlink stays a symlink (its target is edited), owner, group, mode and
    SELinux context are kept. A file with more than one hard link is refused (replacing it would leave
    the other names with the old text, and writing it in place is not atomic); nothing is written then.
  - Idempotent.
  - A changed reservation needs a reboot; a kexec reboot into the default entry is enough
    (M(kernel.kexec.kexec_reboot), or the C(kernel.kexec.crashkernel) role which does it all).
author:
  - kernel.kexec maintainers (@kernel-kexec)
requirements:
  - Root on the target (C(become=true))
  - A bootloader O(bootloader) names, with the tool its edit runs (C(grub-mkconfig) or C(grub2-mkconfig),
    C(grubby), C(zipl); none for systemd-boot)
  - For the reservation to be used, a Linux kernel built with kexec (C(CONFIG_KEXEC) or C(CONFIG_KEXEC_FILE))
    and crash-dump support
  - Python on the target (no C(kexec-tools))
extends_documentation_fragment:
  - kernel.kexec.attributes
  - kernel.kexec.attributes.platform
  - kernel.kexec.attributes.action_group
options:
  size:
    description:
      - V(auto), or a C(crashkernel=) value the kernel accepts, with or without the C(crashkernel=) prefix
        (V(256M), V(256M@16M), V(2G-64G:256M,64G-:512M), V(1G,high), V(256M,low)).
      - The value is validated as the kernel parses it; a malformed value fails with the position of the problem.
      - V(auto) writes the Fedora/RHEL kdump-utils default range list for the architecture (kdump-lib.sh,
        kdump_get_arch_recommend_crashkernel); x86_64 and s390x C(2G-64G:256M,64G-:512M), aarch64
        C(2G-4G:256M,4G-64G:320M,64G-:576M), ppc64le C(2G-4G:384M,4G-16G:512M,16G-64G:1G,64G-128G:2G,128G-:4G).
        They reserve more than Debian's C(384M-:128M), as too small a reservation is the most common kdump failure.
        Hosts below 2G get a C(0-2G:192M) row in front (256M on aarch64, 384M on ppc64le). The result's
        RV(explanation) says what was chosen and what it reserves on this host.
    type: str
    default: auto
  state:
    description:
      - V(present) sets C(crashkernel=) to O(size); V(absent) removes every C(crashkernel=).
    type: str
    choices: [present, absent]
    default: present
  bootloader:
    description:
      - V(grub) edits C(/etc/default/grub) (or the C(/etc/default/grub.d) drop-in that already holds
        C(crashkernel=)) and regenerates C(grub.cfg).
      - V(grubby) runs C(grubby --update-kernel ... --no-etc-grub-update) on the BLS entries and edits
        C(/etc/kernel/cmdline) (Fedora, RHEL). Stock entries whose options are C($kernelopts) are changed
        through C(kernelopts) in C(grubenv), which is then part of the diff. Every file grubby may write
        is backed up and checked afterwards; on s390x C(zipl) runs after it. Any failure restores them all.
      - V(systemd-boot) edits the BLS entries' C(options) and C(/etc/kernel/cmdline).
      - V(zipl) edits C(parameters) in C(/etc/zipl.conf) and runs C(zipl) (s390x).
      - V(auto) picks by what is on the host, in the order grubby, zipl (s390x only), systemd-boot, grub.
    type: str
    choices: [auto, grub, grubby, systemd-boot, zipl]
    default: auto
  kernel:
    description:
      - Limit the change to the boot entries of this kernel where the bootloader keeps arguments per kernel
        (grubby, systemd-boot, zipl). GRUB's defaults apply to every entry.
      - A release (V(6.1.0-18-amd64)), a kernel path (V(/boot/vmlinuz-6.1.0-18-amd64), V(/vmlinuz-6.1.0-18-amd64))
        or V(ALL). Matched whole, never as part of a longer release (V(6.1.0-1) is not V(6.1.0-18-amd64)).
      - Default is every entry; an empty string is an error, not every entry.
    type: str
  shrink_to:
    description:
      - Shrink the running kernel's reservation to this size now, through C(/sys/kernel/kexec_crash_size)
        (bytes or a size like V(128M)); only while no crash kernel is loaded. The kernel can only shrink it.
    type: str
  force:
    description:
      - Write O(size) even when it is refused, that is when on this host's RAM (from C(/proc/iomem)), as the
        kernel computes it, it reserves nothing (a lone C(,low) or C(,cma), a range list none of whose ranges matches,
        a size not below the RAM or that no piece of RAM holds, an C(@offset) outside RAM), or leaves the
        running system less than 512 MiB.
      - Without it such a value fails the task, in check mode too, before the bootloader is touched; the
        failure's C(msg) says why and C(computed) holds what the kernel's computation gives here.
      - With it the value is written and the reason is returned as a warning.
    type: bool
    default: false
    version_added: 0.1.0
  backup:
    description:
      - Keep a backup of each file the edit may change (C(FILE.STAMP.kexec-bak) beside it; C(grub.cfg) included,
        and with grubby every file it may write), as O(ansible.builtin.lineinfile#module:backup) does; the result's
        RV(backup_files) names them.
      - Of the collection's own backups of one file (named C(FILE.STAMP.kexec-bak) or C(FILE.STAMP-N.kexec-bak))
        at most five stay, this edit's and the four newest before it; older ones are deleted. No other file is
        ever deleted.
      - With V(false) the edit still copies each file aside first, and a failed edit is still restored from
        those copies; they are removed once the edit succeeded (or once the files are back), so nothing is left.
    type: bool
    default: false
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    details: Plans the bootloader edit and any O(shrink_to) and reports both; writes nothing and runs no tool
      (C(grub-mkconfig), C(grubby), C(zipl)), so a failure of the tool shows in a real run only.
  diff_mode:
    support: partial
    details: Each configuration file the edit changes, before and after; not what the tool then generates from them
      (C(grub.cfg), zipl's boot record), nor a run-time O(shrink_to).
  platform:
    details: With GRUB, grubby/BLS, systemd-boot or zipl.
seealso:
  - module: kernel.kexec.kexec_info
  - module: kernel.kexec.kexec_reboot
  - name: Kernel documentation on crashkernel=
    description: The syntax of the parameter.
    link: https://docs.kernel.org/admin-guide/kdump/kdump.html
"""

EXAMPLES = r"""
- name: Reserve crash memory sized for this host
  kernel.kexec.kdump_reserve:
  become: true
  register: crash

- name: Apply it by a kexec reboot into the default entry
  kernel.kexec.kexec_reboot:
    force: true
  become: true
  when: crash.reboot_required

- name: Reserve a fixed size on RHEL through grubby, for every kernel
  kernel.kexec.kdump_reserve:
    size: 512M
    bootloader: grubby
  become: true

- name: Remove the reservation, keeping a backup of each file changed
  kernel.kexec.kdump_reserve:
    state: absent
    backup: true
  become: true
"""

RETURN = r"""
crashkernel:
  description: The crashkernel= value configured in the bootloader after the task (null when none).
  returned: always
  type: str
  sample: 2G-64G:256M,64G-:512M
active:
  description: The crashkernel= value the running kernel was booted with (the one the kernel uses).
  returned: always
  type: str
  sample: 256M
reserved:
  description: Bytes the running kernel reserved for the crash kernel (C(/proc/iomem), else C(kexec_crash_size)).
  returned: always
  type: int
  sample: 268435456
expected:
  description: Bytes the configured value reserves on this host's RAM, computed as the kernel does (0 when none).
  returned: always
  type: int
  sample: 268435456
system_ram:
  description: The RAM the kernel compares ranges against, from C(/proc/iomem) (null without root).
  returned: always
  type: int
reboot_required:
  description: Whether the running kernel's crashkernel= differs from the configured one.
  returned: always
  type: bool
bootloader:
  description: The bootloader backend used.
  returned: always
  type: str
  sample: grub
explanation:
  description: For O(size=auto), what was chosen, from which table, and what it reserves here.
  returned: when O(size=auto) and O(state=present)
  type: str
changed_files:
  description: Configuration files changed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
backup_files:
  description:
    - The backup kept of each file the edit changed, by the file's path (O(backup=true)); empty when nothing was
      kept (O(backup=false), nothing changed, check mode).
  returned: always
  type: dict
  sample: {"/etc/default/grub": "/etc/default/grub.20250114T101502.kexec-bak",
           "/boot/grub/grub.cfg": "/boot/grub/grub.cfg.20250114T101502.kexec-bak"}
backups:
  description: The backups RV(backup_files) names (its values), sorted.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.reserve import ensure_reservation
from ansible_collections.kernel.kexec.plugins.module_utils._errors import run_module


def tool_runner(module):
    """module.run_command for the bootloader tools, with a tool that cannot be started (not installed)
    raised rather than failed at once: fail_json there would leave files written before it (grubby's
    entries, before zipl) unrestored; raised, the backend restores every file, then fails."""
    def run(argv):
        return module.run_command(argv, handle_exceptions=False)
    return run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            size=dict(type="str", default="auto"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            bootloader=dict(type="str", default="auto", choices=["auto", "grub", "grubby", "systemd-boot", "zipl"]),
            kernel=dict(type="str"),
            shrink_to=dict(type="str"),
            force=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def reserve():
        result = ensure_reservation(
            size=params["size"], state=params["state"], bootloader_name=params["bootloader"],
            kernel=params["kernel"], shrink_to=params["shrink_to"], check_mode=module.check_mode,
            runner=tool_runner(module), force=params["force"], backup=params["backup"],
        )
        for warning in result.pop("warnings", []):
            module.warn(warning)
        return result
    run_module(module, reserve)


if __name__ == "__main__":
    main()
