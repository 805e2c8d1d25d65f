# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watching for sshd's banner while a host reboots, without flooding the sshd that comes back.

Private to the kernel.kexec collection (controller side: the kexec_reboot action).

A bare TCP accept proves nothing (QEMU's port forward and load balancers
accept while the host is down); the banner ``SSH-`` proves sshd. What makes
this more than a connect-and-read is what happens to a connection that no one
answers:

- one still *connecting* is our kernel's own SYN: closing it cancels it. While
  such connections stay silent (the host is down, or its SYN went out before
  the host had its address), a fresh one is opened each RECONNECT_EVERY seconds
  beside them, at most MAX_CONNECTING, and all are closed when the probe ends.
- one already *connected* but silent was accepted by something in between
  (QEMU's user networking, a proxy, a load balancer) that goes on connecting
  to the host for us. Closing it does not cancel that: QEMU's slirp retransmits
  the SYN for 75 s and, once the host's network is up, hands sshd a connection
  whose client is long gone. sshd forks and re-execs for each, and past
  MaxStartups (10 unauthenticated) it drops real logins at random. Traced on
  a TCG guest (2026-12-02): probes that closed their silent connections after
  five seconds left 15-25 of them, the new boot's sshd logged "MaxStartups
  throttling", and the first real login came 9-16 s after sshd listened.
  So connected connections are kept across probes until they answer (banner,
  close) or the watch is closed; at most MAX_HELD are held and a fresh one is
  opened at most every HELD_EVERY seconds beside them. Held connections are
  found by the host's network at their own SYN retransmissions (QEMU backs
  off to one each 12 s), so four opened three seconds apart find it within
  about three seconds, and leave sshd at most three idle connections.

One watch serves one wait (the probes of one reboot); :meth:`BannerWatch.close`
ends it, and so does leaving a ``with BannerWatch(host, port) as watch:`` block.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time


class BannerWatch:
    """Probes of one host's sshd banner that share their connections."""

    RECONNECT_EVERY = 1.0  # a fresh connection beside silent ones still connecting
    MAX_CONNECTING = 3
    HELD_EVERY = 3.0  # a fresh connection beside connected, silent ones
    MAX_HELD = 4

    _clock = staticmethod(time.monotonic)

    def __init__(self, host, port):
        self.host, self.port = host, port
        self._address = None  # (family, kind, proto, sockaddr) once resolved
        self._selector = selectors.DefaultSelector()
        self._connecting = set()
        self._received = {}  # connected socket -> the banner's first bytes so far
        self._last_open = float("-inf")

    def answered(self, timeout):
        """True when sshd sends its banner within ``timeout`` seconds.

        False at once when a connection is refused, reset, closed, or answers with something else
        (the host is up and sshd is not); False after ``timeout`` when every connection stays silent.
        """
        deadline = self._clock() + timeout
        try:
            if self._address is None:
                family, kind, proto, _name, sockaddr = socket.getaddrinfo(self.host, self.port,
                                                                          type=socket.SOCK_STREAM)[0]
                self._address = (family, kind, proto, sockaddr)
            while True:
                now = self._clock()
                if now >= deadline:
                    return False
                if now >= self._next_open() and not self._open(now):
                    return False
                wake = min(deadline, self._next_open())
                for key, _events in self._selector.select(max(wake - self._clock(), 0)):
                    verdict = self._serve(key.fileobj)
                    if verdict is not None:
                        return verdict
        except (OSError, UnicodeError):  # no name, no route, no socket to be had (EMFILE): no banner
            return False
        finally:
            for sock in list(self._connecting):  # our own SYNs: closing them cancels them
                self._forget(sock)

    def __enter__(self):
        return self

    def __exit__(self, *_exc_info):
        self.close()

    def close(self):
        for sock in list(self._connecting) + list(self._received):
            self._forget(sock)
        self._selector.close()

    def _interval(self):
        return self.HELD_EVERY if self._received else self.RECONNECT_EVERY

    def _next_open(self):
        """When a fresh connection may be opened: never while either kind is at its cap."""
        if len(self._connecting) >= self.MAX_CONNECTING or len(self._received) >= self.MAX_HELD:
            return float("inf")
        return self._last_open + self._interval()

    def _open(self, now):
        """Start one connection; False when it is refused at once."""
        family, kind, proto, sockaddr = self._address
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        self._last_open = now
        if sock.connect_ex(sockaddr) not in (0, errno.EINPROGRESS):
            sock.close()
            return False
        self._connecting.add(sock)
        self._selector.register(sock, selectors.EVENT_WRITE)
        return True

    def _serve(self, sock):
        """What ``sock``, ready, says: True (banner), False (refused, closed, not sshd), None (not yet)."""
        if sock in self._connecting:
            failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if failure:
                self._forget(sock)
                return False
            self._connecting.discard(sock)
            self._received[sock] = b""
            self._selector.modify(sock, selectors.EVENT_READ)
            return None
        try:
            chunk = sock.recv(4 - len(self._received[sock]))
        except BlockingIOError:
            return None
        except OSError:  # reset: something answers and nothing listens
            self._forget(sock)
            return False
        if not chunk:  # closed: nothing behind the forward (QEMU's, with sshd down)
            self._forget(sock)
            return False
        self._received[sock] += chunk
        if len(self._received[sock]) < 4:
            return None
        banner = self._received[sock] == b"SSH-"
        self._forget(sock)
        return banner

    def _forget(self, sock):
        self._connecting.discard(sock)
        self._received.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
