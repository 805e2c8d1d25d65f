"""Benchmark: kernel.kexec.kexec_reboot against the reboots users run today, phase by phase.

On one QEMU guest, in one run, after one unmeasured warm-up reboot, it
alternates (N rounds):
  kexec_reboot   kernel.kexec.kexec_reboot (loads the default kernel itself)
  builtin        ansible.builtin.reboot (firmware reboot)
  kexec-tools    kexec -s -l + ansible.builtin.reboot with reboot_command 'systemctl kexec'
and prints each method's median wall time, the ratios, and where each round's
time went. The phases come from the controller's clock and from the guest's
serial console, every line stamped on arrival here:

  target     playbook start to the first shutdown line on the console (the module's
             run on the target: load, checks, the fork of the reboot)
  shutdown   to "reboot: Restarting system" / "kexec_core: Starting new kernel"
  handover   to the new kernel's "Linux version" line: firmware and GRUB for a
             firmware reboot, the kernel hand-over for a kexec
  boot       to "Started ssh.service" on the new boot's console (sshd listens: Type=notify)
  login      to the first SSH login the new boot accepts (ssh ... true, one try at a time)
  notice     that login to the reboot task's return (the next task stamps the clock);
             negative when the task noticed the new boot before the bench's own login completed

    bash bench/run [reboot] [--rounds 3] [--methods ...] [--firmware-delay S]

--firmware-delay S makes SeaBIOS wait S seconds on every firmware boot, as a
server's POST does (the kexec routes skip it); the plain run is the headline.
Needs the image and venv tests/setup.sh provides; starts and stops its own guest.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GUEST = "kexec-bench"
# name: (playbook, extra vars). The first three run by default; --methods picks others.
METHODS = {
    "kexec_reboot": ("kexec_reboot.yml", {}),
    "builtin": ("builtin_reboot.yml", {}),
    "kexec-tools": ("kexec_tools_reboot.yml", {}),
    "kexec_reboot-legacy": ("kexec_reboot.yml", {"bench_method": "legacy"}),
    "kexec_reboot-file": ("kexec_reboot.yml", {"bench_method": "file"}),
}
DEFAULT_METHODS = ("kexec_reboot", "builtin", "kexec-tools")
# A round takes 1.5-4 minutes here; one past this is a hang (builtin on a stale control master).
RUN_TIMEOUT = 480
PHASES = ("target", "shutdown", "handover", "boot", "login", "notice")

# Console lines that mark the phases (systemd's status lines carry colour codes; search, not match).
SHUTDOWN_STARTS = re.compile(r"\] (Stopped|Removed slice)|^\s*Stopping ")
HANDOVER = re.compile(r"reboot: Restarting system|kexec_core: Starting new kernel")
NEW_KERNEL = re.compile(r"\] Linux version ")
SSHD_STARTED = re.compile(r"\] Started .*ssh\.service")


class SerialTail(threading.Thread):
    """Stamps every line the guest writes to its serial log with this host's clock."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.lines = []  # (time, text), only ever appended to
        self.stop = threading.Event()
        self.searches = {}  # (pattern, after, before) -> (lines read so far, the stamp found or None)

    def run(self):
        with open(self.path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            pending = b""
            while not self.stop.is_set():
                chunk = handle.read()
                if chunk:
                    now = time.time()
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    self.lines.extend((now, line.decode("utf-8", "replace")) for line in complete)
                else:
                    self.stop.wait(0.05)

    def first(self, pattern, after, before=None):
        """When the first line matching ``pattern`` arrived after ``after`` (and before ``before``).

        The same search asked again (LoginProbe asks every 50 ms) reads only the lines that came
        since it last looked: the lines before those did not match, and their answer cannot change.
        """
        key = (pattern, after, before)
        read, found = self.searches.get(key, (0, None))
        if found is None:
            new = self.lines[read:]
            for stamp, text in new:
                if stamp >= after and (before is None or stamp <= before) and pattern.search(text):
                    found = stamp
                    break
            self.searches[key] = (read + len(new), found)
        return found


class LoginProbe(threading.Thread):
    """Each time the console says sshd started, logs in (ssh ... true) until a login succeeds, and
    records when that first login of the boot completed.

    Nothing else probes the guest: a banner probe every fraction of a second costs the guest a
    fork and re-exec of sshd each, and on a slow guest piles up until sshd refuses real logins.
    So attempts run one at a time, except that one still waiting after a second gets a fresh one
    beside it (three at most), as kexec_reboot's own probes do: sshd listens before DHCP has given
    eth0 its address (allow-hotplug), and a connection begun in that gap is answered only at QEMU's
    next retransmission, seconds later. None is cut short: a slow sshd keeps its time.
    """

    ATTEMPT_EVERY = 1.0
    MAX_ATTEMPTS = 3

    def __init__(self, info, serial):
        super().__init__(daemon=True)
        self.info = info
        self.serial = serial
        self.logins = []  # times the first login of a boot completed
        self.stop = threading.Event()

    def login(self):
        """Attempts until one logs in (True) or the probe is stopped (False).

        Every child here gets /dev/null as stdin: ssh makes its stdin non-blocking and, killed, leaves
        it so; a shared stdin then makes the next ansible-playbook refuse to start ("requires blocking IO").
        """
        command = ["ssh", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                   "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-o", "ControlPath=none",
                   "-i", self.info["identity_file"], "-p", str(self.info["port"]), "root@127.0.0.1", "true"]
        running = []  # (process, started)
        last_start = 0.0
        try:
            while not self.stop.is_set():
                now = time.time()
                for process, started in running:
                    if process.poll() == 0:
                        return True
                    if process.poll() is None and now - started > 60:
                        process.kill()
                running = [(p, t) for p, t in running if p.poll() is None]
                due = last_start + (self.ATTEMPT_EVERY if running else 0.2)
                if len(running) < self.MAX_ATTEMPTS and now >= due:
                    running.append((subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL), now))
                    last_start = now
                self.stop.wait(0.02)
            return False
        finally:
            for process, _started in running:
                if process.poll() is None:
                    process.kill()
                process.wait()

    def run(self):
        seen = time.time()
        while not self.stop.is_set():
            started = self.serial.first(SSHD_STARTED, seen)
            if started is None:
                self.stop.wait(0.05)
                continue
            seen = started + 1e-6
            if self.login():
                self.logins.append(time.time())

    def first_login(self, after):
        logins = [t for t in self.logins if t >= after]
        return logins[0] if logins else None


def guest(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "roles", "qemu_guest", "files", "guest.py"), *args],
                          stdin=subprocess.DEVNULL, check=True, capture_output=True, text=True).stdout


def private_inventory():
    """A path for the inventory in a directory of its own (mode 0700), not a fixed name in a shared /tmp."""
    return os.path.join(tempfile.mkdtemp(prefix="kexec-bench."), "inventory.ini")


def write_inventory(info, path):
    with open(path, "w") as handle:
        handle.write("[bench]\n%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root "
                     "ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3 "
                     "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
                     % (GUEST, info["port"], info["identity_file"]))


class RunFailed(Exception):
    pass


def run_playbook(inventory, method):
    """(start, end, task_done, task_elapsed, result line): wall clock (time.time) of the run and of
    the task's end.

    Raises RunFailed when the playbook fails or hangs past RUN_TIMEOUT (ansible.builtin.reboot
    can wait for ever on a stale SSH control master: ansible/ansible#84573).
    """
    playbook, extra_vars = METHODS[method]
    start = time.time()
    try:
        proc = subprocess.run(["ansible-playbook", "-i", inventory, "-e", json.dumps(extra_vars),
                               os.path.join(HERE, playbook)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RunFailed("hung for %ds" % RUN_TIMEOUT)
    end = time.time()
    if proc.returncode != 0:
        raise RunFailed("failed after %.0fs (rc %s):\n%s%s" % (
            end - start, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    match = re.search(r"BENCH elapsed=([0-9.]+) done=([0-9.]+)([^\"]*)", proc.stdout)
    if not match:
        raise RunFailed("%s printed no BENCH line:\n%s" % (playbook, proc.stdout[-3000:]))
    return start, end, float(match.group(2)), float(match.group(1)), match.group(3).strip()


# How long after a round the bench waits for its own first login of the new boot: the task may notice
# the boot before that login completes.
LOGIN_AFTER_TASK = 30


def phases(start, done, serial, probe, wait=time.sleep):
    """Seconds per phase of one round (None where a mark was not seen), from the stamps."""
    marks = [start]
    shutdown = serial.first(SHUTDOWN_STARTS, start, done)
    handover = serial.first(HANDOVER, shutdown, done) if shutdown else None
    kernel = serial.first(NEW_KERNEL, handover, done) if handover else None
    sshd = serial.first(SSHD_STARTED, kernel, done) if kernel else None
    login = probe.first_login(sshd) if sshd else None
    waited = 0.0
    while sshd and login is None and waited < LOGIN_AFTER_TASK:
        wait(0.1)
        waited += 0.1
        login = probe.first_login(sshd)
    marks += [shutdown, handover, kernel, sshd, login, done]
    return {name: (marks[i + 1] - marks[i] if marks[i] is not None and marks[i + 1] is not None else None)
            for i, name in enumerate(PHASES)}


def seconds(value, width=6):
    return ("%*.1f" % (width, value)) if value is not None else "%*s" % (width, "n/a")


def median_or_none(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def start_guest(firmware_delay):
    args = ["start", GUEST]
    if firmware_delay:
        args += ["--firmware-delay", str(firmware_delay)]
    return json.loads(guest(*args))


def main():
    parser = argparse.ArgumentParser(description="kexec_reboot vs ansible.builtin.reboot on a QEMU guest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(DEFAULT_METHODS),
                        help="what to alternate; the first is the base of the ratios (default: %(default)s)")
    parser.add_argument("--firmware-delay", type=float, default=0, metavar="S",
                        help="seconds SeaBIOS waits on every firmware boot, as a server's POST does")
    args = parser.parse_args()
    inventory = private_inventory()
    info = start_guest(args.firmware_delay)
    samples = {name: [] for name in args.methods}
    failures = {name: 0 for name in args.methods}
    try:
        write_inventory(info, inventory)
        serial = SerialTail(info["serial_log"])
        serial.start()
        probe = LoginProbe(info, serial)
        probe.start()
        print("warm-up: one unmeasured firmware reboot (the first after a cold boot is the slowest)", flush=True)
        run_playbook(inventory, "builtin")
        print("%-7s %-19s %6s  %s  result" % ("round", "method", "wall", "  ".join("%8s" % p for p in PHASES)))
        for round_number in range(1, args.rounds + 1):
            for name in args.methods:
                try:
                    start, end, done, task_elapsed, said = run_playbook(inventory, name)
                except RunFailed as exc:
                    failures[name] += 1
                    print("round %d %-19s FAILED: %s" % (round_number, name, exc), flush=True)
                    serial.stop.set()
                    probe.stop.set()
                    guest("stop", GUEST)  # a clean start for the next run
                    info = start_guest(args.firmware_delay)
                    write_inventory(info, inventory)
                    serial = SerialTail(info["serial_log"])
                    serial.start()
                    probe = LoginProbe(info, serial)
                    probe.start()
                    continue
                times = phases(start, done, serial, probe)
                samples[name].append((end - start, times))
                print("%-7d %-19s %6.1f  %s  task %ss %s" % (
                    round_number, name, end - start, "  ".join(seconds(times[p], 8) for p in PHASES),
                    task_elapsed, said), flush=True)
        serial.stop.set()
        probe.stop.set()
    finally:
        guest("stop", GUEST)
        shutil.rmtree(os.path.dirname(inventory), ignore_errors=True)
    report(args, samples, failures)


def report(args, samples, failures):
    print("\nmedians over %d rounds (TCG guest, 2 vCPU, 2 GiB%s)" % (
        args.rounds, ", firmware delay %gs" % args.firmware_delay if args.firmware_delay else ""))
    print("%-19s %6s  %s  %s" % ("method", "wall", "  ".join("%8s" % p for p in PHASES), "slowest  failed"))
    walls = {}
    for name, rows in samples.items():
        if not rows:
            print("%-19s no successful run (%d failed)" % (name, failures[name]))
            continue
        walls[name] = statistics.median(row[0] for row in rows)
        medians = [median_or_none(row[1][p] for row in rows) for p in PHASES]
        print("%-19s %6.1f  %s  %7.1f  %d" % (name, walls[name], "  ".join(seconds(m, 8) for m in medians),
                                              max(row[0] for row in rows), failures[name]))
    print()
    names = list(walls)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            print("%s / %s = %.2f" % (first, second, walls[first] / walls[second]))


if __name__ == "__main__":
    main()
