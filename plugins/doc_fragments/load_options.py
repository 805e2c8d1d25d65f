# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by kexec_load and kexec_reboot (module_utils/_argspec.py LOAD_OPTIONS).
    DOCUMENTATION = r"""
options:
  kernel:
    description:
      - Path on the target of the kernel image to load (for example C(/boot/vmlinuz-6.1.0-28-amd64)).
      - When omitted, the kernel the bootloader boots by default is loaded, with its initrd and its
        arguments (GRUB's C(grub.cfg) default entry, or the default BLS entry). Where no boot entry
        is found, C(/boot/vmlinuz-RELEASE) of the running release is used. The result's C(source) says which.
      - Checked from its first bytes before it is read whole or hashed, in check mode too. Refused at once when it is
        no kernel (a disk image, a sparse or blank file, a file in no kernel format; on x86_64 anything but a
        bzImage), is a truncated bzImage, or is larger than its header allows by the kernel's own rule (a bzImage
        longer than its setup sectors and C(init_size), an arm64 or RISC-V Image longer than its C(image_size)).
      - Where the running kernel uses 5-level paging (C(la57) in C(/proc/cpuinfo)), which a kexec keeps on, an x86
        bzImage whose header lacks C(XLF_5LEVEL) (it cannot switch to 4-level paging itself) is refused by either
        method, as C(kexec_file_load) refuses it.
    type: path
  initrd:
    description:
      - Path of the initrd (initramfs) to load with the kernel.
      - When O(kernel) is omitted, defaults to the boot entry's initrd.
      - When a kernel is named and no initrd is given, the kernel is loaded without one.
      - Refused before it is read when the host cannot hold it - larger than half of C(MemTotal), as the kernel refuses
        a kexec segment larger than half of its RAM, or for a crash load larger than the largest C(Crash kernel) range.
    type: path
  cmdline:
    description:
      - The full kernel command line to start from. O(remove) and O(append) are applied to it.
      - When omitted, the base is the default boot entry's arguments if O(kernel) is omitted,
        else the running kernel's C(/proc/cmdline) if O(reuse_cmdline) is true, else empty.
      - C(BOOT_IMAGE=) is always dropped; for crash kernels C(crashkernel=) too.
    type: str
  append:
    description:
      - Arguments to set. Each replaces every argument of the same name, so the task stays idempotent.
      - To keep several values of a repeatable parameter such as C(console=), list each of them.
    type: list
    elements: str
    default: []
  remove:
    description:
      - Names of arguments to drop (for example V(quiet) or V(crashkernel)).
    type: list
    elements: str
    default: []
  reuse_cmdline:
    description:
      - Start from the running kernel's command line when O(kernel) is named and O(cmdline) is not.
    type: bool
    default: true
  method:
    description:
      - V(file) uses C(kexec_file_load) (Linux 3.17+). The kernel parses the image, checks signatures, and
        boots it through purgatory, which verifies the sha256 of every segment first.
      - V(legacy) uses C(kexec_load) with segments built on the target in Python (x86_64 only), namely the
        compressed kernel, the initrd, boot_params with the command line and the memory map, a small entry
        stub of the collection's own, and for crash kernels the ELF core header. Nothing verifies the
        segments after the kernel copied them at load time (as with C(kexec -i)); this skips purgatory's
        digest check, which is what makes it faster to boot. Refused under lockdown and with Secure Boot
        (the kernel only accepts signed images through V(file)). On EFI hosts the new kernel gets the ACPI
        RSDP address and, where C(/sys/firmware/efi/runtime-map) lets the running kernel hand them on, the
        EFI runtime services, as with V(file); where it cannot, check mode's notes say what the new kernel
        lacks. An EFI host that shows no RSDP address is refused.
        Refused in confidential guests (AMD SEV-SNP, Intel TDX), whose next kernel needs what only C(kexec_file_load)
        hands on. Crash loads are refused where the running kernel may keep data in the low 1 MiB, which the capture
        kernel reuses and its dump leaves out (kexec-tools and older kernels' C(kexec_file_load) back it up at the
        crash, the legacy entry stub does not), that is before Linux 5.5 and on EFI boots before 5.13. The
        release's major.minor decides, so a stable kernel that took the fix is refused too.
        Check mode and diff show the segment table.
      - V(auto) uses C(kexec_file_load) and falls back to V(legacy) only when the file syscall is missing or
        refuses the image format (ENOSYS, EINVAL, ENOEXEC, EOPNOTSUPP), never after a signature refusal, under
        lockdown or where V(legacy) itself is refused (above); the result's C(method_reason) says which method
        loaded and why.
    type: str
    choices: [auto, file, legacy]
    default: auto
  force:
    description:
      - Load again even when the same kernel, initrd and command line are already loaded.
    type: bool
    default: false
notes:
  - What was loaded is recorded under C(/run/kernel-kexec/), which disappears with the running kernel; the
    kernel itself only reports whether an image is loaded, so a load by other tools shows as C(unknown).
"""
