"""The role kernel.kexec.qemu_guest and the playbooks molecule_qemu_create/destroy, run by ansible-playbook
with the guest launcher (which also builds the images) replaced by a fake that records its arguments: what the role
asks of them, the instance config it writes for molecule, reuse, keep, and failures. No QEMU is started.

The collection is copied into a temporary collections path with roles/qemu_guest/files/guest.py replaced;
everything else (tasks, defaults, argument specs, playbooks) runs as shipped.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# Stands in for guest.py: logs its argv and KEXEC_CACHE, answers as the real one does. FAKE_RUNNING names the
# guests already running; FAKE_FAIL the one whose start fails.
FAKE_LAUNCHER = r'''
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "cache": os.environ.get("KEXEC_CACHE")}) + "\n")
action, name = sys.argv[1], sys.argv[2]
if action == "build":
    if os.environ.get("FAKE_BUILD_FAIL"):
        sys.exit("build-image.sh needs root (mmdebstrap, losetup, mount)")
    print("image up to date")
    sys.exit(0)
running = os.environ.get("FAKE_RUNNING", "").split()
if action == "start":
    if name == os.environ.get("FAKE_FAIL"):
        sys.exit("guest %s: no SSH banner within 300s; see %s/guests/%s/serial.log" % (name, os.environ["KEXEC_CACHE"], name))
    if name in running and "--reuse" in sys.argv:
        print("guest %s: reusing the running guest" % name, file=sys.stderr)
    port = int(sys.argv[sys.argv.index("--port") + 1]) or 40000 + len(name)
    print(json.dumps({"instance": name, "address": "127.0.0.1", "port": port, "user": "root",
                      "identity_file": "/cache/ssh/id_ed25519", "serial_log": "/cache/guests/%s/serial.log" % name,
                      "pid": 4242}))
elif action == "stop":
    print("guest %s stopped%s" % (name, " (pid 4242)" if name in running else " (was not running)"))
'''


@pytest.fixture
def collections(tmp_path):
    """A collections path holding kernel.kexec with the fake launcher."""
    dest = tmp_path / "collections" / "ansible_collections" / "kernel" / "kexec"
    for part in ("roles/qemu_guest", "playbooks", "meta"):
        shutil.copytree(os.path.join(REPO, part), str(dest / part))
    (dest / "roles/qemu_guest/files/guest.py").write_text(FAKE_LAUNCHER)
    return tmp_path / "collections"


def run(tmp_path, collections, playbook, platforms, **env):
    """Run kernel.kexec.PLAYBOOK as molecule would; returns (completed process, launcher calls, instance config)."""
    config = tmp_path / "instance_config.yml"
    log = tmp_path / "launcher.log"
    log.write_text("")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("KEXEC_", "ANSIBLE_"))}
    environ.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                   KEXEC_CACHE=str(tmp_path / "cache"), FAKE_LOG=str(log))
    environ.update(env)
    extra = {"molecule_yml": {"platforms": platforms}, "molecule_instance_config": str(config)}
    done = subprocess.run([ANSIBLE_PLAYBOOK, "kernel.kexec." + playbook, "-e", json.dumps(extra)],
                          env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    written = yaml.safe_load(config.read_text()) if config.exists() else None
    return done, calls, written


def task_lines(stdout, task):
    """The result lines (ok:, changed:, failed: ...) the default callback printed under the role's task TASK."""
    lines, inside = [], False
    for line in stdout.splitlines():
        if line.startswith(("TASK [", "PLAY RECAP")):
            inside = line.startswith("TASK [kernel.kexec.qemu_guest : %s]" % task)
        elif inside and line.split(":")[0] in ("ok", "changed", "failed", "skipping", "fatal"):
            lines.append(line)
    return lines


def test_create_starts_each_platform_and_writes_the_instance_config(tmp_path, collections):
    platforms = [{"name": "small", "memory": 1024, "cpus": 1, "ssh_port": 2222, "accel": "kvm", "groups": ["web"]},
                 {"name": "plain"}]
    done, calls, written = run(tmp_path, collections, "molecule_qemu_create", platforms)
    assert done.returncode == 0, done.stdout
    starts = [call["argv"] for call in calls if call["argv"][0] == "start"]
    assert starts == [
        ["start", "small", "--memory", "1024", "--cpus", "1", "--port", "2222", "--timeout", "300",
         "--release", "bookworm", "--firmware", "bios", "--bootloader", "grub", "--accel", "kvm", "--reuse"],
        ["start", "plain", "--memory", "2048", "--cpus", "2", "--port", "0", "--timeout", "300",
         "--release", "bookworm", "--firmware", "bios", "--bootloader", "grub", "--reuse"],
    ]
    assert [call["argv"] for call in calls if call["argv"][0] == "build"] == [
        ["build", "--release", "bookworm", "--firmware", "bios", "--bootloader", "grub"]] * 2
    assert [call["argv"] for call in calls if call["argv"][0] == "wait-login"] == [
        ["wait-login", "small", "--timeout", "300"], ["wait-login", "plain", "--timeout", "300"]]
    assert {call["cache"] for call in calls} == {str(tmp_path / "cache")}
    assert [(guest["instance"], guest["port"], guest["user"]) for guest in written] == [
        ("small", 2222, "root"), ("plain", 40005, "root")]
    assert all(guest["address"] == "127.0.0.1" and guest["identity_file"] for guest in written)
    assert task_lines(done.stdout, "Start the guests") == [
        "changed: [localhost] => (item=small)", "changed: [localhost] => (item=plain)"]


def test_each_host_kind_gets_its_image_once_and_its_firmware(tmp_path, collections):
    platforms = [{"name": "efi", "release": "trixie", "firmware": "uefi"},
                 {"name": "sb", "release": "trixie", "firmware": "secureboot"},
                 {"name": "sd", "release": "trixie", "firmware": "uefi", "bootloader": "systemd-boot"},
                 {"name": "old"}]
    done, calls, _written = run(tmp_path, collections, "molecule_qemu_create", platforms)
    assert done.returncode == 0, done.stdout
    # Each platform's image is built for its kind, then it starts as that kind (the image each kind boots:
    # test_guest.py).
    builds = [call["argv"][1:] for call in calls if call["argv"][0] == "build"]
    kinds = [call["argv"][call["argv"].index("--release"):call["argv"].index("--bootloader") + 2]
             for call in calls if call["argv"][0] == "start"]
    assert builds == kinds == [["--release", "trixie", "--firmware", "uefi", "--bootloader", "grub"],
                               ["--release", "trixie", "--firmware", "secureboot", "--bootloader", "grub"],
                               ["--release", "trixie", "--firmware", "uefi", "--bootloader", "systemd-boot"],
                               ["--release", "bookworm", "--firmware", "bios", "--bootloader", "grub"]]


def test_the_hotplug_keys_reach_the_launcher_only_when_a_platform_sets_them(tmp_path, collections):
    platforms = [{"name": "grows", "cpus": 1, "max_cpus": 2, "virtio_mem": 512}, {"name": "plain"}]
    done, calls, _written = run(tmp_path, collections, "molecule_qemu_create", platforms)
    assert done.returncode == 0, done.stdout
    starts = [call["argv"] for call in calls if call["argv"][0] == "start"]
    assert starts[0][starts[0].index("--cpus"):starts[0].index("--cpus") + 2] == ["--cpus", "1"]
    assert starts[0][-5:] == ["--max-cpus", "2", "--virtio-mem", "512", "--reuse"]
    # Absent, guest.py's defaults (none to add, no device) hold, as for a guest started before the keys existed.
    assert "--max-cpus" not in starts[1] and "--virtio-mem" not in starts[1]


@pytest.mark.parametrize("platform", [{"name": "few", "cpus": 2, "max_cpus": 1}, {"name": "none", "cpus": 0},
                                      {"name": "text", "max_cpus": "4"}, {"name": "odd", "virtio_mem": 100},
                                      {"name": "less", "virtio_mem": -256}, {"name": "unit", "virtio_mem": "512M"}])
def test_hotplug_numbers_qemu_cannot_start_are_refused_before_any_build(tmp_path, collections, platform):
    done, calls, _written = run(tmp_path, collections, "molecule_qemu_create", [platform])
    assert done.returncode != 0
    assert "failed: [localhost] (item=%s)" % platform["name"] in done.stdout, done.stdout
    assert "max_cpus (0, or at least cpus), virtio_mem (MiB, a multiple of 256)" in " ".join(done.stdout.split())
    assert calls == []


@pytest.mark.parametrize("platform", [{"name": "x", "firmware": "coreboot"}, {"name": "x", "release": "sid"},
                                      {"name": "x", "firmware": ["uefi"]}, {"name": "x", "bootloader": "lilo"},
                                      {"name": "x", "bootloader": "systemd-boot"}])
def test_an_unknown_release_or_firmware_is_refused_before_any_build(tmp_path, collections, platform):
    done, calls, _written = run(tmp_path, collections, "molecule_qemu_create", [platform])
    assert done.returncode != 0
    assert "release bookworm or trixie, firmware bios, uefi or secureboot, and bootloader grub or systemd-boot" in \
        " ".join(done.stdout.split())
    assert calls == []


def test_a_running_guest_is_reused_and_reported_unchanged(tmp_path, collections):
    done, calls, written = run(tmp_path, collections, "molecule_qemu_create", [{"name": "shared"}], FAKE_RUNNING="shared")
    assert done.returncode == 0, done.stdout
    assert [guest["instance"] for guest in written] == ["shared"]
    assert task_lines(done.stdout, "Start the guests") == ["ok: [localhost] => (item=shared)"], done.stdout


def test_qemu_guest_reuse_false_is_passed_on(tmp_path, collections):
    # Set as molecule.yml's provisioner.inventory.group_vars would: a variable of the group all.
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"qemu_guest_reuse": False}}}))
    done, calls, _written = run(tmp_path, collections, "molecule_qemu_create", [{"name": "fresh"}],
                                ANSIBLE_INVENTORY=str(inventory))
    assert done.returncode == 0, done.stdout
    assert "--reuse" not in next(call["argv"] for call in calls if call["argv"][0] == "start")


def serial_log(tmp_path, guest, text):
    """A guest's serial console as the launcher leaves it in the cache."""
    serial = tmp_path / "cache" / "guests" / guest / "serial.log"
    serial.parent.mkdir(parents=True)
    serial.write_text(text)
    return serial


def test_a_failed_start_shows_the_serial_console_and_the_launchers_error(tmp_path, collections):
    serial = serial_log(tmp_path, "broken", "SeaBIOS\nBooting from Hard Disk...\nKernel panic - not syncing: VFS\n")
    done, _calls, written = run(tmp_path, collections, "molecule_qemu_create", [{"name": "broken"}], FAKE_FAIL="broken")
    assert done.returncode != 0
    assert "Kernel panic - not syncing: VFS" in done.stdout
    assert "no SSH banner within 300s; see %s" % serial in done.stdout
    assert written is None


def test_a_failed_image_build_starts_nothing_and_shows_no_old_console(tmp_path, collections):
    serial_log(tmp_path, "old", "a boot of some earlier run\n")
    done, calls, written = run(tmp_path, collections, "molecule_qemu_create", [{"name": "old"}], FAKE_BUILD_FAIL="1")
    assert done.returncode != 0
    assert "build-image.sh needs root" in done.stdout
    assert "a boot of some earlier run" not in done.stdout
    assert [call["argv"][0] for call in calls] == ["build"] and written is None


def test_bad_platforms_are_refused_before_anything_runs(tmp_path, collections):
    platforms = [{"name": "../escape"}, {"memory": 2048}, {"name": "memory", "memory": "2G"},
                 {"name": "accel", "accel": "hvf"}, {"name": "fine"}]
    done, calls, written = run(tmp_path, collections, "molecule_qemu_create", platforms)
    assert done.returncode != 0
    for label in ("../escape", "(no name)", "memory", "accel"):
        assert "failed: [localhost] (item=%s)" % label in done.stdout, done.stdout
    assert "each platform needs a name" in done.stdout
    assert "ok: [localhost] => (item=fine)" in done.stdout
    assert calls == [] and written is None


def test_destroy_stops_each_guest_and_empties_the_instance_config(tmp_path, collections):
    done, calls, written = run(tmp_path, collections, "molecule_qemu_destroy", [{"name": "one"}, {"name": "two"}],
                               FAKE_RUNNING="one")
    assert done.returncode == 0, done.stdout
    assert [call["argv"] for call in calls] == [["stop", "one"], ["stop", "two"]]
    assert written == []


def test_destroy_keeps_the_guests_with_kexec_keep_guest(tmp_path, collections):
    done, calls, written = run(tmp_path, collections, "molecule_qemu_destroy", [{"name": "one"}], KEXEC_KEEP_GUEST="1")
    assert done.returncode == 0, done.stdout
    assert calls == []
    assert written == []
