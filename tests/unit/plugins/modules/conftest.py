"""Run a module's main() with arguments, as Ansible would, and return (exit code, result)."""

import json

import pytest
from ansible.module_utils.common import warnings as module_warnings

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19
    import contextlib
    from unittest import mock

    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args=None):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}))):
            yield


try:
    from ansible.module_utils import _internal as module_utils_internal
except ImportError:  # ansible-core before 2.19
    module_utils_internal = None


@pytest.fixture
def run_module(capsys, monkeypatch):
    # Importing controller code (the action plugin's tests do) marks the whole process as the
    # controller; a module runs on the target, where warnings go into its result, not to Display.
    if hasattr(module_utils_internal, "is_controller"):
        monkeypatch.setattr(module_utils_internal, "is_controller", False)
    # A module's warnings and deprecations gather in one process-wide store until it exits: each test's
    # run starts with an empty one, as a module process does.
    for name in ("_global_warnings", "_global_deprecations"):
        if hasattr(module_warnings, name):
            monkeypatch.setattr(module_warnings, name, type(getattr(module_warnings, name))())

    def run(module, **args):
        args.setdefault("_ansible_no_log", True)  # keep the invocation out of the host's syslog
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exited:
                module.main()
        return exited.value.code, json.loads(capsys.readouterr().out)
    return run
