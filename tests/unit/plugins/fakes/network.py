"""A simulated network for the SSH banner watch: one host's sshd through a reboot, on a fake clock.

_banner_watch.py reaches the network only through the modules ``socket`` and
``selectors``; a test puts ``Network.socket_module`` and
``Network.selectors_module`` in their place (monkeypatch on the module), and
the watch runs unchanged in simulated time: select() moves the clock to the
next thing that happens. The host is a timeline on that clock (``Reboot``):

- the old boot runs until ``net_down``; its sshd listens until ``sshd_stops``;
  the unauthenticated sshd children are killed at ``killed``, and the client
  sees the close only if the old boot's network was still up then;
- nothing answers from ``net_down`` until ``net_up``; a connect's SYN is
  retransmitted as Linux does (1, 3, 7, 15, 31 and 63 s later, then ETIMEDOUT);
- the new boot's kernel answers from ``net_up`` (a reset for anything it does
  not know, data on an old connection included), its sshd from ``sshd_up``.

Each boot may have a ``Limiter``, iptables' ``recent`` module as ufw's
``limit`` rule uses it; a rejected connection is refused with a reset. Every
new connection the host could have seen is logged: ``connects`` (the watch's)
and ``logins`` (SSH logins, through ``login()``).
"""

import errno
import socket

INF = float("inf")
SSHD_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
KEXINIT = b"\x00\x00\x04\x5c\x0a\x14" + bytes(40)  # the start of sshd's key exchange offer
SYN_RETRIES = (0, 1, 3, 7, 15, 31, 63)
SYN_GIVE_UP = 127
DATA_RETRIES = (0, 1, 3, 7, 15, 27, 39, 51, 63, 75, 87, 99)  # backing off to one each 12 s, as QEMU's slirp does


class Clock:
    """A fake monotonic clock: call it for the time; ``now`` moves only when something moves it."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0)


class Limiter:
    """ufw's ``limit``: each new connection is stamped; one that finds ``hitcount`` stamps within ``seconds``,
    its own included, is rejected and stamped once more (``--set`` then ``--update --hitcount``)."""

    def __init__(self, hitcount=6, seconds=30, stamps=()):
        self.hitcount, self.seconds = hitcount, seconds
        self.stamps = list(stamps)
        self.rejected = []

    def admit(self, now):
        self.stamps.append(now)
        if sum(1 for stamp in self.stamps if stamp >= now - self.seconds) < self.hitcount:
            return True
        self.stamps.append(now)
        self.rejected.append(now)
        return False


class Reboot:
    """The host's timeline (fake clock times; INF: never) and its sshd's LoginGraceTime."""

    def __init__(self, sshd_stops=INF, killed=INF, net_down=INF, net_up=INF, sshd_up=INF, grace=120.0,
                 old_limiter=None, new_limiter=None, drops_unknown=False):
        self.sshd_stops, self.killed, self.net_down = sshd_stops, killed, net_down
        self.net_up, self.sshd_up, self.grace = net_up, sshd_up, grace
        self.drops_unknown = drops_unknown  # the new boot drops packets of connections it does not know (ufw)
        self.limiters = {"old": old_limiter, "new": new_limiter}

    def boot(self, now):
        if now < self.net_down:
            return "old"
        return "down" if now < self.net_up else "new"

    def listening(self, boot, now):
        return now < self.sshd_stops if boot == "old" else now >= self.sshd_up

    def admit(self, boot, now):
        limiter = self.limiters[boot]
        return limiter is None or limiter.admit(now)


class FakeSocket:
    """One connection of the watch: where its SYN lands, what sshd sends on it, and when it ends."""

    def __init__(self, network):
        self.network = network
        self.opened = self.arrival = None
        self.outcome = None  # "accepted", "refused" or "timeout"
        self.boot = None
        self.incoming = []  # (time, bytes) that sshd sends
        self.consumed = 0  # bytes of incoming read so far
        self.sent = []  # (time, bytes) the client sent
        self.closed_at = None
        self.user_timeout = None  # seconds (TCP_USER_TIMEOUT) unacknowledged data is kept before ETIMEDOUT

    # the socket API BannerWatch uses

    def setblocking(self, flag):
        assert flag is False

    def connect_ex(self, address):
        now = self.network.clock()
        self.opened = now
        self.network.connects.append(now)
        reboot = self.network.reboot
        for delay in SYN_RETRIES:
            boot = reboot.boot(now + delay)
            if boot != "down":
                self.arrival, self.boot = now + delay, boot
                break
        else:
            self.arrival, self.outcome = now + SYN_GIVE_UP, "timeout"
        return errno.EINPROGRESS

    def land(self):
        """The SYN reaches the host (at ``arrival``, in time order with the others): admitted and accepted?"""
        reboot = self.network.reboot
        self.network.arrivals.append(self.arrival)
        if reboot.admit(self.boot, self.arrival) and reboot.listening(self.boot, self.arrival):
            self.outcome = "accepted"
            self.incoming.append((self.arrival, SSHD_BANNER))
        else:
            self.outcome = "refused"

    def getsockopt(self, level, option):
        assert (level, option) == (socket.SOL_SOCKET, socket.SO_ERROR)
        assert self.network.clock() >= self.arrival
        self.network.settle()
        return {"accepted": 0, "refused": errno.ECONNREFUSED, "timeout": errno.ETIMEDOUT}[self.outcome]

    def setsockopt(self, level, option, value):
        assert (level, option) == (socket.IPPROTO_TCP, Network.TCP_USER_TIMEOUT)
        self.user_timeout = value / 1000

    def recv(self, size):
        now = self.network.clock()
        self.network.settle()
        end, kind = self.end()
        if end <= now and kind == "reset":
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        waiting = self.unread(now)
        if waiting:
            chunk = waiting[:size]
            self.consumed += len(chunk)
            return chunk
        if end <= now:
            return b""
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    def send(self, data):
        now = self.network.clock()
        self.network.settle()
        if self.end()[0] <= now:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        first_line = not any(b"\n" in chunk for _at, chunk in self.sent)
        self.sent.append((now, bytes(data)))
        if first_line and b"\n" in data and self.alive(now):
            self.incoming.append((now, KEXINIT))
        return len(data)

    def close(self):
        self.closed_at = self.network.clock()

    # the simulation

    def alive(self, now):
        """Whether the sshd child serving this connection runs and can be reached at ``now``."""
        reboot = self.network.reboot
        if self.boot == "old" and now >= min(reboot.killed, reboot.net_down):
            return False
        return now < self.arrival + reboot.grace

    def unread(self, now):
        data = b"".join(chunk for at, chunk in self.incoming if at <= now)
        return data[self.consumed:]

    def end(self):
        """(time, "close" or "reset") of the end of an accepted connection, as far as it is known now."""
        if self.outcome != "accepted":
            return INF, None
        reboot = self.network.reboot
        ends = [(self.arrival + reboot.grace, "close")]  # LoginGraceTime: the child closes it
        if self.boot == "old" and reboot.killed < reboot.net_down:
            ends.append((reboot.killed, "close"))  # the child is killed while the network can still say so
        elif self.boot == "old":
            # Its close is never sent: the first data the client sends after the old boot's network went is
            # retransmitted (later data waits behind it) until the next boot's kernel resets the connection.
            unanswered = [at for at, _chunk in self.sent if at >= reboot.net_down]
            for delay in DATA_RETRIES if unanswered and not reboot.drops_unknown else ():
                if reboot.boot(unanswered[0] + delay) == "new":
                    ends.append((unanswered[0] + delay, "reset"))
                    break
            if unanswered and self.user_timeout is not None:
                ends.append((unanswered[0] + self.user_timeout, "reset"))  # ETIMEDOUT
        ends = [end for end in ends if self.boot != "old" or end[0] < reboot.net_down or end[1] == "reset"]
        return min(ends) if ends else (INF, None)

    def ready_at(self, events):
        """When a select() for ``events`` would return this socket: its connect's answer; unread data or its end."""
        if events & Network.EVENT_WRITE:
            return self.arrival
        end = self.end()[0]
        total = 0
        for at, chunk in self.incoming:
            total += len(chunk)
            if total > self.consumed:
                return min(at, end)
        return end


class _Key:
    def __init__(self, fileobj, events):
        self.fileobj, self.events = fileobj, events


class FakeSelector:
    def __init__(self, clock):
        self.clock = clock
        self.registered = {}

    def register(self, sock, events):
        assert sock not in self.registered
        self.registered[sock] = events

    def modify(self, sock, events):
        self.registered[sock] = events

    def unregister(self, sock):
        del self.registered[sock]

    def close(self):
        self.registered = {}

    def select(self, timeout=None):
        now = self.clock.now
        when = {sock: sock.ready_at(events) for sock, events in self.registered.items()}
        soonest = min(when.values(), default=INF)
        until = INF if timeout is None else now + timeout
        at = max(now, min(soonest, until))
        assert at < INF, "select() would block for ever"
        self.clock.now = at
        return [(_Key(sock, self.registered[sock]), self.registered[sock]) for sock, ready in when.items()
                if ready <= at]


class Network:
    """The fake ``socket`` and ``selectors`` modules for one host's ``reboot`` on ``clock``."""

    EVENT_READ, EVENT_WRITE = 1, 2
    TCP_USER_TIMEOUT = 18  # Linux's number

    def __init__(self, clock, reboot):
        self.clock, self.reboot = clock, reboot
        self.connects, self.logins, self.arrivals, self.sockets = [], [], [], []
        network = self

        class SocketModule:
            SOCK_STREAM, SOL_SOCKET, SO_ERROR, AF_INET = (socket.SOCK_STREAM, socket.SOL_SOCKET, socket.SO_ERROR,
                                                          socket.AF_INET)
            IPPROTO_TCP, TCP_USER_TIMEOUT = socket.IPPROTO_TCP, Network.TCP_USER_TIMEOUT

            @staticmethod
            def getaddrinfo(host, port, type=None):  # pylint: disable=redefined-builtin
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]

            @staticmethod
            def socket(family, kind, proto=0):
                made = FakeSocket(network)
                network.sockets.append(made)
                return made

        class SelectorsModule:
            EVENT_READ, EVENT_WRITE = Network.EVENT_READ, Network.EVENT_WRITE

            @staticmethod
            def DefaultSelector():  # pylint: disable=invalid-name
                return FakeSelector(network.clock)

        self.socket_module, self.selectors_module = SocketModule, SelectorsModule

    def settle(self):
        """Let the SYNs that reached the host by now land, in the order they arrived; one whose connection was
        closed before (a cancelled connect) never does."""
        now = self.clock()
        landing = [sock for sock in self.sockets if sock.outcome is None and sock.arrival <= now
                   and (sock.closed_at is None or sock.closed_at > sock.arrival)]
        for sock in sorted(landing, key=lambda sock: sock.arrival):
            sock.land()

    def login(self):
        """One SSH login at the clock's time: the boot that answers it ("old" or "new"), or the OSError ssh
        would fail with (the refusal at once, a timeout after 10 s)."""
        self.settle()
        now = self.clock()
        self.logins.append(now)
        boot = self.reboot.boot(now)
        if boot == "down":
            self.clock.now += 10
            raise TimeoutError(errno.ETIMEDOUT, "Connection timed out")
        if not (self.reboot.admit(boot, now) and self.reboot.listening(boot, now)):
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return boot

    def new_connections(self):
        """The times of every new connection the host may have seen, in order."""
        return sorted(self.connects + self.logins)


def most_in_any_window(times, seconds=30.0):
    """The most of ``times`` that fall in one window of ``seconds`` (both ends included)."""
    times = sorted(times)
    return max((sum(1 for other in times if start <= other <= start + seconds) for start in times), default=0)
