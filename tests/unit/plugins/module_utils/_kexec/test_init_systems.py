"""Which init system runs the host, and how kexec_reboot reboots through it: fake /run, /proc and /etc trees.

Nothing runs here: detect() only looks at the tree, reboot_order() only builds argv lists.
"""

import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._kexec import init_systems, reboot, syscalls
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.init_systems import InitSystem, reboot_order
from ansible_collections.kernel.kexec.plugins.module_utils._kexec.loader import LoadRequest

from ...fakes.host import RELEASE
from ...fakes.init_systems import Tree

MSG = "patch night"


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path)


# --- detect: the init system and its clean ways to reboot ---------------------------------------------

@pytest.mark.parametrize("build, name, kexec, reboot_argv", [
    (Tree.systemd, "systemd", ["systemctl", "kexec", "--no-block"], ["systemctl", "reboot", "--no-block"]),
    (Tree.openrc_init, "openrc", ["/sbin/openrc-shutdown", "--kexec", "now"], ["/sbin/openrc-shutdown", "--reboot", "now"]),
    (Tree.runit, "runit", ["/usr/bin/runit-init", "6"], ["/usr/bin/runit-init", "6"]),
    (Tree.sysvinit, "sysvinit", ["/sbin/telinit", "6"], ["/sbin/telinit", "6"]),
    (Tree.busybox, "busybox", None, ["/sbin/reboot"]),
], ids=["systemd", "openrc-init", "runit-void", "sysvinit-kexec-tools", "busybox"])
def test_detect(tree, build, name, kexec, reboot_argv):
    build(tree)
    init = init_systems.detect(tree.root)
    assert (init.name, init.kexec, init.reboot) == (name, kexec, reboot_argv)
    assert (init.no_kexec is None) is (kexec is not None)


@pytest.mark.parametrize("build, name, words", [
    (lambda tree: tree.runit(kexec_step=False), "runit", "runit's stage 3 has no kexec step"),
    (lambda tree: tree.runit(kexec=False), "runit", "runit's stage 3 kexecs only with kexec-tools' kexec installed"),
    (lambda tree: tree.sysvinit(kexec_script=False), "sysvinit", "runlevel 6 reboots through firmware: it has no "
                                                                 "kexec stop script"),
    (lambda tree: tree.sysvinit(kexec=False), "sysvinit", "needs /sbin/kexec (kexec-tools), which is missing"),
    (Tree.busybox, "busybox", "busybox init has no kexec: it reboots through firmware"),
], ids=["runit-without-kexec-step", "runit-without-kexec", "sysvinit-without-kexec-script", "sysvinit-without-kexec",
        "busybox"])
def test_a_firmware_reboot_through_the_init_system_but_no_clean_kexec(tree, build, name, words):
    build(tree)
    init = init_systems.detect(tree.root)
    assert (init.name, init.kexec) == (name, None)
    assert init.reboot is not None
    assert words in init.no_kexec


@pytest.mark.parametrize("build, name", [
    (lambda tree: tree.pid1("tini"), "tini"),
    (lambda tree: tree, "unknown"),  # /proc/1/comm unreadable
    (lambda tree: tree.pid1("init"), "init"),  # neither sysvinit's FIFO nor busybox
])
def test_an_init_system_kexec_reboot_does_not_know(tree, build, name):
    build(tree)
    init = init_systems.detect(tree.root)
    assert (init.name, init.kexec, init.reboot) == (name, None, None)
    assert "an init system kexec_reboot cannot reboot through" in init.no_kexec


def test_openrc_on_sysvinit_reboots_through_runlevel_6(tree):
    # Gentoo's OpenRC under sysvinit: no openrc-init FIFO, and no Debian kexec stop script.
    tree.sysvinit(kexec_script=False)
    init = init_systems.detect(tree.root)
    assert (init.name, init.kexec, init.reboot) == ("sysvinit", None, ["/sbin/telinit", "6"])


# --- reboot_order ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, msg, argv, env", [
    ("kexec", None, ["systemctl", "kexec", "--no-block"], {}),
    ("kexec", MSG, ["systemctl", "kexec", "--no-block", "--message=patch night"], {}),
    ("full", "", ["systemctl", "reboot", "--no-block"], {"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"}),
    ("full", MSG, ["systemctl", "reboot", "--no-block", "--message=patch night"], {"SYSTEMCTL_SKIP_AUTO_KEXEC": "1"}),
])
def test_systemd_orders(tree, method, msg, argv, env):
    order = reboot_order(init_systems.detect(tree.systemd().root), method, msg)
    assert (order.argv, order.env, order.clean) == (argv, env, True)
    assert str(order) == " ".join(argv)


def test_other_init_systems_get_no_message_and_no_systemd_environment(tree):
    order = reboot_order(init_systems.detect(tree.openrc_init().root), "kexec", MSG)
    assert (order.argv, order.env) == (["/sbin/openrc-shutdown", "--kexec", "now"], {})


@pytest.mark.parametrize("method, syscall", [("kexec", syscalls.LINUX_REBOOT_CMD_KEXEC),
                                             ("full", syscalls.LINUX_REBOOT_CMD_RESTART)])
def test_unclean_reboot_only_when_allowed(method, syscall):
    unknown = InitSystem("tini", no_kexec="PID 1 is tini, an init system kexec_reboot cannot reboot through")
    with pytest.raises(KexecError, match="refusing an unclean"):
        reboot_order(unknown, method, MSG)
    order = reboot_order(unknown, method, MSG, allow_unclean=True)
    assert (order.argv, order.syscall, order.clean) == (None, syscall, False)
    assert str(order).startswith("sync, then the reboot syscall at once (unclean: no service stopped, no file system "
                                 "unmounted)")


def test_a_clean_way_is_taken_even_when_unclean_is_allowed(tree):
    order = reboot_order(init_systems.detect(tree.sysvinit().root), "kexec", allow_unclean=True)
    assert order.argv == ["/sbin/telinit", "6"]


# --- prepare: nothing is loaded for a reboot that would be unclean --------------------------------------

@pytest.fixture(autouse=True)
def reboot_auto_loads_by_file(monkeypatch):
    """The file-syscall path (kexec_reboot's legacy choice is tested in test_reboot_method.py)."""
    monkeypatch.setattr(reboot, "reboot_method", lambda kexec: ("auto", None))


@pytest.fixture
def no_systemd_host(host):
    os.rmdir(host.path("run/systemd/system"))
    Tree(host.root).sysvinit(kexec_script=False)  # Debian with sysvinit-core, without kexec-tools
    return host


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_prepare_refuses_an_unclean_kexec_before_loading(kexec, no_systemd_host, kernel, check_mode):
    with pytest.raises(KexecError) as info:
        reboot.prepare(kexec, LoadRequest(kernel=no_systemd_host.kernel()), True, "none", check_mode)
    assert info.value.msg.startswith("refusing an unclean kexec reboot: runlevel 6 reboots through firmware: it has "
                                     "no kexec stop script (/etc/rc6.d/K..kexec, from Debian's kexec-tools)")
    assert "nothing was loaded or rebooted. Set allow_unclean_reboot: true" in info.value.msg
    assert kernel.recorder.calls == []


def test_prepare_with_fallback_full_reboots_through_the_init_system_instead(kexec, no_systemd_host, kernel):
    plan = reboot.prepare(kexec, LoadRequest(kernel=no_systemd_host.kernel()), True, "full", False)
    assert (plan["method"], plan["loaded"]) == ("full", None)
    assert plan["fallback_reason"].startswith("no clean kexec through this host's init system: runlevel 6 reboots")
    assert kernel.recorder.calls == []
    assert reboot_order(init_systems.detect(kexec.root), plan["method"]).argv == ["/sbin/telinit", "6"]


def test_prepare_loads_for_an_unclean_kexec_when_allowed(kexec, no_systemd_host, kernel):
    plan = reboot.prepare(kexec, LoadRequest(kernel=no_systemd_host.kernel()), True, "none", False, allow_unclean=True)
    assert (plan["method"], plan["expected"]["release"]) == ("kexec", RELEASE)
    assert len(kernel.loads) == 1


def test_prepare_loads_where_the_init_system_kexecs_cleanly(kexec, host, kernel):
    os.rmdir(host.path("run/systemd/system"))
    Tree(host.root).openrc_init()
    plan = reboot.prepare(kexec, LoadRequest(kernel=host.kernel()), True, "none", False)
    assert plan["method"] == "kexec" and len(kernel.loads) == 1
