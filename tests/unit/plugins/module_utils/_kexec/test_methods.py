import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import methods
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.syscalls import ARCHES

from ...fakes import host as fakes

NO_KEXEC = "the running kernel has no kexec (no /sys/kernel/kexec_loaded: built without CONFIG_KEXEC_CORE)"
DISABLED = "/proc/sys/kernel/kexec_load_disabled is 1: the kernel refuses every kexec load until the next boot"
UNKNOWN_ARCH = "kernel.kexec does not know the kexec syscalls of mips (it knows aarch64, ppc64le, riscv64, s390x, x86_64)"
FILE_OFF = "CONFIG_KEXEC_FILE is off in /boot/config-%s: the running kernel has no kexec_file_load" % fakes.RELEASE
LEGACY_OFF = "CONFIG_KEXEC is off in /boot/config-%s: the running kernel has no kexec_load" % fakes.RELEASE


@pytest.mark.parametrize("host_fields, machine, reasons", [
    ({}, "x86_64", {"file": None, "legacy": None}),
    ({"config": None}, "x86_64", {"file": None, "legacy": None}),  # no /boot/config-RELEASE: a modern kernel
    ({"loaded": None}, "x86_64", {"file": NO_KEXEC, "legacy": NO_KEXEC}),
    ({"load_disabled": 1}, "x86_64", {"file": DISABLED, "legacy": DISABLED}),
    ({}, "mips", {"file": UNKNOWN_ARCH, "legacy": UNKNOWN_ARCH}),
    ({}, "aarch64", {"file": None, "legacy": "kernel.kexec builds kexec_load loads for x86_64 only, not for aarch64"}),
    ({"config": "CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\n"}, "x86_64", {"file": FILE_OFF, "legacy": None}),
    ({"config": "# CONFIG_KEXEC is not set\nCONFIG_KEXEC_FILE=y\n"}, "x86_64", {"file": None, "legacy": LEGACY_OFF}),
    ({"config": "CONFIG_KEXEC=m\n"}, "x86_64", {"file": FILE_OFF, "legacy": LEGACY_OFF}),  # not "y": off
    ({"lockdown": "none [integrity] confidentiality"}, "x86_64",
     {"file": None, "legacy": "kernel lockdown (integrity) refuses kexec_load"}),
    ({"lockdown": "none integrity [confidentiality]"}, "x86_64",
     {"file": None, "legacy": "kernel lockdown (confidentiality) refuses kexec_load"}),
], ids=["usable", "no-config-file", "no-kexec", "load-disabled", "unknown-arch", "legacy-x86_64-only",
        "file-config-off", "legacy-config-off", "both-config-off", "lockdown-integrity", "lockdown-confidentiality"])
def test_assess_names_every_method_with_the_reason_it_cannot_load(tmp_path, host_fields, machine, reasons):
    host = fakes.fake_host(tmp_path, **host_fields)
    assert methods.assess(KernelState(host.root), machine, ARCHES) == reasons


@pytest.mark.parametrize("host_fields, machine, reason", [
    ({"load_disabled": 1, "config": "# CONFIG_KEXEC_FILE is not set\n"}, "mips", UNKNOWN_ARCH),
    ({"loaded": None, "load_disabled": 1}, "x86_64", NO_KEXEC),
    ({"load_disabled": 1, "lockdown": "none [integrity] confidentiality"}, "x86_64", DISABLED),
], ids=["arch-first", "no-kexec-before-disabled", "disabled-before-lockdown"])
def test_assess_gives_the_first_reason_that_applies(tmp_path, host_fields, machine, reason):
    host = fakes.fake_host(tmp_path, **host_fields)
    assert methods.assess(KernelState(host.root), machine, ARCHES) == {"file": reason, "legacy": reason}


def test_assess_judges_the_method_arch_before_the_config_and_the_config_before_lockdown(tmp_path):
    host = fakes.fake_host(tmp_path, config="# CONFIG_KEXEC is not set\nCONFIG_KEXEC_FILE=y\n",
                           lockdown="none [integrity] confidentiality")
    state = KernelState(host.root)
    assert methods.assess(state, "aarch64", ARCHES)["legacy"].startswith("kernel.kexec builds kexec_load loads")
    assert methods.assess(state, "x86_64", ARCHES)["legacy"] == LEGACY_OFF


@pytest.mark.parametrize("assessment, names", [
    ({"file": None, "legacy": None}, ["file", "legacy"]),
    ({"file": None, "legacy": "no"}, ["file"]),
    ({"file": "no", "legacy": None}, ["legacy"]),
    ({"file": "no", "legacy": "no"}, []),
])
def test_usable_is_what_assess_says(monkeypatch, assessment, names):
    monkeypatch.setattr(methods, "assess", lambda *args: assessment)
    assert methods.usable(None, "x86_64", ARCHES) == names


def confidential(guest):
    return ("this is an %s guest: its next kernel must find the confidential-computing state the firmware set up "
            "(SEV-SNP's CC blob, the memory not yet accepted), which kexec_file_load hands on and the kexec_load "
            "segments kernel.kexec builds do not; use method=file" % guest)


@pytest.mark.parametrize("kind", sorted(fakes.CONFIDENTIAL_GUESTS))
def test_assess_refuses_legacy_in_a_confidential_guest(tmp_path, kind):
    host = fakes.fake_host(tmp_path).confidential_guest(kind)
    assert methods.assess(KernelState(host.root), "x86_64", ARCHES) == {
        "file": None, "legacy": confidential(fakes.CONFIDENTIAL_GUESTS[kind])}


def test_assess_judges_lockdown_before_a_confidential_guest(tmp_path):
    host = fakes.fake_host(tmp_path, lockdown="none [integrity] confidentiality").sev_snp_guest()
    assert methods.assess(KernelState(host.root), "x86_64", ARCHES)["legacy"] == (
        "kernel lockdown (integrity) refuses kexec_load")
