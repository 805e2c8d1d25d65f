"""Kexec.ensure_loaded by method legacy, and method auto's fallback to it, behind the mocked syscall."""

import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import read_record
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES, KEXEC_ON_CRASH

from ...fakes.host import BOOT_ID
from .legacy import legacy_fakes

X86_64 = ARCHES["x86_64"]


def request(host, **fields):
    fields.setdefault("kernel", host.kernel())
    fields.setdefault("initrd", host.initrd())
    fields.setdefault("cmdline", "root=/dev/vda1 ro")
    return LoadRequest(**fields)


def test_legacy_load_makes_one_kexec_load_with_the_planned_segments(kexec, legacy_host, kernel):
    result = kexec.ensure_loaded(request(legacy_host, method="legacy"))
    assert result["changed"] and result["method"] == "legacy"
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]
    load = kernel.loads[0]
    assert load["flags"] == X86_64.kexec_arch  # no KEXEC_ON_CRASH, the architecture in the high bits
    table = result["segments"]
    assert load["entry"] == int(table["entry"], 16)
    assert [(mem, memsz) for _data, mem, memsz in load["segments"]] == [
        (int(seg["mem"], 16), seg["memsz"]) for seg in table["segments"]]
    initrd = next(data for data, mem, _size in load["segments"] if data[:2] == b"\x1f\x8b")
    assert initrd == open(legacy_host.initrd(), "rb").read()
    record = read_record(legacy_host.root, "default", BOOT_ID)
    assert record["method"] == "legacy" and record["segments"] == table
    assert "segment 0:" in result["diff"]["after"] and "entry:" in result["diff"]["after"]


def test_legacy_load_is_idempotent(kexec, legacy_host, kernel):
    kexec.ensure_loaded(request(legacy_host, method="legacy"))
    again = kexec.ensure_loaded(request(legacy_host, method="legacy"))
    assert not again["changed"] and len(kernel.recorder.calls) == 1


def test_legacy_crash_load_goes_into_the_crash_region(kexec, legacy_host, kernel):
    result = kexec.ensure_loaded(request(legacy_host, method="legacy", kind="crash"))
    load = kernel.loads[0]
    assert load["flags"] == X86_64.kexec_arch | KEXEC_ON_CRASH
    low, high = legacy_fakes.CRASH
    assert all(low <= mem and mem + memsz - 1 <= high for _data, mem, memsz in load["segments"])
    assert result["cmdline"] == "root=/dev/vda1 ro"  # what was asked; elfcorehdr= is the plan's own
    assert result["segments"]["cmdline"].startswith("elfcorehdr=0x")


def test_check_mode_shows_the_segments_and_loads_nothing(kexec, legacy_host, fake_syscall):
    result = kexec.ensure_loaded(request(legacy_host, method="legacy"), check_mode=True)
    assert result["changed"] and result["method"] == "legacy" and fake_syscall.calls == []
    assert sorted(seg["name"] for seg in result["segments"]["segments"]) == ["boot_params", "initrd", "kernel", "stub"]
    assert "would load with kexec_load" in result["method_reason"]
    assert not legacy_host.exists("run/kernel-kexec/default.json")


def test_auto_falls_back_to_legacy_on_einval(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.EINVAL, 0]
    result = kexec.ensure_loaded(request(legacy_host))
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_file_load, X86_64.kexec_load]
    assert result["method"] == "legacy" and "refused the image with EINVAL" in result["method_reason"]
    assert read_record(legacy_host.root, "default", BOOT_ID)["method"] == "legacy"


@pytest.mark.parametrize("err", [errno.EKEYREJECTED, errno.EPERM, errno.ENOMEM])
def test_auto_does_not_fall_back_on_other_errors(kexec, legacy_host, kernel, err):
    kernel.recorder.errors = [err]
    with pytest.raises(SyscallError):
        kexec.ensure_loaded(request(legacy_host))
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_file_load]


def test_auto_fallback_refused_by_the_kernel_keeps_the_first_errno(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.ENOSYS, errno.EACCES]
    with pytest.raises(SyscallError) as caught:
        kexec.ensure_loaded(request(legacy_host))
    assert caught.value.errno == errno.ENOSYS and caught.value.call == "kexec_file_load"
    assert "fallback to the legacy kexec_load failed too" in caught.value.msg
    assert "IMA or Secure Boot policy" in caught.value.extra["fallback_error"]
    assert not legacy_host.exists("run/kernel-kexec/default.json")


def test_auto_fallback_refused_raises_the_whole_message_from_the_legacy_error(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.ENOSYS, errno.EACCES]
    with pytest.raises(SyscallError) as caught:
        kexec.ensure_loaded(request(legacy_host))
    cause = caught.value.__cause__
    assert isinstance(cause, SyscallError) and (cause.call, cause.errno) == ("kexec_load", errno.EACCES)
    assert caught.value.msg.endswith("; the fallback to the legacy kexec_load failed too: " + cause.msg)
    assert caught.value.extra["fallback_error"] == cause.msg == str(cause)


def test_legacy_refusal_shows_the_segment_table(kexec, legacy_host, kernel):
    kernel.recorder.errors = [errno.EADDRNOTAVAIL]
    with pytest.raises(SyscallError) as caught:
        kexec.ensure_loaded(request(legacy_host, method="legacy"))
    assert caught.value.call == "kexec_load" and "the segments were:\nentry: 0x" in caught.value.msg


def test_a_bad_plan_is_refused_before_the_syscall_with_the_rule(kexec, legacy_host, fake_syscall):
    legacy_fakes.write(legacy_host.root, "proc/meminfo", "MemTotal: 40000 kB\n")  # 10000 pages of RAM
    with pytest.raises(KexecError) as caught:
        kexec.ensure_loaded(request(legacy_host, method="legacy"))
    assert "segment" in caught.value.msg and "more than half of the 10000 pages of RAM" in caught.value.msg
    assert fake_syscall.calls == []


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("kind", ["default", "crash"])
@pytest.mark.parametrize("method", ["legacy", "auto"])
def test_truncated_bzimage_is_refused_before_the_syscall(kexec, legacy_host, fake_syscall, method, kind, check_mode):
    """Cut by one byte: neither kexec_load nor (for auto) kexec_file_load is tried."""
    legacy_fakes.bzimage(legacy_host.kernel(), pe=True, cut=1)
    with pytest.raises(KexecError) as caught:
        kexec.ensure_loaded(request(legacy_host, method=method, kind=kind), check_mode=check_mode)
    assert caught.value.msg.startswith("kernel %s is truncated: its x86 setup header" % legacy_host.kernel())
    assert "promises 51200 bytes, the file has 51199;" in caught.value.msg
    assert fake_syscall.calls == []
    assert not legacy_host.exists("run/kernel-kexec/%s.json" % kind)


def test_complete_bzimage_with_a_pe_header_loads_by_legacy(kexec, legacy_host, kernel):
    legacy_fakes.bzimage(legacy_host.kernel(), pe=True)
    assert kexec.ensure_loaded(request(legacy_host, method="legacy"))["method"] == "legacy"
    assert [call[0] for call in kernel.recorder.calls] == [X86_64.kexec_load]


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_fifo_as_initrd_is_refused_without_hanging(kexec, legacy_host, fake_syscall, tmp_path, check_mode, no_hang):
    fifo = str(tmp_path / "initrd-fifo")
    os.mkfifo(fifo)
    with pytest.raises(KexecError, match="is a FIFO, not a regular file"):
        kexec.ensure_loaded(request(legacy_host, method="legacy", initrd=fifo), check_mode=check_mode)
    assert fake_syscall.calls == []


def test_check_mode_on_an_efi_host_says_what_is_passed_on(kexec, legacy_host, fake_syscall):
    legacy_fakes.efi_host(legacy_host.root)
    result = kexec.ensure_loaded(request(legacy_host, method="legacy"), check_mode=True)
    assert fake_syscall.calls == []
    notes = result["segments"]["notes"]
    assert any(note.startswith("EFI host: EFI runtime services are passed on: 12 runtime-map regions") for note in notes)
    assert any(note.startswith("EFI host: acpi_rsdp_addr %#x is systab's ACPI20=" % legacy_fakes.EFI_RSDP20)
               for note in notes)
    params = next(seg for seg in result["segments"]["segments"] if seg["name"] == "boot_params")
    assert "the EFI memory map (12 descriptors) and SETUP_EFI setup_data" in params["holds"]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("kind", ["default", "crash"])
@pytest.mark.parametrize("damage", ["runtime-map", "no-rsdp"])
def test_a_malformed_runtime_map_or_no_rsdp_on_efi_is_refused_before_the_syscall(
        kexec, legacy_host, fake_syscall, kind, check_mode, damage):
    """Nothing is loaded, nothing recorded: the plan refuses before the syscall, in check mode too."""
    if damage == "runtime-map":
        legacy_fakes.efi_host(legacy_host.root)
        legacy_fakes.write(legacy_host.root, "sys/firmware/efi/runtime-map/4/phys_addr", "0xnot-hex\n")
        message = "runtime-map/4/phys_addr is '0xnot-hex\\n', not a 64-bit"
    else:
        legacy_fakes.efi_host(legacy_host.root, systab=None)
        message = "EFI host without an ACPI RSDP address"
    with pytest.raises(KexecError) as caught:
        kexec.ensure_loaded(request(legacy_host, method="legacy", kind=kind), check_mode=check_mode)
    assert message in caught.value.msg
    assert fake_syscall.calls == []
    assert not legacy_host.exists("run/kernel-kexec/%s.json" % kind)
