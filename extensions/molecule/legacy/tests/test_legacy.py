"""Verify, on the guest, what the legacy scenario's converge left behind.

A kexec reboot by method legacy (marker on the command line, a new boot),
then a crash: the capture kernel loaded by method legacy ran with an ELF core
header (the log and the dump it saved are checked by the converge's crash
tasks, resources/tasks/crash.yml).
"""

import json

import pytest

METHODS = ("legacy",)


def read(host, path):
    return host.file(path).content_string


def test_kexec_tools_is_not_installed(host):
    assert not host.package("kexec-tools").is_installed
    assert not host.exists("kexec")


def test_legacy_reboot_was_a_new_boot(host):
    facts = json.loads(read(host, "/var/tmp/kexec-legacy.json"))
    assert facts["legacy_boot_id"] != facts["first_boot_id"]


@pytest.mark.parametrize("method", METHODS)
def test_capture_kernel_ran_with_an_elf_core_header(host, method):
    cmdline = read(host, "/var/crash/%s/capture-cmdline" % method).split()
    assert any(arg.startswith("elfcorehdr=") for arg in cmdline)
    assert "systemd.unit=kexec-capture.service" in cmdline
    assert not any(arg.startswith("crashkernel=") for arg in cmdline)
