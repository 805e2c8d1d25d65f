"""bench/reboot.py's serial console tail: which stamped line a phase begins at, and what a search costs."""

import importlib.util
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_reboot", os.path.join(REPO, "bench", "reboot.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Counting:
    """A pattern that counts the lines it is asked about."""

    def __init__(self, regex):
        self.regex = re.compile(regex)
        self.asked = 0

    def search(self, text):
        self.asked += 1
        return self.regex.search(text)


@pytest.fixture
def tail(bench, tmp_path):
    serial = bench.SerialTail(str(tmp_path / "serial.log"))  # not started: the test appends the lines
    serial.lines.extend([(1.0, "[ 1.0] Linux version 6.1"), (2.0, "[ 2.0] Started ssh.service"),
                         (3.0, "[ 3.0] Stopped x"), (4.0, "[ 4.0] Started ssh.service")])
    return serial


@pytest.mark.parametrize("after, before, found", [
    (0, None, 2.0),
    (2.0, None, 2.0),  # the bounds are inclusive
    (2.5, None, 4.0),
    (2.5, 4.0, 4.0),
    (2.5, 3.9, None),
    (4.5, None, None),
])
def test_first_is_the_first_matching_line_in_the_window(bench, tail, after, before, found):
    assert tail.first(bench.SSHD_STARTED, after, before) == found


def test_a_search_asked_again_reads_only_the_new_lines(tail):
    pattern = Counting(r"\] Started .*sshd\.service")
    tail.lines.extend((5.0 + n, "[ 5.0] noise %d" % n) for n in range(1000))
    assert tail.first(pattern, 2.5) is None
    assert pattern.asked == 1002  # the two lines before 2.5 are not searched
    tail.lines.append((2000.0, "[ 9.0] noise"))
    assert tail.first(pattern, 2.5) is None
    assert pattern.asked == 1003
    tail.lines.append((2001.0, "[ 9.5] Started sshd.service"))
    assert tail.first(pattern, 2.5) == 2001.0
    assert tail.first(pattern, 2.5) == 2001.0 and pattern.asked == 1004  # found: not searched again
    assert tail.first(pattern, 0) == 2001.0  # another window is a search of its own
