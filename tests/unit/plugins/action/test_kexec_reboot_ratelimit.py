"""kexec_reboot behind a host that rate-limits new SSH connections, in simulated time.

The whole wait runs for real (the probe before the reboot, the banner watch, the
reads, the gate of new connections) against a simulated host (fakes/network.py):
its reboot on the harness's fake clock, and ufw's ``limit`` rule on each boot,
iptables' ``recent`` module as ufw uses it (the 6th new connection within 30 s
is rejected with a reset, and stamped once more). Every SSH login of the task
(the reads, and the module's unless it rides an existing control master) is a
new connection the limiter counts, as the watch's probes are.
"""

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.kernel.kexec.plugins.plugin_utils import _banner_watch

from ..fakes.network import Limiter, Network, Reboot, most_in_any_window
from .conftest import HOST, NEW_BOOT, OLD_BOOT, PORT, START, boot, is_old_boot_read

T = START
BUDGET = 4  # NewConnections.MAX_NEW: new connections in any 30 s, one fewer than ufw's limit lets through


@pytest.fixture
def simulated(harness, monkeypatch):
    """An action whose probes and logins reach the simulated host of ``reboot``."""
    def make(reboot, module_opens_a_connection=False, **args):
        network = Network(harness.clock, reboot)
        monkeypatch.setattr(_banner_watch, "socket", network.socket_module)
        monkeypatch.setattr(_banner_watch, "selectors", network.selectors_module)
        monkeypatch.setattr(_banner_watch.BannerWatch, "_clock", staticmethod(harness.clock))
        action = harness.action(args)
        for stub in ("probe_endpoint", "look_at_sshd", "ssh_banner"):  # the real ones
            action.__dict__.pop(stub, None)
        module = harness.target.execute_module

        def execute_module(**kwargs):
            if module_opens_a_connection:
                login()
            return module(**kwargs)

        def login():
            try:
                return network.login()
            except OSError as exc:
                raise AnsibleConnectionFailure("Failed to connect to the host via ssh: ssh: connect to host %s port "
                                               "%s: %s" % (HOST, PORT, exc.strerror))

        def execute(cmd, sudoable=True, **kwargs):
            harness.target.reads = [boot(OLD_BOOT if login() == "old" else NEW_BOOT)]
            return harness.target.execute(cmd, sudoable, **kwargs)
        action._execute_module = execute_module
        action._low_level_execute_command = execute
        return network, action
    return make


def test_a_late_reboot_behind_ufw_limit_is_waited_for_with_few_new_connections(harness, simulated):
    # The old boot runs on for a minute (pre_reboot_delay), then a kexec; ufw's limit on both boots. A probe
    # each second of the old sshd would be refused from its 6th on, and read as the host going down.
    old, new = Limiter(), Limiter()
    network, action = simulated(Reboot(sshd_stops=T + 61, killed=T + 63, net_down=T + 64, net_up=T + 80,
                                       sshd_up=T + 86, old_limiter=old, new_limiter=new),
                                module_opens_a_connection=True, pre_reboot_delay=60, reboot_timeout=300)
    result = action.run(task_vars={})
    assert "failed" not in result and result["boot_id"] == NEW_BOOT, result.get("msg")
    assert most_in_any_window(network.new_connections(), 30) <= BUDGET
    assert old.rejected == [] and new.rejected == []
    assert harness.clock.now - T < 86 + 10  # the new sshd noticed within seconds


def test_the_old_boot_going_down_is_seen_on_the_held_connection(harness, simulated):
    # The shutdown kills sshd's unauthenticated child of the connection the probe before the reboot kept:
    # no new connection is needed to see the old boot go, and the next read is the new boot's own.
    network, action = simulated(Reboot(sshd_stops=T + 1, killed=T + 3, net_down=T + 4, net_up=T + 30,
                                       sshd_up=T + 35))
    result = action.run(task_vars={})
    assert "failed" not in result and result["boot_id"] == NEW_BOOT, result.get("msg")
    assert [opened for opened in network.connects if opened < T + 3] == [T]
    assert [is_old_boot_read(cmd) for cmd, _sudoable in harness.target.commands] == [False]


def test_refusals_by_a_limiter_while_the_old_boot_runs_are_no_verdict(harness, simulated):
    # Another client's connections left ufw's limit blocking this controller: the probe before the reboot
    # and the next connections are refused while the host is up. The reboot never starts (systemd:
    # running): only the old boot's own reads can tell, and they do, once the block has passed.
    harness.target.system = "running"
    old = Limiter(stamps=[T - 2] * 5)
    network, action = simulated(Reboot(old_limiter=old), reboot_timeout=600)
    result = action.run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("the reboot did not start: "), result["msg"]
    assert old.rejected and old.rejected[0] == T  # the probe before the reboot was the 6th
    assert all(is_old_boot_read(cmd) for cmd, _sudoable in harness.target.commands)


def test_a_host_that_keeps_refusing_after_it_answered_names_a_rate_limit(harness, simulated):
    # A ban (fail2ban, sshd's PerSourcePenalties) refuses every new connection from this controller while the
    # old boot runs on without systemd: the verdict is the timeout's, and it says what may have caused it.
    harness.target.system = ""
    network, action = simulated(Reboot(old_limiter=Limiter(hitcount=1)), reboot_timeout=120)
    result = action.run(task_vars={})
    assert result["failed"] is True
    assert result["msg"] == ("the host did not come back within reboot_timeout; last seen: reading the boot_id "
                             "failed: Failed to connect to the host via ssh: ssh: connect to host %s port %s: "
                             "Connection refused; 2 new connections were refused right after the host had answered: a "
                             "rate limit on new SSH connections from this controller (ufw's limit, fail2ban, sshd's "
                             "PerSourcePenalties) may be blocking it (this wait opened at most 4 per 31 s, and waited "
                             "longer after each refusal)" % (HOST, PORT))
    assert most_in_any_window(network.new_connections(), 30) <= BUDGET
