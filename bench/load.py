"""Benchmark: loading a kernel by kernel.kexec's two methods against kexec-tools, on one guest, in one run.

For N rounds it alternates, on the same guest, loading the running kernel with
its initrd and the running command line by:
  legacy        kernel.kexec, method legacy (kexec_load, segments built in Python)
  file          kernel.kexec, method file (kexec_file_load)
  kexec -l      kexec-tools' kexec_load path (purgatory included)
  kexec -s -l   kexec-tools' kexec_file_load path
each after an unload, timed on the guest from the start of the process to
its end (Python's start-up included for kernel.kexec). Prints the medians and
the ratios legacy/(kexec -l) and file/(kexec -s -l).

    bash bench/run load [--rounds 5]
"""

import argparse
import os
import statistics
import subprocess
import sys

from reboot import GUEST, guest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COLLECTIONS = "/root/bench-collections"
RELEASE = "$(uname -r)"
COMMANDS = {
    "legacy": "python3 /root/guest_load.py legacy %s" % COLLECTIONS,
    "file": "python3 /root/guest_load.py file %s" % COLLECTIONS,
    "kexec -l": "kexec -l /boot/vmlinuz-%s --initrd=/boot/initrd.img-%s --reuse-cmdline" % (RELEASE, RELEASE),
    "kexec -s -l": "kexec -s -l /boot/vmlinuz-%s --initrd=/boot/initrd.img-%s --reuse-cmdline" % (RELEASE, RELEASE),
}
TIMED = "kexec -u; sync; s=$(date +%%s.%%N); %s >/dev/null; e=$(date +%%s.%%N); echo \"$s $e\""


def ssh(command, stdin=None):
    # Never this process's own stdin: ssh would leave it non-blocking.
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([sys.executable, os.path.join(REPO, "roles", "qemu_guest", "files", "guest.py"), "ssh", GUEST, command],
                          check=True, capture_output=True, **feed).stdout.decode()


def install_collection():
    """The collection's plugins as the module runs them, and the guest-side script."""
    tar = subprocess.run(["tar", "-C", REPO, "-cf", "-", "plugins", "bench/guest_load.py"], check=True,
                         capture_output=True).stdout
    ssh("rm -rf {0} && mkdir -p {0}/ansible_collections/kernel/kexec && tar -C {0}/ansible_collections/kernel/kexec "
        "-xf - && mv {0}/ansible_collections/kernel/kexec/bench/guest_load.py /root/".format(COLLECTIONS), stdin=tar)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    guest("start", GUEST)
    try:
        install_collection()
        samples = {name: [] for name in COMMANDS}
        for round_number in range(1, args.rounds + 1):
            for name, command in COMMANDS.items():
                start, end = (float(value) for value in ssh(TIMED % command).split())
                samples[name].append(end - start)
                print("round %d %-12s %6.2fs" % (round_number, name, end - start), flush=True)
        ssh("kexec -u")
    finally:
        guest("stop", GUEST)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print("\nmedians over %d rounds (TCG guest, 2 vCPU, 2 GiB; running kernel + initrd)" % args.rounds)
    for name, value in medians.items():
        print("%-12s %6.2fs" % (name, value))
    print("legacy / kexec -l     = %.2f" % (medians["legacy"] / medians["kexec -l"]))
    print("file   / kexec -s -l  = %.2f" % (medians["file"] / medians["kexec -s -l"]))


if __name__ == "__main__":
    main()
