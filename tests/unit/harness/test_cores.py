"""tests/cores.sh, and what tests/run and demo/run do first: the main venv (molecule, ansible-lint, the
build, docs and import stages, the demo) runs the newest ansible-core the collection claims, and a
machine without the Python that core needs gets one line, before any set-up.
"""

import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BASH = shutil.which("bash")


def cores(expression):
    """The value of a shell EXPRESSION once tests/cores.sh is sourced."""
    return subprocess.run([BASH, "-c", 'source tests/cores.sh; echo "%s"' % expression], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.split()


def version(text):
    return tuple(int(part) for part in text.split("."))


def read(path):
    with open(os.path.join(REPO, path)) as handle:
        return handle.read()


@pytest.fixture
def bare_machine(tmp_path):
    """An environment with no Python 3.12 anywhere (an empty PATH but for dirname, an empty pyenv), a
    HOME and a cache of its own; nothing that could install anything is on its PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    (tmp_path / "pyenv").mkdir()
    return {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "pyenv"), "HOME": str(tmp_path),
            "KEXEC_CACHE": str(tmp_path / "cache")}


def test_the_main_venv_runs_the_newest_core_the_collection_claims():
    claimed = cores("${kexec_cores[*]}")
    newest = max(claimed, key=version)
    assert cores("$kexec_main_core") == [newest]
    pinned = re.search(r"^ansible-core>=([0-9.]+),<([0-9.]+)$", read("requirements-test.txt"), re.M)
    assert pinned and pinned.group(1) == newest, "requirements-test.txt pins ansible-core %s" % pinned.group(0)
    # Each other core has a venv of its own; the newest has none but the main venv.
    for core in claimed:
        assert os.path.exists(os.path.join(REPO, "tests", "requirements-core-%s.txt" % core)) == (core != newest), core
    # meta/runtime.yml claims from the oldest, and the README names the core molecule runs on.
    oldest = min(claimed, key=version)
    assert re.search(r'^requires_ansible: ">=%s\.0"$' % re.escape(oldest), read("meta/runtime.yml"), re.M)
    assert re.search(r"molecule scenarios on\s+%s\b" % re.escape(newest), read("README.md"))


def test_without_the_main_cores_python_the_check_says_so_in_one_line(bare_machine):
    check = subprocess.run([BASH, "-c", "source tests/cores.sh; kexec_check_core_pythons"], cwd=REPO,
                           env=bare_machine, capture_output=True, text=True, check=False)
    assert check.returncode == 1
    assert check.stdout == ""
    lines = check.stderr.splitlines()
    assert len(lines) == 1, check.stderr
    assert lines[0].startswith("ansible-core 2.21 needs Python 3.12, on PATH or under pyenv")
    assert "runs molecule" in lines[0] and "pyenv install 3.12" in lines[0]
    # Leaving cores out cannot help: every stage runs on the main core.
    assert "KEXEC_CORES" not in lines[0]


def test_with_python_3_12_on_path_every_core_is_found(bare_machine, tmp_path):
    fake = tmp_path / "bin" / "python3.12"
    fake.write_text("#!/bin/sh\necho %s\n" % fake)
    fake.chmod(0o755)
    check = subprocess.run([BASH, "-c", "source tests/cores.sh; kexec_check_core_pythons 2.19 2.20 2.21"
                            " && kexec_python 3.12"], cwd=REPO, env=bare_machine, capture_output=True, text=True,
                           check=False)
    # 2.19's Python 3.11 is Debian 12's python3, which tests/setup.sh installs.
    assert (check.returncode, check.stdout, check.stderr) == (0, "%s\n" % fake, "")


@pytest.mark.parametrize("command, prefix", [
    (["tests/run", "lint"], "tests/run: ansible-core 2.21 needs Python 3.12"),
    (["tests/run", "unit"], "tests/run: ansible-core 2.20 2.21 need Python 3.12"),
    (["demo/run"], "setup: ansible-core 2.21 needs Python 3.12"),
])
def test_without_python_3_12_the_two_commands_stop_in_one_line_before_any_set_up(bare_machine, command, prefix):
    run = subprocess.run([BASH] + command, cwd=REPO, env=bare_machine, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 1
    assert run.stdout == "", run.stdout
    assert run.stderr.splitlines() == [run.stderr.strip()] and run.stderr.startswith(prefix), run.stderr
    assert not os.path.exists(bare_machine["KEXEC_CACHE"])
