"""guest.py (roles/qemu_guest/files): which image and firmware a host kind gets, the QEMU command line of
CPU and memory hotplug, that one guest name never serves two kinds, and its QMP client against a fake QEMU.
QEMU is never started: the launcher's process calls are replaced."""

import argparse
import importlib.util
import json
import os
import socket
import threading

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


def start_args(**given):
    """guest.py start's arguments as its parser gives them by default, with ``given`` instead."""
    args = dict(name="shared", reuse=False, release="bookworm", firmware="bios", bootloader="grub", port=0,
                memory=2048, cpus=2, max_cpus=0, virtio_mem=0, accel="tcg", timeout=300, firmware_delay=0)
    args.update(given)
    return argparse.Namespace(**args)


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
        guest.start(start_args(name="x", release="trixie", firmware="bios", bootloader="systemd-boot"))
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
        guest.start(start_args(reuse=True, release="trixie", firmware="uefi", bootloader="systemd-boot"))
    assert stopped == ["shared"]
    assert started.value.args[0][:2] == ["qemu-img", "create"]
    assert guest.base_image("trixie", "uefi", "systemd-boot") in started.value.args[0]


def test_a_missing_image_names_the_build_that_makes_it(guest):
    with pytest.raises(SystemExit) as refused:
        guest.start(start_args(name="x", release="trixie", firmware="secureboot"))
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


# CPU and memory hotplug on the QEMU command line.

@pytest.mark.parametrize("cpus, max_cpus, smp", [(2, 0, "2"), (2, 2, "2"), (1, 2, "1,maxcpus=2"), (2, 4, "2,maxcpus=4")])
def test_max_cpus_leaves_room_for_cpus_added_later(guest, cpus, max_cpus, smp):
    assert guest.cpu_options(cpus, max_cpus) == ["-smp", smp]


def test_virtio_mem_is_a_device_beside_the_ram_with_half_of_it_plugged_at_boot(guest):
    assert guest.memory_options(2048, 0) == ["-m", "2048"]
    assert guest.memory_options(2048, 512) == [
        "-m", "2048M,slots=1,maxmem=2560M",
        "-object", "memory-backend-ram,id=vmem0-ram,size=512M",
        "-device", "virtio-mem-pci,id=vmem0,memdev=vmem0-ram,requested-size=256M"]


def test_every_guest_has_a_qmp_monitor_in_its_directory_and_the_hotplug_options(guest, tmp_path):
    command = guest.qemu_command(start_args(cpus=1, max_cpus=2, virtio_mem=512, memory=1024), str(tmp_path), 2222)
    # Relative to the directory QEMU starts in (start runs it there), so a deep cache still fits a socket's path.
    assert command[command.index("-qmp") + 1] == "unix:qmp.sock,server=on,wait=off"
    assert command[command.index("-smp") + 1] == "1,maxcpus=2"
    assert command[command.index("-m") + 1] == "1024M,slots=1,maxmem=1536M"
    assert "virtio-mem-pci,id=vmem0,memdev=vmem0-ram,requested-size=256M" in command
    assert command[command.index("-cpu") + 1] == "max"
    plain = guest.qemu_command(start_args(), str(tmp_path), 2222)
    assert plain[plain.index("-qmp") + 1] == "unix:qmp.sock,server=on,wait=off"
    assert plain[plain.index("-smp") + 1] == "2" and plain[plain.index("-m") + 1] == "2048"
    assert not any("virtio-mem" in option for option in plain)


@pytest.mark.parametrize("given, message", [
    (dict(cpus=2, max_cpus=1), "max_cpus 1 is fewer than the 2 CPUs the guest boots with"),
    (dict(cpus=0), "cpus must be at least 1"),
    (dict(virtio_mem=100), "virtio_mem must be a multiple of 256 MiB"),
    (dict(virtio_mem=-256), "virtio_mem must be a multiple of 256 MiB"),
])
def test_hotplug_numbers_qemu_cannot_start_are_refused_before_anything_starts(guest, monkeypatch, given, message):
    os.makedirs(guest.IMAGES)
    open(guest.base_image("bookworm", "bios"), "w").close()
    monkeypatch.setattr(guest.subprocess, "run", lambda *a, **k: pytest.fail("started something"))
    with pytest.raises(SystemExit) as refused:
        guest.start(start_args(**given))
    assert message in str(refused.value)


class AlwaysAnswers:
    """Stands in for the banner watch: sshd answers at once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def answered(self, timeout):
        return True


def test_start_runs_qemu_in_the_guests_directory_and_records_what_it_started(guest, monkeypatch):
    os.makedirs(guest.IMAGES)
    open(guest.base_image("trixie", "uefi"), "w").close()
    pids = iter([None, None, 4242])
    monkeypatch.setattr(guest, "read_pid", lambda name: next(pids, 4242))
    monkeypatch.setattr(guest, "banner_watch", lambda port: AlwaysAnswers())
    ran = []
    monkeypatch.setattr(guest.subprocess, "run", lambda command, **kwargs: ran.append((command, kwargs)))
    guest.start(start_args(release="trixie", firmware="uefi", cpus=1, max_cpus=2, virtio_mem=512, port=2222))
    directory = guest.guest_dir("shared")
    qemu, options = ran[-1]
    assert qemu[0] == "qemu-system-x86_64" and options["cwd"] == directory
    assert os.stat(directory).st_mode & 0o077 == 0  # the monitor controls the guest: nobody else's to reach
    record = guest.instance("shared")
    assert {key: record[key] for key in ("release", "firmware", "bootloader", "cpus", "max_cpus", "virtio_mem")} == {
        "release": "trixie", "firmware": "uefi", "bootloader": "grub", "cpus": 1, "max_cpus": 2, "virtio_mem": 512}
    assert record["monitor"] == os.path.join(directory, "qmp.sock")


# Reuse: a running guest is handed out only if it was started as asked.

def running_guest(guest, monkeypatch, record):
    """A running guest whose instance.json is ``record``; returns the names stop_guest was called with."""
    os.makedirs(guest.IMAGES, exist_ok=True)
    open(guest.base_image("bookworm", "bios"), "w").close()
    state = {"pid": 99}
    stopped = []
    monkeypatch.setattr(guest, "read_pid", lambda name: state["pid"])
    monkeypatch.setattr(guest, "instance", lambda name: dict(record, port=1))
    monkeypatch.setattr(guest, "ssh_banner", lambda port, timeout: True)

    def stop_guest(name):
        stopped.append(name)
        state["pid"] = None

    monkeypatch.setattr(guest, "stop_guest", stop_guest)
    return stopped


class Started(Exception):
    pass


def refuse_to_start(*args, **kwargs):
    raise Started(args[0])


# (what the running guest's instance.json records, what start is asked for, what start does)
REUSE = [
    ({"max_cpus": 0, "virtio_mem": 0}, dict(), "reused"),
    ({}, dict(), "reused"),  # started before the keys existed, asked for neither
    ({"max_cpus": 0, "virtio_mem": 0}, dict(cpus=2, max_cpus=2), "reused"),  # as many CPUs to hold as to boot with
    ({"max_cpus": 2, "virtio_mem": 512}, dict(cpus=1, max_cpus=2, virtio_mem=512), "reused"),
    ({"max_cpus": 0, "virtio_mem": 0}, dict(virtio_mem=512), "replaced: virtio_mem 0"),
    ({"max_cpus": 0, "virtio_mem": 512}, dict(), "replaced: virtio_mem 512"),
    ({"max_cpus": 0, "virtio_mem": 0}, dict(cpus=2, max_cpus=3), "replaced: max_cpus 0"),
    ({"max_cpus": 3, "virtio_mem": 0}, dict(cpus=2, max_cpus=4), "replaced: max_cpus 3"),
    ({}, dict(cpus=1, max_cpus=2), "replaced: max_cpus 0"),
]


def test_a_running_guest_is_reused_only_if_started_with_the_same_hotplug_keys(guest, monkeypatch, capsys):
    done = []
    for record, given, expected in REUSE:
        stopped = running_guest(guest, monkeypatch, dict(record, release="bookworm", firmware="bios", bootloader="grub"))
        monkeypatch.setattr(guest.subprocess, "run", refuse_to_start)
        try:
            guest.start(start_args(reuse=True, **given))
        except Started:
            err = capsys.readouterr().err
            done.append("replaced: " + err.split("replacing the running guest (")[1].split(")")[0]
                        if stopped == ["shared"] and "replacing the running guest (" in err else "started anew")
        else:
            out, err = capsys.readouterr()
            done.append("reused" if not stopped and "reusing the running guest" in err and json.loads(out)["port"] == 1
                        else "reused wrongly")
    assert done == [expected for _record, _given, expected in REUSE]


# The QMP client, against a fake QEMU on a unix socket.

class FakeQemu(threading.Thread):
    """QEMU's side of a QMP monitor: the greeting, then for each command the messages ``script`` lists for it
    (None: QEMU goes away instead of answering)."""

    GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}

    def __init__(self, directory, script, greeting=None):
        super().__init__(daemon=True)
        self.script = script
        self.greeting = greeting or self.GREETING
        self.requests = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.settimeout(10)
        # Bound relative to its directory, as QEMU binds it (the path may be longer than a socket's).
        cwd = os.getcwd()
        os.chdir(directory)
        try:
            self.server.bind("qmp.sock")
        finally:
            os.chdir(cwd)
        self.server.listen(1)
        self.start()

    def run(self):
        connection, _address = self.server.accept()
        with connection, connection.makefile("rb") as requests:
            connection.sendall(json.dumps(self.greeting).encode() + b"\r\n")
            for line in requests:
                request = json.loads(line)
                self.requests.append(request)
                messages = self.script.get(request["execute"], [{"return": {}}])
                if messages is None:
                    break
                for message in messages:
                    connection.sendall(json.dumps(message).encode() + b"\r\n")
        self.server.close()


# query-hotpluggable-cpus of `-smp 1,maxcpus=3 -cpu max` on QEMU 7.2: the highest place first, the
# present CPU with its qom-path.
PLACES = [
    {"props": {"core-id": 0, "thread-id": 0, "socket-id": 2}, "vcpus-count": 1, "type": "max-x86_64-cpu"},
    {"props": {"core-id": 0, "thread-id": 0, "socket-id": 1}, "vcpus-count": 1, "type": "max-x86_64-cpu"},
    {"props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "vcpus-count": 1,
     "qom-path": "/machine/unattached/device[0]", "type": "max-x86_64-cpu"},
]


@pytest.fixture
def guest_directory(guest, monkeypatch):
    """A running guest's directory, deeper than a unix socket's path can be."""
    name = "hot-" + "x" * 100
    directory = guest.guest_dir(name)
    os.makedirs(directory)
    assert len(os.path.join(directory, "qmp.sock")) > 107
    monkeypatch.setattr(guest, "read_pid", lambda name: 4242)
    return name, directory


def test_hotplug_cpu_adds_the_lowest_free_place_as_the_cpu_model_qemu_names(guest, guest_directory, capsys):
    name, directory = guest_directory
    qemu = FakeQemu(directory, {
        # An event can come before any reply: it is not the answer.
        "query-hotpluggable-cpus": [{"event": "RTC_CHANGE", "data": {"offset": 0}}, {"return": PLACES}],
        "device_add": [{"return": {}}],
    })
    guest.hotplug_cpu(argparse.Namespace(name=name))
    qemu.join(10)
    assert qemu.requests == [
        {"execute": "qmp_capabilities"},
        {"execute": "query-hotpluggable-cpus"},
        {"execute": "device_add", "arguments": {"driver": "max-x86_64-cpu", "id": "cpu1",
                                                "socket-id": 1, "core-id": 0, "thread-id": 0}},
    ]
    added = json.loads(capsys.readouterr().out)
    assert added == {"instance": name, "device": "cpu1", "driver": "max-x86_64-cpu",
                     "props": {"core-id": 0, "thread-id": 0, "socket-id": 1}, "cpus": 2, "max_cpus": 3}


@pytest.mark.parametrize("script, message, sent", [
    ({"query-hotpluggable-cpus": [{"return": [dict(place, **{"qom-path": "/machine/peripheral/cpu%d" % number})
                                              for number, place in enumerate(PLACES)]}]},
     "all 3 CPUs the guest can hold are present (start it with a larger --max-cpus)",
     ["qmp_capabilities", "query-hotpluggable-cpus"]),
    ({"query-hotpluggable-cpus": [{"return": PLACES}],
      "device_add": [{"error": {"class": "GenericError", "desc": "cpu hotplug with SMI wasn't enabled by firmware"}}]},
     "device_add: cpu hotplug with SMI wasn't enabled by firmware",
     ["qmp_capabilities", "query-hotpluggable-cpus", "device_add"]),
    ({"query-hotpluggable-cpus": [{"return": {"places": 2}}]},
     'query-hotpluggable-cpus: not the list of CPU places QEMU answers: {"places": 2}',
     ["qmp_capabilities", "query-hotpluggable-cpus"]),
    ({"qmp_capabilities": [{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete"}}]},
     "qmp_capabilities: Capabilities negotiation is already complete",
     ["qmp_capabilities"]),
    ({"query-hotpluggable-cpus": [{"return": PLACES}], "device_add": None},
     "QEMU closed its QMP monitor %s/qmp.sock",
     ["qmp_capabilities", "query-hotpluggable-cpus", "device_add"]),
])
def test_hotplug_cpu_failures_are_one_line_from_qemu(guest, guest_directory, script, message, sent):
    name, directory = guest_directory
    qemu = FakeQemu(directory, script)
    with pytest.raises(SystemExit) as failed:
        guest.hotplug_cpu(argparse.Namespace(name=name))
    qemu.join(10)
    assert str(failed.value) == "guest %s: %s" % (name, message.replace("%s", directory))
    assert [request["execute"] for request in qemu.requests] == sent


def test_a_socket_that_is_no_qmp_monitor_is_named(guest, guest_directory):
    name, directory = guest_directory
    FakeQemu(directory, {}, greeting={"hello": "world"})
    with pytest.raises(SystemExit) as failed:
        guest.hotplug_cpu(argparse.Namespace(name=name))
    assert "greets as no QMP monitor does" in str(failed.value)


def test_hotplug_cpu_without_a_monitor_or_a_guest_says_so(guest, guest_directory, monkeypatch):
    name, directory = guest_directory
    with pytest.raises(SystemExit) as failed:
        guest.hotplug_cpu(argparse.Namespace(name=name))
    assert str(failed.value).startswith("guest %s: no QMP monitor answers at %s/qmp.sock: " % (name, directory))
    monkeypatch.setattr(guest, "read_pid", lambda name: None)
    with pytest.raises(SystemExit) as failed:
        guest.hotplug_cpu(argparse.Namespace(name=name))
    assert str(failed.value) == "guest %s is not running" % name
