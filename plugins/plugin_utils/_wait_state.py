# -*- coding: utf-8 -*-
# Copyright: contributors to the kernel.kexec collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one kexec_reboot wait has seen of the host, and what it may conclude from it.

Private to the kernel.kexec collection (controller side: the kexec_reboot action).

Only positive evidence moves the wait on: held connections that the host's
shutdown ended (the Sight ENDED of _banner_watch.py), the old boot's own signs
(_old_boot.py) and a new boot_id. A refused connection proves nothing while the
host has just answered: ufw's ``limit``, fail2ban and sshd's PerSourcePenalties
refuse a controller whose host is up. Such refusals are counted, and the verdict
of a host that never came back names a rate limit as a possible cause.
"""

from __future__ import annotations

from ansible_collections.kernel.kexec.plugins.plugin_utils._banner_watch import (
    BANNER, ENDED, LOST, NOTHING, REFUSED,
)

RECENT = 30.0  # seconds after the host answered in which a refusal is no sign of it going (ufw's window)
# How ssh and paramiko word a connection that the host refused, reset or closed before a login.
REFUSAL_WORDS = ("refused", "reset by peer", "closed by")


def refused_login(error):
    """Whether a failed login's error says the host refused, reset or closed the connection."""
    text = str(error).lower()
    return any(words in text for words in REFUSAL_WORDS)


class WaitState:
    """The wait's knowledge: whether the old boot went down, when to read the boot_id next, what was last seen."""

    ENDED_SEEN = "the connections sshd had answered were ended by the host going down"
    LOST_SEEN = "the connections sshd had answered ended, which proves nothing (sshd's LoginGraceTime)"
    OLD_SSHD_SEEN = "sshd of the old boot still answering (shutting down)"
    _SILENT_OVER = frozenset(("nothing yet", ENDED_SEEN, LOST_SEEN, OLD_SSHD_SEEN))

    def __init__(self, began, old_boot_reads, endpoint, answered_at):
        """``old_boot_reads``: the times of the scheduled reads of the old boot; ``endpoint``: (host, port),
        port None without probes; ``answered_at``: when the host last answered (the module)."""
        self.began = began
        self._old_boot_reads = old_boot_reads
        self.next_old_boot_read = next(old_boot_reads)
        self.host, self.port = endpoint
        self.went_down = not self.port  # without probes only the boot_id can tell
        self.holding = False  # a connection that had sshd's banner is still open
        self.read_at = began if not self.port else float("inf")  # a read asked for by what was seen
        self.asked = False  # whether the read under way was asked for so
        self.answered_at = answered_at
        self.refused_after_answer = 0
        self.last_seen = "nothing yet"

    def read_due(self):
        """When the next boot_id read is due: asked for, or the old boot's schedule while it may still run."""
        return self.read_at if self.went_down else min(self.read_at, self.next_old_boot_read)

    def reading(self, now):
        """A read starts at ``now``: the command is the old boot's unless it went down. True for the old boot's."""
        self.asked = now >= self.read_at  # by sshd answering a fresh connection (or, without probes, each time)
        while not self.went_down and now >= self.next_old_boot_read:  # one read for the slots a wait let pass
            self.next_old_boot_read = next(self._old_boot_reads)
        self.read_at = float("inf")
        return not self.went_down

    def saw(self, sight, now):
        """Take in one Sight of the watch; what it means, in words for the trace, or None."""
        self.holding = sight.holding
        where = "%s:%s" % (self.host, self.port)
        if sight.kind == BANNER:
            self.answered_at = now
            self.read_at = now
            return "sshd answered on a fresh connection"
        if sight.kind == ENDED:
            self.went_down = True
            self.last_seen = self.ENDED_SEEN
            return "the held connections to sshd ended together: the old boot went down"
        if sight.kind == LOST:
            self.last_seen = self.LOST_SEEN
            return "the held connections to sshd ended, proving nothing"
        if sight.kind == REFUSED:
            if not self.went_down and (sight.holding or now - self.answered_at <= RECENT):
                self.refused_after_answer += 1
                self.last_seen = "new connections to %s refused while the host had just answered" % where
                return "a new connection refused while the host had just answered: no sign of it going"
            self.last_seen = "new connections to %s refused" % where
            return None
        if sight.kind == NOTHING and not sight.holding:
            if self.last_seen in self._SILENT_OVER:  # silence after a refusal or a failed read says less than they
                self.last_seen = "no SSH banner from %s" % where
        elif not self.went_down and not self.last_seen.startswith("the old boot"):  # keep what the last read said
            self.last_seen = self.OLD_SSHD_SEEN
        return None

    def read_old_boot(self, now, old_boot_id, retry_after, summary=None):
        """A read found the old boot: it did not go down, whatever was taken for it."""
        if self.went_down and self.port:
            self.went_down = False
            while self.next_old_boot_read <= now:  # the schedule goes on from here, not from where it stopped
                self.next_old_boot_read = next(self._old_boot_reads)
        self.answered_at = now
        self.read_at = now + retry_after if not self.port else float("inf")
        self.last_seen = "the old boot %s still answering%s" % (old_boot_id, " (%s)" % summary if summary else "")

    def read_failed(self, now, error, retry_after):
        """A read failed; without probes the next one is due ``retry_after`` seconds later, with them at
        sshd's next answer. True when the host refused the login right after answering."""
        self.last_seen = "reading the boot_id failed: %s" % error
        self.read_at = now + retry_after if not self.port else float("inf")
        if refused_login(error) and not self.went_down and now - self.answered_at <= RECENT:
            self.refused_after_answer += 1
            return True
        return False

    def not_back(self, max_new, window):
        """The verdict of a host that did not come back in time."""
        message = "the host did not come back within reboot_timeout; last seen: %s" % self.last_seen
        if self.refused_after_answer:
            message += ("; %d new connection%s refused right after the host had answered: a rate limit on new SSH "
                        "connections from this controller (ufw's limit, fail2ban, sshd's PerSourcePenalties) may be "
                        "blocking it (this wait opened at most %d per %d s, and waited longer after each refusal)"
                        % (self.refused_after_answer, " was" if self.refused_after_answer == 1 else "s were",
                           max_new, window))
        return message


__all__ = ("RECENT", "REFUSAL_WORDS", "WaitState", "refused_login")
