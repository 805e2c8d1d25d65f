"""BannerWatch against real sockets on 127.0.0.1 (each test a fraction of a second).

A listener that accepts and stays silent is what QEMU's port forward is while the
guest cannot answer; a listener whose accept queue is full (listen(0), never
accepting) leaves a connection in connect(), as a host that is down does.
"""

import os
import socket
import threading
import time

import pytest

from ansible_collections.kernel.kexec.plugins.plugin_utils._banner_watch import BannerWatch

SSHD = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"


class Server:
    """A 127.0.0.1 listener; the n-th connection it accepts gets ``answers[n]``: (delay, payload) sends
    payload after delay seconds and holds the connection open, (delay, None) closes it after delay.
    Connections past the list stay silent. ``accepted`` counts connections, ``closed`` those the
    client closed while the server still held them."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.accepted = 0
        self.closed = 0
        self.done = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.done.is_set():
            try:
                client = self.sock.accept()[0]
            except OSError:
                continue
            answer = self.answers[self.accepted] if self.accepted < len(self.answers) else (60, b"")
            self.accepted += 1
            threading.Thread(target=self.answer, args=(client, answer), daemon=True).start()

    def answer(self, client, answer):
        delay, payload = answer
        with client:
            client.settimeout(0.02)
            until = time.monotonic() + delay
            while time.monotonic() < until and not self.done.is_set():
                try:
                    if client.recv(1) == b"":  # the client closed it
                        self.closed += 1
                        return
                except socket.timeout:
                    continue
                except OSError:
                    return
            if payload is None or self.done.is_set():
                return
            try:
                client.sendall(payload)
            except OSError:
                return
            self.done.wait(10)

    def close(self):
        self.done.set()
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def start(*answers):
        servers.append(Server(answers))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


@pytest.fixture
def watch():
    watches = []

    def make(port):
        watches.append(BannerWatch("127.0.0.1", port))
        return watches[-1]
    yield make
    for made in watches:
        made.close()


def probe(a_watch, timeout=0.3):
    began = time.monotonic()
    answer = a_watch.answered(timeout)
    return answer, time.monotonic() - began


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def wait_for(condition, seconds=2.0):
    until = time.monotonic() + seconds
    while not condition() and time.monotonic() < until:
        time.sleep(0.01)
    return condition()


def test_banner_from_sshd(serve, watch):
    answer, took = probe(watch(serve((0, SSHD)).port))
    assert answer is True and took < 0.3


def test_no_banner_from_something_else(serve, watch):
    answer, took = probe(watch(serve((0, b"HTTP/1.1 400 Bad Request\r\n")).port))
    assert answer is False and took < 0.3


def test_a_closed_connection_ends_the_probe_at_once(serve, watch):
    answer, took = probe(watch(serve((0, None)).port), timeout=3)  # QEMU's forward while sshd is down
    assert answer is False and took < 0.5


def test_closed_port(watch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answer, took = probe(watch(port), timeout=3)  # nothing listens there now
    assert answer is False and took < 0.5


def test_unknown_host_is_no_banner():
    a_watch = BannerWatch("host.invalid", 22)
    try:
        assert a_watch.answered(0.5) is False
    finally:
        a_watch.close()


def test_a_silent_connection_is_kept_for_the_next_probe(serve, watch):
    # Accepted and silent (the guest down behind QEMU's forward): the probe ends, the connection stays,
    # and the banner that comes on it later answers the next probe; nothing was opened beside it.
    server = serve((0.6, SSHD))
    a_watch = watch(server.port)
    answer, took = probe(a_watch, timeout=0.3)
    assert answer is False and 0.3 <= took < 0.6
    answer, took = probe(a_watch, timeout=2)
    assert answer is True and took < 0.6
    assert (server.accepted, server.closed) == (1, 0)


def test_a_fresh_connection_beside_a_held_one_finds_the_banner(serve, watch, monkeypatch):
    # The first connection's SYN is still in QEMU's retransmission back-off; a fresh one gets through.
    monkeypatch.setattr(BannerWatch, "HELD_EVERY", 0.2)
    server = serve((30, b""), (0, SSHD))
    answer, took = probe(watch(server.port), timeout=2)
    assert answer is True and 0.2 <= took < 1
    assert server.accepted == 2


def test_held_connections_are_few_and_never_closed_unanswered(serve, watch, monkeypatch):
    # However long the host stays silent, at most MAX_HELD connections reach it, and none is closed
    # while the watch lasts: each one closed would still reach the new boot's sshd through the forward.
    monkeypatch.setattr(BannerWatch, "HELD_EVERY", 0.05)
    server = serve()
    a_watch = watch(server.port)
    for _probe in range(6):
        assert a_watch.answered(0.1) is False
    assert server.accepted == BannerWatch.MAX_HELD == 4
    assert server.closed == 0
    a_watch.close()
    assert wait_for(lambda: server.closed == 4)


def test_leaving_a_with_block_closes_the_held_connections(serve):
    # guest.py waits for a first boot in a with block: however it leaves (the guest came up, QEMU
    # exited, sys.exit on the deadline), the held connections go with it.
    server = serve()
    with pytest.raises(SystemExit):
        with BannerWatch("127.0.0.1", server.port) as a_watch:
            assert a_watch.answered(0.1) is False
            assert wait_for(lambda: server.accepted == 1)
            raise SystemExit("no SSH banner")
    assert wait_for(lambda: server.closed == 1)


def test_connections_still_connecting_are_kept_for_a_while_then_replaced(monkeypatch):
    # A full accept queue leaves the SYN unanswered, as a host that is down does: such a connection is our
    # kernel's own, whose SYN it retransmits 1, 3 and 7 s later. It is kept across probes (opening a fresh
    # one instead would take another place among the new connections a host counts) until CONNECTING_FOR,
    # then closed, which cancels it, and replaced; closing the watch closes them all.
    monkeypatch.setattr(BannerWatch, "RECONNECT_EVERY", 0.05)
    monkeypatch.setattr(BannerWatch, "HELD_EVERY", 0.05)
    monkeypatch.setattr(BannerWatch, "CONNECTING_FOR", 0.3)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # room for one connection, never accepted
        before = open_fds()
        a_watch = BannerWatch("127.0.0.1", listener.getsockname()[1])
        try:
            assert a_watch.answered(0.2) is False
            # the selector, the one connection that got into the queue (held), and MAX_CONNECTING connecting
            assert open_fds() == before + 2 + BannerWatch.MAX_CONNECTING
            first = set(a_watch._connecting)
            assert a_watch.answered(0.4) is False
            assert len(a_watch._connecting) <= BannerWatch.MAX_CONNECTING
            assert not first & a_watch._connecting  # each replaced after 0.3 s
        finally:
            a_watch.close()
        assert open_fds() == before
