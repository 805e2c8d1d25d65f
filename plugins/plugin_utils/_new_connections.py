# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many new connections kexec_reboot's wait may open to one host, and when.

Private to the kernel.kexec collection (controller side: the kexec_reboot action).

Hosts count new connections per source address and refuse the ones over a limit:
ufw's ``limit`` rule rejects the 6th new connection within 30 s (iptables'
``recent`` module counts the connection it is checking, and stamps each one it
rejects once more, so a client that keeps trying stays blocked); fail2ban and
sshd's ``PerSourcePenalties`` count connections that end before a login. So
every new connection of a wait, banner probe or SSH login, takes a place in one
sliding window of MAX_NEW per WINDOW seconds, one below what ufw allows (room
for a connection the wait cannot count, such as another play's), and after a
refusal the next one waits BACKOFF seconds, doubled at each refusal up to a
cap longer than the limiter's window, so a blocked controller gets through
instead of renewing its block.
"""

from __future__ import annotations

import collections


class NewConnections:
    """The places for new connections to one host, in a sliding window; times are the caller's clock."""

    WINDOW = 31.0  # ufw's 30 s, and a second for the clocks of controller and host to differ
    MAX_NEW = 4
    BACKOFF = 2.0  # after a refusal; doubled at each further refusal
    MAX_BACKOFF = 32.0  # past ufw's window: a connection this much after the last one finds it empty

    def __init__(self):
        self._opened = collections.deque()  # when each connection of the window was opened
        self._last_open = float("-inf")
        self._backoff = 0.0
        self._grown_at = float("-inf")
        # Set while the host is known to have gone down: a refusal then is a booting kernel answering before
        # sshd listens, and no limiter of the new boot has counted anything yet.
        self.booting = False

    def next_open(self, now, count=1):
        """The earliest time, ``now`` or later, at which ``count`` new connections may be opened."""
        count = min(max(count, 1), self.MAX_NEW)
        self._expire(now)
        at = now
        over = len(self._opened) + count - self.MAX_NEW
        if over > 0:  # wait until that many of the oldest leave the window
            at = max(at, self._opened[over - 1] + self.WINDOW)
        return max(at, self._last_open + self._backoff)

    def open(self, now, count=1):
        """Record ``count`` new connections opened at ``now`` (an SSH login with retries counts each try)."""
        self._opened.extend([now] * max(count, 1))
        self._last_open = now

    def used(self, now):
        """How many places the window holds at ``now``."""
        self._expire(now)
        return len(self._opened)

    def refused(self, now):
        """A new connection was refused: wait longer before the next one. Refusals that come together
        (several held connections that a limiter reset at once) double the wait only once."""
        if self.booting or now - self._grown_at < self._backoff:
            return
        self._backoff = min(self._backoff * 2, self.MAX_BACKOFF) if self._backoff else self.BACKOFF
        self._grown_at = now

    def answered(self):
        """sshd answered (a banner, a login): the host takes connections again."""
        self._backoff = 0.0
        self._grown_at = float("-inf")

    @property
    def backoff(self):
        return self._backoff

    def _expire(self, now):
        while self._opened and self._opened[0] <= now - self.WINDOW:
            self._opened.popleft()


__all__ = ("NewConnections",)
