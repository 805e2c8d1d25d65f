import errno

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, syscall_error


class FakeModule:
    def __init__(self):
        self.failed_with = None

    def fail_json(self, **kwargs):
        self.failed_with = kwargs
        raise SystemExit(1)


def test_fail_passes_msg_and_extra_keys():
    module = FakeModule()
    plan = {"kernel": "/boot/vmlinuz", "cmdline": "ro"}
    with pytest.raises(SystemExit):
        KexecError("cannot load", plan=plan, method="file").fail(module, method="legacy", changed=False)
    # keys given to fail() win over the error's own
    assert module.failed_with == {"msg": "cannot load", "plan": plan, "method": "legacy", "changed": False}


def test_syscall_error_fails_with_errno_keys():
    module = FakeModule()
    with pytest.raises(SystemExit):
        syscall_error("kexec_file_load", errno.ENOEXEC).fail(module)
    assert module.failed_with["errno"] == errno.ENOEXEC
    assert module.failed_with["errno_name"] == "ENOEXEC"
    assert "not a kernel image this kernel can load" in module.failed_with["msg"]


def test_syscall_error_context_follows_the_advice():
    plain = syscall_error("kexec_file_load", errno.EPERM).msg
    assert syscall_error("kexec_file_load", errno.EPERM, "(on this host: lockdown is integrity)").msg == \
        plain + " (on this host: lockdown is integrity)"


def test_unknown_errno():
    exc = syscall_error("reboot", 4242)
    assert exc.extra["errno_name"] == "4242"
    assert exc.msg.startswith("reboot failed with 4242 (")
