# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watching sshd while a host reboots, with few new connections: its banner, and when it goes.

Private to the kernel.kexec collection (controller side: the kexec_reboot action).

A bare TCP accept proves nothing (QEMU's port forward and load balancers
accept while the host is down); the banner ``SSH-`` proves sshd. A connection
is in one of three states, and each is handled for what it costs the host:

- still *connecting*: our kernel's own SYN, which it retransmits 1, 3 and 7 s
  later; one that finds a host coming up is answered then. It is kept across
  looks for CONNECTING_FOR seconds, then closed (which cancels it) and may be
  replaced, one each RECONNECT_EVERY seconds (with a gate, spread over its
  window), at most MAX_CONNECTING.
- *connected* but silent: accepted by something in between (QEMU's user
  networking, a proxy, a load balancer) that goes on connecting to the host
  for us. Closing it does not cancel that: QEMU's slirp retransmits the SYN
  for 75 s and, once the host's network is up, hands sshd a connection whose
  client is long gone. sshd forks and re-execs for each, and past MaxStartups
  (10 unauthenticated) it drops real logins at random, so closing such
  connections early delayed the first real login by seconds. They are kept
  until they answer (banner, close) or the watch is closed; at most MAX_HELD,
  a fresh one at most every HELD_EVERY seconds beside them.
- *answered*: sshd sent its banner. With ``hold``, the watch keeps such
  connections instead of opening new ones to see whether sshd still answers.
  The unauthenticated sshd that serves one dies when the host shuts down, so
  its end shows the old boot going without any new connection. sshd's
  LoginGraceTime ends it too (120 s by default, often 30 or 60 s); so an end
  proves a shutdown (ENDED) only when a connection younger than GRACE_FLOOR
  ended, or when all held ones, which answered at least STAGGER apart, ended
  within TOGETHER of each other (LoginGraceTime would end them STAGGER apart);
  otherwise it proves nothing (LOST). The second one is opened when the first
  turns STAGGER, and a held one older than HOLD_FOR is replaced by a fresh
  one while another is held, before the default LoginGraceTime: OpenSSH 9.8
  and later penalise a source whose connection exceeds it. A host whose
  network goes before its processes are killed (ifupdown takes it down first)
  sends no close; so the watch says who it is (an SSH identification) and
  then sends SSH_MSG_IGNORE, which every SSH server discards, on all held
  connections each PING_EVERY seconds: a live sshd reads it, and the next
  boot's kernel resets every held connection at the same retransmission.
  Where the next boot drops packets of connections it does not know (ufw's
  rules drop conntrack's INVALID), and while nothing answers at all, Linux's
  TCP_USER_TIMEOUT ends a held connection whose data stays unacknowledged
  UNACKED_FOR seconds: a running host's kernel acknowledges at once.

Every new connection takes a place from ``gate`` (a NewConnections, see
_new_connections.py), when one is given: hosts that rate-limit new SSH
connections (ufw's ``limit``, fail2ban) must not see a probe each second.

One watch serves one wait (the probes of one reboot); :meth:`BannerWatch.close`
ends it, and so does leaving a ``with BannerWatch(host, port) as watch:`` block.
"""

from __future__ import annotations

import collections
import errno
import selectors
import socket
import time

# What one look saw: ``kind`` is one of these, ``holding`` whether answered connections are still held.
BANNER = "banner"  # sshd answered on a fresh connection, and no earlier answer is still held
ENDED = "ended"  # the held answered connections ended as a host going down ends them
LOST = "lost"  # they ended, in a way that proves nothing (LoginGraceTime, one old one alone)
REFUSED = "refused"  # a connection was refused, reset, closed or answered by something else before a banner
NOTHING = "nothing"  # none of these before the look's timeout
Sight = collections.namedtuple("Sight", "kind holding")

# An SSH client's identification line, then an SSH_MSG_IGNORE packet before any key exchange (no cipher,
# block size 8): uint32 length 12, padding length 6, message 2 with an empty string, 6 bytes of padding.
IDENTIFICATION = b"SSH-2.0-kernel.kexec_reboot_wait\r\n"
IGNORE_PACKET = bytes((0, 0, 0, 12, 6, 2, 0, 0, 0, 0)) + bytes(6)
REFUSALS = frozenset((errno.ECONNREFUSED, errno.ECONNRESET))


def ended_by_shutdown(ends, grace_floor, stagger):
    """Whether answered connections that ended together, ``(answered, ended)`` times each, show a host going
    down rather than sshd's LoginGraceTime, which ends each one the same time after it answered: one ended
    younger than ``grace_floor``, or two that answered ``stagger`` apart ended at once."""
    if any(ended - answered < grace_floor for answered, ended in ends):
        return True
    answered = [answered for answered, _ended in ends]
    return len(ends) >= 2 and max(answered) - min(answered) >= stagger


class BannerWatch:
    """Probes of one host's sshd that share their connections, and keep ``hold`` that answered."""

    RECONNECT_EVERY = 1.0  # a fresh connection beside silent ones still connecting
    MAX_CONNECTING = 3
    CONNECTING_FOR = 10.0  # past the SYN retransmissions at 1, 3 and 7 s, a fresh one does better
    HELD_EVERY = 3.0  # a fresh connection beside connected, silent ones
    MAX_HELD = 4
    GRACE_FLOOR = 10.0  # no sshd is taken to end an unauthenticated connection sooner (LoginGraceTime)
    STAGGER = 5.0
    TOGETHER = 2.0
    HOLD_FOR = 100.0  # under sshd's default LoginGraceTime of 120 s
    PING_EVERY = 2.0
    LOGIN_PLACES = 1  # a place of the gate's window the probes leave for the login a banner asks for
    UNACKED_FOR = 10.0

    _clock = staticmethod(time.monotonic)

    def __init__(self, host, port, gate=None, hold=0, clock=None):
        self.host, self.port = host, port
        self._gate = gate
        self._hold = hold
        if clock is not None:
            self._clock = clock
        self._address = None  # (family, kind, proto, sockaddr) once resolved
        self._selector = selectors.DefaultSelector()
        self._opened = {}  # every open socket -> when it was opened
        self._connecting = set()
        self._silent = {}  # connected socket -> the banner's first bytes so far
        self._answered = {}  # socket that sent the banner -> when
        self._ping_at = float("inf")  # the next SSH_MSG_IGNORE on every answered connection
        self._ends = []  # (answered, ended) of answered connections that ended while others were held
        self._last_open = float("-inf")

    @property
    def holding(self):
        """Whether a connection that had sshd's banner is still open."""
        return bool(self._answered)

    def answered(self, timeout):
        """True when sshd sends its banner on a fresh connection within ``timeout`` seconds.

        False at once when a connection is refused, reset, closed, or answers with something else
        (the host is up and sshd is not); False after ``timeout`` when every connection stays silent.
        """
        return self.look(timeout).kind == BANNER

    def look(self, timeout):
        """The first thing worth telling (a Sight) within ``timeout`` seconds; NOTHING after it."""
        deadline = self._clock() + timeout
        try:
            if self._address is None:
                family, kind, proto, _name, sockaddr = socket.getaddrinfo(self.host, self.port,
                                                                          type=socket.SOCK_STREAM)[0]
                self._address = (family, kind, proto, sockaddr)
            while True:
                now = self._clock()
                self._expire(now)
                sight = self._ping(now)
                if sight is not None:
                    return sight
                if now >= deadline:
                    return self._sight(NOTHING)
                opens_at = self._next_open(now)
                if now >= opens_at:
                    sight = self._open(now)
                    if sight is not None:
                        return sight
                    continue
                for key, _events in self._selector.select(max(min(deadline, opens_at, self._next_timer()) - now, 0)):
                    sight = self._serve(key.fileobj)
                    if sight is not None:
                        return sight
        except (OSError, UnicodeError):  # no name, no route, no socket to be had (EMFILE): no banner
            return self._sight(NOTHING)

    def __enter__(self):
        return self

    def __exit__(self, *_exc_info):
        self.close()

    def release(self):
        """Close the answered connections (not an end the host made): the next banner counts as sshd
        answering anew."""
        for sock in list(self._answered):
            self._forget(sock)
        self._ends = []

    def close(self):
        for sock in list(self._opened):
            self._forget(sock)
        self._selector.close()

    # --- opening --------------------------------------------------------------------------------------

    def _wanted_from(self):
        """When a fresh connection would tell more: at once while nothing sshd answered is held; while one is,
        never, unless it turns STAGGER with no second one held or on its way (its end alone could then be
        LoginGraceTime's)."""
        if len(self._connecting) >= self.MAX_CONNECTING or len(self._silent) >= self.MAX_HELD:
            return float("inf")
        if not self._answered:
            return self._last_open + (self.HELD_EVERY if self._silent else self._reconnect_every())
        if self._connecting or self._silent or len(self._answered) >= self._hold:
            return float("inf")
        return max(self._answered.values()) + self.STAGGER

    def _reconnect_every(self):
        """Probes of a silent host: one each RECONNECT_EVERY, or spread over the places of the gate's window
        they may take (the SYN retransmissions of each, at 1, 3 and 7 s, fill the time between them)."""
        if self._gate is None:
            return self.RECONNECT_EVERY
        return max(self.RECONNECT_EVERY, self._gate.WINDOW / (self._gate.MAX_NEW - self.LOGIN_PLACES))

    def _next_open(self, now):
        """When a fresh connection may be opened: when one is wanted, and when the gate has a place for it and
        for the login that a banner on it asks for."""
        at = self._wanted_from()
        if self._gate is not None and at < float("inf"):
            at = max(at, self._gate.next_open(now, 1 + self.LOGIN_PLACES))
        return at

    def _open(self, now):
        """Start one connection; a Sight when it fails at once."""
        family, kind, proto, sockaddr = self._address
        sock = socket.socket(family, kind, proto)
        self._opened[sock] = now
        self._last_open = now
        if self._gate is not None:
            self._gate.open(now)
        sock.setblocking(False)
        failure = sock.connect_ex(sockaddr)
        if failure not in (0, errno.EINPROGRESS):
            self._forget(sock)
            return self._failed(failure)
        self._connecting.add(sock)
        self._selector.register(sock, selectors.EVENT_WRITE)
        return None

    # --- what a ready connection says ---------------------------------------------------------------

    def _serve(self, sock):
        """What ``sock``, ready, says: a Sight, or None (nothing worth telling yet)."""
        if sock in self._connecting:
            failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if failure:
                self._forget(sock)
                return self._failed(failure)
            self._connecting.discard(sock)
            self._silent[sock] = b""
            self._selector.modify(sock, selectors.EVENT_READ)
            return None
        if sock in self._answered:
            return self._serve_answered(sock)
        try:
            chunk = sock.recv(4 - len(self._silent[sock]))
        except BlockingIOError:
            return None
        except OSError:  # reset: something answers and nothing listens
            self._forget(sock)
            return self._refused()
        if not chunk:  # closed: nothing behind the forward (QEMU's, with sshd down)
            self._forget(sock)
            return self._refused()
        self._silent[sock] += chunk
        if len(self._silent[sock]) < 4:
            return None
        if self._silent.pop(sock) != b"SSH-":
            self._forget(sock)
            return self._refused()
        return self._banner(sock)

    def _banner(self, sock):
        if self._gate is not None:
            self._gate.answered()
        anew = not self._answered
        if self._hold:
            now = self._clock()
            self._answered[sock] = now
            self._limit_unacknowledged(sock)
            self._ping_at = min(self._ping_at, now + self.PING_EVERY)
            if not self._send(sock, IDENTIFICATION):
                return self._ended(sock)
        else:
            self._forget(sock)
        return self._sight(BANNER) if anew else None

    def _serve_answered(self, sock):
        try:
            if sock.recv(4096):  # the rest of the banner, sshd's key exchange offer: read and dropped
                return None
        except BlockingIOError:
            return None
        except OSError:
            pass
        return self._ended(sock)

    def _ended(self, sock):
        """An answered connection ended: a Sight once the last held one has."""
        now = self._clock()
        self._ends.append((self._answered[sock], now))
        self._forget(sock)
        if self._answered:
            return None
        ends = [end for end in self._ends if now - end[1] <= self.TOGETHER]
        self._ends = []
        return self._sight(ENDED if ended_by_shutdown(ends, self.GRACE_FLOOR, self.STAGGER) else LOST)

    def _failed(self, failure):
        """A connection that failed with errno ``failure``: a refusal, or silence (no route, timed out)."""
        return self._refused() if failure in REFUSALS else None

    def _refused(self):
        if self._gate is not None:
            self._gate.refused(self._clock())
        return self._sight(REFUSED)

    # --- timers -----------------------------------------------------------------------------------------

    def _next_timer(self):
        """The next ping, expiry of a connection still connecting, or replacement of an old answered one."""
        expiries = [self._opened[sock] + self.CONNECTING_FOR for sock in self._connecting]
        if len(self._answered) > 1:
            expiries.append(min(self._answered.values()) + self.HOLD_FOR)
        return min(expiries + [self._ping_at])

    def _expire(self, now):
        """Close connections still connecting after CONNECTING_FOR, and the oldest answered one after
        HOLD_FOR while another is held."""
        for sock in [sock for sock in self._connecting if now - self._opened[sock] >= self.CONNECTING_FOR]:
            self._forget(sock)
        if len(self._answered) > 1:
            oldest = min(self._answered, key=self._answered.get)
            if now - self._answered[oldest] >= self.HOLD_FOR:
                self._forget(oldest)

    def _ping(self, now):
        """SSH_MSG_IGNORE on every held connection, all at once; a Sight when that finds the last one gone."""
        if now < self._ping_at:
            return None
        self._ping_at = now + self.PING_EVERY if self._answered else float("inf")
        for sock in list(self._answered):
            if not self._send(sock, IGNORE_PACKET):
                sight = self._ended(sock)
                if sight is not None:
                    return sight
        return None

    def _limit_unacknowledged(self, sock):
        option = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux only
        if option is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, int(self.UNACKED_FOR * 1000))
            except OSError:
                pass

    def _send(self, sock, data):
        """False when the connection is gone (reset, closed)."""
        try:
            sock.send(data)
        except BlockingIOError:  # unacknowledged data fills the buffer: the host may be down, no verdict yet
            pass
        except OSError:
            return False
        return True

    def _sight(self, kind):
        return Sight(kind, bool(self._answered))

    def _forget(self, sock):
        self._opened.pop(sock, None)
        self._connecting.discard(sock)
        self._silent.pop(sock, None)
        self._answered.pop(sock, None)
        if not self._answered:
            self._ping_at = float("inf")
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()


__all__ = ("BANNER", "ENDED", "IDENTIFICATION", "IGNORE_PACKET", "LOST", "NOTHING", "REFUSED", "BannerWatch",
           "Sight", "ended_by_shutdown")
