import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import RECORD_KEYS, Kexec, LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import (
    RECORD_DIR, read_record, sha256_file, write_record,
)
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import (
    ARCHES, KEXEC_FILE_NO_INITRAMFS, KEXEC_FILE_ON_CRASH, KEXEC_FILE_UNLOAD, KEXEC_ON_CRASH,
)

from ...fakes import host as fakes
from ...fakes.host import BOOT_ID, OLD_RELEASE, RELEASE, ROOT_UUID

X86_64 = ARCHES["x86_64"]
# /proc/cmdline of the fake host without BOOT_IMAGE=, and the arguments of grub.cfg's default entry
RUNNING_ARGS = "root=UUID=%s ro quiet crashkernel=384M-:128M" % ROOT_UUID
ENTRY_ARGS = "root=UUID=%s ro quiet" % ROOT_UUID


def named(host, **fields):
    """A request for the fake host's newest kernel and its initrd."""
    fields.setdefault("kernel", host.kernel())
    fields.setdefault("initrd", host.initrd())
    return LoadRequest(**fields)


def loaded_flag(kind):
    return "sys/kernel/kexec_crash_loaded" if kind == "crash" else "sys/kernel/kexec_loaded"


def record_rel(kind):
    return "%s/%s.json" % (RECORD_DIR, kind)


def preload(host, kind="default"):
    """An older kernel loaded earlier by kernel.kexec: sysfs flag and record. Returns the record's bytes."""
    write_record(host.root, kind, {
        "type": kind, "kernel": host.kernel(OLD_RELEASE), "kernel_sha256": sha256_file(host.kernel(OLD_RELEASE)),
        "kernel_release": OLD_RELEASE, "initrd": None, "initrd_sha256": None, "cmdline": "ro old",
        "source": "named", "method": "file", "boot_id": BOOT_ID})
    host.set_sys(loaded_flag(kind), 1)
    return host.read_bytes(record_rel(kind))


def open_fds():
    return len(os.listdir("/proc/self/fd"))


# --- planning ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, cmdline", [
    ({}, RUNNING_ARGS),  # BOOT_IMAGE= of the running boot is dropped
    ({"reuse_cmdline": False}, ""),
    ({"reuse_cmdline": False, "append": ["console=ttyS0"]}, "console=ttyS0"),
    ({"cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet"}, "root=/dev/vda1 quiet"),
    ({"append": ["crashkernel=512M", "console=ttyS0"], "remove": ["quiet"]},
     "root=UUID=%s ro crashkernel=512M console=ttyS0" % ROOT_UUID),
    # a capture kernel must not reserve crash memory itself
    ({"kind": "crash", "append": ["irqpoll", "nr_cpus=1"]}, ENTRY_ARGS + " irqpoll nr_cpus=1"),
])
def test_plan_named_kernel_cmdline(kexec, host, fields, cmdline):
    plan = kexec.plan_load(named(host, **fields))
    assert plan.cmdline == cmdline
    assert (plan.kernel, plan.initrd, plan.source) == (host.kernel(), host.initrd(), "named")
    assert plan.kernel_release == RELEASE
    assert plan.kernel_sha256 == sha256_file(host.kernel())
    assert plan.initrd_sha256 == sha256_file(host.initrd())


def test_plan_names_its_fields_and_gives_the_record_exactly_the_public_ones(kexec, host):
    plan = kexec.plan_load(named(host))
    assert (plan.kind, plan.kernel, plan.initrd, plan.source) == ("default", host.kernel(), host.initrd(), "named")
    assert plan.image.release == plan.kernel_release == RELEASE
    assert tuple(plan.fields()) == RECORD_KEYS  # the image stays out of the record and the results


def test_plan_named_kernel_without_initrd(kexec, host):
    plan = kexec.plan_load(named(host, initrd=None))
    assert (plan.initrd, plan.initrd_sha256) == (None, None)


@pytest.mark.parametrize("fields, cmdline", [
    ({}, ENTRY_ARGS),  # the entry's own arguments, not /proc/cmdline
    ({"append": ["console=ttyS0"]}, ENTRY_ARGS + " console=ttyS0"),
    ({"cmdline": "root=/dev/vda1"}, "root=/dev/vda1"),
])
def test_plan_from_default_grub_entry(kexec, host, fields, cmdline):
    plan = kexec.plan_load(LoadRequest(**fields))
    assert (plan.kernel, plan.initrd) == (host.kernel(RELEASE), host.initrd(RELEASE))
    assert plan.cmdline == cmdline
    assert plan.source == "/boot/grub/grub.cfg"


def test_plan_from_default_entry_with_other_initrd(kexec, host):
    plan = kexec.plan_load(LoadRequest(initrd=host.initrd(OLD_RELEASE)))
    assert (plan.kernel, plan.initrd) == (host.kernel(RELEASE), host.initrd(OLD_RELEASE))


@pytest.mark.parametrize("reuse, cmdline", [(True, RUNNING_ARGS), (False, "")])
def test_plan_from_running_release_uses_proc_cmdline(tmp_path, reuse, cmdline):
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    plan = Kexec(root=host.root, arch=X86_64, euid=0).plan_load(LoadRequest(reuse_cmdline=reuse))
    assert (plan.kernel, plan.initrd) == (host.kernel(), host.initrd())
    assert plan.cmdline == cmdline
    assert plan.source == "running release %s" % RELEASE


def test_plan_without_any_kernel(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg=None, kernels=(OLD_RELEASE,))
    with pytest.raises(KexecError, match="no kernel named and no default boot entry found .*vmlinuz-%s" % RELEASE):
        Kexec(root=host.root, arch=X86_64, euid=0).plan_load(LoadRequest())


def test_plan_with_a_grub_cfg_it_cannot_read_says_so(kexec, host, monkeypatch):
    # not "no default boot entry", and not the running release's kernel instead of grub.cfg's default
    fakes.deny_reads(monkeypatch, host.path("boot/grub/grub.cfg"))
    with pytest.raises(KexecError, match=r"^/boot/grub/grub.cfg cannot be read: run as root \(become: true\)$"):
        kexec.plan_load(LoadRequest())


# --- loading ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, with_initrd, flags, cmdline", [
    ("default", True, 0, RUNNING_ARGS + " console=ttyS0"),
    ("default", False, KEXEC_FILE_NO_INITRAMFS, RUNNING_ARGS + " console=ttyS0"),
    ("crash", True, KEXEC_FILE_ON_CRASH, ENTRY_ARGS + " console=ttyS0"),
    ("crash", False, KEXEC_FILE_ON_CRASH | KEXEC_FILE_NO_INITRAMFS, ENTRY_ARGS + " console=ttyS0"),
])
def test_load_calls_kexec_file_load(kexec, host, kernel, kind, with_initrd, flags, cmdline):
    initrd = host.initrd() if with_initrd else None
    fds = open_fds()
    result = kexec.ensure_loaded(named(host, initrd=initrd, kind=kind, append=["console=ttyS0"]))

    [(number, args)] = kernel.recorder.calls
    assert number == 320
    assert args[2].value == len(cmdline) + 1
    assert kernel.loads == [{"kernel": host.kernel(), "initrd": initrd, "cmdline": cmdline.encode() + b"\0",
                             "flags": flags, "kernel_sha256": sha256_file(host.kernel()),
                             "initrd_sha256": sha256_file(initrd) if initrd else None}]
    assert open_fds() == fds

    record = read_record(host.root, kind, BOOT_ID)
    assert record == result["loaded"]
    assert (record["type"], record["cmdline"], record["method"]) == (kind, cmdline, "file")
    assert record["kernel_sha256"] == sha256_file(host.kernel())
    assert result["changed"] is True and result["method"] == "file"
    state = KernelState(host.root)
    assert (state.loaded(crash=False), state.loaded(crash=True)) == (kind == "default", kind == "crash")


def test_same_load_again_is_unchanged_and_makes_no_syscall(kexec, host, kernel):
    first = kexec.ensure_loaded(named(host))
    again = kexec.ensure_loaded(named(host))
    assert len(kernel.recorder.calls) == 1
    assert again["changed"] is False
    assert again["loaded"] == first["loaded"]
    assert again["method_reason"].startswith("already loaded")
    assert again["diff"]["before"] == again["diff"]["after"]


def rewrite_kernel(host):
    fakes.write_bzimage(host.kernel(), release=RELEASE + "+rebuilt")


def rewrite_initrd(host):
    host.write("boot/initrd.img-%s" % RELEASE, fakes.GZIP_INITRD + b"rebuilt")


def new_boot(host):
    host.set_sys("proc/sys/kernel/random/boot_id", "5d0e4c2a-0000-4000-8000-000000000001")


@pytest.mark.parametrize("change, fields, reloads", [
    (None, {"method": "file"}, False),
    (None, {"force": True}, True),
    (None, {"append": ["console=ttyS0"]}, True),
    (None, {"kind": "crash"}, True),
    (rewrite_kernel, {}, True),
    (rewrite_initrd, {}, True),
    (new_boot, {}, True),  # the record belongs to another boot: what is loaded is unknown
])
def test_reload_when_something_differs(kexec, host, kernel, change, fields, reloads):
    kexec.ensure_loaded(named(host))
    if change:
        change(host)
    result = kexec.ensure_loaded(named(host, **fields))
    assert len(kernel.recorder.calls) == (2 if reloads else 1)
    assert result["changed"] is reloads
    kind = fields.get("kind", "default")
    assert read_record(host.root, kind, KernelState(host.root).boot_id) == result["loaded"]


def test_check_mode_makes_no_syscall_and_writes_no_record(kexec, host, kernel):
    result = kexec.ensure_loaded(named(host), check_mode=True)
    assert kernel.recorder.calls == []
    assert not host.exists(RECORD_DIR)
    assert not KernelState(host.root).kexec_loaded
    assert result["changed"] is True and result["loaded"] is None and result["method"] == "file"
    assert result["diff"]["before"] == "loaded: false\n"
    assert "cmdline: %s\n" % RUNNING_ARGS in result["diff"]["after"]
    assert "kernel: %s\n" % host.kernel() in result["diff"]["after"]


def test_check_mode_reports_unchanged_when_loaded(kexec, host, kernel):
    kexec.ensure_loaded(named(host))
    assert kexec.ensure_loaded(named(host), check_mode=True)["changed"] is False
    assert len(kernel.recorder.calls) == 1


def set_lockdown(host):
    host.set_sys("sys/kernel/security/lockdown", "none [integrity] confidentiality")


def set_sysctl(name, value):
    return lambda host, kexec: host.set_sys("proc/sys/kernel/" + name, value)


def no_crash_memory(host, kexec):
    host.write("proc/iomem", fakes.IOMEM_NO_CRASH)
    host.set_sys("sys/kernel/kexec_crash_size", 0)


# setup(host, kexec), request fields, message, raised as KexecUnavailable
PRECHECKS = [
    pytest.param(lambda host, kexec: setattr(kexec, "euid", 1000), {}, "needs root", False, id="not-root"),
    pytest.param(lambda host, kexec: host.remove("sys/kernel/kexec_loaded"), {}, "no kexec support", True,
                 id="no-kexec"),
    pytest.param(set_sysctl("kexec_load_disabled", 1), {}, "kexec_load_disabled is 1", True, id="load-disabled"),
    pytest.param(set_sysctl("kexec_load_limit_reboot", 0), {}, "kexec_load_limit_reboot is 0", True,
                 id="limit-reboot"),
    pytest.param(set_sysctl("kexec_load_limit_panic", 0), {"kind": "crash"}, "kexec_load_limit_panic is 0", True,
                 id="limit-panic"),
    pytest.param(no_crash_memory, {"kind": "crash"}, "no crash kernel memory is reserved", False,
                 id="no-crash-memory"),
    pytest.param(lambda host, kexec: fakes.write_bzimage(host.kernel(), protocol=0x020b), {"method": "legacy"},
                 "cannot be loaded by the legacy kexec_load: boot protocol 2.11", False, id="legacy-old-bzimage"),
    pytest.param(lambda host, kexec: setattr(kexec, "arch", ARCHES["aarch64"]), {"method": "legacy"},
                 "for x86_64 only; on aarch64 use method=file", False, id="legacy-not-x86"),
    pytest.param(lambda host, kexec: set_lockdown(host), {"method": "legacy"},
                 r"lockdown \(integrity\) refuses the legacy kexec_load", False, id="lockdown-legacy"),
    pytest.param(None, {"append": ["x=" + "y" * 2100]}, "command line is 2[0-9]{3} bytes", False,
                 id="cmdline-too-long"),
    pytest.param(lambda host, kexec: fakes.write_bzimage(host.kernel(), protocol=0x020b), {},
                 "cannot be loaded by kexec_file_load", False, id="old-bzimage"),
    pytest.param(None, {"kernel": "/nonexistent/vmlinuz"}, "kernel /nonexistent/vmlinuz does not exist", False,
                 id="missing-kernel"),
    pytest.param(None, {"kernel": "INITRD"}, "is not a kernel image", False, id="initrd-as-kernel"),
    pytest.param(None, {"initrd": "/nonexistent/initrd.img"}, "initrd /nonexistent/initrd.img does not exist", False,
                 id="missing-initrd"),
    pytest.param(None, {"initrd": "BOOT"}, "initrd .*/boot is a directory", False, id="initrd-is-directory"),
]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("setup, fields, message, unavailable", PRECHECKS)
def test_refused_before_the_syscall(kexec, host, fake_syscall, setup, fields, message, unavailable, check_mode):
    placeholders = {"INITRD": host.initrd(), "BOOT": host.path("boot")}
    fields = {key: placeholders.get(value, value) if isinstance(value, str) else value
              for key, value in fields.items()}
    kind = fields.get("kind", "default")
    old = preload(host, kind)
    if setup:
        setup(host, kexec)
    with pytest.raises(KexecError, match=message) as info:
        kexec.ensure_loaded(named(host, **fields), check_mode=check_mode)
    # only the host's state makes kexec unavailable (kexec_reboot may then reboot through firmware);
    # mistakes in the request stay plain errors
    assert isinstance(info.value, KexecUnavailable) is unavailable
    assert fake_syscall.calls == []
    assert host.read_bytes(record_rel(kind)) == old


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("kind", ["default", "crash"])
@pytest.mark.parametrize("method", ["auto", "file"])
@pytest.mark.parametrize("named_kernel", [True, False], ids=["named", "default-entry"])
def test_truncated_bzimage_is_refused_before_the_syscall(kexec, host, fake_syscall, method, kind, check_mode,
                                                         named_kernel):
    """kexec_file_load without signature enforcement would take it; the kexec into it would crash the host."""
    fakes.write_bzimage(host.kernel(), release=RELEASE, cut=1)
    old = preload(host, kind)
    load = named(host, method=method, kind=kind) if named_kernel else LoadRequest(method=method, kind=kind)
    with pytest.raises(KexecError) as info:
        kexec.ensure_loaded(load, check_mode=check_mode)
    assert info.value.msg.startswith("kernel %s is truncated: its x86 setup header" % host.kernel())
    assert "promises 4096 bytes, the file has 4095;" in info.value.msg
    assert not isinstance(info.value, KexecUnavailable)  # a bad file, not a host that cannot kexec
    assert fake_syscall.calls == []
    assert host.read_bytes(record_rel(kind)) == old


def test_complete_bzimage_with_a_signature_after_it_loads(kexec, host, kernel):
    host.write("boot/vmlinuz-%s" % RELEASE, fakes.bzimage_bytes(release=RELEASE) + bytes(1472))
    assert kexec.ensure_loaded(named(host))["changed"]
    assert [load["kernel"] for load in kernel.loads] == [host.kernel()]


def test_panic_limit_does_not_block_default_load(kexec, host, kernel):
    host.set_sys("proc/sys/kernel/kexec_load_limit_panic", 0)
    host.set_sys("proc/sys/kernel/kexec_load_limit_reboot", -1)
    assert kexec.ensure_loaded(named(host))["changed"] is True


def test_crash_load_with_region_hidden_but_size_known(kexec, host, kernel):
    host.write("proc/iomem", fakes.IOMEM_NO_CRASH)
    assert kexec.ensure_loaded(named(host, kind="crash"))["changed"] is True


def disable_kexec(host):
    host.set_sys("proc/sys/kernel/kexec_load_disabled", 1)


@pytest.mark.parametrize("err, fields, setup, during, present, absent", [
    # kexec_load_disabled set between the checks and the syscall
    (errno.EPERM, {}, None, disable_kexec, ["EPERM", "(on this host: kexec_load_disabled is set)"], ["fallback"]),
    (errno.EPERM, {"method": "file"}, set_lockdown, None, ["(on this host: lockdown is integrity)"], []),
    (errno.EKEYREJECTED, {}, None, None, ["EKEYREJECTED", "signature was rejected"], ["fallback"]),
    # auto falls back to legacy, which cannot load this header (no init_size): both reasons are given
    (errno.EINVAL, {}, None, None,
     ["EINVAL", "the fallback to the legacy kexec_load failed too", "init_size is 0"], []),
    (errno.EINVAL, {"method": "file"}, None, None, ["EINVAL"], ["fallback"]),
    (errno.ENOSYS, {}, set_lockdown, None, ["ENOSYS"], ["fallback"]),  # lockdown refuses kexec_load anyway
    (errno.EADDRNOTAVAIL, {"kind": "crash"}, None, None,
     ["EADDRNOTAVAIL", "the reserved crash region is %d bytes" % 0x9000000], []),
])
def test_syscall_failure_keeps_old_load(kexec, host, fake_syscall, err, fields, setup, during, present, absent):
    kind = fields.get("kind", "default")
    old = preload(host, kind)
    if setup:
        setup(host)
    if during:
        fake_syscall.on_call = lambda number, args: during(host)
    fake_syscall.errors = [err]
    fds = open_fds()
    with pytest.raises(SyscallError) as info:
        kexec.ensure_loaded(named(host, **fields))
    assert info.value.errno == err and info.value.call == "kexec_file_load"
    for text in present:
        assert text in info.value.msg
    for text in absent:
        assert text not in info.value.msg
    assert len(fake_syscall.calls) == 1
    assert host.read_bytes(record_rel(kind)) == old
    assert KernelState(host.root).loaded(kind == "crash")
    assert open_fds() == fds


def test_success_without_the_kernel_agreeing_writes_no_record(kexec, host, fake_syscall):
    with pytest.raises(KexecError, match="returned success but /sys/kernel/kexec_loaded is not 1"):
        kexec.ensure_loaded(named(host))
    assert not host.exists(record_rel("default"))


# --- unloading ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, flags", [
    ("default", KEXEC_FILE_UNLOAD),
    ("crash", KEXEC_FILE_UNLOAD | KEXEC_FILE_ON_CRASH),
])
def test_unload(kexec, host, kernel, kind, flags):
    other = "crash" if kind == "default" else "default"
    preload(host, kind)
    other_record = preload(host, other)
    result = kexec.ensure_unloaded(kind)

    [(number, args)] = kernel.recorder.calls
    assert number == 320
    assert [arg.value for arg in args] == [-1, -1, 0, None, flags]
    assert (result["changed"], result["loaded"], result["type"]) == (True, None, kind)
    assert "cmdline: ro old\n" in result["diff"]["before"] and result["diff"]["after"] == "loaded: false\n"
    assert not host.exists(record_rel(kind))
    assert host.read_bytes(record_rel(other)) == other_record
    state = KernelState(host.root)
    assert (state.loaded(kind == "crash"), state.loaded(other == "crash")) == (False, True)


@pytest.mark.parametrize("kind, flags", [("default", 0), ("crash", KEXEC_ON_CRASH)])
def test_unload_falls_back_to_kexec_load_without_file_syscall(kexec, host, kernel, kind, flags):
    preload(host, kind)
    kernel.recorder.errors = [errno.ENOSYS]
    assert kexec.ensure_unloaded(kind)["changed"] is True
    assert [call[0] for call in kernel.recorder.calls] == [320, 246]
    entry, nr_segments, segments, call_flags = kernel.recorder.calls[1][1]
    assert (entry.value, nr_segments.value, segments, call_flags.value) == (0, 0, None, flags | 62 << 16)
    assert not host.exists(record_rel(kind))


def test_unload_nothing_loaded_removes_stale_record(kexec, host, fake_syscall):
    preload(host)
    host.set_sys("sys/kernel/kexec_loaded", 0)  # e.g. the image was booted with kexec -e and came back
    result = kexec.ensure_unloaded("default")
    assert (result["changed"], result["loaded"]) == (False, None)
    assert fake_syscall.calls == []
    assert not host.exists(record_rel("default"))


@pytest.mark.parametrize("is_loaded", [True, False])
def test_unload_check_mode_changes_nothing(kexec, host, fake_syscall, is_loaded):
    old = preload(host)
    host.set_sys("sys/kernel/kexec_loaded", int(is_loaded))
    assert kexec.ensure_unloaded("default", check_mode=True)["changed"] is is_loaded
    assert fake_syscall.calls == []
    assert host.read_bytes(record_rel("default")) == old


def test_unload_needs_root(kexec, host, fake_syscall):
    old = preload(host)
    kexec.euid = 1000
    with pytest.raises(KexecError, match="needs root"):
        kexec.ensure_unloaded("default")
    assert fake_syscall.calls == []
    assert host.read_bytes(record_rel("default")) == old


def test_unload_eperm_explains_and_keeps_record(kexec, host, fake_syscall):
    old = preload(host)
    disable_kexec(host)
    fake_syscall.errors = [errno.EPERM]
    with pytest.raises(SyscallError) as info:
        kexec.ensure_unloaded("default")
    assert "EPERM" in info.value.msg and "(on this host: kexec_load_disabled is set)" in info.value.msg
    assert len(fake_syscall.calls) == 1  # no kexec_load fallback after EPERM
    assert host.read_bytes(record_rel("default")) == old


def test_unload_without_the_kernel_agreeing_keeps_record(kexec, host, fake_syscall):
    old = preload(host)
    with pytest.raises(KexecError, match="still reports an image loaded"):
        kexec.ensure_unloaded("default")
    assert host.read_bytes(record_rel("default")) == old
