"""kexec_reboot's module side refuses bad options and inputs before it loads or reboots anything,
puts the action plugin's nonce on the image it loads, and falls back to a firmware reboot only
where the host cannot kexec.

The ``run`` fixture is test_kexec_reboot's (fake tree, reboot.start_reboot recorded, no fork).
"""

import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot
from ansible_collections.kernel.kexec.plugins.modules import kexec_load, kexec_reboot

from ..module_utils._kexec import test_loader_cheap_checks as cheap

from ..fakes.host import OLD_RELEASE
from .test_kexec_reboot import euid, run, started  # noqa: F401  pylint: disable=unused-import


@pytest.fixture(autouse=True)
def reboot_auto_loads_by_file(monkeypatch):
    """These tests follow kexec_reboot's file-syscall path; its choice of the legacy loader for
    ``method: auto`` on BIOS x86_64 hosts is tested in test_reboot_method.py."""
    monkeypatch.setattr(reboot, "reboot_method", lambda kexec: ("auto", None))


NONCE = "5f0c3a9e1b7d4c2e8a6f0b1d3c5e7a9f"


def refused(call, fake_kernel, reboots, args):
    rc, result = call(**args)
    assert (rc, result["failed"]) == (1, True)
    assert reboots == [] and fake_kernel.recorder.calls == []  # nothing loaded, nothing rebooted
    return result["msg"]


@pytest.mark.parametrize("args, words", [
    ({"reboot_timeout": 0}, "reboot_timeout is 0"),
    ({"connect_timeout": 0}, "connect_timeout is 0"),
    ({"pre_reboot_delay": -1}, "pre_reboot_delay is -1"),
    ({"post_reboot_delay": 100000}, "post_reboot_delay is 100000"),
    ({"msg": "patch\0night"}, "msg holds a NUL byte"),
])
def test_bad_reboot_option_refused(run, kernel, started, args, words):  # noqa: F811
    assert words in refused(run, kernel, started, args)


@pytest.mark.parametrize("args, words", [
    ({"kernel": ""}, "kernel is an empty string"),
    ({"initrd": ""}, "initrd is an empty string"),
    ({"kernel": "/boot/vmlinuz\0"}, "kernel holds a NUL byte"),
    ({"initrd": "/boot/initrd\0"}, "initrd holds a NUL byte"),
    ({"cmdline": "ro\0"}, "cmdline holds a NUL byte"),
    ({"append": ["quiet\0"]}, "holds a NUL byte"),
    ({"remove": ["quiet\0"]}, "is not an argument name"),
    ({"remove": ["console=ttyS0"]}, "is not an argument name"),
    ({"remove": ["quiet splash"]}, "is not an argument name"),
    ({"remove": [""]}, "is not an argument name"),
])
def test_bad_load_input_refused_even_with_fallback(run, kernel, started, args, words):  # noqa: F811
    assert words in refused(run, kernel, started, dict(args, fallback="full"))


@pytest.mark.parametrize("args, words", [
    ({"kernel": ""}, "kernel is an empty string"),
    ({"initrd": ""}, "initrd is an empty string"),
    ({"kernel": "/boot/vmlinuz\0"}, "kernel holds a NUL byte"),
    ({"initrd": "/boot/initrd\0"}, "initrd holds a NUL byte"),
    ({"cmdline": "ro\0"}, "cmdline holds a NUL byte"),
    ({"append": ["quiet\0"]}, "holds a NUL byte"),
    ({"append": [""]}, "is not a single kernel argument"),
    ({"remove": ["quiet\0"]}, "is not an argument name"),
    ({"remove": ["quiet=1"]}, "is not an argument name"),
    ({"remove": [""]}, "is not an argument name"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_kexec_load_refuses_the_same(run, kernel, args, words, check_mode):  # noqa: F811
    rc, result = run(kexec_load, _ansible_check_mode=check_mode, **args)
    assert (rc, result["failed"]) == (1, True) and words in result["msg"]
    assert kernel.recorder.calls == []


def test_explicit_empty_cmdline_is_a_load_request(run, host, kernel, started):  # noqa: F811
    run(kexec_load, kernel=host.kernel(OLD_RELEASE))  # something is loaded already
    rc, result = run(cmdline="")
    assert rc == 0
    assert len(kernel.loads) == 2 and kernel.loads[-1]["cmdline"] in (None, b"\0")  # loaded again, empty
    assert result["expected"]["cmdline"] == ""


# --- the nonce ----------------------------------------------------------------------------------------

def test_nonce_goes_onto_the_image_this_task_loads(run, host, kernel, started):  # noqa: F811
    rc, result = run(nonce=NONCE)
    assert rc == 0
    assert kernel.loads[-1]["cmdline"].endswith(b" kexec_reboot.boot=%s\0" % NONCE.encode())
    assert result["expected"]["nonce"] == NONCE
    assert result["expected"]["cmdline"].endswith(" kexec_reboot.boot=" + NONCE)


def test_nonce_is_not_claimed_for_an_image_loaded_before(run, host, kernel, started):  # noqa: F811
    run(kexec_load, kernel=host.kernel(OLD_RELEASE))
    rc, result = run(nonce=NONCE)
    assert rc == 0 and len(kernel.loads) == 1  # the loaded image is booted as it is
    assert "nonce" not in result["expected"]


@pytest.mark.parametrize("nonce", ["", "abc", "kexec_reboot.boot=1", "x" * 32, "0" * 65, "5f0c 3a9e1b7d4c2e8a6f0b1d3c"])
def test_malformed_nonce_refused(run, kernel, started, nonce):  # noqa: F811
    assert "nonce" in refused(run, kernel, started, {"nonce": nonce})


def test_kexec_load_stays_idempotent_without_a_nonce(run, host, kernel):  # noqa: F811
    rc, first = run(kexec_load, kernel=host.kernel())
    rc, again = run(kexec_load, kernel=host.kernel())
    assert (first["changed"], again["changed"]) == (True, False)
    assert "kexec_reboot.boot" not in first["cmdline"]


# --- fallback: full only where the host cannot kexec --------------------------------------------------

@pytest.mark.parametrize("err", [errno.EINVAL, errno.ENOEXEC, errno.EBADF, errno.ENOMEM, errno.EBUSY,
                                 errno.EADDRNOTAVAIL, errno.ENOENT])
def test_refused_image_is_an_error_that_reboots_nothing(run, host, kernel, started, err):  # noqa: F811
    run(kexec_load, kernel=host.kernel(OLD_RELEASE))  # an image is loaded: a fallback would unload it
    calls = len(kernel.recorder.calls)
    kernel.recorder.errors = [err]
    rc, result = run(kernel=host.kernel(), method="file", fallback="full")
    assert (rc, result["failed"]) == (1, True)
    assert errno.errorcode[err] in result["msg"]
    assert started == []
    assert len(kernel.recorder.calls) == calls + 1  # the refused load; no unload
    assert host.read("sys/kernel/kexec_loaded").strip() == "1"


@pytest.mark.parametrize("err", [errno.EPERM, errno.EKEYREJECTED, errno.ENOKEY, errno.ENODATA])
def test_host_refusal_falls_back_to_full(run, host, kernel, started, err):  # noqa: F811
    kernel.recorder.errors = [err]
    rc, result = run(kernel=host.kernel(), method="file", fallback="full")
    assert (rc, result["method"]) == (0, "full")
    assert started[0][0][:2] == ["systemctl", "reboot"]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("module", [kexec_reboot, kexec_load], ids=["kexec_reboot", "kexec_load"])
@pytest.mark.parametrize("field, words", [
    ("kernel", "is not a kernel image: its first 624 bytes are all zero"),
    ("initrd", "more than this host can load"),
], ids=["kernel", "initrd"])
def test_a_huge_disk_image_fails_the_task_at_once(run, host, kernel, started, monkeypatch,  # noqa: F811
                                                  module, field, words, check_mode):
    """An 8 GiB sparse file as the kernel or the initrd: one clear failure from its header or size, never a
    traceback, nothing hashed, loaded or rebooted, whatever fallback says."""
    host.write("proc/meminfo", "MemTotal:        2013548 kB\n")
    huge = host.path("var/lib/disk.img")
    os.makedirs(os.path.dirname(huge))
    with open(huge, "wb") as handle:
        handle.truncate(8 << 30)
    cheap.no_hashing(monkeypatch)
    args = {"kernel": host.kernel(), "initrd": host.initrd(), field: huge, "_ansible_check_mode": check_mode}
    if module is kexec_reboot:
        args["fallback"] = "full"
    rc, result = run(module, **args)
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"].startswith("%s %s" % (huge, words) if field == "kernel" else "initrd %s is 8192.0 MiB" % huge)
    assert words in result["msg"] and "Traceback" not in result.get("module_stderr", "")
    assert started == [] and kernel.recorder.calls == []
