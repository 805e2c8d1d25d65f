"""NewConnections: the places for new connections to one host, and the wait after refusals.

The limiter here is ufw's ``limit`` rule as iptables' ``recent`` module runs it (fakes/network.Limiter):
the 6th new connection within 30 s is rejected, and every rejected one is stamped once more.
"""

import pytest

from ansible_collections.kernel.kexec.plugins.plugin_utils._new_connections import NewConnections

from ..fakes.network import Limiter


def test_at_most_max_new_in_any_window():
    gate = NewConnections()
    for now in (0.0, 1.0, 2.0, 3.0):
        assert gate.next_open(now) == now
        gate.open(now)
    assert gate.used(3.0) == 4
    assert gate.next_open(4.0) == 31.0  # when the first leaves the window
    assert gate.next_open(31.0) == 31.0 and gate.used(31.0) == 3


def test_a_login_with_retries_takes_a_place_per_try():
    gate = NewConnections()
    gate.open(0.0)
    gate.open(5.0)
    assert gate.next_open(6.0, count=3) == 31.0  # 3 tries need the first place back
    assert gate.next_open(6.0, count=9) == 36.0  # never more than the whole window


def test_refusals_double_the_wait_up_to_past_the_limiters_window():
    gate = NewConnections()
    waits = []
    now = 0.0
    for _attempt in range(7):
        gate.open(now)
        gate.refused(now)
        waits.append(gate.backoff)
        now = gate.next_open(now)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 32.0, 32.0]
    assert NewConnections.MAX_BACKOFF > 30  # ufw's window: the last stamp is gone when the next one comes


def test_refusals_that_come_together_double_the_wait_once():
    # Four held connections a limiter resets at once are one refusal.
    gate = NewConnections()
    for _sock in range(4):
        gate.refused(10.0)
    assert gate.backoff == 2.0


def test_an_answer_ends_the_wait_after_refusals():
    gate = NewConnections()
    gate.open(0.0)
    gate.refused(0.0)
    gate.refused(2.0)
    assert gate.next_open(2.0) == 4.0
    gate.answered()
    assert gate.backoff == 0 and gate.next_open(2.0) == 2.0


def test_a_booting_host_refusing_before_its_sshd_listens_is_no_reason_to_wait():
    gate = NewConnections()
    gate.booting = True
    gate.refused(0.0)
    assert gate.backoff == 0


def test_the_window_holds_fewer_than_ufw_allows():
    # ufw rejects the 6th within 30 s: one place is left for a connection the wait cannot count.
    assert NewConnections.MAX_NEW == 4 and NewConnections.WINDOW > 30


@pytest.mark.parametrize("backoff", [True, False], ids=["backoff", "steady"])
def test_a_controller_blocked_by_ufw_gets_through_only_by_waiting_longer(backoff):
    # Another client left ufw's limit blocking this address. Attempts at the watch's steady pace (the
    # window spread evenly), each rejected one stamped twice, keep it blocked for ever; growing waits
    # get through.
    limiter = Limiter(stamps=[0.0] * 8)
    gate = NewConnections()
    now, admitted = 1.0, None
    while now < 600 and admitted is None:
        gate.open(now)
        if limiter.admit(now):
            admitted = now
        elif backoff:
            gate.refused(now)
        now = max(gate.next_open(now), now + gate.WINDOW / gate.MAX_NEW)
    if backoff:
        assert admitted is not None and admitted < 130
    else:
        assert admitted is None and len(limiter.rejected) > 60
