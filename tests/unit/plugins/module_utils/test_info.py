import json
import os
import shutil
import tempfile
import traceback

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._info import gather, method_reasons, usable_methods
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import write_record

from ..fakes import host as fakes
from ._kdump import kdump_fakes
from ..fakes.host import BOOT_ID, RELEASE, ROOT_UUID


def test_gather(tmp_path):
    grub_cfg = fakes.debian_grub_cfg().replace("ro quiet", "ro quiet crashkernel=1G crashkernel=512M", 1)
    host = fakes.fake_host(tmp_path, loaded=1, cmdline="BOOT_IMAGE=/boot/vmlinuz crashkernel=256M ro crashkernel=384M",
                           lockdown="none [integrity] confidentiality", grub_cfg=grub_cfg)
    host.set_sys("proc/sys/kernel/kexec_load_limit_reboot", -1)
    record = {"type": "default", "kernel": host.kernel(), "kernel_sha256": "ab" * 32, "cmdline": "ro",
              "method": "file", "boot_id": BOOT_ID}
    write_record(host.root, "default", record)

    facts = gather(host.root, machine="x86_64")

    low, high = fakes.CRASH_LOW, fakes.CRASH_HIGH
    assert facts["crash_regions"] == [{"start": low[0], "end": low[1], "size": 128 << 20},
                                      {"start": high[0], "end": high[1], "size": 16 << 20}]
    assert facts["crash_reserved"] == 144 << 20
    assert facts["crash_size"] == 0x9000000
    assert facts["crashkernel"] == {"active": "384M", "configured": "512M"}
    assert (facts["loaded"], facts["crash_loaded"]) == (True, False)
    assert (facts["loaded_image"], facts["crash_image"]) == (record, None)
    assert facts["load_limits"] == {"reboot": -1, "panic": None}
    assert (facts["lockdown"], facts["load_disabled"], facts["kexec_supported"]) == ("integrity", False, True)
    assert facts["methods"] == ["file"]
    assert (facts["kernel_release"], facts["boot_id"], facts["arch"]) == (RELEASE, BOOT_ID, "x86_64")
    assert facts["default_entry"] == {
        "kernel": host.kernel(), "initrd": host.initrd(), "source": "/boot/grub/grub.cfg", "title": "Debian GNU/Linux",
        "args": "root=UUID=%s ro quiet crashkernel=1G crashkernel=512M" % ROOT_UUID}


def test_gather_on_a_bare_host(tmp_path):
    facts = gather(str(tmp_path), machine="x86_64")
    assert facts["kexec_supported"] is False and facts["methods"] == []
    assert (facts["crash_regions"], facts["crash_reserved"], facts["crash_size"]) == ([], 0, None)
    assert facts["default_entry"] is None
    assert facts["crashkernel"] == {"active": None, "configured": None}


def test_gather_running_release_entry_has_no_configured_crashkernel(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    facts = gather(host.root, machine="x86_64")
    assert facts["default_entry"]["source"] == "running release %s" % RELEASE
    assert facts["crashkernel"] == {"active": "384M-:128M", "configured": None}


def test_gather_with_a_grub_cfg_it_cannot_read_says_so(tmp_path, monkeypatch):
    # Fedora's grub.cfg is 0600: without root the default entry is unknown, not missing (nor the running release's).
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    host.write("boot/grub2/grub.cfg", fakes.debian_grub_cfg())
    fakes.deny_reads(monkeypatch, host.path("boot/grub2/grub.cfg"))
    facts = gather(host.root, machine="x86_64")
    assert facts["default_entry"] == {"kernel": None, "initrd": None, "args": None, "source": None, "title": None,
                                      "unreadable": "/boot/grub2/grub.cfg"}
    assert facts["crashkernel"] == {"active": "384M-:128M", "configured": None}
    assert facts["warnings"] == ["default_entry is unknown: /boot/grub2/grub.cfg cannot be read: run as root "
                                 "(become: true)"]


def test_gather_warns_of_nothing_when_it_reads_everything(tmp_path):
    assert "warnings" not in gather(fakes.fake_host(tmp_path).root, machine="x86_64")


@pytest.mark.parametrize("host_fields, machine, methods", [
    ({}, "x86_64", ["file", "legacy"]),
    ({"config": None}, "x86_64", ["file", "legacy"]),  # no /boot/config-RELEASE: assume a modern kernel
    ({"config": "CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\n"}, "x86_64", ["legacy"]),
    ({"config": "# CONFIG_KEXEC is not set\nCONFIG_KEXEC_FILE=y\n"}, "x86_64", ["file"]),
    ({"lockdown": "none [integrity] confidentiality"}, "x86_64", ["file"]),  # lockdown refuses kexec_load
    ({"load_disabled": 1}, "x86_64", []),
    ({"loaded": None}, "x86_64", []),  # no /sys/kernel/kexec_loaded: no CONFIG_KEXEC_CORE
    ({}, "mips", []),
    ({}, "aarch64", ["file"]),  # legacy segments are built for x86_64 only
    ({"lockdown": "none integrity [confidentiality]"}, "aarch64", ["file"]),
])
def test_usable_methods(tmp_path, host_fields, machine, methods):
    host = fakes.fake_host(tmp_path, **host_fields)
    assert usable_methods(KernelState(host.root), machine) == methods


@pytest.mark.parametrize("host_fields, machine", [
    ({}, "x86_64"),
    ({"config": "CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\n"}, "x86_64"),
    ({"config": "# CONFIG_KEXEC is not set\nCONFIG_KEXEC_FILE=y\n"}, "x86_64"),
    ({"lockdown": "none [integrity] confidentiality"}, "x86_64"),
    ({"load_disabled": 1}, "x86_64"),
    ({"loaded": None}, "x86_64"),
    ({}, "mips"),
    ({}, "aarch64"),
])
def test_methods_are_the_usable_keys_of_method_reasons(tmp_path, host_fields, machine):
    host = fakes.fake_host(tmp_path, **host_fields)
    facts = gather(host.root, machine=machine)
    assert facts["method_reasons"] == method_reasons(KernelState(host.root), machine)
    assert list(facts["method_reasons"]) == ["file", "legacy"]
    assert facts["methods"] == [name for name, reason in facts["method_reasons"].items() if reason is None]
    assert facts["methods"] == usable_methods(KernelState(host.root), machine)


@pytest.mark.parametrize("host_fields, machine, reasons", [
    ({"lockdown": "none integrity [confidentiality]"}, "x86_64",
     {"file": None, "legacy": "kernel lockdown (confidentiality) refuses kexec_load"}),
    ({"config": "CONFIG_KEXEC=y\n"}, "x86_64",
     {"file": "CONFIG_KEXEC_FILE is off in /boot/config-%s: the running kernel has no kexec_file_load" % RELEASE,
      "legacy": None}),
    ({}, "aarch64", {"file": None, "legacy": "kernel.kexec builds kexec_load loads for x86_64 only, not for aarch64"}),
])
def test_gather_says_why_each_method_cannot_load(tmp_path, host_fields, machine, reasons):
    assert gather(fakes.fake_host(tmp_path, **host_fields).root, machine=machine)["method_reasons"] == reasons


@pytest.mark.parametrize("kind", sorted(fakes.CONFIDENTIAL_GUESTS))
def test_gather_in_a_confidential_guest_offers_the_file_syscall_only(tmp_path, kind):
    facts = gather(fakes.fake_host(tmp_path).confidential_guest(kind).root, machine="x86_64")
    assert facts["methods"] == ["file"]
    assert facts["method_reasons"]["legacy"].startswith("this is an %s guest: " % fakes.CONFIDENTIAL_GUESTS[kind])
    assert facts["method_reasons"]["legacy"].endswith("; use method=file")


@pytest.mark.parametrize("efi, machine, firmware", [
    (True, "x86_64", "efi"),
    (False, "x86_64", "bios"),
    (True, "aarch64", "efi"),
    (False, "aarch64", None),  # booted by U-Boot with a device tree
])
def test_gather_reports_the_firmware_kind(tmp_path, efi, machine, firmware):
    host = fakes.fake_host(tmp_path)
    if efi:
        host.boot_by_efi()
    assert gather(host.root, machine=machine)["firmware"] == firmware


@pytest.mark.parametrize("efi, value, secure_boot", [
    (True, 1, True),
    (True, 0, False),
    (True, None, None),  # no SecureBoot variable: firmware without it, or efivarfs not mounted
    (False, None, None),  # BIOS
], ids=["on", "off", "missing", "bios"])
def test_gather_reports_secure_boot_without_warnings(tmp_path, efi, value, secure_boot):
    host = fakes.fake_host(tmp_path)
    if efi:
        host.boot_by_efi(secure_boot=value)
    facts = gather(host.root, machine="x86_64")
    assert facts["secure_boot"] is secure_boot
    assert "warnings" not in facts


def test_gather_on_efi_without_efivars_reports_secure_boot_unknown(tmp_path):
    host = fakes.fake_host(tmp_path).boot_by_efi()
    os.rmdir(host.path("sys/firmware/efi/efivars"))
    facts = gather(host.root, machine="x86_64")
    assert (facts["firmware"], facts["secure_boot"]) == ("efi", None)
    assert "warnings" not in facts


def test_gather_with_a_malformed_secure_boot_variable_warns_and_reports_it_unknown(tmp_path):
    host = fakes.fake_host(tmp_path).boot_by_efi(secure_boot=fakes.EFI_VAR_ATTRIBUTES + b"\x01\x00")
    facts = gather(host.root, machine="x86_64")
    assert (facts["firmware"], facts["secure_boot"]) == ("efi", None)
    assert facts["warnings"] == ["secure_boot is unknown: EFI variable /%s is malformed: 6 bytes, not 4 bytes of "
                                 "attributes and a 1-byte value" % fakes.SECURE_BOOT_VAR]
    assert facts["methods"] == ["file", "legacy"]  # every other fact as before


def test_crash_reserved_without_root_falls_back_to_kexec_crash_size(tmp_path):
    # Non-root readers of /proc/iomem see 0-0 for every range: sizes are unknown, not 1 byte.
    host = fakes.fake_host(tmp_path, crash_size=256 << 20)
    host.write("proc/iomem", "00000000-00000000 : System RAM\n  00000000-00000000 : Crash kernel\n")
    facts = gather(host.root, machine="x86_64")
    assert facts["crash_regions"] == [{"start": 0, "end": 0, "size": None}]
    assert facts["crash_reserved"] == 256 << 20


# --- without root: facts with what cannot be known said, or one clear error; never a traceback ----

NOBODY = 65534


def as_nobody(call):
    """``call()``'s result (JSON-able) or the KexecError message / traceback text, run as nobody in a child.

    The unit tests run as root, which reads everything: only a real non-root
    process meets the modes of root-only files. Not root already: run here.
    """
    if os.geteuid() != 0:
        try:
            return {"facts": call()}
        except KexecError as exc:
            return {"error": exc.msg, "extra": exc.extra}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer = {"facts": call()}
        except KexecError as exc:
            answer = {"error": exc.msg, "extra": exc.extra}
        except BaseException:  # noqa: B036  # the traceback is what the test must see
            answer = {"traceback": traceback.format_exc()}
        with os.fdopen(write_end, "w") as out:
            json.dump(answer, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    return json.loads(text)


@pytest.fixture
def open_tree():
    """A directory nobody can reach (pytest's tmp_path is root's, mode 0700)."""
    top = tempfile.mkdtemp(prefix="kexec-nonroot-", dir="/tmp")
    os.chmod(top, 0o755)
    yield top
    shutil.rmtree(top)


def root_only_host(top):
    """A Debian host with kdump-tools as a non-root reader finds it: root-only files, addresses hidden."""
    host = kdump_fakes.debian_kdump_tools(top)
    host.set_sys("sys/kernel/kexec_loaded", 1)
    write_record(host.root, "default", {"boot_id": BOOT_ID, "type": "default"})  # its directory is 0700
    os.chmod(host.path("var/lib/kdump/initrd.img-%s" % RELEASE), 0o600)
    os.chmod(host.kernel(), 0o600)  # as Ubuntu ships /boot/vmlinuz-*
    host.write("proc/iomem", "00000000-00000000 : System RAM\n  00000000-00000000 : Crash kernel\n")
    return host


def test_gather_without_root_reports_what_it_can_and_says_what_it_cannot(open_tree):
    host = root_only_host(open_tree)
    answer = as_nobody(lambda: gather(host.root, machine="x86_64"))
    assert "traceback" not in answer, answer.get("traceback")
    facts = answer["facts"]
    assert (facts["loaded"], facts["loaded_image"]) == (True, {
        "type": "default", "by": "unknown (the record in /run/kernel-kexec is readable by root only: use become: true)"})
    assert facts["crash_reserved"] == 256 << 20  # kexec_crash_size, as /proc/iomem hides the addresses
    assert facts["crashkernel"]["active"] == "384M-:128M"
    capture = facts["kdump"]["capture"]
    assert capture["fits"] is None
    assert "cannot be read: run as root (become: true); the size check is skipped" in capture["explanation"]


def test_gather_without_root_fails_clearly_on_a_root_only_file_no_reader_expects(open_tree):
    host = root_only_host(open_tree)
    os.chmod(host.path("sys/kernel/security"), 0o700)
    answer = as_nobody(lambda: gather(host.root, machine="x86_64"))
    assert "traceback" not in answer, answer.get("traceback")
    lockdown = host.path("sys/kernel/security/lockdown")
    assert answer["error"] == "kexec_info cannot read %s: only root can; run it with become: true" % lockdown
    assert answer["extra"] == {"path": lockdown}


def test_gather_without_root_on_a_0600_grub_cfg_reports_it_unreadable(open_tree):
    host = root_only_host(open_tree)
    os.chmod(host.path("boot/grub/grub.cfg"), 0o600)  # as grub2-mkconfig writes it on Fedora
    answer = as_nobody(lambda: gather(host.root, machine="x86_64"))
    assert "traceback" not in answer, answer.get("traceback")
    facts = answer["facts"]
    assert facts["default_entry"]["unreadable"] == "/boot/grub/grub.cfg"
    assert facts["default_entry"]["kernel"] is None
    assert facts["warnings"] == ["default_entry is unknown: /boot/grub/grub.cfg cannot be read: run as root "
                                 "(become: true)"]


def test_gather_without_root_on_a_0600_secure_boot_variable_reports_it_unknown(open_tree):
    host = root_only_host(open_tree).boot_by_efi(secure_boot=1)
    os.chmod(host.path(fakes.SECURE_BOOT_VAR), 0o600)
    answer = as_nobody(lambda: gather(host.root, machine="x86_64"))
    assert "traceback" not in answer, answer.get("traceback")
    facts = answer["facts"]
    assert (facts["firmware"], facts["secure_boot"]) == ("efi", None)
    assert facts["warnings"] == ["secure_boot is unknown: EFI variable %s cannot be read: run as root (become: true)"
                                 % host.path(fakes.SECURE_BOOT_VAR)]


def test_gather_on_a_kdump_configuration_it_may_not_read_fails_clearly(tmp_path, monkeypatch):
    """Taken for an empty file, it would report dumps going to /var/crash whatever it says."""
    host = kdump_fakes.debian_kdump_tools(str(tmp_path), config='USE_KDUMP=1\nSSH="kdump@dumps.example"\n')
    path = host.path("etc/default/kdump-tools")
    fakes.deny_reads(monkeypatch, path)
    with pytest.raises(KexecError) as caught:
        gather(host.root, machine="x86_64")
    assert caught.value.msg == "kexec_info cannot read %s: only root can; run it with become: true" % path
    assert caught.value.extra == {"path": path}
