import json

import pytest
import yaml

from ansible_collections.kernel.kexec.plugins.module_utils import _info as info
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.modules import kexec_info

from ..fakes import host as fakes


@pytest.mark.parametrize("check_mode", [False, True])
def test_reports_facts_without_change(monkeypatch, host, run_module, check_mode):
    monkeypatch.setattr(kexec_info, "gather", lambda: info.gather(host.root, machine="x86_64"))
    rc, result = run_module(kexec_info, _ansible_check_mode=check_mode)
    assert (rc, result["changed"]) == (0, False)
    assert result["crash_reserved"] == 144 << 20
    assert result["methods"] == ["file", "legacy"]
    assert result["crashkernel"] == {"active": "384M-:128M", "configured": None}
    assert result["default_entry"]["kernel"] == host.kernel()
    assert result["boot_id"] == fakes.BOOT_ID


def test_error_fails_the_task(monkeypatch, run_module):
    def broken():
        raise KexecError("cannot read the kexec state", path="/proc/iomem")
    monkeypatch.setattr(kexec_info, "gather", broken)
    rc, result = run_module(kexec_info)
    assert rc == 1
    assert (result["failed"], result["msg"], result["path"]) == (True, "cannot read the kexec state", "/proc/iomem")


def test_a_root_only_file_fails_the_task_with_advice_not_a_traceback(monkeypatch, host, run_module):
    # as a non-root reader meets it (module_utils/test_info.py runs that for real, as nobody)
    def root_only(root, machine):
        raise PermissionError(13, "Permission denied", "/sys/kernel/security/lockdown")
    monkeypatch.setattr(info, "_gather", root_only)
    monkeypatch.setattr(kexec_info, "gather", lambda: info.gather(host.root, machine="x86_64"))
    rc, result = run_module(kexec_info)
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"] == ("kexec_info cannot read /sys/kernel/security/lockdown: only root can; "
                             "run it with become: true")
    assert "exception" not in result and "module_stderr" not in result


def test_an_unreadable_grub_cfg_is_a_warning_and_a_fact_not_a_failure(monkeypatch, host, run_module):
    fakes.deny_reads(monkeypatch, host.path("boot/grub/grub.cfg"))
    monkeypatch.setattr(kexec_info, "gather", lambda: info.gather(host.root, machine="x86_64"))
    rc, result = run_module(kexec_info)
    assert (rc, result["changed"]) == (0, False)
    assert result["default_entry"]["unreadable"] == "/boot/grub/grub.cfg"
    # a string before ansible-core 2.19, a dict with the message after
    [warning] = result["warnings"]
    assert "default_entry is unknown: /boot/grub/grub.cfg cannot be read: run as root (become: true)" in json.dumps(
        warning)


def test_reports_the_host_kind_and_why_each_method_cannot_load(monkeypatch, host, run_module):
    host.boot_by_efi(secure_boot=1)
    host.set_sys("sys/kernel/security/lockdown", "none [integrity] confidentiality")
    monkeypatch.setattr(kexec_info, "gather", lambda: info.gather(host.root, machine="x86_64"))
    rc, result = run_module(kexec_info)
    assert (rc, result["changed"]) == (0, False)
    assert (result["firmware"], result["secure_boot"]) == ("efi", True)
    assert result["method_reasons"] == {"file": None, "legacy": "kernel lockdown (integrity) refuses kexec_load"}
    assert result["methods"] == ["file"]
    assert "warnings" not in result


def test_a_malformed_secure_boot_variable_is_a_warning_not_a_failure(monkeypatch, host, run_module):
    host.boot_by_efi(secure_boot=fakes.EFI_VAR_ATTRIBUTES)  # the attributes without the value
    monkeypatch.setattr(kexec_info, "gather", lambda: info.gather(host.root, machine="x86_64"))
    rc, result = run_module(kexec_info)
    assert (rc, result["changed"], result["firmware"], result["secure_boot"]) == (0, False, "efi", None)
    [warning] = result["warnings"]
    assert ("secure_boot is unknown: EFI variable /%s is malformed: 4 bytes" % fakes.SECURE_BOOT_VAR) in json.dumps(
        warning)


def test_every_fact_is_documented_and_the_host_kind_is_returned_always(monkeypatch, host, run_module):
    monkeypatch.setattr(kexec_info, "gather", lambda: info.gather(host.root, machine="x86_64"))
    _rc, result = run_module(kexec_info)
    documented = yaml.safe_load(kexec_info.RETURN)
    assert set(documented) == set(result) - {"changed", "invocation"}
    for name in ("firmware", "secure_boot", "method_reasons"):
        assert documented[name]["returned"] == "always" and "sample" in documented[name], name
