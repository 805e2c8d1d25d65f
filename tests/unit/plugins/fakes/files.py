"""A witness of file reads: how often each file was opened, and how many bytes each opening read.

``ReadCounter(monkeypatch)`` wraps every file object Python hands out while the
test runs (``open`` and ``os.fdopen``, which _io.open_regular uses) and counts
``os.read`` on bare descriptors too. Files are told apart by device and inode,
so a file renamed away or replaced keeps its own count. Nothing is faked: the
bytes read are the real ones.
"""

import builtins
import os


class _Counted:
    """A file object that adds what it returns from read()/readinto() to ``tally[0]``."""

    def __init__(self, handle, tally):
        self._handle = handle
        self._tally = tally

    def read(self, *args):
        data = self._handle.read(*args)
        self._tally[0] += len(data)
        return data

    def readinto(self, buffer):
        count = self._handle.readinto(buffer)
        self._tally[0] += count or 0
        return count

    def __iter__(self):
        for line in self._handle:
            self._tally[0] += len(line)
            yield line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)


class ReadCounter:
    """Per file (by st_dev, st_ino): one byte count per opening, in the order they were opened."""

    def __init__(self, monkeypatch):
        self.openings = {}
        real_open, real_fdopen, real_read = builtins.open, os.fdopen, os.read

        def counted_open(*args, **kwargs):
            return self._wrap(real_open(*args, **kwargs))

        def counted_fdopen(*args, **kwargs):
            return self._wrap(real_fdopen(*args, **kwargs))

        def counted_read(fd, size):
            data = real_read(fd, size)
            self._tally(os.fstat(fd))[0] += len(data)
            return data
        monkeypatch.setattr(builtins, "open", counted_open)
        monkeypatch.setattr(os, "fdopen", counted_fdopen)
        monkeypatch.setattr(os, "read", counted_read)

    def _tally(self, status, new=False):
        counts = self.openings.setdefault((status.st_dev, status.st_ino), [])
        if new or not counts:
            counts.append([0])
        return counts[-1]

    def _wrap(self, handle):
        try:
            status = os.fstat(handle.fileno())
        except (OSError, ValueError, AttributeError):
            return handle
        return _Counted(handle, self._tally(status, new=True))

    def of(self, status):
        """The byte counts of each opening of the file ``status`` (an os.stat result) names."""
        return [tally[0] for tally in self.openings.get((status.st_dev, status.st_ino), [])]
