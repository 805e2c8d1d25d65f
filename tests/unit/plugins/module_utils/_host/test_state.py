import errno
import io
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils import _io
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState, parse_lockdown

from ...fakes import host as fakes


@pytest.mark.parametrize("text, mode", [
    ("[none] integrity confidentiality", "none"),
    ("none [integrity] confidentiality", "integrity"),
    ("none integrity [confidentiality]\n", "confidentiality"),
    ("none integrity confidentiality", None),
    ("", None),
    (None, None),
])
def test_parse_lockdown(text, mode):
    assert parse_lockdown(text) == mode


def test_kernel_state_reads_each_file(tmp_path):
    host = fakes.fake_host(tmp_path, loaded=1, crash_loaded=0, crash_size=0x9000000, load_disabled=1,
                           lockdown="none [integrity] confidentiality")
    host.set_sys("proc/sys/kernel/kexec_load_limit_reboot", -1)
    host.set_sys("proc/sys/kernel/kexec_load_limit_panic", 0)
    state = KernelState(host.root)
    assert state.kexec_supported
    assert state.kexec_loaded is True
    assert state.kexec_crash_loaded is False
    assert (state.loaded(False), state.loaded(True)) == (True, False)
    assert state.kexec_crash_size == 0x9000000
    assert state.kexec_load_disabled is True
    assert (state.load_limit(False), state.load_limit(True)) == (-1, 0)
    assert state.lockdown == "integrity" and state.locked_down
    assert state.cmdline == fakes.CMDLINE
    assert state.release == fakes.RELEASE
    assert state.boot_id == fakes.BOOT_ID
    assert [(r.start, r.end) for r in state.crash_regions()] == [fakes.CRASH_LOW, fakes.CRASH_HIGH]


def test_kernel_state_crash_loaded_is_its_own_file(tmp_path):
    state = KernelState(fakes.fake_host(tmp_path, loaded=0, crash_loaded=1).root)
    assert (state.loaded(False), state.loaded(True)) == (False, True)


def test_kernel_state_missing_files(tmp_path):
    state = KernelState(str(tmp_path))
    assert state.kexec_supported is False
    assert state.kexec_loaded is False and state.kexec_crash_loaded is False
    assert state.kexec_crash_size is None
    assert state.kexec_load_disabled is False
    assert state.load_limit(False) is None and state.load_limit(True) is None
    assert state.lockdown is None and state.locked_down is False
    assert state.cmdline == ""
    assert state.release is None and state.boot_id is None
    assert state.iomem() == [] and state.crash_regions() == []
    assert state.kernel_config() == {}


def test_kernel_state_empty_values_read_as_none(tmp_path):
    host = fakes.FakeHost(tmp_path)
    host.write("sys/kernel/kexec_crash_size", "\n")
    host.write("proc/iomem", "")
    state = KernelState(host.root)
    assert state.kexec_crash_size is None
    assert state.iomem() == []


def test_kernel_state_path_under_a_file_reads_as_missing(tmp_path):
    fakes.FakeHost(tmp_path).write("sys", "a file where a directory should be")
    assert KernelState(str(tmp_path)).kexec_loaded is False


@pytest.mark.parametrize("make, efi", [
    (None, False),
    ("dir", True),
    ("file", False),  # not what the kernel makes: no EFI
])
def test_efi_is_the_fake_roots_sys_firmware_efi_directory(tmp_path, make, efi):
    host = fakes.fake_host(tmp_path)
    if make == "dir":
        os.makedirs(host.path("sys/firmware/efi"))
    elif make == "file":
        host.write("sys/firmware/efi", "")
    assert KernelState(host.root).efi is efi


@pytest.mark.parametrize("lockdown, locked", [
    (fakes.LOCKDOWN_NONE, False),
    ("none [integrity] confidentiality", True),
    ("none integrity [confidentiality]", True),
    (None, False),
])
def test_locked_down(tmp_path, lockdown, locked):
    assert KernelState(fakes.fake_host(tmp_path, lockdown=lockdown).root).locked_down is locked


def test_kernel_config_of_running_and_named_release(tmp_path):
    host = fakes.fake_host(tmp_path, config=(
        "#\n# Automatically generated file; DO NOT EDIT.\n#\n"
        "CONFIG_KEXEC=y\n# CONFIG_KEXEC_SIG is not set\nCONFIG_KEXEC_FILE=y\n"
        'CONFIG_CMDLINE="console=ttyS0 quiet"\nNOT_CONFIG=y\n'))
    host.write("boot/config-%s" % fakes.OLD_RELEASE, "CONFIG_KEXEC_FILE=m\n")
    state = KernelState(host.root)
    assert state.kernel_config() == {
        "CONFIG_KEXEC": "y", "CONFIG_KEXEC_FILE": "y", "CONFIG_CMDLINE": '"console=ttyS0 quiet"'}
    assert state.kernel_config(fakes.OLD_RELEASE) == {"CONFIG_KEXEC_FILE": "m"}
    assert state.kernel_config("9.9.9") == {}


@pytest.mark.parametrize("efi, machine, firmware", [
    (True, "x86_64", "efi"),
    (True, "aarch64", "efi"),
    (False, "x86_64", "bios"),
    (False, "i686", "bios"),
    (False, "aarch64", None),  # U-Boot with a device tree: no firmware kind told
    (False, "riscv64", None),
    (False, "ppc64le", None),
    (False, "s390x", None),
])
def test_firmware_is_efi_where_efi_booted_bios_on_other_x86_and_unknown_elsewhere(tmp_path, efi, machine, firmware):
    host = fakes.fake_host(tmp_path)
    if efi:
        host.boot_by_efi()
    assert KernelState(host.root).firmware(machine) == firmware


@pytest.mark.parametrize("value, secure_boot", [
    (1, True),
    (0, False),
    (2, True),  # not 0 is on, as the kernel's EFI stub reads it
])
def test_secure_boot_is_the_value_byte_after_the_attributes(tmp_path, value, secure_boot):
    host = fakes.fake_host(tmp_path).boot_by_efi(secure_boot=value)
    assert KernelState(host.root).secure_boot is secure_boot


def test_secure_boot_is_none_without_efi(tmp_path):
    assert KernelState(fakes.fake_host(tmp_path).root).secure_boot is None


@pytest.mark.parametrize("efivars", ["missing", "empty", "a-file"])
def test_secure_boot_is_none_without_the_variable(tmp_path, efivars):
    # "empty": efivarfs not mounted (the kernel makes the mount point); also firmware without Secure Boot.
    host = fakes.fake_host(tmp_path).boot_by_efi()
    if efivars != "empty":
        os.rmdir(host.path("sys/firmware/efi/efivars"))
    if efivars == "a-file":
        host.write("sys/firmware/efi/efivars", "")
    assert KernelState(host.root).secure_boot is None


@pytest.mark.parametrize("content", [b"", b"\x06\x00\x00\x00", b"\x01", b"\x06\x00\x00\x00\x01\x00"],
                         ids=["empty", "attributes-only", "value-only", "two-byte-value"])
def test_a_malformed_secure_boot_variable_is_an_error_naming_it(tmp_path, content):
    host = fakes.fake_host(tmp_path).boot_by_efi(secure_boot=content)
    with pytest.raises(KexecError) as raised:
        KernelState(host.root).secure_boot
    assert raised.value.msg == ("EFI variable /%s is malformed: %d bytes, not 4 bytes of attributes and a 1-byte "
                                "value" % (fakes.SECURE_BOOT_VAR, len(content)))


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_secure_boot_variable_that_is_no_regular_file_is_an_error_without_hanging(tmp_path, kind):
    host = fakes.fake_host(tmp_path).boot_by_efi()
    path = host.path(fakes.SECURE_BOOT_VAR)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.mkdir(path)
    with pytest.raises(KexecError, match="is a %s, not a regular file" % ("FIFO" if kind == "fifo" else "directory")):
        KernelState(host.root).secure_boot


def test_a_secure_boot_variable_it_may_not_read_is_an_error_not_missing(tmp_path, monkeypatch):
    host = fakes.fake_host(tmp_path).boot_by_efi(secure_boot=1)
    fakes.deny_reads(monkeypatch, host.path(fakes.SECURE_BOOT_VAR))
    with pytest.raises(KexecError, match="EFI variable .* cannot be read: run as root"):
        KernelState(host.root).secure_boot


def test_a_secure_boot_variable_the_firmware_fails_to_read_is_an_error(tmp_path, monkeypatch):
    host = fakes.fake_host(tmp_path).boot_by_efi(secure_boot=1)

    class FailingRead(io.BytesIO):
        def read(self, *args):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(_io, "open_regular", lambda path, what: FailingRead())
    with pytest.raises(KexecError) as raised:
        KernelState(host.root).secure_boot
    assert raised.value.msg == "EFI variable %s cannot be read: %s" % (host.path(fakes.SECURE_BOOT_VAR),
                                                                       os.strerror(errno.EIO))


@pytest.mark.parametrize("release, version", [
    ("6.1.0-28-amd64", (6, 1)), ("5.10.0-28-amd64", (5, 10)), ("4.18.0-553.el8_10.x86_64", (4, 18)),
    ("5.4.0-150-generic", (5, 4)), ("custom", None), (None, None),
])
def test_release_version_is_major_and_minor(tmp_path, release, version):
    assert KernelState(fakes.fake_host(tmp_path, release=release).root).release_version == version


@pytest.mark.parametrize("flags, five_level", [(("la57",), True), ((), False), (("la57x", "xla57"), False)])
def test_five_level_paging_is_la57_in_cpuinfo(tmp_path, flags, five_level):
    host = fakes.fake_host(tmp_path).cpu_flags(*flags)
    assert KernelState(host.root).five_level_paging is five_level


def test_no_cpuinfo_or_no_flags_line_means_no_flags(tmp_path):
    host = fakes.fake_host(tmp_path)
    assert KernelState(host.root).cpu_flags() == frozenset()
    host.write("proc/cpuinfo", "processor\t: 0\nFeatures\t: fp asimd\n")  # arm64 says Features
    assert KernelState(host.root).cpu_flags() == frozenset() and not KernelState(host.root).five_level_paging


@pytest.mark.parametrize("setup, guest", [
    (lambda host: host.cpu_flags("tdx_guest"), "Intel TDX"),
    (lambda host: host.sev_snp_guest(), "AMD SEV-SNP"),
    (lambda host: host.sev_snp_guest("sys/devices/system/cpu/sev"), "AMD SEV-SNP"),
    (lambda host: host.sev_snp_guest("sys/hypervisor/sev"), "AMD SEV-SNP"),
    (lambda host: host.cpu_flags("sev", "sev_es", "sev_snp"), None),  # the CPU can host SNP guests: a host
    (lambda host: host.cpu_flags("hypervisor"), None),
], ids=["tdx", "sev-guest-device", "cpu-sev-dir", "hypervisor-sev-dir", "snp-host", "plain-guest"])
def test_confidential_guest_from_what_the_guest_kernel_shows(tmp_path, setup, guest):
    host = fakes.fake_host(tmp_path)
    setup(host)
    assert KernelState(host.root).confidential_guest == guest


# --- a state file that is no regular file, or not readable: one error, never a hang or a traceback -----


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_kernel_state_file_that_is_no_regular_file_is_one_error_without_hanging(tmp_path, kind, no_hang):
    host = fakes.fake_host(tmp_path)
    path = host.path("proc/cmdline")
    shown = fakes.no_regular_file(path, kind)
    with pytest.raises(KexecError, match="^%s is %s, not a regular file$" % (path, shown)):
        KernelState(host.root).cmdline


def test_a_kernel_state_file_it_may_not_read_is_unreadable_not_missing(tmp_path, monkeypatch):
    host = fakes.fake_host(tmp_path)
    path = host.path("sys/kernel/kexec_loaded")
    fakes.deny_reads(monkeypatch, path)
    with pytest.raises(Unreadable, match="^%s cannot be read: run as root" % path):
        KernelState(host.root).kexec_loaded
