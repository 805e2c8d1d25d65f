"""LoadRequest refuses what no load could mean, before anything is read or loaded.

Shared by kexec_load and kexec_reboot (module_utils/_argspec.load_request).
An empty kernel or initrd is an error, not "not set" (today ``kernel: ""``
loads the bootloader's default entry); an explicit empty command line is a
legitimate request. No NUL byte anywhere: the kernel would cut the string
there. ``remove`` takes argument names only. Kernel and initrd file types are
checked where they are opened (_io.open_regular), not here.
"""

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, KexecUnavailable, SyscallError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import loader
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.record import RECORD_DIR

BAD_REQUESTS = [
    pytest.param({"kernel": ""}, "kernel is an empty string", id="kernel-empty"),
    pytest.param({"initrd": ""}, "initrd is an empty string", id="initrd-empty"),
    pytest.param({"kernel": "/boot/vmlinuz", "initrd": ""}, "initrd is an empty string", id="named-kernel-initrd-empty"),
    pytest.param({"kernel": "/boot/vmlinuz\0.efi"}, "kernel holds a NUL byte", id="kernel-nul"),
    pytest.param({"initrd": "/boot/initrd\0"}, "initrd holds a NUL byte", id="initrd-nul"),
    pytest.param({"cmdline": "root=/dev/sda1\0 ro"}, "cmdline holds a NUL byte", id="cmdline-nul"),
    pytest.param({"append": ["console=ttyS0\0"]}, "holds a NUL byte", id="append-nul"),
    pytest.param({"append": ["quiet splash"]}, "is not a single kernel argument", id="append-two-arguments"),
    pytest.param({"append": [""]}, "is not a single kernel argument", id="append-empty"),
    pytest.param({"remove": ["quiet\0"]}, "is not an argument name", id="remove-nul"),
    pytest.param({"remove": ["console=ttyS0"]}, "is not an argument name", id="remove-with-value"),
    pytest.param({"remove": ["quiet splash"]}, "is not an argument name", id="remove-two-names"),
    pytest.param({"remove": [" quiet"]}, "is not an argument name", id="remove-space"),
    pytest.param({"remove": [""]}, "is not an argument name", id="remove-empty"),
    pytest.param({"remove": ['"quiet"']}, "is not an argument name", id="remove-quoted"),
]


@pytest.mark.parametrize("fields, message", BAD_REQUESTS)
def test_bad_request_refused(fields, message):
    with pytest.raises(KexecError, match=message) as info:
        LoadRequest(**fields)
    assert not isinstance(info.value, (KexecUnavailable, SyscallError))  # an input error: never a fallback


@pytest.mark.parametrize("fields, message", BAD_REQUESTS)
@pytest.mark.parametrize("check_mode", [False, True])
def test_bad_request_touches_nothing(kexec, host, kernel, monkeypatch, fields, message, check_mode):
    def must_not_run(*args):
        raise AssertionError("the boot entry was read for a refused request")
    monkeypatch.setattr(loader, "default_entry", must_not_run)
    request = LoadRequest()
    for key, value in fields.items():  # set after LoadRequest's own check: the load must refuse it
        setattr(request, key, value)
    with pytest.raises(KexecError, match=message):
        kexec.ensure_loaded(request, check_mode=check_mode)
    assert kernel.recorder.calls == []
    assert not host.exists(RECORD_DIR)


@pytest.mark.parametrize("fields", [
    {},
    {"cmdline": ""},  # an explicit empty command line
    {"append": ["console=ttyS0,115200n8", 'dyndbg="file x +p"'], "remove": ["quiet", "crashkernel"]},
    {"remove": ["rd.break", "systemd.unit"]},  # dotted and plain names
])
def test_good_request_accepted(fields):
    LoadRequest(**fields)


def test_explicit_empty_cmdline_loads_an_empty_command_line(kexec, host, kernel):
    result = kexec.ensure_loaded(LoadRequest(kernel=host.kernel(), cmdline=""))
    assert result["cmdline"] == ""
    assert len(kernel.loads) == 1


def test_file_types_are_still_checked_when_opened(kexec, host, kernel):
    # A directory is refused by _io.open_regular, not by LoadRequest: one place checks file types.
    LoadRequest(kernel=host.path("boot"))
    with pytest.raises(KexecError, match="is a directory, not a regular file"):
        kexec.ensure_loaded(LoadRequest(kernel=host.path("boot")))
