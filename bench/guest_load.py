"""Runs on the bench guest: one load by kernel.kexec's loader, as kexec_load the module does it.

    python3 guest_load.py METHOD COLLECTIONS_DIR

Loads the running kernel with its initrd and the running command line by
METHOD (legacy or file), forced so every round does the whole load, and
prints the loader's own phases. The timer around this process (bench/load.py)
includes Python's start-up, as the module's run does.
"""

import sys
import time

sys.path.insert(0, sys.argv[2])

from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import Kexec, LoadRequest  # noqa: E402

started = time.monotonic()
kexec = Kexec()
release = kexec.state.release
result = kexec.ensure_loaded(LoadRequest(kernel="/boot/vmlinuz-%s" % release, initrd="/boot/initrd.img-%s" % release,
                                         method=sys.argv[1], force=True))
print("loaded by %s in %.2fs (in-process)" % (result["method"], time.monotonic() - started))
