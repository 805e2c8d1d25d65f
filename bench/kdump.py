"""Benchmark: the smallest crashkernel= reservation with which a kdump capture still succeeds.

On one QEMU guest, for each size from the largest down (``auto`` first), the
kdump role reserves that size (crashkernel= in GRUB, applied by one kexec
reboot), enables the capture service and crashes the guest once
(kdump_test_crash). A size passes when the guest comes back with a new dump
that holds the crashed kernel's log. Prints, per size, what the kernel
reserved, the seconds from the crash to the guest answering again, the dump's
size and format, and what kexec_info's capture check said of the size
beforehand. Stops at the first size that fails (its capture kernel ran out
of memory or never came back): every smaller size would fail too.

    bash bench/run kdump [--sizes auto 192M 160M 128M 96M] [--crash-timeout 420]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

from reboot import GUEST, guest, private_inventory, write_inventory

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20


def run_size(inventory, size, crash_timeout):
    """(passed, result dict or failure text, wall seconds) for one size."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    os.unlink(out)
    extra = {"bench_size": size, "bench_crash_timeout": crash_timeout, "bench_out": out}
    start = time.time()
    try:
        proc = subprocess.run(["ansible-playbook", "-i", inventory, "-e", json.dumps(extra),
                               os.path.join(HERE, "kdump.yml")], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=crash_timeout + 900, check=False)
    except subprocess.TimeoutExpired:
        return False, "the playbook hung", time.time() - start
    wall = time.time() - start
    if proc.returncode != 0 or not os.path.exists(out):
        failed = [line for line in proc.stdout.splitlines() if "FAILED" in line or '"msg"' in line]
        return False, "\n".join(failed[-6:]) or proc.stdout[-2000:], wall
    with open(out) as handle:
        result = json.load(handle)
    os.unlink(out)
    return True, result, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["auto", "192M", "160M", "128M", "96M"],
                        help="crashkernel= sizes, largest first (default: %(default)s)")
    parser.add_argument("--crash-timeout", type=int, default=420,
                        help="seconds a test crash may take to come back (a success takes about two minutes)")
    args = parser.parse_args()
    inventory = private_inventory()
    info = json.loads(guest("start", GUEST))
    rows = []
    try:
        write_inventory(info, inventory)
        for size in args.sizes:
            passed, result, wall = run_size(inventory, size, args.crash_timeout)
            rows.append((size, passed, result, wall))
            if passed:
                test = result["test"]
                fits = (result.get("capture") or {}).get("fits")
                print("%-6s reserved %4d MiB  crash to answer %6ss  dump %5.1f MiB %-9s  check said fits=%s  "
                      "(role run %.0fs)" % (size, result["crash_reserved"] // MIB, test["seconds_to_answer"],
                                            int(test["size"]) / MIB, test["format"], fits, wall), flush=True)
            else:
                print("%-6s FAILED after %.0fs:\n%s" % (size, wall, result), flush=True)
                break
    finally:
        guest("stop", GUEST)
        shutil.rmtree(os.path.dirname(inventory), ignore_errors=True)
    passed = [row for row in rows if row[1]]
    if passed:
        smallest = passed[-1]
        print("\nsmallest passing size: %s (%d MiB reserved), crash to answer %ss"
              % (smallest[0], smallest[2]["crash_reserved"] // MIB, smallest[2]["test"]["seconds_to_answer"]))
    if len(passed) < len(rows):
        print("first failing size: %s" % rows[len(passed)][0])


if __name__ == "__main__":
    main()
