"""bench/reboot.py: the serial console tail (which stamped line a phase begins at, what a search costs)
and the login probe (how it paces its attempts)."""

import importlib.util
import os
import re
import subprocess
import sys
import time

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


REAL_POPEN = subprocess.Popen  # the fake below replaces subprocess.Popen, the bench's and this module's


class FakeSsh:
    """Stands in for subprocess.Popen in the bench: the n-th attempt is a real process that sleeps
    ``attempts[n][0]`` seconds and exits with ``attempts[n][1]``; later ones fail at once."""

    def __init__(self, attempts):
        self.attempts = list(attempts)
        self.started = []  # monotonic start times
        self.most_at_once = 0
        self.processes = []
        self.stdins = []

    def __call__(self, command, **kwargs):
        sleep, code = self.attempts.pop(0) if self.attempts else (0, 255)
        self.started.append(time.monotonic())
        self.stdins.append(kwargs.get("stdin"))
        script = "import sys, time; time.sleep(%r); sys.exit(%d)" % (sleep, code)
        process = REAL_POPEN([sys.executable, "-c", script], **kwargs)
        self.processes.append(process)
        self.most_at_once = max(self.most_at_once, sum(1 for p in self.processes if p.poll() is None))
        return process


@pytest.fixture
def probe(bench, monkeypatch, tmp_path):
    def make(attempts):
        fake = FakeSsh(attempts)
        monkeypatch.setattr(bench.subprocess, "Popen", fake)
        login_probe = bench.LoginProbe({"identity_file": "key", "port": 2222}, bench.SerialTail(str(tmp_path / "log")))
        return login_probe, fake
    return make


def test_an_attempt_that_hangs_gets_a_fresh_one_beside_it(probe):
    # The first connection was begun before the guest had its address and waits; the next logs in.
    login_probe, fake = probe([(20, 255), (0.2, 0)])
    began = time.monotonic()
    assert login_probe.login() is True
    assert 1.0 <= time.monotonic() - began < 5  # not the hung attempt's 20 s
    assert len(fake.started) == 2
    assert all(p.poll() is not None for p in fake.processes)  # the hung attempt was ended
    # ssh makes its stdin non-blocking and a killed one leaves it so: never share the bench's own
    assert fake.stdins == [subprocess.DEVNULL, subprocess.DEVNULL]


def test_attempts_are_few_and_none_is_cut_short(probe):
    # sshd answers every attempt slowly (3.5 s): at most three run at once, and the first still logs in.
    login_probe, fake = probe([(3.5, 0), (30, 255), (30, 255), (30, 255), (30, 255)])
    began = time.monotonic()
    assert login_probe.login() is True
    assert 3.5 <= time.monotonic() - began < 10
    assert len(fake.started) == 3 and fake.most_at_once <= 3


def test_a_refused_attempt_is_followed_quickly(probe):
    login_probe, fake = probe([(0, 255), (0, 255), (0, 0)])
    assert login_probe.login() is True
    assert len(fake.started) == 3
    gaps = [later - earlier for earlier, later in zip(fake.started, fake.started[1:])]
    assert all(gap < 0.9 for gap in gaps), gaps  # 0.2 s after a refusal, not ATTEMPT_EVERY


# --- phases: the round's marks, and the bench's own login that may come after the task ---------------

ROUND = [(10.0, "[ 1.0] Stopped x"), (15.0, "[ 2.0] kexec_core: Starting new kernel"),
         (20.0, "[ 0.0] Linux version 6.1"), (50.0, "[ 9.0] Started ssh.service - OpenBSD Secure Shell server.")]


class LateLogin:
    """The bench's login probe, whose first login of the boot completes ``late`` seconds of waiting
    after the task (None: never)."""

    def __init__(self, at, late):
        self.at, self.late, self.waited = at, late, 0.0

    def first_login(self, after):
        return self.at if self.late is not None and self.waited >= self.late else None

    def wait(self, seconds):
        self.waited += seconds


def round_phases(bench, tmp_path, probe, done):
    serial = bench.SerialTail(str(tmp_path / "serial.log"))
    serial.lines.extend(ROUND)
    return bench.phases(0.0, done, serial, probe, wait=probe.wait)


def test_phases_of_a_round(bench, tmp_path):
    times = round_phases(bench, tmp_path, LateLogin(at=56.0, late=0), done=57.5)
    assert times == {"target": 10.0, "shutdown": 5.0, "handover": 5.0, "boot": 30.0, "login": 6.0, "notice": 1.5}


def test_a_task_quicker_than_the_bench_login_gets_a_negative_notice(bench, tmp_path):
    # The task returned at 55 s; the bench's own first login of the boot completed only at 56 s.
    probe = LateLogin(at=56.0, late=1.0)
    times = round_phases(bench, tmp_path, probe, done=55.0)
    assert times["login"] == 6.0 and times["notice"] == -1.0
    assert 1.0 <= probe.waited < 1.5


def test_a_bench_login_that_never_comes_is_waited_for_a_bounded_time(bench, tmp_path):
    probe = LateLogin(at=None, late=None)
    times = round_phases(bench, tmp_path, probe, done=55.0)
    assert times["login"] is None and times["notice"] is None
    assert bench.LOGIN_AFTER_TASK <= probe.waited < bench.LOGIN_AFTER_TASK + 1


def test_the_inventory_lives_in_a_private_directory_not_at_a_fixed_name(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench.tempfile, "tempdir", str(tmp_path))
    first, second = bench.private_inventory(), bench.private_inventory()
    assert first != second
    for path in (first, second):
        directory = os.path.dirname(path)
        assert os.path.dirname(directory) == str(tmp_path)
        assert os.stat(directory).st_mode & 0o777 == 0o700
