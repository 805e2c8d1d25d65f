"""Benchmark: kernel.kexec.kexec_reboot against the reboots users run today.

On one QEMU guest, in one run, after one unmeasured warm-up reboot, it
alternates (N rounds):
  kexec_reboot   kernel.kexec.kexec_reboot (loads the default kernel itself)
  builtin        ansible.builtin.reboot (firmware reboot)
  kexec-tools    kexec -s -l + ansible.builtin.reboot with reboot_command 'systemctl kexec'
and prints each method's median wall time, the ratios to kexec_reboot, and the
detection latency: seconds from the guest's sshd answering again to the
reboot task returning (the next task stamps the controller's clock). A
background prober reads the SSH banner every 0.1 s.

    bash bench/run [--rounds 3]

Needs the image and venv tests/setup.sh provides; starts and stops its own guest.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
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
RUN_TIMEOUT = 900


class BannerProbe(threading.Thread):
    """Records (time, up) every time the SSH banner appears or disappears."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.events = []
        self.stop = threading.Event()

    def up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.settimeout(0.5)
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def run(self):
        state = None
        while not self.stop.is_set():
            now = time.time()
            current = self.up()
            if current != state:
                self.events.append((now, current))
                state = current
            self.stop.wait(0.1)

    def last_up_before(self, end):
        """When sshd came back for the last time before ``end``."""
        ups = [t for t, is_up in self.events if is_up and t <= end]
        return ups[-1] if ups else None


def guest(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tests", "qemu", "guest.py"), *args],
                          check=True, capture_output=True, text=True).stdout


def write_inventory(info, path):
    with open(path, "w") as handle:
        handle.write("[bench]\n%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root "
                     "ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3 "
                     "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
                     % (GUEST, info["port"], info["identity_file"]))


class RunFailed(Exception):
    pass


def run_playbook(inventory, method):
    """(start, end, task_done, task_elapsed): wall clock (time.time) of the run and of the task's end.

    Raises RunFailed when the playbook fails or hangs past RUN_TIMEOUT (ansible.builtin.reboot
    can wait for ever on a stale SSH control master: ansible/ansible#84573).
    """
    playbook, extra_vars = METHODS[method]
    start = time.time()
    try:
        proc = subprocess.run(["ansible-playbook", "-i", inventory, "-e", json.dumps(extra_vars),
                               os.path.join(HERE, playbook)],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RunFailed("hung for %ds" % RUN_TIMEOUT)
    end = time.time()
    if proc.returncode != 0:
        raise RunFailed("failed after %.0fs:\n%s" % (end - start, proc.stdout[-2000:]))
    match = re.search(r"BENCH elapsed=([0-9.]+) done=([0-9.]+)", proc.stdout)
    if not match:
        raise RunFailed("%s printed no BENCH line:\n%s" % (playbook, proc.stdout[-3000:]))
    return start, end, float(match.group(2)), float(match.group(1))


def main():
    parser = argparse.ArgumentParser(description="kexec_reboot vs ansible.builtin.reboot on a QEMU guest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(DEFAULT_METHODS),
                        help="what to alternate; the first is the base of the ratios (default: %(default)s)")
    args = parser.parse_args()
    inventory = os.path.join(os.environ.get("TMPDIR", "/tmp"), "kexec-bench-inventory.ini")
    info = json.loads(guest("start", GUEST))
    try:
        write_inventory(info, inventory)
        probe = BannerProbe(info["port"])
        probe.start()
        print("warm-up: one unmeasured firmware reboot (the first after a cold boot is the slowest)", flush=True)
        run_playbook(inventory, "builtin")
        samples = {name: [] for name in args.methods}
        failures = {name: 0 for name in args.methods}
        for round_number in range(1, args.rounds + 1):
            for name in args.methods:
                try:
                    start, end, done, task_elapsed = run_playbook(inventory, name)
                except RunFailed as exc:
                    failures[name] += 1
                    print("round %d %-13s FAILED: %s" % (round_number, name, exc), flush=True)
                    guest("stop", GUEST)  # a clean start for the next run
                    info = json.loads(guest("start", GUEST))
                    write_inventory(info, inventory)
                    probe.port = info["port"]
                    continue
                back = probe.last_up_before(done)
                latency = done - back if back and back > start else None
                samples[name].append((end - start, task_elapsed, latency))
                print("round %d %-13s wall %6.1fs  task %6s  sshd-to-return %s" % (
                    round_number, name, end - start, task_elapsed,
                    "%.2fs" % latency if latency is not None else "n/a"), flush=True)
        probe.stop.set()
    finally:
        guest("stop", GUEST)
    print("\nmedians over %d rounds (TCG guest, 2 vCPU, 2 GiB)" % args.rounds)
    base_name = args.methods[0]
    base = statistics.median(row[0] for row in samples[base_name]) if samples[base_name] else float("nan")
    for name, rows in samples.items():
        if not rows:
            print("%-13s no successful run (%d failed)" % (name, failures[name]))
            continue
        wall = statistics.median(row[0] for row in rows)
        latencies = [row[2] for row in rows if row[2] is not None]
        print("%-19s wall %6.1fs  %s/%s = %.2f  sshd-to-return %s  failed or hung %d" % (
            name, wall, base_name, name, base / wall,
            "%.2fs" % statistics.median(latencies) if latencies else "n/a", failures[name]))


if __name__ == "__main__":
    main()
