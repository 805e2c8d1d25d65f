"""detect.create / detect.detect: which backend manages a host, and in what order the evidence counts."""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot import bls as bls_module
from ansible_collections.kernel.kexec.plugins.module_utils._boot import detect
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import run_command
from ansible_collections.kernel.kexec.plugins.module_utils._boot.bls import BlsEntries, Grubby
from ansible_collections.kernel.kexec.plugins.module_utils._boot.grub import GrubDefaults
from ansible_collections.kernel.kexec.plugins.module_utils._boot.zipl import Zipl
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host import arch as host_arch

from ...fakes import bootloader as bf
from ...fakes import host as fakes

NOTHING = ("no supported bootloader found (looked for grubby with BLS entries, /etc/zipl.conf on s390x, "
           "loader/loader.conf of systemd-boot, /etc/default/grub): set bootloader explicitly")


@pytest.fixture
def path_has(monkeypatch):
    """The programs on PATH as Grubby.detect sees them."""
    installed = set()
    monkeypatch.setattr(bls_module.shutil, "which", lambda name: "/usr/sbin/" + name if name in installed else None)
    return installed


def host(tmp_path, *parts):
    root = str(tmp_path)
    files = {
        "grub": ("etc/default/grub", bf.DEBIAN_DEFAULT_GRUB),
        "bls": ("boot/loader/entries/%s-6.8.9-300.fc40.x86_64.conf" % bf.MACHINE_ID,
                bf.bls_entry("6.8.9-300.fc40.x86_64")),
        "zipl": ("etc/zipl.conf", bf.ZIPL_CONF),
        "sd-boot": ("efi/loader/loader.conf", "timeout 3\n"),
    }
    for part in parts:
        rel, text = files[part]
        fakes.write_file(os.path.join(root, rel), text)
    return root


@pytest.mark.parametrize("parts, grubby, machine, expected", [
    (("grub",), False, "x86_64", "grub"),
    (("grub", "bls"), True, "x86_64", "grubby"),          # Fedora, RHEL: BLS entries and grubby
    (("grub", "bls"), False, "x86_64", "grub"),           # entries but no grubby
    (("grub",), True, "x86_64", "grub"),                  # grubby installed but no entries
    (("zipl", "grub"), False, "s390x", "zipl"),
    (("zipl", "bls"), True, "s390x", "grubby"),           # RHEL 8+ on s390x: BLS entries win over zipl.conf
    (("zipl", "grub"), False, "x86_64", "grub"),          # a zipl.conf elsewhere means nothing
    (("zipl",), False, "aarch64", None),
    (("sd-boot", "bls", "grub"), False, "x86_64", "systemd-boot"),
    (("sd-boot", "bls", "grub"), True, "x86_64", "grubby"),
    (("sd-boot", "zipl"), False, "s390x", "zipl"),
    ((), True, "x86_64", None),
])
def test_detection_order(tmp_path, path_has, parts, grubby, machine, expected):
    if grubby:
        path_has.add("grubby")
    root = host(tmp_path, *parts)
    if expected is None:
        with pytest.raises(KexecError) as caught:
            detect.create("auto", root=root, machine=machine)
        assert caught.value.msg == NOTHING
        return
    assert detect.detect(root, machine) == expected
    loader = detect.create("auto", root=root, machine=machine)
    assert loader.__class__ is detect.BACKENDS[expected]  # exactly: Grubby is a BlsEntries
    assert loader.name == expected


def test_detect_defaults_to_this_machine(tmp_path, path_has, monkeypatch):
    root = host(tmp_path, "zipl", "grub")
    monkeypatch.setattr(host_arch.platform, "machine", lambda: "s390x")
    assert detect.detect(root) == "zipl"
    monkeypatch.setattr(host_arch.platform, "machine", lambda: "x86_64")
    assert detect.detect(root) == "grub"


@pytest.mark.parametrize("name, cls", [("grub", GrubDefaults), ("grubby", Grubby), ("systemd-boot", BlsEntries),
                                       ("zipl", Zipl)])
def test_explicit_names_need_no_evidence(tmp_path, name, cls):
    runner = bf.FakeTools()
    loader = detect.create(name, root=str(tmp_path), runner=runner, kernel="6.1.0-28-amd64")
    assert loader.__class__ is cls
    assert (loader.root, loader.runner, loader.kernel) == (str(tmp_path), runner, "6.1.0-28-amd64")


def test_default_runner(tmp_path):
    assert detect.create("grub", root=str(tmp_path)).runner is run_command


def test_auto_passes_runner_and_kernel_on(tmp_path, path_has):
    runner = bf.FakeTools()
    loader = detect.create(root=host(tmp_path, "grub"), runner=runner, kernel="x", machine="x86_64")
    assert (type(loader), loader.runner, loader.kernel) == (GrubDefaults, runner, "x")


@pytest.mark.parametrize("name", ["grub2", "lilo", "GRUB", "", None])
def test_unknown_name(tmp_path, name):
    with pytest.raises(KexecError) as caught:
        detect.create(name, root=str(tmp_path))
    assert caught.value.msg == "unknown bootloader %r; choose one of auto, grub, grubby, systemd-boot, zipl" % (name,)


def test_create_passes_the_machine_on(tmp_path):
    """grubby on s390x must run zipl after it: the backend needs to know the machine."""
    assert detect.create("grubby", str(tmp_path), machine="s390x").machine == "s390x"
    assert detect.create("grubby", str(tmp_path), machine="x86_64").machine == "x86_64"
