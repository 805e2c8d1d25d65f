"""Build, start, stop and reach QEMU test hosts (images by build-image.sh, beside this file).

    guest.py build [--release bookworm|trixie] [--firmware bios|uefi|secureboot] [--bootloader grub|systemd-boot]
                                                build-image.sh with the layout of that kind (once per cache)
    guest.py start NAME [--release bookworm|trixie] [--firmware bios|uefi|secureboot]
                        [--bootloader grub|systemd-boot]
                        [--memory MiB] [--cpus N] [--max-cpus M] [--virtio-mem MiB]
                        [--port P] [--accel tcg|kvm] [--timeout S] [--reuse]
                        [--firmware-delay S]                     -> JSON on stdout
    guest.py stop NAME
    guest.py ssh NAME [COMMAND...]
    guest.py wait-login NAME [--timeout S]      until a root login over SSH works
    guest.py hotplug-cpu NAME                   add a CPU to the running guest -> JSON on stdout
    guest.py list

Each guest is a qcow2 overlay on the cached base image of its kind (release, firmware and
bootloader: the image build-image.sh makes for them), QEMU user networking
with SSH forwarded from 127.0.0.1 only, a serial log (the best evidence when a
boot fails), a QMP monitor socket and a pidfile: stop ends exactly the QEMU that start began.
Guests run under TCG by default: /dev/kvm on a nested host (PVM, for one) may
start QEMU but a stock kernel never leaves its decompressor there; --accel kvm
(or KEXEC_ACCEL=kvm) where the host has real VT-x or AMD-V.
Everything lives under $KEXEC_CACHE (default ~/.cache/kernel-kexec): the image,
the SSH key, and guests/NAME/ (disk.qcow2, serial.log, qmp.sock, qemu.pid, instance.json).

The role kernel.kexec.qemu_guest runs this (and build-image.sh) for molecule's create and
destroy; tests/run, demo/run and bench/run run it from the checkout.

--reuse hands out a guest that is already running (same JSON; "reusing" on stderr) instead of
refusing: tests/run runs the molecule scenarios one after the other on one guest, so that each
does not pay for a firmware boot of its own (KEXEC_KEEP_GUEST, qemu_guest_keep in the role). A
running guest started otherwise (release, firmware, bootloader, --max-cpus, --virtio-mem) is
stopped and replaced, so one name never means two kinds of host.

Firmware: bios is SeaBIOS on QEMU's pc machine; uefi is OVMF on q35 with a per-guest copy of its
variable store; secureboot is OVMF's Secure Boot build on q35 with SMM, its variable store holding
Microsoft's keys (so Debian's signed shim is trusted) and Secure Boot enabled. The bootloader is
GRUB (on EFI behind Debian's signed shim), or systemd-boot with kernel-install's entries (EFI only).

Hotplug, for hosts whose CPUs or memory change while they run: --max-cpus M (more than --cpus)
lets hotplug-cpu add CPUs later, up to M, each present but offline in the guest until it is
brought online there. --virtio-mem MiB adds a virtio-mem device of that size, half of it plugged
at boot; Linux's virtio_mem driver adds that half as "System RAM (virtio_mem)".

--firmware-delay S makes SeaBIOS wait S seconds (its boot menu prompt) on every firmware boot of
the guest, as the POST of a real server does; a kexec skips it. bench/run uses it to show what a
kexec reboot saves on such hardware.
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

CACHE = os.environ.get("KEXEC_CACHE", os.path.expanduser("~/.cache/kernel-kexec"))
IMAGES = os.path.join(CACHE, "images")
SSH_KEY = os.path.join(CACHE, "ssh", "id_ed25519")
GUESTS = os.path.join(CACHE, "guests")
# TCG with a 256 MiB translation cache instead of QEMU's 1 GiB. A reboot, firmware or kexec, leaves
# the old boot's translated code in the cache: QEMU flushes it only when the cache is full. The pages
# that code came from are free memory in the new boot, and the kernel zeroes every page it hands out;
# a store to a page that still has translations takes QEMU's self-modifying-code path, byte by byte
# of clear_page's rep stosb. A cache a quarter of the size fills and is flushed several times in each
# boot, so few pages still carry translations when a kexec'd kernel zeroes them, and each kexec boot of
# one guest takes as long as the first instead of up to three times as long. Real hardware has no such
# cache: this only keeps the emulator's artefact out of the tests' timing and out of the benchmark.
TCG_ACCEL = "tcg,thread=multi,tb-size=256"
SSH_OPTIONS = [
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o", "BatchMode=yes",
]
# QEMU's QMP monitor, a unix socket in the guest's directory.
MONITOR = "qmp.sock"
# What a guest was started as, with the value a guest started before a key existed had: a running
# guest is reused only when all of these match.
PLATFORM_DEFAULTS = (("release", "bookworm"), ("firmware", "bios"), ("bootloader", "grub"),
                     ("max_cpus", 0), ("virtio_mem", 0))
# Half of a virtio-mem device is plugged at boot: in whole 128 MiB memory blocks (x86 Linux's size,
# virtio_mem's unit of adding memory), so every plugged MiB is in /proc/iomem and nothing listed there
# is unplugged.
VIRTIO_MEM_UNIT = 256


def guest_dir(name):
    return os.path.join(GUESTS, name)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_pid(name):
    try:
        with open(os.path.join(guest_dir(name), "qemu.pid")) as handle:
            pid = int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            if b"qemu-system" not in handle.read():
                return None  # the pid was reused by something else: not ours to kill
    except FileNotFoundError:
        return None
    return pid


RELEASES = ("bookworm", "trixie")
OVMF = "/usr/share/OVMF"
# firmware: (the image's boot layout, the machine, the code and variable-store files of OVMF)
FIRMWARE = {
    "bios": ("bios", ["-machine", "pc"], None, None),
    "uefi": ("efi", ["-machine", "q35"], "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
    "secureboot": ("efi", ["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"],
                   "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"),
}


BOOTLOADERS = ("grub", "systemd-boot")


def boot_layout(firmware, bootloader="grub"):
    """The build-image.sh BOOT argument of a kind: bios, efi (shim and GRUB) or sdboot (systemd-boot)."""
    layout = FIRMWARE[firmware][0]
    if bootloader == "systemd-boot":
        if layout == "bios":
            raise ValueError("systemd-boot needs EFI firmware (uefi or secureboot), not bios")
        return "sdboot"
    return layout


def base_image(release, firmware, bootloader="grub"):
    """The cached image build-image.sh makes for a guest of this release, firmware and bootloader."""
    boot = boot_layout(firmware, bootloader)
    name = release if (release, boot) == ("bookworm", "bios") else "%s-%s" % (release, boot)
    return os.path.join(IMAGES, name + ".qcow2")


def build(args):
    """Build (once per cache) the image a guest of this kind boots: build-image.sh with its release and layout."""
    try:
        layout = boot_layout(args.firmware, args.bootloader)
    except ValueError as exc:
        sys.exit("build: %s" % exc)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build-image.sh")
    os.execvp("bash", ["bash", script, args.release, layout])


def firmware_options(firmware, directory):
    """QEMU options for the firmware; an EFI guest gets its own copy of the variable store."""
    _boot, machine, code, variables = FIRMWARE[firmware]
    if code is None:
        return list(machine)
    store = os.path.join(directory, "efivars.fd")
    shutil.copyfile(os.path.join(OVMF, variables), store)
    return [*machine,
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=%s" % os.path.join(OVMF, code),
            "-drive", "if=pflash,format=raw,unit=1,file=%s" % store]


def banner_watch(port):
    """The kexec_reboot action's BannerWatch (this collection's plugins/plugin_utils) on 127.0.0.1:port.

    Until the guest's network is up, QEMU's forward accepts a connection and stays silent, and one
    closed unanswered is still handed to sshd later: a probe every second or two of a first boot
    left tens of them, and sshd's MaxStartups throttling then delayed the first real login. The watch
    keeps at most four such connections and closes none of them unanswered.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir,
                        "plugins", "plugin_utils", "_banner_watch.py")
    spec = importlib.util.spec_from_file_location("kexec_banner_watch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BannerWatch("127.0.0.1", port)


def ssh_banner(port, timeout):
    """True once sshd answers with its banner within ``timeout`` (the guest is up, not just QEMU)."""
    with banner_watch(port) as watch:
        return watch.answered(timeout)


def instance(name):
    with open(os.path.join(guest_dir(name), "instance.json")) as handle:
        return json.load(handle)


def firmware_delay(seconds):
    """QEMU options that make SeaBIOS wait ``seconds`` at its boot menu prompt on every firmware boot."""
    if not seconds:
        return []
    return ["-boot", "menu=on,splash-time=%d" % round(seconds * 1000)]


def check_hotplug(cpus, max_cpus, virtio_mem):
    """Why QEMU cannot start a guest with these CPU and memory-hotplug numbers, or None."""
    if cpus < 1:
        return "cpus must be at least 1, not %d" % cpus
    if max_cpus and max_cpus < cpus:
        return "max_cpus %d is fewer than the %d CPUs the guest boots with" % (max_cpus, cpus)
    if virtio_mem < 0 or virtio_mem % VIRTIO_MEM_UNIT:
        return ("virtio_mem must be a multiple of %d MiB (half of it is plugged at boot, in 128 MiB memory "
                "blocks), or 0 for none, not %d" % (VIRTIO_MEM_UNIT, virtio_mem))
    return None


def platform(args):
    """What a guest is started as, by the keys of PLATFORM_DEFAULTS; max_cpus 0 when no CPU can be added."""
    return {"release": args.release, "firmware": args.firmware, "bootloader": args.bootloader,
            "max_cpus": args.max_cpus if args.max_cpus > args.cpus else 0, "virtio_mem": args.virtio_mem}


def started_as(record):
    """What a running guest was started as, from its instance.json."""
    return {key: record.get(key, default) for key, default in PLATFORM_DEFAULTS}


def describe(kind, keys):
    return ", ".join("%s %s" % (key, kind[key]) for key in keys)


def cpu_options(cpus, max_cpus):
    """-smp: the CPUs the guest boots with, and room for more to be added (hotplug-cpu)."""
    if max_cpus > cpus:
        return ["-smp", "%d,maxcpus=%d" % (cpus, max_cpus)]
    return ["-smp", str(cpus)]


def memory_options(memory, virtio_mem):
    """-m, and a virtio-mem device of virtio_mem MiB with half of it plugged at boot.

    Half, so that the device holds unplugged memory beside the plugged: what Linux lists as
    "System RAM (virtio_mem)" is then the plugged part, not the device's whole range, as on a host
    whose hypervisor has not given it everything it could. maxmem leaves room for the device above
    the RAM; QEMU before 5.2 refused a maxmem without a count of slots, one is enough.
    """
    if not virtio_mem:
        return ["-m", str(memory)]
    return ["-m", "%dM,slots=1,maxmem=%dM" % (memory, memory + virtio_mem),
            "-object", "memory-backend-ram,id=vmem0-ram,size=%dM" % virtio_mem,
            "-device", "virtio-mem-pci,id=vmem0,memdev=vmem0-ram,requested-size=%dM" % (virtio_mem // 2)]


def qemu_command(args, directory, port):
    """The QEMU command line of a guest whose files are in ``directory`` (run with it as working directory)."""
    disk = os.path.join(directory, "disk.qcow2")
    accel = ["-accel", "kvm", "-cpu", "host"] if args.accel == "kvm" else ["-accel", TCG_ACCEL, "-cpu", "max"]
    return ["qemu-system-x86_64", "-name", args.name, *firmware_options(args.firmware, directory), *accel,
            *cpu_options(args.cpus, args.max_cpus), *memory_options(args.memory, args.virtio_mem),
            "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % disk,
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22" % port,
            "-device", "virtio-net-pci,netdev=net0",
            *firmware_delay(args.firmware_delay),
            "-display", "none", "-serial", "file:%s" % os.path.join(directory, "serial.log"),
            # Relative: a unix socket's path holds at most 107 bytes, and a cache can be deeper than that.
            "-qmp", "unix:%s,server=on,wait=off" % MONITOR,
            "-pidfile", os.path.join(directory, "qemu.pid"), "-daemonize"]


def start(args):
    try:
        image = base_image(args.release, args.firmware, args.bootloader)
    except ValueError as exc:
        sys.exit("guest %s: %s" % (args.name, exc))
    problem = check_hotplug(args.cpus, args.max_cpus, args.virtio_mem)
    if problem:
        sys.exit("guest %s: %s" % (args.name, problem))
    if not os.path.exists(image):
        sys.exit("no base image at %s: run build-image.sh %s %s (beside guest.py) first"
                 % (image, args.release, boot_layout(args.firmware, args.bootloader)))
    wanted = platform(args)
    if read_pid(args.name) and args.reuse:
        running = started_as(instance(args.name))
        differ = [key for key, _default in PLATFORM_DEFAULTS if running[key] != wanted[key]]
        if differ:
            print("guest %s: replacing the running guest (%s) by one with %s" % (
                args.name, describe(running, differ), describe(wanted, differ)), file=sys.stderr)
            stop_guest(args.name)
    if read_pid(args.name):
        if args.reuse and ssh_banner(instance(args.name)["port"], timeout=30):
            print("guest %s: reusing the running guest" % args.name, file=sys.stderr)
            json.dump(instance(args.name), sys.stdout)
            print()
            return
        sys.exit("guest %s is already running (pid %d)%s" % (
            args.name, read_pid(args.name), " but its sshd does not answer" if args.reuse else ""))
    directory = guest_dir(args.name)
    # Private: whoever can reach the monitor socket controls the guest.
    os.makedirs(directory, mode=0o700, exist_ok=True)
    disk = os.path.join(directory, "disk.qcow2")
    if os.path.exists(disk):
        os.unlink(disk)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, disk], check=True)
    port = args.port or free_port()
    serial = os.path.join(directory, "serial.log")
    subprocess.run(qemu_command(args, directory, port), cwd=directory, check=True)
    data = {"instance": args.name, "address": "127.0.0.1", "port": port, "user": "root",
            "identity_file": SSH_KEY, "serial_log": serial, "pid": read_pid(args.name),
            "monitor": os.path.join(directory, MONITOR), "cpus": args.cpus, **wanted}
    with open(os.path.join(directory, "instance.json"), "w") as handle:
        json.dump(data, handle)
    deadline = time.monotonic() + args.timeout
    with banner_watch(port) as watch:
        while not watch.answered(1.0):
            if not read_pid(args.name):
                sys.exit("guest %s: QEMU exited during boot; see %s" % (args.name, serial))
            if time.monotonic() > deadline:
                stop_guest(args.name)
                sys.exit("guest %s: no SSH banner within %ds; see %s" % (args.name, args.timeout, serial))
            time.sleep(0.5)
    json.dump(data, sys.stdout)
    print()


def stop_guest(name):
    pid = read_pid(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _attempt in range(50):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    disk = os.path.join(guest_dir(name), "disk.qcow2")
    if os.path.exists(disk):
        os.unlink(disk)
    return pid


def stop(args):
    pid = stop_guest(args.name)
    print("guest %s stopped%s" % (args.name, " (pid %d)" % pid if pid else " (was not running)"))


def ssh_command(data, command):
    return ["ssh", "-i", data["identity_file"], "-p", str(data["port"]), *SSH_OPTIONS, "root@127.0.0.1", *command]


def ssh(args):
    os.execvp("ssh", ssh_command(instance(args.name), args.command))


def wait_login(args):
    """Return once a root login over SSH runs ``true``, within --timeout seconds.

    sshd answers (what start waits for) well before the first login completes: pam_systemd starts
    root's user manager first, tens of seconds on a busy TCG host. A client that connects with a
    short timeout in between fails; after one login the next ones are quick.
    """
    if not read_pid(args.name):
        sys.exit("guest %s is not running" % args.name)
    data = instance(args.name)
    started = time.monotonic()
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        try:
            done = subprocess.run(ssh_command(data, ["true"]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=max(1, deadline - time.monotonic()),
                                  check=False).returncode == 0
        except subprocess.TimeoutExpired:
            break
        if done:
            print("guest %s: root login over SSH after %.0f s" % (args.name, time.monotonic() - started))
            return
        time.sleep(2)
    sys.exit("guest %s: no root login over SSH within %ds; see %s" % (args.name, args.timeout, data["serial_log"]))


class MonitorError(Exception):
    """What went wrong talking to a guest's QMP monitor, in one line."""


class Monitor:
    """A running guest's QMP monitor: JSON over its unix socket, standard library only.

    QEMU greets with {"QMP": ...}, takes qmp_capabilities, then one command at a time; each reply
    is one line, {"return": ...} or {"error": {"desc": ...}}, and events ({"event": ...}) may come
    in between. Every failure is a MonitorError with one line saying what went wrong.
    """

    def __init__(self, directory, timeout=30):
        self._path = os.path.join(directory, MONITOR)
        self._directory = None
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(timeout)
        self._replies = self._socket.makefile("rb")
        try:
            self._directory = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            # Through the directory's descriptor: the socket's own path may be longer than a unix socket allows.
            self._socket.connect("/proc/self/fd/%d/%s" % (self._directory, MONITOR))
        except OSError as exc:
            self.close()
            raise MonitorError("no QMP monitor answers at %s: %s" % (self._path, exc.strerror or exc)) from None
        try:
            if "QMP" not in self._receive():
                raise MonitorError("%s greets as no QMP monitor does" % self._path)
            self.execute("qmp_capabilities")
        except MonitorError:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def close(self):
        self._replies.close()
        self._socket.close()
        if self._directory is not None:
            os.close(self._directory)
            self._directory = None

    def _receive(self):
        try:
            line = self._replies.readline()
        except OSError as exc:
            raise MonitorError("reading %s: %s" % (self._path, exc.strerror or exc)) from None
        if not line:
            raise MonitorError("QEMU closed its QMP monitor %s" % self._path)
        try:
            reply = json.loads(line)
        except ValueError:
            raise MonitorError("%s sent what is not JSON: %r" % (self._path, line[:80])) from None
        if not isinstance(reply, dict):
            raise MonitorError("%s sent what is not a QMP message: %r" % (self._path, line[:80]))
        return reply

    def execute(self, command, **arguments):
        """Run a QMP command; its "return" value, or MonitorError with QEMU's description."""
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        try:
            self._socket.sendall(json.dumps(request).encode() + b"\r\n")
        except OSError as exc:
            raise MonitorError("writing %s: %s" % (self._path, exc.strerror or exc)) from None
        while True:
            reply = self._receive()
            if "event" in reply:
                continue
            if "error" in reply:
                error = reply["error"]
                raise MonitorError("%s: %s" % (command, error.get("desc", error) if isinstance(error, dict) else error))
            if "return" not in reply:
                raise MonitorError("%s: a reply without a return value: %s" % (command, json.dumps(reply)[:80]))
            return reply["return"]


# A CPU's place in QEMU's topology, outermost first: the next CPU to add is the lowest free place.
TOPOLOGY = ("node-id", "drawer-id", "book-id", "socket-id", "die-id", "cluster-id", "core-id", "thread-id")


def add_cpu(monitor):
    """Plug a CPU into the first free place of query-hotpluggable-cpus; returns what was added."""
    places = monitor.execute("query-hotpluggable-cpus")
    if not isinstance(places, list) or not all(
            isinstance(place, dict) and isinstance(place.get("props"), dict) and "type" in place for place in places):
        raise MonitorError("query-hotpluggable-cpus: not the list of CPU places QEMU answers: %s" % json.dumps(places)[:80])
    places.sort(key=lambda place: tuple(place["props"].get(key, -1) for key in TOPOLOGY))
    free = [place for place in places if "qom-path" not in place]
    if not free:
        raise MonitorError("all %d CPUs the guest can hold are present (start it with a larger --max-cpus)"
                           % len(places))
    place = free[0]
    # The type QEMU names for the place is the -cpu model's (max-x86_64-cpu under TCG, host-... under KVM).
    device = "cpu%d" % places.index(place)
    monitor.execute("device_add", driver=place["type"], id=device, **place["props"])
    return {"device": device, "driver": place["type"], "props": place["props"],
            "cpus": len(places) - len(free) + 1, "max_cpus": len(places)}


def hotplug_cpu(args):
    """Add a CPU to a running guest (started with --max-cpus); the guest sees it present, and offline.

    Linux leaves a hot-added CPU offline unless a udev rule brings it up (Debian has none):
    ``echo 1 > /sys/devices/system/cpu/cpuN/online`` in the guest does.
    """
    if not read_pid(args.name):
        sys.exit("guest %s is not running" % args.name)
    try:
        with Monitor(guest_dir(args.name)) as monitor:
            added = add_cpu(monitor)
    except MonitorError as exc:
        sys.exit("guest %s: %s" % (args.name, exc))
    json.dump({"instance": args.name, **added}, sys.stdout)
    print()


def list_guests(_args):
    for name in sorted(os.listdir(GUESTS)) if os.path.isdir(GUESTS) else []:
        pid = read_pid(name)
        print("%s\t%s" % (name, "running pid %d" % pid if pid else "stopped"))


def add_kind_arguments(parser):
    parser.add_argument("--release", choices=RELEASES, default="bookworm")
    parser.add_argument("--firmware", choices=sorted(FIRMWARE), default="bios")
    parser.add_argument("--bootloader", choices=BOOTLOADERS, default="grub")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p_build = sub.add_parser("build", help="build the image of a host kind (a no-op when it is cached)")
    add_kind_arguments(p_build)
    p_build.set_defaults(func=build)
    p_start = sub.add_parser("start")
    p_start.add_argument("name")
    add_kind_arguments(p_start)
    p_start.add_argument("--memory", type=int, default=2048)
    p_start.add_argument("--cpus", type=int, default=2)
    p_start.add_argument("--max-cpus", type=int, default=0, metavar="M",
                         help="CPUs the guest can hold, for hotplug-cpu to add up to (default: --cpus, none to add)")
    p_start.add_argument("--virtio-mem", type=int, default=0, metavar="MiB",
                         help="a virtio-mem device of this size, half plugged at boot (a multiple of 256; default: none)")
    p_start.add_argument("--port", type=int, default=0)
    p_start.add_argument("--accel", choices=["tcg", "kvm"], default=os.environ.get("KEXEC_ACCEL", "tcg"))
    p_start.add_argument("--timeout", type=int, default=300)
    p_start.add_argument("--reuse", action="store_true", help="print the running guest's JSON if it is up")
    p_start.add_argument("--firmware-delay", type=float, default=0, metavar="S",
                         help="seconds SeaBIOS waits at every firmware boot (default: none)")
    p_start.set_defaults(func=start)
    p_stop = sub.add_parser("stop")
    p_stop.add_argument("name")
    p_stop.set_defaults(func=stop)
    p_ssh = sub.add_parser("ssh")
    p_ssh.add_argument("name")
    p_ssh.add_argument("command", nargs=argparse.REMAINDER)
    p_ssh.set_defaults(func=ssh)
    p_wait = sub.add_parser("wait-login")
    p_wait.add_argument("name")
    p_wait.add_argument("--timeout", type=int, default=300)
    p_wait.set_defaults(func=wait_login)
    p_hotplug = sub.add_parser("hotplug-cpu", help="add a CPU to a running guest started with --max-cpus")
    p_hotplug.add_argument("name")
    p_hotplug.set_defaults(func=hotplug_cpu)
    sub.add_parser("list").set_defaults(func=list_guests)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
