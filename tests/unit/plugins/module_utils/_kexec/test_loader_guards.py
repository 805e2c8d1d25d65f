"""Hosts where a load would start but end badly, refused before any syscall with the reason: a crash load by
method legacy on a kernel that may keep data in the low 1 MiB, an image that cannot start under the running
kernel's 5-level paging, method legacy in a confidential guest (AMD SEV-SNP, Intel TDX)."""

import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES

from ...fakes import host as fakes
from .test_loader_legacy import request

X86_64 = ARCHES["x86_64"]


def running(host, release, efi=False):
    host.set_sys("proc/sys/kernel/osrelease", release)
    if efi:
        os.makedirs(host.path("sys/firmware/efi"), exist_ok=True)


# --- the low 1 MiB: crash loads by method legacy --------------------------------------------------------------

@pytest.mark.parametrize("release, efi, why", [
    ("5.4.0-150-generic", False, "Linux before 5.5 does not reserve it"),
    ("4.19.0-26-amd64", True, "Linux before 5.5 does not reserve it"),
    ("5.10.0-28-amd64", True, "booted by EFI, Linux before 5.13 hands the EFI boot-services memory below 1 MiB"),
    ("5.12.19", True, "booted by EFI, Linux before 5.13"),
], ids=["5.4-bios", "4.19-efi", "5.10-efi", "5.12-efi"])
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_legacy_crash_load_on_a_kernel_that_may_use_the_low_memory_is_refused(kexec, legacy_host, fake_syscall,
                                                                                release, efi, why, check_mode):
    running(legacy_host, release, efi)
    with pytest.raises(KexecError) as refused:
        kexec.ensure_loaded(request(legacy_host, method="legacy", kind="crash"), check_mode=check_mode)
    assert refused.value.msg.startswith("the running kernel %s may keep data in the low 1 MiB of RAM, which a capture "
                                        "kernel loaded by method legacy reuses and its dump leaves out (" % release)
    assert why in refused.value.msg and refused.value.msg.endswith("): use method=file for crash loads on this kernel")
    assert fake_syscall.calls == [] and not legacy_host.exists("run/kernel-kexec/crash.json")


@pytest.mark.parametrize("release, efi", [
    ("5.10.0-28-amd64", False),  # BIOS: crashkernel= on the command line reserves the low 1 MiB from 5.5 on
    ("5.13.0", True),
    ("6.1.0-28-amd64", True),
    ("custom-build", False),  # no version to judge: taken for a modern kernel
])
def test_a_legacy_crash_load_where_the_low_memory_is_reserved_loads(kexec, legacy_host, kernel, release, efi):
    running(legacy_host, release)
    if efi:  # an EFI host as the legacy loader needs it: the RSDP from systab
        legacy_host.write("sys/firmware/efi/systab", "ACPI20=0xf5a40\n")
    assert kexec.ensure_loaded(request(legacy_host, method="legacy", kind="crash"))["method"] == "legacy"
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]


def test_a_default_legacy_load_on_an_old_kernel_is_not_a_crash_load_and_loads(kexec, legacy_host, kernel):
    running(legacy_host, "5.4.0-150-generic", efi=False)
    assert kexec.ensure_loaded(request(legacy_host, method="legacy"))["method"] == "legacy"


def test_auto_does_not_fall_back_to_a_legacy_crash_load_that_would_lose_the_low_memory(kexec, legacy_host, kernel):
    running(legacy_host, "5.4.0-150-generic")
    kernel.recorder.errors = [errno.EINVAL]
    with pytest.raises(SyscallError) as refused:
        kexec.ensure_loaded(request(legacy_host, kind="crash"))
    assert refused.value.call == "kexec_file_load" and refused.value.errno == errno.EINVAL
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_file_load]


# --- 5-level paging ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["legacy", "file", "auto"])
@pytest.mark.parametrize("kind", ["default", "crash"])
def test_an_image_without_xlf_5level_is_refused_under_5_level_paging(kexec, legacy_host, fake_syscall, method, kind):
    legacy_host.cpu_flags("la57")
    fakes.write_bzimage(legacy_host.kernel(), xloadflags=0x1f)  # KERNEL_64 .. EFI_KEXEC, no XLF_5LEVEL
    with pytest.raises(KexecError) as refused:
        kexec.ensure_loaded(request(legacy_host, method=method, kind=kind))
    assert refused.value.msg == (
        "%s cannot start on this host: the running kernel uses 5-level paging (la57 in /proc/cpuinfo), which a kexec "
        "keeps on, and the image's xloadflags 0x1f lack XLF_5LEVEL (it cannot switch to 4-level paging itself); load "
        "a newer kernel, or boot the running one with no5lvl" % legacy_host.kernel())
    assert fake_syscall.calls == []


@pytest.mark.parametrize("method", ["legacy", "file"])
def test_an_image_with_xlf_5level_loads_under_5_level_paging(kexec, legacy_host, kernel, method):
    legacy_host.cpu_flags("la57")
    assert kexec.ensure_loaded(request(legacy_host, method=method))["method"] == method


def test_an_image_without_xlf_5level_loads_under_4_level_paging(kexec, legacy_host, kernel):
    legacy_host.cpu_flags("pae")
    fakes.write_bzimage(legacy_host.kernel(), xloadflags=0x03)
    assert kexec.ensure_loaded(request(legacy_host, method="file"))["method"] == "file"


# --- confidential guests ------------------------------------------------------------------------------------------

GUESTS = sorted(fakes.CONFIDENTIAL_GUESTS)


@pytest.mark.parametrize("guest", GUESTS)
@pytest.mark.parametrize("kind", ["default", "crash"])
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_method_legacy_is_refused_in_a_confidential_guest(kexec, legacy_host, fake_syscall, guest, kind, check_mode):
    legacy_host.confidential_guest(guest)
    with pytest.raises(KexecError) as refused:
        kexec.ensure_loaded(request(legacy_host, method="legacy", kind=kind), check_mode=check_mode)
    assert refused.value.msg.startswith("this is an %s guest: its next kernel must find the confidential-computing "
                                        "state the firmware set up" % fakes.CONFIDENTIAL_GUESTS[guest])
    assert refused.value.msg.endswith("; use method=file") and fake_syscall.calls == []


@pytest.mark.parametrize("guest", GUESTS)
def test_auto_loads_by_the_file_syscall_in_a_confidential_guest(kexec, legacy_host, kernel, guest):
    legacy_host.confidential_guest(guest)
    assert kexec.ensure_loaded(request(legacy_host))["method"] == "file"


@pytest.mark.parametrize("guest", GUESTS)
def test_auto_never_falls_back_to_legacy_in_a_confidential_guest(kexec, legacy_host, kernel, guest):
    legacy_host.confidential_guest(guest)
    kernel.recorder.errors = [errno.ENOEXEC]
    with pytest.raises(SyscallError) as refused:
        kexec.ensure_loaded(request(legacy_host))
    assert refused.value.errno == errno.ENOEXEC
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_file_load]
