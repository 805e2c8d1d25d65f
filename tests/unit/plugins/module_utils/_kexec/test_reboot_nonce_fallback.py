"""reboot.prepare: the nonce on the image kexec_reboot loads, and fallback only where the host cannot kexec.

Nothing here forks or reboots: prepare only loads (through the fake kernel).
"""

import errno

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import reboot
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest

from ...fakes.host import OLD_RELEASE, RELEASE, ROOT_UUID


@pytest.fixture(autouse=True)
def reboot_auto_loads_by_file(monkeypatch):
    """These tests follow kexec_reboot's file-syscall path; its choice of the legacy loader for
    ``method: auto`` on BIOS x86_64 hosts is tested in test_reboot_method.py."""
    monkeypatch.setattr(reboot, "reboot_method", lambda kexec: ("auto", None))


NONCE = "5f0c3a9e1b7d4c2e8a6f0b1d3c5e7a9f"
MARK = "kexec_reboot.boot=" + NONCE
ENTRY_ARGS = "root=UUID=%s ro quiet" % ROOT_UUID


# --- load_requested --------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{"cmdline": ""}, {"kernel": ""}, {"initrd": ""}])
def test_set_but_empty_is_requested(params):
    # An explicit empty value is a request (cmdline) or an error LoadRequest reports (kernel, initrd),
    # never "not set".
    assert reboot.load_requested(params)


# --- the nonce -------------------------------------------------------------------------------------

def test_nonce_argument_is_a_dotted_name():
    # init/main.c unknown_bootoption(): a parameter with a '.' in its name is taken for a module
    # parameter and neither handed to init nor put in its environment.
    name, value = reboot.nonce_argument(NONCE).split("=")
    assert "." in name and value == NONCE


@pytest.mark.parametrize("check_mode", [False, True])
def test_prepare_puts_the_nonce_on_what_it_loads(kexec, host, kernel, check_mode):
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", check_mode, nonce=NONCE)
    assert plan["expected"] == {"release": RELEASE, "cmdline": ENTRY_ARGS + " " + MARK, "nonce": NONCE}
    if not check_mode:
        assert kernel.loads[0]["cmdline"] == (ENTRY_ARGS + " " + MARK).encode() + b"\0"


def test_prepare_nonce_with_named_kernel_and_remove(kexec, host, kernel):
    request = LoadRequest(kernel=host.kernel(), cmdline="ro quiet", remove=["quiet"], append=["console=ttyS0"])
    plan = reboot.prepare(kexec, request, True, "none", False, nonce=NONCE)
    assert plan["expected"]["cmdline"] == "ro %s console=ttyS0" % MARK  # the user's arguments stay last


def test_prepare_claims_no_nonce_for_an_image_loaded_before(kexec, host, kernel):
    kexec.ensure_loaded(LoadRequest(kernel=host.kernel(OLD_RELEASE), cmdline="ro old"))
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False, nonce=NONCE)
    assert plan["expected"] == {"release": OLD_RELEASE, "cmdline": "ro old"}  # no nonce claimed
    assert len(kernel.loads) == 1


def test_prepare_without_nonce_loads_the_plain_command_line(kexec, host, kernel):
    plan = reboot.prepare(kexec, LoadRequest(), False, "none", False)
    assert plan["expected"] == {"release": RELEASE, "cmdline": ENTRY_ARGS}


@pytest.mark.parametrize("nonce", ["", "abc", "0" * 65, "z" * 32, "ab cd" * 4, "a=b" * 6])
def test_check_nonce_refuses_malformed(nonce):
    with pytest.raises(KexecError, match="nonce"):
        reboot.check_nonce(nonce)


def test_check_nonce_accepts_hex():
    reboot.check_nonce(NONCE)
    reboot.check_nonce(None)  # the module run without the action plugin: no nonce, nothing claimed


# --- fallback: full only where the host cannot kexec ---------------------------------------------

HOST_CANNOT = [errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EOPNOTSUPP, errno.EKEYREJECTED, errno.ENOKEY,
               errno.ENODATA, errno.ENOPKG, errno.EBADMSG, errno.EMSGSIZE]
IMAGE_REFUSED = [errno.EINVAL, errno.ENOEXEC, errno.EBADF, errno.ENOENT, errno.ENOMEM, errno.EBUSY,
                 errno.EADDRNOTAVAIL, errno.EFBIG, errno.E2BIG, errno.EFAULT]


@pytest.mark.parametrize("err", HOST_CANNOT, ids=[errno.errorcode[e] for e in HOST_CANNOT])
def test_host_refusal_falls_back(kexec, host, kernel, err):
    kernel.recorder.errors = [err]
    plan = reboot.prepare(kexec, LoadRequest(kernel=host.kernel(), method="file"), True, "full", False)
    assert plan["method"] == "full"
    assert errno.errorcode[err] in plan["fallback_reason"]


@pytest.mark.parametrize("method", ["file", "auto"])
@pytest.mark.parametrize("err", IMAGE_REFUSED, ids=[errno.errorcode[e] for e in IMAGE_REFUSED])
def test_refused_image_or_cmdline_is_an_error_even_with_fallback(kexec, host, kernel, err, method):
    # auto retries EINVAL and ENOEXEC with the legacy kexec_load, which the fake image cannot take:
    # the file syscall's errno is what is reported.
    kernel.recorder.errors = [err]
    with pytest.raises(SyscallError) as info:
        reboot.prepare(kexec, LoadRequest(kernel=host.kernel(), method=method), True, "full", False)
    assert info.value.errno == err
