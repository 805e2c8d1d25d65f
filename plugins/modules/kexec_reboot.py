#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kexec_reboot
short_description: Reboot into a kernel by kexec, wait for the host and verify the new kernel
version_added: 0.1.0
description:
  - Reboots a Linux host into a kexec-loaded kernel, skipping firmware and bootloader, waits for it to come
    back and verifies that the kernel release and every argument of the loaded command line are what runs.
  - A kexec is reported only when it is proven. The image this task loads gets one more argument,
    C(kexec_reboot.boot=NONCE), new for each run (the kernel keeps a dotted name in C(/proc/cmdline) as a
    module parameter and hands it neither to init nor to its environment). A new boot without it came back
    through firmware or another boot path, so the task fails and RV(method) is V(unknown), even when release and
    arguments match (a failed kexec followed by a firmware boot of the same default entry).
    When the task boots an image loaded before it (nothing to load named, an image loaded), nothing can prove
    the boot came from it, and the task reports RV(verified=false).
  - Loads the kernel first when load options are given, or when nothing is loaded (then the bootloader's
    default entry, see M(kernel.kexec.kexec_load)); otherwise the image already loaded is booted.
  - O(method=auto) loads by V(legacy) (C(kexec_load) with the collection's own entry stub) where that loses
    nothing, on x86_64 hosts booted by BIOS without lockdown and with C(kexec_load) allowed, because the new
    kernel then starts without purgatory's sha256 pass over every segment; elsewhere, and when the host
    refuses C(kexec_load), by C(kexec_file_load). On EFI hosts V(file) stays the choice, as the legacy load
    hands EFI runtime services on only where the running kernel's runtime map allows it.
    RV(method_reason) says which loaded and why.
  - The reboot goes through the host's init system, which stops the services and unmounts the file systems
    first. Where systemd runs, C(systemctl kexec); under OpenRC's own init, C(openrc-shutdown --kexec now);
    under runit with Void's C(/etc/runit/shutdown.d/90-kexec.sh) and kexec-tools' C(kexec), C(runit-init 6);
    under sysvinit with Debian kexec-tools' stop script in runlevel 6 (C(/etc/rc6.d/K..kexec), which runs
    C(kexec -e) on the loaded image after the root file system was remounted read-only), C(telinit 6).
    RV(reboot_by) says which.
  - Where the init system cannot kexec (busybox init, sysvinit or runit without those kexec-tools steps, an init
    system the module does not know), the task fails before anything is loaded, unless O(fallback=full)
    reboots through the init system and firmware instead, or O(allow_unclean_reboot=true) allows sync and the
    C(reboot) syscall, which stop no service and unmount nothing.
  - Where systemd runs, the process that starts the reboot is moved out of the SSH login session into a
    transient scope of its own (C(kexec-reboot-NONCE.scope)) before the module answers, so logind's
    C(KillUserProcesses=yes) cannot end it with the session. It writes its progress to
    C(/run/kernel-kexec-reboot/NONCE.status) (waiting, then the command it ran with its exit status and
    stderr).
  - The host counts as back when it answers with a new C(boot_id), never by time alone. The wait drops the SSH
    control master across the reboot, so it never hangs on a stale connection, and watches the SSH port with
    few new connections, because hosts rate-limit them (ufw's C(limit) rule rejects the 6th from one address
    within 30 seconds; fail2ban; sshd's C(PerSourcePenalties)). Every new connection of the task, banner
    probe or SSH login (the module's and each read's), takes a place among at most 4 in any 31 seconds; after
    a refusal the next one waits 2 seconds, doubled at each further refusal up to 32. The connection that the
    old boot's sshd answered before the reboot is kept open, because sshd's child that serves it dies with
    the host, so its end shows the old boot going. It proves the shutdown only when it came sooner than any
    C(LoginGraceTime) (10 seconds), or when two such connections, which answered 5 seconds apart, ended
    together; a SSH_MSG_IGNORE sent every 2 seconds makes the next boot's kernel reset them, and on Linux
    controllers data left unacknowledged for 10 seconds ends them, where the old boot's network goes before
    its processes. A held connection is replaced after 100 seconds, before sshd's default C(LoginGraceTime).
    A refused connection proves nothing while the host has just answered; if the host never comes back, the
    message names a rate limit as a possible cause. The new boot is read as soon as its sshd answers a fresh
    connection. Probes share their connections. One still connecting is kept 10 seconds (its SYN
    retransmissions), then replaced; one that something in between accepted (QEMU's port forward, a proxy)
    is kept until it answers, four at most, because closing it would not stop that proxy from handing it to
    the new boot's sshd later, and tens of such connections made sshd throttle and delay the real login by
    seconds. Where the controller cannot reach the SSH port directly (a jump host), it polls with bounded
    remote reads instead, within the same limit.
  - While the old boot has not been seen going down, its C(boot_id) is read 5, 10, 20 and 40 seconds into the
    wait and then every 40 seconds, each read when the limit on new connections has a place for it. A new
    C(boot_id) ends the wait even if the watch never saw sshd go. The same read
    gathers every sign of a shutdown under way, because a reboot may start late for good reasons (a long
    O(pre_reboot_delay); logind holding C(systemctl kexec) for delay inhibitors up to its
    C(InhibitDelayMaxSec), as kubelet's graceful node shutdown asks). It reads systemd's state, a queued shutdown
    job, logind's C(PreparingForShutdown), and the status file. Only an old boot that shows none of them, with
    systemd calling it C(running), C(degraded) or C(maintenance), 30 seconds after the reboot was due (the
    module's answer plus O(pre_reboot_delay)) plus logind's C(InhibitDelayMaxUSec), fails the task at once
    (the reboot never began), quoting the status file, instead of waiting for O(reboot_timeout).
  - Every wait is bounded (the module run by O(reboot_timeout); each remote call by O(connect_timeout) plus
    20 seconds; each connection reset by 15 seconds). A call that overruns is abandoned together with its
    connection; later calls use a new connection of the same plugin and options. So is the removal of the
    module's remote tmp dir that ansible-core sends after the task, where one is left; after a module run
    that did not answer, nothing is sent.
  - All options are checked before anything is loaded or rebooted, on the controller and again on the target.
  - With O(fallback=full) a host that cannot kexec (kexec disabled, unsupported, lockdown, a signature policy) is
    rebooted through firmware instead, and the result says so. An image or command line the kernel refuses
    is an error that reboots nothing.
  - This is an action plugin; the module runs on the target only to load and start the reboot.
author:
  - kernel.kexec maintainers (@kernel-kexec)
requirements:
  - Root on the target (C(become=true)), reached over SSH
  - A Linux kernel built with kexec, C(CONFIG_KEXEC_FILE) for O(method=file) and C(CONFIG_KEXEC) for
    O(method=legacy) (either for V(auto)); without it only O(fallback=full) reboots, through firmware
  - Python on the target (no C(kexec-tools))
extends_documentation_fragment:
  - kernel.kexec.attributes
  - kernel.kexec.attributes.flow
  - kernel.kexec.attributes.platform
  - kernel.kexec.attributes.action_group
  - kernel.kexec.load_options
options:
  reboot_timeout:
    description:
      - Seconds to wait for the host to come back with a new boot_id and pass verification, counted from
        before the module runs on the target.
      - 10 to 86400; it must leave at least 10 seconds beyond O(pre_reboot_delay) + O(post_reboot_delay).
    type: int
    default: 600
  connect_timeout:
    description:
      - Seconds for one SSH connection attempt while waiting (each attempt is also bounded as a whole).
      - 1 to 3600, and not more than O(reboot_timeout).
    type: int
    default: 10
  test_command:
    description:
      - A command to run after the host is back; the task fails if it fails. The boot_id read already proves
        that commands run, so none is needed by default.
      - It may run for what is left of O(reboot_timeout) once the host is back. When it fails, the error names it
        and quotes what it printed (stdout, then stderr, on one line); when it runs out of time, the error says so.
      - Not an empty string, no NUL byte.
    type: str
  pre_reboot_delay:
    description:
      - Seconds to wait on the target, counted from the moment the module has answered, before rebooting,
        0 to 3600. With 0 the reboot starts a fifth of a second after the answer.
    type: int
    default: 0
  post_reboot_delay:
    description:
      - Seconds to wait after starting the reboot before probing the host, 0 to 3600.
    type: int
    default: 0
  msg:
    description:
      - Message passed to C(systemctl --message) for the journal (no NUL byte).
    type: str
    default: Reboot initiated by Ansible (kernel.kexec.kexec_reboot)
  fallback:
    description:
      - V(none) fails when kexec is impossible on the host.
      - V(full) reboots through the init system and firmware instead (C(systemctl reboot), C(openrc-shutdown
        --reboot now), C(runit-init 6), C(telinit 6), busybox's C(reboot)); any loaded image is unloaded
        first, and C(SYSTEMCTL_SKIP_AUTO_KEXEC=1) keeps newer systemd from turning the reboot into a kexec.
        Impossible means the host refuses (kexec disabled, unsupported, load limit reached, lockdown), a
        signature policy refuses the kernel (EPERM, EACCES, ENOSYS, EOPNOTSUPP, EKEYREJECTED, ENOKEY, ENODATA,
        ENOPKG, EBADMSG, EMSGSIZE from the load), or the init system cannot kexec (see O(allow_unclean_reboot)).
      - Mistakes in the input (a missing kernel file, say) and an image or command line the kernel refuses
        (EINVAL, ENOEXEC, EBADF, ENOMEM and every other errno) fail either way, with nothing rebooted.
    type: str
    choices: [none, full]
    default: none
  allow_unclean_reboot:
    description:
      - Where the host's init system cannot reboot it (into the loaded image, or through firmware for
        O(fallback=full)), reboot by C(sync) and the C(reboot) syscall at once. No service is stopped and no
        file system unmounted, as after a power cut with the disks synced. The task warns, and RV(reboot_by) says so.
      - V(false) refuses such a host before anything is loaded or rebooted.
      - A clean way through the init system is always taken where there is one.
    type: bool
    default: false
  nonce:
    description:
      - Set by the action plugin for each run, never in a task (the task refuses it). 16 to 64 lower-case hex
        digits, put on the command line of the image this module loads as C(kexec_reboot.boot=NONCE); it also
        names the reboot's status file and scope.
    type: str
attributes:
  action:
    support: full
    details: The controller side waits across the reboot and verifies the new kernel.
  async:
    support: none
    details: The task waits for the host itself.
  check_mode:
    support: full
    details: The module runs every check on the target and reports the method and the kernel that would boot;
      nothing is loaded or rebooted, and the controller does not wait.
  diff_mode:
    support: none
    details: Use M(kernel.kexec.kexec_load) with diff to see the load plan.
  platform:
    details:
      - Targets reached over SSH; the C(local) connection is refused.
      - x86_64; aarch64, riscv64, ppc64le and s390x are unit-tested only.
seealso:
  - module: kernel.kexec.kexec_load
  - module: ansible.builtin.reboot
notes:
  - Each run reboots the host, so the task always reports changed (as M(ansible.builtin.reboot) does).
"""

EXAMPLES = r"""
- name: Reboot into the bootloader's default kernel by kexec
  kernel.kexec.kexec_reboot:
  become: true

- name: Boot a new kernel with an extra argument, verified
  kernel.kexec.kexec_reboot:
    kernel: /boot/vmlinuz-6.1.0-30-amd64
    initrd: /boot/initrd.img-6.1.0-30-amd64
    append:
      - mitigations=auto
    reboot_timeout: 900
  become: true

- name: Patch a fleet, falling back to a firmware reboot where kexec is disabled
  kernel.kexec.kexec_reboot:
    fallback: full
  become: true
  register: patched

- name: Report how each host rebooted
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} rebooted by {{ patched.method }} in {{ patched.elapsed }}s"
"""

RETURN = r"""
rebooted:
  description:
    - Whether the host rebooted (false in check mode and when an option was refused).
    - Null when the module's answer was lost (it did not answer within O(reboot_timeout)); the reboot may
      have started.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds from starting the reboot until the host was back and verified.
  returned: when the reboot was started
  type: float
  sample: 34.2
method:
  description:
    - V(kexec), or V(full) for a firmware reboot through O(fallback=full).
    - V(unknown) when the host came back but not by the kexec that was started (the task fails). The new
      C(/proc/cmdline) lacks this run's nonce, or release or arguments differ from the loaded image.
  returned: unless the target refused before planning
  type: str
  sample: kexec
verified:
  description:
    - True when the new boot is proven to be the kexec, because its C(/proc/cmdline) carries this run's
      C(kexec_reboot.boot=NONCE), which only the image this task loaded had.
    - False when the image was loaded before the task (by M(kernel.kexec.kexec_load) or another tool). Release
      and arguments were checked, but nothing proves the boot did not come through firmware.
  returned: when RV(method) is V(kexec) or V(unknown) after the reboot
  type: bool
  sample: true
verification:
  description: What RV(verified) rests on, in words.
  returned: when RV(verified) is returned on success
  type: str
fallback_reason:
  description: Why kexec was impossible, when O(fallback=full) was used.
  returned: when RV(method=full)
  type: str
kernel:
  description: The kernel release running after the reboot.
  returned: success
  type: str
  sample: 6.1.0-28-amd64
cmdline:
  description: The command line running after the reboot (C(/proc/cmdline)).
  returned: success
  type: str
boot_id:
  description: The new boot's id.
  returned: success
  type: str
previous_boot_id:
  description: The boot id before the reboot.
  returned: always
  type: str
loaded:
  description: The kexec image booted (kernel, release, initrd, command line, load method).
  returned: when RV(method=kexec)
  type: dict
reboot_by:
  description:
    - How the target was told to reboot - the command run through its init system, or C(sync, then the reboot
      syscall at once (unclean ...)) where O(allow_unclean_reboot) allowed that.
  returned: unless the target refused before planning
  type: str
  sample: systemctl kexec --no-block --message=Reboot initiated by Ansible (kernel.kexec.kexec_reboot)
method_reason:
  description: Which load method (C(legacy) or C(file)) loaded the image this task booted, and why.
  returned: when the task loaded an image
  type: str
  sample: "kexec_reboot loads by kexec_load on this BIOS x86_64 host (method auto): the new kernel starts without
    purgatory's digest pass over every segment"
"""

import os
import secrets

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kernel.kexec.plugins.module_utils._argspec import (
    LOAD_OPTIONS, REBOOT_OPTIONS, check_reboot_options, load_request,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import init_systems, reboot
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec


def main():
    argument_spec = dict(LOAD_OPTIONS)
    argument_spec.update(REBOOT_OPTIONS)
    argument_spec.update(nonce=dict(type="str", no_log=False))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        check_reboot_options(params)  # the action plugin checked them too; nothing is touched before this
        reboot.check_nonce(params["nonce"])
    except KexecError as exc:
        exc.fail(module)
    if os.geteuid() != 0 and not module.check_mode:
        module.fail_json(msg="rebooting needs root (CAP_SYS_BOOT): use become: true")
    try:
        kexec = Kexec()
        init = init_systems.detect(kexec.root)
        plan = reboot.prepare(kexec, load_request(params), reboot.load_requested(params), params["fallback"],
                              module.check_mode, nonce=params["nonce"], init=init,
                              allow_unclean=params["allow_unclean_reboot"])
        order = init_systems.reboot_order(init, plan["method"], params["msg"], params["allow_unclean_reboot"])
        if plan["method"] == "full" and not module.check_mode:
            reboot.unload_for_full_reboot(kexec)
    except KexecError as exc:
        exc.fail(module)
    plan["reboot_by"] = str(order)
    warning = plan.pop("warning", None)
    if warning:
        module.warn(warning)
    if not order.clean:
        module.warn("the reboot is unclean (allow_unclean_reboot): %s" % order)
    if not module.check_mode and start(module, kexec, init, order):
        # Ansible's own hand-over (async_wrapper uses it): the controller leaves the tmp dir to the
        # reboot's child and sends no command to a host that is going down.
        plan["_ansible_suppress_tmpdir_delete"] = True
    module.exit_json(**plan)


def start(module, kexec, init, order):
    """Hand the reboot to its detached child; True when the child removes the module's tmp dir."""
    params = module.params
    run_id = params["nonce"] or secrets.token_hex(16)  # the action plugin always sends its nonce
    tmpdir = tmpdir_to_remove(module)
    try:
        reboot.start_reboot(order, reboot.status_path(kexec.root, run_id), params["pre_reboot_delay"],
                            runner=command_runner(module), root=kexec.root, remove_dir=tmpdir,
                            unit=reboot.session_unit(run_id) if init.name == "systemd" else None)
    except KexecError as exc:
        exc.fail(module)
    return tmpdir is not None


def command_runner(module):
    """argv, env -> (rc, stdout, stderr) by module.run_command, with the arguments as they are (no ~ or $VAR
    expansion: a msg is text). A command that cannot run raises rather than fails the module: in the
    reboot's child, the module has answered already and the status file records the error."""
    def run(argv, env=None):
        return module.run_command(argv, environ_update=env, expand_user_and_vars=False, handle_exceptions=False)
    return run


def tmpdir_to_remove(module):
    """The remote tmp dir the controller made for this module, unless the user keeps remote files.

    Only a directory named as Ansible names its own ("-tmp-" in it, as the controller checks before it
    removes one), so nothing else is ever removed."""
    tmpdir = getattr(module, "_tmpdir", None)  # _ansible_tmpdir, set by the controller
    if not tmpdir or getattr(module, "_keep_remote_files", False):
        return None
    return tmpdir if "-tmp-" in os.path.basename(tmpdir.rstrip("/")) else None


if __name__ == "__main__":
    main()
