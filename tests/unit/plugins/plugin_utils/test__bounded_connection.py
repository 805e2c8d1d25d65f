"""Bounded remote calls: a call runs for at most its bound, and a connection it hung in is never used again.

The kexec_reboot action's use of them (the module run, the reads, cleanup) is tested in
tests/unit/plugins/action/test_kexec_reboot_bounded.py. These take real time, a fraction of a second.
"""

import contextvars
import threading
import time
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import become_loader, connection_loader

from ansible_collections.kernel.kexec.plugins.plugin_utils._bounded_connection import (
    BoundedConnection, RemoteCallTimeout,
)

from ..action.conftest import FakeConnection

HANG = 3  # seconds a hung call blocks at most (only reached by code without the bounds)


class Caller(BoundedConnection):
    """The least an action plugin gives the mixin: its connection."""

    def __init__(self, connection):
        super(Caller, self).__init__()
        self._connection = connection


@pytest.fixture
def connection():
    return FakeConnection([])


@pytest.fixture
def caller(connection):
    return Caller(connection)


def test_bounded_returns_the_value(caller, connection):
    assert caller.bounded(lambda: {"rc": 0}, 5) == {"rc": 0}
    assert connection.events == []


def test_bounded_turns_an_error_into_ansible_error(caller, connection):
    def fails():
        raise ValueError("socket closed")
    with pytest.raises(AnsibleError, match="socket closed") as info:
        caller.bounded(fails, 5)
    assert not isinstance(info.value, RemoteCallTimeout)
    assert connection.events == []


def test_bounded_keeps_ansible_errors_as_they_are(caller):
    def unreachable():
        raise AnsibleConnectionFailure("ssh: connect to host port 22: No route to host")
    with pytest.raises(AnsibleConnectionFailure):
        caller.bounded(unreachable, 5)


def test_bounded_cuts_a_blocked_call_and_resets_the_connection(caller, connection):
    released = threading.Event()
    began = time.monotonic()
    try:
        with pytest.raises(RemoteCallTimeout, match="a remote call took longer than"):
            caller.bounded(lambda: released.wait(10), 0.1)
    finally:
        released.set()
    assert 0.1 <= time.monotonic() - began < 2
    assert connection.events == ["reset"]


def test_bounded_call_sees_the_callers_context(caller):
    # ansible-core 2.19 keeps the templating and task context in contextvars; a thread starts
    # without them, and lazy task arguments cannot be read there.
    var = contextvars.ContextVar("task")
    var.set("kexec_reboot")
    assert caller.bounded(lambda: var.get("missing"), 5) == "kexec_reboot"


def test_bounded_retires_the_connection_it_gave_up_on(caller):
    released = threading.Event()
    try:
        with pytest.raises(RemoteCallTimeout):
            caller.bounded(lambda: released.wait(HANG), 0.1)
    finally:
        released.set()
    caller._fresh_connection = lambda old: "fresh"
    assert caller._usable_connection() == "fresh"


def test_failed_reset_is_not_fatal(caller, connection):
    def reset():
        raise AnsibleConnectionFailure("no control master")
    connection.reset = reset
    caller.drop_connection()


@pytest.mark.parametrize("options, old, after", [
    ({"timeout": 10}, 10, {"timeout": 5}),
    ({"connection_timeout": 30, "timeout": 10}, 30, {"connection_timeout": 5, "timeout": 10}),
    ({}, None, {}),
])
def test_set_connect_timeout(options, old, after):
    connection = FakeConnection([])
    connection.options = dict(options)
    caller = Caller(connection)
    assert caller._set_connect_timeout(5) == old
    assert connection.options == after
    caller._set_connect_timeout(old)
    assert connection.options == options


def test_fresh_connection_copies_plugin_options_shell_and_become():
    play_context = PlayContext()
    play_context.remote_addr = "192.0.2.7"
    old = connection_loader.get("ssh", play_context)
    old.set_options(var_options={"ansible_host": "192.0.2.7", "ansible_port": 2222, "ansible_user": "admin"})
    old.set_option("timeout", 7)
    become = become_loader.get("sudo")
    become.set_options()
    old.set_become_plugin(become)
    caller = Caller(old)
    caller._play_context = play_context
    caller._shared_loader_obj = SimpleNamespace(connection_loader=connection_loader)
    fresh = caller._fresh_connection(old)
    assert fresh is not old and type(fresh) is type(old)
    for option in ("host", "port", "remote_user", "timeout", "ssh_args", "control_path_dir"):
        assert fresh.get_option(option) == old.get_option(option)
    assert fresh._shell is old._shell and fresh.become is become
