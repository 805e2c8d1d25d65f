"""kexec_reboot's method auto: the legacy loader where the host allows it and is booted by BIOS,
the file syscall otherwise, and the file syscall again when the host refuses kexec_load."""

import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec, LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES

from ...fakes.files import ReadCounter
from . import test_loader_cheap_checks as cheap

X86_64 = ARCHES["x86_64"]


def test_bios_x86_64_host_reboots_by_legacy(kexec, legacy_host):
    method, why = reboot.reboot_method(kexec)
    assert method == "legacy" and "without purgatory's digest pass" in why


@pytest.mark.parametrize("change", ["efi", "lockdown", "load_disabled", "no_kexec_config", "arch", "tdx", "sev-snp"])
def test_hosts_where_legacy_loses_something_keep_auto(kexec, legacy_host, change):
    if change == "efi":
        os.makedirs(legacy_host.path("sys/firmware/efi"))
    elif change in ("tdx", "sev-snp"):
        legacy_host.confidential_guest(change)
    elif change == "lockdown":
        legacy_host.set_sys("sys/kernel/security/lockdown", "none [integrity] confidentiality")
    elif change == "load_disabled":
        legacy_host.set_sys("proc/sys/kernel/kexec_load_disabled", 1)
    elif change == "no_kexec_config":
        legacy_host.write("boot/config-%s" % legacy_host.read("proc/sys/kernel/osrelease").strip(),
                          "# CONFIG_KEXEC is not set\nCONFIG_KEXEC_FILE=y\n")
    else:
        kexec = Kexec(root=legacy_host.root, arch=ARCHES["aarch64"], euid=0)
    assert reboot.reboot_method(kexec) == ("auto", None)


def test_efi_is_the_host_states_answer(kexec, legacy_host, monkeypatch):
    """reboot_method asks KernelState.efi (the check the legacy plan's EFI note uses too)."""
    monkeypatch.setattr(KernelState, "efi", property(lambda self: True))
    assert reboot.reboot_method(kexec) == ("auto", None)


def test_prepare_loads_by_legacy_and_says_why(kexec, legacy_host, kernel):
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert plan["loaded"]["method"] == "legacy"
    assert "BIOS x86_64 host" in plan["method_reason"]
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]


def test_legacy_refused_by_the_host_is_retried_by_the_file_syscall(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.EPERM, 0]  # kexec_load refused (an IMA policy), kexec_file_load accepted
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert plan["loaded"]["method"] == "file"
    assert "kexec_load was refused" in plan["method_reason"] and "EPERM" in plan["method_reason"]
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load, X86_64.kexec_file_load]


def test_legacy_refusing_the_image_is_an_error_not_a_retry(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.EINVAL]
    with pytest.raises(SyscallError) as caught:
        reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert caught.value.errno == errno.EINVAL
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]


def test_the_file_syscall_refusing_too_is_its_error_and_no_third_try(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.EPERM, errno.EACCES]
    with pytest.raises(SyscallError) as caught:
        reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert caught.value.errno == errno.EACCES
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load, X86_64.kexec_file_load]


def test_legacy_the_user_names_is_not_retried_when_refused(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.EPERM]
    with pytest.raises(SyscallError) as caught:
        reboot.prepare(kexec, LoadRequest(method="legacy"), True, "none", False)
    assert caught.value.errno == errno.EPERM
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]


def test_legacy_already_loaded_keeps_the_loaders_reason(kexec, legacy_host, kernel):
    reboot.load_for_reboot(kexec, LoadRequest(), False)
    again = reboot.load_for_reboot(kexec, LoadRequest(), False)
    assert not again["changed"] and again["method_reason"].startswith("already loaded")
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]


@pytest.mark.parametrize("method, syscall", [("file", "kexec_file_load"), ("legacy", "kexec_load")])
def test_a_method_the_user_names_is_used_as_named(kexec, legacy_host, kernel, method, syscall):
    plan = reboot.prepare(kexec, LoadRequest(method=method), True, "none", False)
    assert plan["loaded"]["method"] == method
    assert [call[0] for call in kernel.recorder.calls] == [getattr(X86_64, syscall)]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("fallback", ["none", "full"])
@pytest.mark.parametrize("requested", [True, False], ids=["named", "nothing-loaded"])
@pytest.mark.parametrize("make, message", [
    (cheap.sparse_disk, "is not a kernel image: its first 624 bytes are all zero"),
    (cheap.bzimage_on_8_gib, "more than its x86 setup header allows"),
    ("initrd", "more than this host can load: the kernel refuses a kexec segment larger than half of its RAM"),
], ids=["no-header", "bzimage-header", "initrd"])
def test_prepare_refuses_a_huge_input_before_any_hash(kexec, legacy_host, kernel, monkeypatch, make, message,
                                                      requested, fallback, check_mode):
    """kexec_reboot's on-target planning (legacy first on this BIOS host, then auto): an 8 GiB disk image as the
    kernel or the initrd is refused from its header or size; no hash, no load, never a firmware reboot instead."""
    if make == "initrd":
        cheap.sparse_disk(legacy_host.initrd())
    else:
        make(legacy_host.kernel())
    cheap.no_hashing(monkeypatch)
    reads = ReadCounter(monkeypatch)
    request = LoadRequest(kernel=legacy_host.kernel(), initrd=legacy_host.initrd()) if requested else LoadRequest()
    with pytest.raises(KexecError) as info:
        reboot.prepare(kexec, request, requested, fallback, check_mode)
    assert message in info.value.msg
    assert not isinstance(info.value, (KexecUnavailable, SyscallError))
    assert kernel.recorder.calls == []
    for path in (legacy_host.kernel(), legacy_host.initrd()):
        assert all(count <= cheap.HEADER_READS for count in reads.of(os.stat(path))), path
