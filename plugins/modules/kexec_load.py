#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_load
short_description: Load or unload a kernel for kexec, without kexec-tools
version_added: 0.1.0
description:
  - Loads a kernel (and initrd and command line) into the running kernel so that a later
    kexec reboot (M(kernel.kexec.kexec_reboot) or C(systemctl kexec)) boots it without firmware
    and bootloader; or, with O(type=crash), loads the capture kernel that runs on a panic.
  - Makes the C(kexec_file_load) syscall from Python through ctypes, or with O(method=legacy) the C(kexec_load)
    syscall with segments it builds itself (compressed kernel, initrd, boot_params, its own entry stub and, for
    crash kernels, the ELF core header); the target needs no kexec-tools.
  - Before the syscall it checks what the kernel would refuse and says so plainly (missing or
    non-kernel file, command line too long for the new kernel, no crash memory reserved, kexec
    disabled, not root).
  - The inputs are checked before anything is read. An empty O(kernel) or O(initrd) is an error, not
    "not set" (leave the option out for the default); an explicit empty O(cmdline) loads an empty command
    line. No value may hold a NUL byte, each O(append) item is one argument, and O(remove) takes argument
    names only (no C(=), value, quotes or spaces). Kernel and initrd must be regular files (a device, FIFO,
    socket or directory is refused without being read). A legacy segment plan is checked against the kernel's own segment rules
    (alignment, overlap, size, crash region), and a plan the kernel would refuse is refused naming the
    segment and the rule. A failed load leaves any previously loaded image in place.
  - Idempotent. A record under C(/run/kernel-kexec/) of the sha256 of kernel and initrd, the
    command line, type and method decides C(changed); it is trusted only while the kernel reports an image loaded.
    The sha256 is of the bytes the kernel got (for O(method=file) hashed on the very descriptors
    C(kexec_file_load) reads), so a file replaced during the run is named as loaded. Digests are cached in
    C(/var/cache/kernel-kexec/digests.json) by file identity (device, inode, size, mtime, ctime), except on FAT,
    exFAT and FUSE block file systems (a kernel on the EFI system partition), where that identity cannot tell a
    same-size rewrite apart and the files are hashed on every run.
  - "A crash kernel's ELF core header lists the CPUs and the System RAM to dump. Where the running kernel has crash
    hotplug (C(CONFIG_CRASH_HOTPLUG), Linux 6.6 on: C(/sys/devices/system/cpu/crash_hotplug) and
    C(/sys/kernel/crash_elfcorehdr_size) exist), the kernel rewrites that header itself when CPUs or memory come or
    go: C(kexec_file_load) needs nothing for it, and O(method=legacy) passes C(KEXEC_UPDATE_ELFCOREHDR) (the flag
    every such kernel accepts) with the header segment grown by C(crash_elfcorehdr_size). Elsewhere the record
    keeps what the header was built from (the CPUs with crash notes, the System RAM ranges), and a run that finds
    them changed loads the same files again (RV(reload_reason)), in check mode too.
    M(kernel.kexec.kexec_info) says which applies (RV(kernel.kexec.kexec_info#module:crash_hotplug))."
author:
  - kernel.kexec maintainers (@kernel-kexec)
requirements:
  - Root on the target (C(become=true))
  - A Linux kernel built with kexec, C(CONFIG_KEXEC_FILE) for O(method=file) and C(CONFIG_KEXEC) for
    O(method=legacy) (either for V(auto)); for O(type=crash) also crash-dump support and memory reserved by
    C(crashkernel=) (M(kernel.kexec.kdump_reserve))
  - Python on the target (no C(kexec-tools))
extends_documentation_fragment:
  - kernel.kexec.attributes
  - kernel.kexec.attributes.platform
  - kernel.kexec.attributes.action_group
  - kernel.kexec.load_options
options:
  type:
    description:
      - V(default) loads the image a kexec reboot boots; V(crash) loads the capture kernel
        booted on a panic, into the memory reserved by C(crashkernel=).
    type: str
    choices: [default, crash]
    default: default
  state:
    description:
      - V(loaded) loads the image described by the other options.
      - V(unloaded) unloads the image of O(type); the load options are then ignored.
    type: str
    choices: [loaded, unloaded]
    default: loaded
attributes:
  check_mode:
    support: full
    details:
      - Runs every check a real run makes and plans the load, the segment table of O(method=legacy) included; only
        the syscall is skipped. A refusal that only the kernel makes (a signature policy, say) shows in a real run.
      - With O(method=auto) it reports C(kexec_file_load); a real run falls back to C(kexec_load) only when that
        syscall refuses.
  diff_mode:
    support: full
    details: What is loaded before and after (kernel, initrd, checksums, command line, and for O(method=legacy) the
      segment table).
  platform:
    details: x86_64; aarch64, riscv64, ppc64le and s390x are unit-tested only.
seealso:
  - module: kernel.kexec.kexec_info
  - module: kernel.kexec.kexec_reboot
  - name: kexec_file_load(2) and kexec_load(2)
    description: The syscalls this module makes.
    link: https://man7.org/linux/man-pages/man2/kexec_file_load.2.html
"""

EXAMPLES = r"""
- name: Load the bootloader's default kernel, entry arguments and initrd
  kernel.kexec.kexec_load:
  become: true

- name: Load a given kernel with the running command line plus one argument
  kernel.kexec.kexec_load:
    kernel: /boot/vmlinuz-6.1.0-28-amd64
    initrd: /boot/initrd.img-6.1.0-28-amd64
    append:
      - systemd.unit=multi-user.target
    remove:
      - quiet
  become: true

- name: Load the capture kernel for kdump
  kernel.kexec.kexec_load:
    type: crash
    kernel: /boot/vmlinuz-6.1.0-28-amd64
    initrd: /boot/initrd.img-6.1.0-28-amd64
    append: [irqpoll, nr_cpus=1, reset_devices]
  become: true

- name: Load the capture kernel with segments built on the target (kexec_load), and show them
  kernel.kexec.kexec_load:
    type: crash
    method: legacy
    append: [irqpoll, nr_cpus=1, reset_devices]
  become: true
  register: capture

- name: Where each segment went
  ansible.builtin.debug:
    var: capture.segments

- name: Unload the kexec kernel
  kernel.kexec.kexec_load:
    state: unloaded
  become: true
"""

RETURN = r"""
loaded:
  description:
    - What is loaded for O(type) after the task; null when nothing is.
    - For O(type=crash) also C(crash_hotplug), V(kernel) where the kernel keeps the image's ELF core header current
      on CPU and memory hotplug (its answer after the load), else V(reload) with C(crash_header), what the header
      was built from (C(cpus) in the kernel's cpulist format, C(ram_ranges), C(ram_bytes) and C(ram_sha256) of
      the System RAM ranges).
  returned: always
  type: dict
  sample:
    type: default
    kernel: /boot/vmlinuz-6.1.0-28-amd64
    kernel_sha256: 6f1c...
    kernel_release: 6.1.0-28-amd64
    initrd: /boot/initrd.img-6.1.0-28-amd64
    initrd_sha256: 0a9b...
    cmdline: root=UUID=0b1c... ro console=ttyS0,115200
    method: file
    source: /boot/grub/grub.cfg
    boot_id: 2c4f...
    crash_hotplug: reload
    crash_header: {cpus: 0-1, ram_ranges: 2, ram_bytes: 2146953216, ram_sha256: 3b7e...}
type:
  description: The image type handled.
  returned: always
  type: str
  sample: default
kernel:
  description: Kernel path planned for loading.
  returned: when O(state=loaded)
  type: str
  sample: /boot/vmlinuz-6.1.0-28-amd64
kernel_sha256:
  description: sha256 of the kernel file, of the bytes the kernel read when it was loaded.
  returned: when O(state=loaded)
  type: str
kernel_release:
  description: Release string from the kernel image's header (x86 bzImage); null when the format does not carry one.
  returned: when O(state=loaded)
  type: str
  sample: 6.1.0-28-amd64
initrd:
  description: Initrd path planned for loading, null for none.
  returned: when O(state=loaded)
  type: str
initrd_sha256:
  description: sha256 of the initrd (of the bytes the kernel read when it was loaded), null for none.
  returned: when O(state=loaded)
  type: str
cmdline:
  description: The command line planned for the new kernel.
  returned: when O(state=loaded)
  type: str
source:
  description: Where the kernel came from, V(named), a boot config file, or the running release.
  returned: when O(state=loaded)
  type: str
  sample: /boot/grub/grub.cfg
method:
  description: The method that loaded (or would load) the image, V(file) or V(legacy).
  returned: when O(state=loaded)
  type: str
  sample: file
segments:
  description:
    - The kexec_load plan when the image is (or would be) loaded by O(method=legacy) or by V(auto)'s fallback.
    - C(entry) is where the kernel jumps (the entry stub); each segment has C(name), C(mem) and C(end) (physical
      addresses), C(memsz), C(bufsz) and what it C(holds); C(cmdline) is the command line the new kernel gets
      (for crash kernels with C(elfcorehdr=) first).
  returned: when the legacy method is planned
  type: dict
  sample:
    entry: "0x7ffda000"
    cmdline: root=UUID=0b1c... ro console=ttyS0,115200
    notes: ["no digest check: the segments are not verified after the kernel copies them (like kexec -i)"]
    segments:
      - {name: initrd, mem: "0x79d5a000", end: "0x7bffffff", memsz: 36331520, bufsz: 36328172, holds: /boot/initrd.img-6.1.0-28-amd64}
      - {name: kernel, mem: "0x7c000000", end: "0x7ff96fff", memsz: 66678784, bufsz: 8202176, holds: "compressed kernel"}
method_reason:
  description: Why that method was used, or why nothing was done.
  returned: when O(state=loaded)
  type: str
reload_reason:
  description:
    - Why a crash image of the same files and command line is loaded again (or would be, in check mode). Its ELF
      core header describes other CPUs or other System RAM than the host has now, on a kernel that does not
      update it (no crash hotplug), or the record does not say what it describes (loaded by an older
      kernel.kexec).
  returned: when such a crash image is loaded again
  type: str
  sample: >-
    the CPUs or the memory changed since the crash image was loaded and the kernel does not keep its ELF core
    header current (no crash hotplug): it describes CPUs 0-1 and 2047 MiB of System RAM in 2 ranges, the host has CPUs 0-2
    and 2047 MiB of System RAM in 2 ranges; loading it again
image:
  description: What the kernel image's header says (format, release, boot protocol, maximum command line).
  returned: when O(state=loaded)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.kexec.plugins.module_utils._argspec import LOAD_OPTIONS, load_request
from ansible_collections.kernel.kexec.plugins.module_utils._errors import run_module
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec


def main():
    argument_spec = dict(LOAD_OPTIONS)
    argument_spec.update(
        type=dict(type="str", default="default", choices=["default", "crash"]),
        state=dict(type="str", default="loaded", choices=["loaded", "unloaded"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def load_or_unload():
        kexec = Kexec()
        if module.params["state"] == "unloaded":
            return kexec.ensure_unloaded(module.params["type"], check_mode=module.check_mode)
        return kexec.ensure_loaded(load_request(module.params, module.params["type"]), check_mode=module.check_mode)

    run_module(module, load_or_unload)


if __name__ == "__main__":
    main()
