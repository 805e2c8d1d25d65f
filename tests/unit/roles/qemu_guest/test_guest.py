"""guest.py (roles/qemu_guest/files): which image and firmware a host kind gets, and that one guest name
never serves two kinds. QEMU is never started: the launcher's process calls are replaced."""

import argparse
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture
def guest(tmp_path, monkeypatch):
    """guest.py loaded with its cache and OVMF directory under tmp_path."""
    monkeypatch.setenv("KEXEC_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("kexec_guest", os.path.join(REPO, "roles/qemu_guest/files/guest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ovmf = tmp_path / "OVMF"
    ovmf.mkdir()
    for name in ("OVMF_VARS_4M.fd", "OVMF_VARS_4M.ms.fd"):
        (ovmf / name).write_bytes(name.encode())
    monkeypatch.setattr(module, "OVMF", str(ovmf))
    return module


@pytest.mark.parametrize("release, firmware, bootloader, image", [
    ("bookworm", "bios", "grub", "bookworm.qcow2"),
    ("trixie", "bios", "grub", "trixie-bios.qcow2"),
    ("trixie", "uefi", "grub", "trixie-efi.qcow2"),
    ("trixie", "secureboot", "grub", "trixie-efi.qcow2"),
    ("trixie", "uefi", "systemd-boot", "trixie-sdboot.qcow2"),
    ("bookworm", "secureboot", "systemd-boot", "bookworm-sdboot.qcow2"),
])
def test_each_kind_boots_the_image_build_image_makes_for_it(guest, release, firmware, bootloader, image):
    assert guest.base_image(release, firmware, bootloader) == os.path.join(guest.IMAGES, image)


def test_systemd_boot_on_bios_is_refused_before_anything_starts(guest, monkeypatch):
    monkeypatch.setattr(guest.subprocess, "run", lambda *a, **k: pytest.fail("started something"))
    with pytest.raises(SystemExit) as refused:
        guest.start(argparse.Namespace(name="x", reuse=False, release="trixie", firmware="bios",
                                       bootloader="systemd-boot", port=0))
    assert "systemd-boot needs EFI firmware" in str(refused.value)


def test_bios_is_seabios_on_the_pc_machine(guest, tmp_path):
    assert guest.firmware_options("bios", str(tmp_path)) == ["-machine", "pc"]
    assert not (tmp_path / "efivars.fd").exists()


@pytest.mark.parametrize("firmware, code, variables, machine", [
    ("uefi", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "q35"),
    ("secureboot", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", "q35,smm=on"),
])
def test_efi_guests_get_their_own_variable_store(guest, tmp_path, firmware, code, variables, machine):
    directory = tmp_path / "guest"
    directory.mkdir()
    options = guest.firmware_options(firmware, str(directory))
    store = directory / "efivars.fd"
    # A copy: the firmware writes its variables there, never into the package's template.
    assert store.read_bytes() == variables.encode()
    assert options[options.index("-machine") + 1] == machine
    assert "if=pflash,format=raw,unit=0,readonly=on,file=%s/%s" % (guest.OVMF, code) in options
    assert "if=pflash,format=raw,unit=1,file=%s" % store in options
    assert ("driver=cfi.pflash01,property=secure,value=on" in options) == (firmware == "secureboot")


def test_a_running_guest_of_another_kind_is_replaced_not_reused(guest, monkeypatch):
    os.makedirs(guest.IMAGES)
    open(guest.base_image("trixie", "uefi", "systemd-boot"), "w").close()
    running = {"pid": 99}
    stopped = []
    monkeypatch.setattr(guest, "read_pid", lambda name: running["pid"])
    monkeypatch.setattr(guest, "instance", lambda name: {"port": 1, "release": "trixie", "firmware": "uefi",
                                                         "bootloader": "grub"})
    monkeypatch.setattr(guest, "ssh_banner", lambda port, timeout: pytest.fail("a guest of another kind was probed for reuse"))

    def stop_guest(name):
        stopped.append(name)
        running["pid"] = None

    monkeypatch.setattr(guest, "stop_guest", stop_guest)

    class Started(Exception):
        pass

    def qemu_img(*args, **kwargs):
        raise Started(args[0])

    monkeypatch.setattr(guest.subprocess, "run", qemu_img)
    with pytest.raises(Started) as started:
        guest.start(argparse.Namespace(name="shared", reuse=True, release="trixie", firmware="uefi",
                                       bootloader="systemd-boot", port=0))
    assert stopped == ["shared"]
    assert started.value.args[0][:2] == ["qemu-img", "create"]
    assert guest.base_image("trixie", "uefi", "systemd-boot") in started.value.args[0]


def test_a_missing_image_names_the_build_that_makes_it(guest):
    with pytest.raises(SystemExit) as refused:
        guest.start(argparse.Namespace(name="x", reuse=False, release="trixie", firmware="secureboot",
                                       bootloader="grub", port=0))
    assert "build-image.sh trixie efi" in str(refused.value)


@pytest.mark.parametrize("release, firmware, bootloader, layout", [
    ("bookworm", "bios", "grub", "bios"),
    ("trixie", "uefi", "grub", "efi"),
    ("trixie", "secureboot", "grub", "efi"),
    ("trixie", "secureboot", "systemd-boot", "sdboot"),
])
def test_build_runs_the_image_builder_beside_it_with_the_kinds_layout(guest, monkeypatch, release, firmware,
                                                                      bootloader, layout):
    def execvp(program, argv):
        raise SystemExit(argv)
    monkeypatch.setattr(guest.os, "execvp", execvp)
    with pytest.raises(SystemExit) as ran:
        guest.build(argparse.Namespace(release=release, firmware=firmware, bootloader=bootloader))
    assert ran.value.args[0] == ["bash", os.path.join(REPO, "roles/qemu_guest/files/build-image.sh"), release, layout]


def test_build_refuses_systemd_boot_on_bios_without_building(guest, monkeypatch):
    monkeypatch.setattr(guest.os, "execvp", lambda *a: pytest.fail("built something"))
    with pytest.raises(SystemExit) as refused:
        guest.build(argparse.Namespace(release="trixie", firmware="bios", bootloader="systemd-boot"))
    assert "systemd-boot needs EFI firmware" in str(refused.value)
