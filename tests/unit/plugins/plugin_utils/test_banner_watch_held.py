"""BannerWatch holding what sshd answered, in simulated time (fakes/network.py), with few new connections.

The watch runs unchanged on the fake ``socket`` and ``selectors`` modules of a
simulated host: its sshd, its reboot (sshd stops, its unauthenticated children
are killed, the network goes and comes back with the next boot), LoginGraceTime
and ufw's ``limit`` rule. A look that waits moves the fake clock, so a reboot of
minutes takes no real time.
"""

import pytest

from ansible_collections.kernel.kexec.plugins.plugin_utils import _banner_watch
from ansible_collections.kernel.kexec.plugins.plugin_utils._banner_watch import (
    BANNER, ENDED, IDENTIFICATION, IGNORE_PACKET, LOST, NOTHING, REFUSED, BannerWatch, Sight, ended_by_shutdown,
)
from ansible_collections.kernel.kexec.plugins.plugin_utils._new_connections import NewConnections

from ..fakes.network import Clock, Limiter, Network, Reboot, most_in_any_window

T = 1000.0  # the fake clock at the start of each test


@pytest.fixture
def simulate(monkeypatch):
    def make(reboot, hold=2, gate=True):
        clock = Clock(T)
        network = Network(clock, reboot)
        monkeypatch.setattr(_banner_watch, "socket", network.socket_module)
        monkeypatch.setattr(_banner_watch, "selectors", network.selectors_module)
        watch = BannerWatch("192.0.2.7", 22, gate=NewConnections() if gate else None, hold=hold, clock=clock)
        return clock, network, watch
    return make


def test_a_held_connection_closed_by_the_shutdown_proves_the_old_boot_went_down(simulate):
    # systemctl kexec: sshd stops listening, then its unauthenticated children are killed while the
    # network is still up, which closes the connection the watch holds.
    clock, network, watch = simulate(Reboot(sshd_stops=T + 2, killed=T + 4, net_down=T + 5))
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(30) == Sight(ENDED, False)
    assert clock.now == T + 4
    assert network.connects == [T]  # seen going without a new connection


def test_a_close_the_network_never_sent_is_found_by_data_left_unacknowledged(simulate):
    # The old boot's network went before its processes were killed (ifupdown stops first): no close
    # reaches the controller. The SSH_MSG_IGNORE the watch sends on both held connections at once stays
    # unacknowledged, and TCP_USER_TIMEOUT ends both 10 s later, before the next boot is up.
    clock, network, watch = simulate(Reboot(sshd_stops=T + 8, killed=T + 12, net_down=T + 10, net_up=T + 25,
                                            sshd_up=T + 60))
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(60) == Sight(ENDED, False)
    assert clock.now == T + 20
    assert network.connects == [T, T + 5]
    assert {sock.user_timeout for sock in network.sockets} == {BannerWatch.UNACKED_FOR}


def test_without_tcp_user_timeout_the_next_boot_resets_the_held_connections(simulate, monkeypatch):
    # A controller without TCP_USER_TIMEOUT (not Linux): the unacknowledged SSH_MSG_IGNORE is retransmitted
    # until the next boot's kernel resets both held connections, at the same retransmission.
    clock, network, watch = simulate(Reboot(sshd_stops=T + 8, killed=T + 12, net_down=T + 10, net_up=T + 25,
                                            sshd_up=T + 60))
    monkeypatch.delattr(network.socket_module, "TCP_USER_TIMEOUT")
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(60) == Sight(ENDED, False)
    assert clock.now == T + 25  # the retransmission 15 s after the first unanswered one, at T + 10


def test_a_next_boot_that_drops_unknown_connections_leaves_them_to_the_timeout(simulate):
    # ufw drops the packets of connections conntrack does not know: no reset ever comes.
    clock, network, watch = simulate(Reboot(sshd_stops=T + 8, killed=T + 12, net_down=T + 10, net_up=T + 12,
                                            sshd_up=T + 60, drops_unknown=True))
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(60) == Sight(ENDED, False)
    assert clock.now == T + 20


def test_one_held_connection_that_ends_late_proves_nothing(simulate):
    # Alone and 20 s old when its data timed out, it might have been ended by LoginGraceTime: the wait reads on.
    clock, network, watch = simulate(Reboot(sshd_stops=T + 2, killed=T + 12, net_down=T + 10, net_up=T + 25,
                                            sshd_up=T + 60))
    assert watch.look(3) == Sight(BANNER, True)
    seen = [watch.look(60)]
    while seen[-1].kind == REFUSED:
        seen.append(watch.look(60))
    # a second one from T + 5 on, then less and less often: sshd no longer listens
    assert seen[:-1] and set(seen[:-1]) == {Sight(REFUSED, True)}
    assert seen[-1] == Sight(LOST, False)
    assert clock.now == T + 20


def test_the_watch_says_who_it_is_then_sends_ssh_msg_ignore_every_two_seconds(simulate):
    clock, network, watch = simulate(Reboot())
    watch.look(3)
    watch.look(5)
    assert network.sockets[0].sent == [(T, IDENTIFICATION), (T + 2, IGNORE_PACKET), (T + 4, IGNORE_PACKET)]
    assert IGNORE_PACKET == bytes.fromhex("0000000c06020000000000000000000000")[:16]  # length 12, pad 6, msg 2
    assert (len(IGNORE_PACKET) % 8, IGNORE_PACKET[5]) == (0, 2)


def test_an_old_connection_that_ends_alone_proves_nothing(simulate):
    # LoginGraceTime (20 s here) ends an unauthenticated connection while the host runs on.
    clock, network, watch = simulate(Reboot(grace=20), hold=1)
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(60) == Sight(LOST, False)
    assert clock.now == T + 20


def test_login_grace_time_ends_are_absorbed_while_another_answered_connection_is_held(simulate):
    # The second connection is opened when the first turns 5 s old; each end by LoginGraceTime is replaced
    # while the other one still shows sshd up: no end is reported, and few connections are opened.
    clock, network, watch = simulate(Reboot(grace=20))
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(120) == Sight(NOTHING, True)
    # each needs a place for itself and one for a login a banner would ask for: no more than 3 in a window
    assert most_in_any_window(network.connects) <= NewConnections.MAX_NEW - 1
    assert [opened - T for opened in network.connects] == [0, 5, 20, 31, 40, 51, 62, 71, 82, 93, 102, 113]


def test_held_connections_that_end_together_prove_a_shutdown_however_old(simulate):
    # Both answered 5 s apart, both ended at once: LoginGraceTime would have ended them 5 s apart.
    clock, network, watch = simulate(Reboot(sshd_stops=T + 48, killed=T + 50, net_down=T + 52))
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(120) == Sight(ENDED, False)
    assert clock.now == T + 50
    assert network.connects == [T, T + 5]


def test_a_held_connection_is_replaced_before_sshd_login_grace_time(simulate):
    # OpenSSH 9.8 and later penalise a source whose connection exceeds LoginGraceTime (120 s by default).
    clock, network, watch = simulate(Reboot())
    watch.look(3)
    assert watch.look(130) == Sight(NOTHING, True)
    first = network.sockets[0]
    assert first.closed_at == T + 100 and first.end()[0] == T + 120
    assert network.connects == [T, T + 5, T + 100, T + 105]


def test_a_refusal_while_sshd_holds_an_answered_connection_is_told_as_such(simulate):
    # ufw's limit already counts four connections of another client: the watch's second one is its sixth.
    limiter = Limiter(stamps=[T - 1] * 4)
    clock, network, watch = simulate(Reboot(old_limiter=limiter))
    assert watch.look(3) == Sight(BANNER, True)
    assert watch.look(30) == Sight(REFUSED, True)  # the old sshd still holds: no sign of the host going
    assert limiter.rejected == [T + 5]


def test_a_host_down_for_minutes_sees_few_new_connections(simulate):
    # While the host is down the watch's SYNs go unanswered; it opens at most 4 in any 31 s, and still finds
    # the next boot's sshd within a few seconds, without its limiter rejecting anything.
    limiter = Limiter()
    clock, network, watch = simulate(Reboot(sshd_stops=T + 2, killed=T + 4, net_down=T + 5, net_up=T + 180,
                                            sshd_up=T + 185, new_limiter=limiter))
    assert watch.look(3).kind == BANNER
    seen = []
    while not seen or seen[-1] != BANNER:
        seen.append(watch.look(5).kind)
    assert ENDED in seen
    assert most_in_any_window(network.connects) <= NewConnections.MAX_NEW
    assert limiter.rejected == []
    assert T + 185 <= clock.now <= T + 185 + 10


def test_without_a_gate_or_hold_the_watch_probes_as_before(simulate):
    # The qemu_guest role's launcher: a banner closes its connection, nothing is held.
    clock, network, watch = simulate(Reboot(), hold=0, gate=False)
    assert watch.answered(3) is True
    assert network.sockets[0].closed_at == T and not watch.holding


@pytest.mark.parametrize("ends, proof", [
    ([(T, T + 4)], True),  # one answered 4 s before it ended: no LoginGraceTime is that short
    ([(T, T + 30)], False),  # one old one: LoginGraceTime 30 s ends it so
    ([(T, T + 50), (T + 5, T + 50)], True),  # two answered 5 s apart, ended at once
    ([(T, T + 50), (T + 2, T + 51)], False),  # answered too close together to tell
    ([(T + 20, T + 40)], False),
], ids=["young", "old-alone", "old-together", "too-close", "grace-20"])
def test_ended_by_shutdown(ends, proof):
    assert ended_by_shutdown(ends, BannerWatch.GRACE_FLOOR, BannerWatch.STAGGER) is proof
