# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load and unload kexec images: plan, check, then one guarded syscall.

Private to the kernel.kexec collection. ``plan_load`` turns a request into a
concrete plan (which files, which command line, where they came from);
``ensure_loaded`` / ``ensure_unloaded`` compare it with what is loaded, check
everything the kernel would refuse, and only then call the kernel. Check mode
stops right before the syscall, so it runs every check a real run does.

Method ``auto`` follows kexec-tools' policy: kexec_file_load first; the legacy
kexec_load only where the file syscall is missing or refuses the image format
(ENOSYS, EINVAL, ENOEXEC, EOPNOTSUPP), never after a signature refusal and
never where method legacy itself is refused (legacy_refusal: lockdown, which
refuses kexec_load anyway, a confidential guest, a crash load on a kernel
that may keep data in the low 1 MiB).

Method ``legacy`` builds the kexec_load segments itself (legacy/: the
kernel's segment rules in segments.py, the ELF core header in elfcore.py,
what a crash load reads from the host in crash_sources.py, and per
architecture the plan, boot_params and entry stub in legacy/x86_64/). The
segment plan is made before check mode stops, so check and diff mode show it.

The record names the files by sha256 (digests.py, cached per file version).
Method legacy hashes nothing on its own on a cache miss: its plan reads each
file once, the segments hold those bytes, and the digest is theirs. Before any
file is hashed or read whole, the cheap checks run on the descriptor it is read
from: the kernel's header (image.py: not a kernel, truncated, larger than its
header allows) and the initrd's size against the RAM that must hold it
(ramdisk.py), so a disk image named by mistake is refused at once.

The _kexec package: image.py and bzimage.py check the kernel file, methods.py
says which load methods exist where, this file plans and loads, syscalls.py
is the one door to the kernel, record.py remembers what was loaded,
reboot.py boots it. crash_hotplug.py says whether the kernel keeps a crash
image's ELF core header current when CPUs or memory come and go; where it does
not, the record keeps what the header was built from, and a rerun that finds
that changed loads the same files again.
"""

from __future__ import annotations

import contextlib
import errno
import os

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._boot.entry import default_entry
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._io import open_regular
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import image as kernel_image, syscalls
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import crash_hotplug, ramdisk
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.segments import describe as describe_segments
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.legacy.x86_64 import low_memory, plan as x86_64_plan
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.methods import METHODS, confidential_guest_refusal
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.digests import DigestCache
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import (
    RECORD_DIR, current_load, remove_record, write_record,
)

FALLBACK_ERRNOS = (errno.ENOSYS, errno.EINVAL, errno.ENOEXEC, errno.EOPNOTSUPP)
# The segment planner for each architecture the legacy method supports (methods.METHODS["legacy"]).
LEGACY_PLANNERS = {"x86_64": x86_64_plan.plan}
SYSCALL = {"file": "kexec_file_load", "legacy": "kexec_load"}
# Arguments that describe the running boot and must not be carried into the next.
ALWAYS_DROP = ("BOOT_IMAGE",)
CRASH_DROP = ("crashkernel",)  # a capture kernel must not reserve crash memory itself


class LoadRequest:
    """What the user asked for, as plain values (module parameters), checked when made.

    None means "not set"; an empty kernel or initrd is an error (a template that
    rendered empty, not a request for the default), an empty cmdline is an empty
    command line. No NUL byte anywhere. File types are checked when the files are
    opened (_io.open_regular).
    """

    def __init__(self, kernel=None, initrd=None, cmdline=None, append=(), remove=(), reuse_cmdline=True,
                 kind="default", method="auto", force=False):
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.append = list(append or ())
        self.remove = list(remove or ())
        self.reuse_cmdline = reuse_cmdline
        self.kind = kind
        self.method = method
        self.force = force
        self.check()

    def check(self):
        """Refuse, before anything is read or loaded, what no load could mean."""
        for name, unset in (("kernel", "to load the default boot entry's kernel"),
                            ("initrd", "for the default (the boot entry's initrd, or none)")):
            value = getattr(self, name)
            if value == "":
                raise KexecError("%s is an empty string: name a file, or leave %s out %s" % (name, name, unset))
            if value is not None and "\0" in value:
                raise KexecError("%s holds a NUL byte: %r" % (name, value))
        if self.cmdline is not None and "\0" in self.cmdline:
            raise KexecError("cmdline holds a NUL byte: the kernel would cut the command line there")
        for token in self.append:
            cmdline_args.check_argument(token)
        for name in self.remove:
            cmdline_args.check_name(name)

    @property
    def crash(self):
        return self.kind == "crash"


class LoadPlan:
    """One load, planned: which files, their digests, which command line, and where they came from.

    ``kind``: "default" or "crash" (the record's and the result's ``type``).
    ``kernel``, ``initrd``: the paths to load; ``initrd`` None for none.
    ``kernel_sha256``, ``initrd_sha256``: the digests of the files' bytes; None while not known yet (method
    legacy on a cache miss: its segment plan hashes the bytes it reads) and for no initrd.
    ``kernel_release``: the release the kernel's header names.
    ``cmdline``: the command line for the new kernel.
    ``source``: where kernel and initrd came from ("named", the boot configuration read, or the running release).
    ``image``: the kernel's KernelImage (image.examine), which the checks before a load read.

    A load that reads the files again (plan_legacy, _load_file) updates the digests, the release and the image
    to what it read. ``fields()`` is the plan as the record and the module results name it.
    """

    __slots__ = ("kind", "kernel", "kernel_sha256", "kernel_release", "initrd", "initrd_sha256", "cmdline", "source",
                 "image")

    def __init__(self, kind, kernel, kernel_sha256, initrd, initrd_sha256, cmdline, source, image):
        self.kind = kind
        self.kernel = kernel
        self.kernel_sha256 = kernel_sha256
        self.initrd = initrd
        self.initrd_sha256 = initrd_sha256
        self.cmdline = cmdline
        self.source = source
        self.image = image
        self.kernel_release = image.release

    def fields(self):
        """The plan's public fields, keyed as the record and the results name them (RECORD_KEYS)."""
        return {
            "type": self.kind,
            "kernel": self.kernel,
            "kernel_sha256": self.kernel_sha256,
            "kernel_release": self.kernel_release,
            "initrd": self.initrd,
            "initrd_sha256": self.initrd_sha256,
            "cmdline": self.cmdline,
            "source": self.source,
        }

    def digest(self, name):
        """The sha256 of "kernel" or "initrd", None while not known."""
        return self.kernel_sha256 if name == "kernel" else self.initrd_sha256

    def set_digest(self, name, sha256):
        if name == "kernel":
            self.kernel_sha256 = sha256
        else:
            self.initrd_sha256 = sha256

    def set_image(self, image):
        self.image = image
        self.kernel_release = image.release


class Kexec:
    """kexec against one root: ``/`` on a host, a fake tree in tests."""

    def __init__(self, root="/", arch=None, euid=None):
        self.root = root
        self.state = KernelState(root)
        self.arch = arch or syscalls.current_arch()
        self.euid = os.geteuid() if euid is None else euid
        self.digests = DigestCache(root)

    # --- planning -----------------------------------------------------------

    def plan_load(self, request):
        """Resolve files and command line; read-only. Returns a LoadPlan."""
        request.check()  # again: a caller may have changed the request since it was made
        if request.kernel:
            kernel, initrd, source, entry_args = request.kernel, request.initrd, "named", None
        else:
            entry = default_entry(self.root, self.state.release)
            if entry is None:
                raise KexecError("no kernel named and no default boot entry found (looked for GRUB's grub.cfg, "
                                 "BLS entries and /boot/vmlinuz-%s): set kernel" % self.state.release)
            kernel, initrd, source, entry_args = entry.kernel, request.initrd or entry.initrd, entry.source, entry.args
        base = request.cmdline
        if base is None:
            # A boot entry's own arguments are what the bootloader would boot with.
            base = entry_args if entry_args is not None else (self.state.cmdline if request.reuse_cmdline else "")
        drop = list(ALWAYS_DROP) + (list(CRASH_DROP) if request.crash else []) + request.remove
        line = cmdline_args.edit(base, append=request.append, remove=drop)
        # Method legacy reads both files for its segments: a digest the cache lacks comes from those
        # bytes (plan_legacy), so the files are not read twice. Until then it is None (_unknown_digests).
        compute = request.method != "legacy"
        image, digests = self._checked_digests({"kernel": kernel, "initrd": initrd}, request.crash, compute)
        return LoadPlan(request.kind, kernel, digests["kernel"], initrd, digests.get("initrd"), line, source, image)

    def _checked_digests(self, paths, crash, compute=True):
        """(the kernel's KernelImage, {name: sha256}) of ``paths`` ({"kernel": path, "initrd": path}; a None or
        missing one is left out), each file through one descriptor (_checked_files). With ``compute`` false a
        digest the cache lacks is None (the legacy plan's read gives it)."""
        with self._checked_files(paths, crash) as (image, handles):
            return image, self._digests_of(paths, handles, compute)

    @contextlib.contextmanager
    def _checked_files(self, paths, crash):
        """(the kernel's KernelImage, {name: open file}) of ``paths`` as _checked_digests names them, open for the
        ``with`` block.

        Every file's cheap checks run before any file is hashed or loaded, on the
        descriptor that is then hashed or loaded: the kernel's header (image.examine, a
        bounded read: not a kernel, truncated, larger than its header allows) and the
        initrd's size against what the host can hold (ramdisk.check, fstat only).
        """
        image, handles = None, {}
        with contextlib.ExitStack() as stack:
            for name in ("kernel", "initrd"):
                path = paths.get(name)
                if not path:
                    continue
                hint = kernel_image.MISSING_KERNEL_HINT if name == "kernel" else ""
                handles[name] = handle = stack.enter_context(open_regular(path, name, hint))
                if name == "kernel":
                    image = kernel_image.examine(path, handle, self.arch.name)
                else:
                    ramdisk.check(self.root, path, handle, crash)
            yield image, handles

    def _digests_of(self, paths, handles, compute=True):
        return dict((name, self.digests.of_open(paths[name], handle, compute)) for name, handle in handles.items())

    # --- checks the kernel would make, made first with a better message -----

    def check_can_load(self, request, plan):
        crash = request.crash
        if self.euid != 0:
            raise KexecError("loading a kernel needs root (CAP_SYS_BOOT): use become: true")
        if not self.state.kexec_supported:
            raise KexecUnavailable("the running kernel has no kexec support (/sys/kernel/kexec_loaded is "
                                   "missing): it was built without CONFIG_KEXEC_CORE")
        if self.state.kexec_load_disabled:
            raise KexecUnavailable("kexec is disabled on this host (/proc/sys/kernel/kexec_load_disabled is 1, "
                                   "which cannot be undone until reboot): reboot through firmware instead")
        if self.state.load_limit(crash) == 0:
            raise KexecUnavailable("no kexec loads left: /proc/sys/kernel/kexec_load_limit_%s is 0"
                                   % ("panic" if crash else "reboot"))
        if crash and not self._crash_memory():
            raise KexecError("no crash kernel memory is reserved (no 'Crash kernel' in /proc/iomem, "
                             "/sys/kernel/kexec_crash_size is 0): boot with crashkernel= first, for example "
                             "with kernel.kexec.kdump_reserve")
        kernel_image.check_paging(plan.image, self.arch.name, self.state.five_level_paging)
        if request.method == "legacy":
            self.check_legacy_possible(crash)
        else:
            kernel_image.check_for_file_load(plan.image, plan.cmdline, self.arch.name)

    def legacy_refusal(self, crash):
        """Why method legacy cannot load here now, before anything is built; None where it can."""
        if not METHODS["legacy"].supports(self.arch.name):
            return ("method legacy builds kexec_load segments for %s only; on %s use method=file"
                    % (", ".join(METHODS["legacy"].arches), self.arch.name))
        if self.state.locked_down:
            return "kernel lockdown (%s) refuses the legacy kexec_load; use method=file with a signed kernel" % (
                self.state.lockdown)
        # Method legacy builds for x86_64 alone (checked above), so its crash rule is x86_64's.
        return confidential_guest_refusal(self.state) or (low_memory.crash_refusal(self.state) if crash else None)

    def check_legacy_possible(self, crash):
        """Refuse method legacy where it cannot work, before anything is built."""
        reason = self.legacy_refusal(crash)
        if reason:
            raise KexecError(reason)

    def _crash_memory(self):
        return bool(self.state.crash_regions()) or bool(self.state.kexec_crash_size)

    def explain_eperm(self, crash):
        reasons = []
        if self.state.kexec_load_disabled:
            reasons.append("kexec_load_disabled is set")
        if self.state.locked_down:
            reasons.append("lockdown is %s" % self.state.lockdown)
        if self.state.load_limit(crash) == 0:
            reasons.append("kexec_load_limit_%s is exhausted" % ("panic" if crash else "reboot"))
        return "(on this host: %s)" % ", ".join(reasons) if reasons else ""

    # --- state --------------------------------------------------------------

    def current(self, kind):
        return current_load(self.root, self.state, kind)

    # --- actions --------------------------------------------------------------

    def ensure_loaded(self, request, check_mode=False):
        """Load what ``request`` asks for unless it is loaded already; the load record is written last.

        The record names the files by the sha256 of the bytes the syscall got, reused from the digest
        cache while the file's identity (dev, inode, size, mtime, ctime) is unchanged. plan_load
        hashes a file the cache lacks, except for method legacy: its segment plan reads each file
        once and plan_legacy hashes those very bytes. So a legacy load with a digest still unknown
        plans its segments, and runs the checks that come before them, first: only then can it be
        compared with what is loaded. Every other load is compared first and checked after. A load
        that fails raises before write_record: it leaves no record of itself.
        """
        plan = self.plan_load(request)
        before = self.current(request.kind)
        legacy = self._plan_legacy_for_digests(request, plan, before) if _unknown_digests(plan) else None
        if not check_mode:
            self.digests.save()
        same = not request.force and _same_load(before, plan, request.method)
        # The same files, but a crash header that no longer describes the host's CPUs or memory: load again.
        stale = crash_hotplug.stale(self.root, before) if same and request.crash else None
        if same and not stale:
            return _result(False, before, before, plan, loaded=before, method=before.get("method"),
                           reason="already loaded (same kernel, initrd and command line)")
        if legacy is None:  # not planned for the digests, so not checked yet either
            self.check_can_load(request, plan)
            # Legacy segments are planned before check mode stops, so check and diff mode show them.
            if request.method == "legacy":
                legacy = self.plan_legacy(request, plan)
                if not check_mode:
                    self.digests.save()
        if check_mode:
            # Check mode runs every check above; only the syscall is skipped.
            method = "legacy" if legacy else "file"
            after = _record(plan, method, legacy=legacy, crash=self._crash_fields(request, legacy, loaded=False))
            return _result(True, before, after, plan, loaded=before, method=method,
                           reason="check mode: would load with %s; nothing loaded" % SYSCALL[method], legacy=legacy,
                           reload_reason=stale)
        # What kexec_file_load builds its crash header from, read before it does: a change in between reloads.
        inputs = crash_hotplug.current_inputs(self.root) if request.crash else None
        method, reason, legacy = self._load(request, plan, legacy)
        if not self.state.loaded(request.crash):
            raise KexecError("%s returned success but /sys/kernel/kexec_%sloaded is not 1"
                             % (SYSCALL[method], "crash_" if request.crash else ""))
        after = _record(plan, method, boot_id=self.state.boot_id, legacy=legacy,
                        crash=self._crash_fields(request, legacy, inputs))
        try:
            write_record(self.root, request.kind, after)
        except (OSError, KexecError) as exc:
            self._unload_unrecorded(request.crash, exc)
        return _result(True, before, after, plan, loaded=after, method=method, reason=reason, legacy=legacy,
                       reload_reason=stale)

    def _crash_fields(self, request, legacy, inputs=None, loaded=True):
        """A crash load's record fields (crash_hotplug.record_fields): whether the kernel keeps its header
        current, else what the header was built from (the legacy plan's own reads, or ``inputs``)."""
        if not request.crash:
            return None
        if legacy is not None:
            return crash_hotplug.record_fields(self.root, legacy.header_from, legacy.update_elfcorehdr, loaded)
        return crash_hotplug.record_fields(self.root, inputs or crash_hotplug.current_inputs(self.root), True, loaded)

    def plan_legacy(self, request, plan):
        """The kexec_load segments for ``plan``, checked as the kernel will check them.

        The planner reads the kernel and the initrd once each, and the segments
        hold those bytes; ``plan``'s digests become theirs: the cached digest
        while the identity of the descriptor they came from holds, else their
        own sha256 (DigestCache.of_read). So the record names what kexec_load
        got, even if a file was replaced since plan_load looked at it.
        """
        legacy = LEGACY_PLANNERS[self.arch.name](self.root, plan.kernel, plan.initrd, plan.cmdline,
                                                 request.crash)
        for name, read in legacy.files.items():
            plan.set_digest(name, self.digests.of_read(read))
        return legacy

    def _plan_legacy_for_digests(self, request, plan, before):
        """Method legacy, a digest not in the cache: plan the segments first, their bytes give it.

        The checks a load makes run first, as on any load. Where they or the
        plan refuse, but the image already loaded may be this one, the files
        are hashed on their own to tell (the only second read left, on a path
        that loads nothing); if it is not the same, the refusal stands.
        """
        try:
            self.check_can_load(request, plan)
            return self.plan_legacy(request, plan)
        except KexecError:
            unknown = _unknown_digests(plan)
            if request.force or not _same_load(before, plan, request.method, unknown=unknown):
                raise
            found = self._checked_digests(dict((name, getattr(plan, name)) for name in unknown), request.crash)[1]
            for name in unknown:
                plan.set_digest(name, found[name])
            if not _same_load(before, plan, request.method):
                raise
        return None

    def _load(self, request, plan, legacy):
        """Load by the planned method; ``auto`` falls back to legacy where kexec-tools would."""
        if legacy is not None:
            self._load_legacy(request, legacy)
            return "legacy", "kexec_load with segments built by kernel.kexec (method legacy)", legacy
        try:
            self._load_file(request, plan)
            self.digests.save()  # a file replaced since the plan was hashed again (check mode never gets here)
            return "file", "kexec_file_load accepted the image", None
        except SyscallError as exc:
            if not (request.method == "auto" and exc.errno in FALLBACK_ERRNOS
                    and self.legacy_refusal(request.crash) is None):
                raise
            refusal = exc
        try:
            legacy = self.plan_legacy(request, plan)
            self.digests.save()  # (check mode never gets here)
            self._load_legacy(request, legacy)
        except KexecError as exc:
            # Keep the file syscall's errno (the first refusal) and say why the fallback did not help.
            raise _with_context(refusal, "; the fallback to the legacy kexec_load failed too: %s" % exc.msg,
                                fallback_error=exc.msg) from exc
        return "legacy", ("kexec_file_load refused the image with %s; method auto fell back to kexec_load "
                          "(it does on ENOSYS, EINVAL, ENOEXEC and EOPNOTSUPP)"
                          % refusal.extra["errno_name"]), legacy

    def _load_file(self, request, plan):
        """kexec_file_load of the plan's files, through the descriptors their digests are taken from.

        The plan's descriptors are closed by now, so the files are opened and checked
        again; each digest comes from the cache while the file is the version the plan
        saw, else from hashing it on this descriptor, and the kernel reads the same
        descriptors (from their start, wherever the hash left them). So the record names
        the bytes the kernel got, even where a file was replaced since the plan.
        """
        paths = {"kernel": plan.kernel, "initrd": plan.initrd}
        flags = syscalls.KEXEC_FILE_ON_CRASH if request.crash else 0
        if not plan.initrd:
            flags |= syscalls.KEXEC_FILE_NO_INITRAMFS
        with self._checked_files(paths, request.crash) as (image, handles):
            digests = self._digests_of(paths, handles)
            initrd_fd = handles["initrd"].fileno() if "initrd" in handles else -1
            try:
                syscalls.kexec_file_load(handles["kernel"].fileno(), initrd_fd, plan.cmdline, flags, arch=self.arch)
            except SyscallError as exc:
                raise _with_context(exc, self._context(exc.errno, request.crash)) from exc
        plan.set_image(image)
        plan.set_digest("kernel", digests["kernel"])
        plan.set_digest("initrd", digests.get("initrd"))

    def _load_legacy(self, request, legacy):
        flags = syscalls.KEXEC_ON_CRASH if request.crash else 0
        if legacy.update_elfcorehdr:  # only where crash_elfcorehdr_size shows a kernel that accepts the flag
            flags |= crash_hotplug.KEXEC_UPDATE_ELFCOREHDR
        try:
            syscalls.kexec_load(legacy.entry, legacy.syscall_segments(), flags, arch=self.arch)
        except SyscallError as exc:
            raise _with_context(exc, self._context(exc.errno, request.crash, legacy)) from exc

    def _context(self, err, crash, legacy=None):
        """What this host adds to a load's syscall error ``err``: the text after its message."""
        context = ""
        if err == errno.EPERM:
            context += " %s" % self.explain_eperm(crash)
        if err == errno.EADDRNOTAVAIL and crash:
            context += ("; the reserved crash region is %s bytes: reserve more with crashkernel="
                        % self.state.kexec_crash_size)
        if legacy is not None:
            if err == errno.EACCES:
                context += "; an IMA or Secure Boot policy refuses kexec_load: use method=file with a signed kernel"
            elif err in (errno.EINVAL, errno.EADDRNOTAVAIL):
                context += "; the segments were:\n%s" % legacy.describe()
        return context

    def ensure_unloaded(self, kind, check_mode=False):
        crash = kind == "crash"
        before = self.current(kind)
        if before is None:
            if not check_mode:
                remove_record(self.root, kind)  # a stale record would lie
            return {"changed": False, "loaded": None, "type": kind, "diff": _diff(None, None)}
        if self.euid != 0:
            raise KexecError("unloading a kernel needs root (CAP_SYS_BOOT): use become: true")
        if not check_mode:
            self._unload(crash)
            remove_record(self.root, kind)
        return {"changed": True, "loaded": None, "type": kind, "diff": _diff(before, None)}

    def _unload_unrecorded(self, crash, exc):
        """Unload an image whose record could not be written (a full or read-only /run): a record that still
        described the image before it, or no record at all beside a loaded image, would lie."""
        why = getattr(exc, "msg", None) or exc.strerror or str(exc)
        path = "/" + RECORD_DIR
        try:
            remove_record(self.root, "crash" if crash else "default")
            self._unload(crash)
        except (OSError, KexecError) as unload_exc:
            raise KexecError("the image was loaded but its record in %s could not be written (%s), and unloading "
                             "it failed too (%s): run kernel.kexec.kexec_load with state=absent once %s is writable"
                             % (path, why, getattr(unload_exc, "msg", None) or unload_exc, path))
        raise KexecError("the image was loaded but its record in %s could not be written (%s): unloaded it again, "
                         "so nothing is loaded that no record describes; free %s and run again" % (path, why, path))

    def _unload(self, crash):
        flags = syscalls.KEXEC_FILE_UNLOAD | (syscalls.KEXEC_FILE_ON_CRASH if crash else 0)
        try:
            syscalls.kexec_file_load(-1, -1, None, flags, arch=self.arch)
        except SyscallError as exc:
            if exc.errno == errno.EPERM:
                raise _with_context(exc, " %s" % self.explain_eperm(crash)) from exc
            if exc.errno != errno.ENOSYS:
                raise
            # Kernels without kexec_file_load unload through kexec_load with no segments.
            syscalls.kexec_load(0, [], syscalls.KEXEC_ON_CRASH if crash else 0, arch=self.arch)
        if self.state.loaded(crash):
            raise KexecError("the unload returned success but the kernel still reports an image loaded")


RECORD_KEYS = ("type", "kernel", "kernel_sha256", "kernel_release", "initrd", "initrd_sha256", "cmdline", "source")


def _with_context(exc, context, **extra):
    """The SyscallError ``exc`` with ``context`` after its message and ``extra`` beside it, as a new error for the
    caller to raise from ``exc``: an error's message is whole when it is raised, never edited after."""
    kept = dict((key, value) for key, value in exc.extra.items() if key not in ("errno", "errno_name"))
    kept.update(extra)
    return SyscallError(exc.call, exc.errno, exc.msg + context, **kept)


def _record(plan, method, boot_id=None, legacy=None, crash=None):
    record = plan.fields()
    record["method"] = method
    if legacy is not None:
        record["segments"] = legacy.table()
    record.update(crash or {})
    if boot_id:
        record["boot_id"] = boot_id
    return record


def _unknown_digests(plan):
    """The files of ``plan`` ("kernel", "initrd") whose digest is not known yet (method legacy, not cached)."""
    return [name for name in ("kernel", "initrd") if getattr(plan, name) and plan.digest(name) is None]


def _same_load(current, plan, method, unknown=()):
    """Whether ``current`` (a record) is the load ``plan`` describes.

    ``unknown``: files whose digest is not known yet, taken as equal (could it be the same load?).
    """
    if not current or "kernel_sha256" not in current:
        return False
    keys = [key for key in ("type", "kernel_sha256", "initrd_sha256", "cmdline")
            if key not in ["%s_sha256" % name for name in unknown]]
    fields = plan.fields()
    same = all(current.get(key) == fields[key] for key in keys)
    return same and method in ("auto", current.get("method"))


DESCRIBE_KEYS = ("type", "method") + RECORD_KEYS[1:] + ("crash_hotplug", "by")


def _describe(record):
    """A record as the text diff mode shows."""
    if record is None:
        return "loaded: false\n"
    lines = ["loaded: true"] + ["%s: %s" % (key, record[key]) for key in DESCRIBE_KEYS if key in record]
    if record.get("crash_header"):
        lines.append("crash_header: %s" % crash_hotplug.describe(record["crash_header"]))
    if record.get("segments"):
        lines.append(describe_segments(record["segments"]))
    return "\n".join(lines) + "\n"


def _diff(before, after):
    return {"before": _describe(before), "after": _describe(after),
            "before_header": "kexec image (before)", "after_header": "kexec image (after)"}


def _result(changed, before, after, plan, loaded, method, reason, legacy=None, reload_reason=None):
    result = plan.fields()
    result.update({
        "changed": changed,
        "method": method,
        "method_reason": reason,
        "loaded": loaded,
        "image": plan.image.as_dict(),
        "diff": _diff(before, after),
    })
    if legacy is not None:
        result["segments"] = legacy.table()
    if reload_reason:
        result["reload_reason"] = reload_reason
    return result


__all__ = ("FALLBACK_ERRNOS", "Kexec", "LoadPlan", "LoadRequest")
