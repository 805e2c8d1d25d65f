"""The dump server's forced command (roles/kdump/files/kdump_receive.py), fed SSH_ORIGINAL_COMMAND values as
sshd passes them: the writes the capture services make are carried out inside the client's own directory, and
everything else (a shell, a read, another client's directory, '..', a symbolic link, odd bytes) is refused with
nothing written.
"""

import importlib.util
import io
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SCRIPT = os.path.join(REPO, "roles", "kdump", "files", "kdump_receive.py")
SPEC = importlib.util.spec_from_file_location("kdump_receive", SCRIPT)
receive = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(receive)


@pytest.fixture
def server(tmp_path):
    """A dump directory with two clients, a and b; b holds a dump that a must never reach."""
    (tmp_path / "a").mkdir(mode=0o700)
    (tmp_path / "b" / "10.0.0.6-202612080300").mkdir(mode=0o700, parents=True)
    (tmp_path / "b" / "10.0.0.6-202612080300" / "dump.202612080300").write_bytes(b"b's memory")
    return tmp_path


def tree(path):
    """Every path below ``path`` with its content (files) or None (directories), links as 'link -> target'."""
    found = {}
    for parent, dirs, files in os.walk(str(path)):
        for name in dirs + files:
            full = os.path.join(parent, name)
            relative = os.path.relpath(full, str(path))
            if os.path.islink(full):
                found[relative] = "link -> %s" % os.readlink(full)
            elif os.path.isdir(full):
                found[relative] = None
            else:
                with open(full, "rb") as handle:
                    found[relative] = handle.read()
    return found


def run(server, request, data=b"", client="a"):
    """(status, stdout, stderr) of one request by ``client``, as sshd runs the forced command."""
    stdout, stderr = io.StringIO(), io.StringIO()
    status = receive.main(["kdump-receive", str(server / client)], {"SSH_ORIGINAL_COMMAND": request}
                          if request is not None else {}, io.BytesIO(data), stdout, stderr)
    return status, stdout.getvalue(), stderr.getvalue()


# --- what the services send is carried out -----------------------------------------------------------------

def test_kdump_tools_saves_a_dump_in_its_own_directory(server):
    """kdump-config's sequence: mkdir -p the stamp directory, makedumpfile -F | ssh dd of=..., then mv."""
    stamp = "%s/a/10.0.0.5-202612080312" % server
    assert run(server, "mkdir -p %s" % stamp) == (0, "", "")
    assert run(server, "dd of=%s/dump-incomplete" % stamp, data=b"makedumpfile\0flat") == (0, "", "")
    assert run(server, "mv %s/dump-incomplete %s/dump.202612080312" % (stamp, stamp)) == (0, "", "")
    written = server / "a" / "10.0.0.5-202612080312" / "dump.202612080312"
    assert written.read_bytes() == b"makedumpfile\0flat"
    assert (written.stat().st_mode & 0o777, written.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert not (written.parent / "dump-incomplete").exists()


def test_kdumpctl_checks_and_writes(server):
    """kdumpctl's write check (mkdir -p, mktemp -dqp, rmdir) and its capture script's umask 0077 && dd bs=512."""
    assert run(server, "mkdir -p %s/a" % server) == (0, "", "")
    status, out, err = run(server, "mktemp -dqp %s/a" % server)
    made = out.strip()
    assert (status, err) == (0, "") and os.path.isdir(made) and os.path.dirname(made) == str(server / "a")
    assert run(server, "rmdir %s" % made) == (0, "", "") and not os.path.exists(made)
    assert run(server, "mkdir -p %s/a/10.0.0.5-2026-12-08-03:12:00" % server)[0] == 0
    status, _out, err = run(server, "umask 0077 && dd bs=512 of=%s/a/10.0.0.5-2026-12-08-03:12:00/vmcore-incomplete"
                            % server, data=b"x" * 2000)
    assert (status, err) == (0, "")
    assert (server / "a" / "10.0.0.5-2026-12-08-03:12:00" / "vmcore-incomplete").read_bytes() == b"x" * 2000


def test_a_second_write_replaces_its_own_incomplete_dump(server):
    assert run(server, "dd of=%s/a/dump-incomplete" % server, data=b"first try, longer")[0] == 0
    assert run(server, "dd of=%s/a/dump-incomplete" % server, data=b"second")[0] == 0
    assert (server / "a" / "dump-incomplete").read_bytes() == b"second"


def test_the_script_runs_as_sshd_runs_it(server):
    """The file itself, run as authorized_keys runs it (python3 -I) with SSH_ORIGINAL_COMMAND in its
    environment: a write passes, a shell is refused."""
    env = {"PATH": "/usr/bin:/bin", "SSH_ORIGINAL_COMMAND": "dd of=%s/a/dump" % server}
    done = subprocess.run([sys.executable, "-I", SCRIPT, str(server / "a")], input=b"dump", env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    assert (done.returncode, done.stderr) == (0, b"") and (server / "a" / "dump").read_bytes() == b"dump"
    env["SSH_ORIGINAL_COMMAND"] = "sh"
    done = subprocess.run([sys.executable, "-I", SCRIPT, str(server / "a")], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    assert done.returncode == 1 and done.stderr.startswith(b"kdump-receive: refused: ")


# --- everything else is refused, with nothing written ------------------------------------------------------

REFUSED = [
    pytest.param(None, "no command given: this key opens no shell", id="interactive-shell"),
    pytest.param("", "no command given", id="empty"),
    pytest.param("   ", "no command given", id="blank"),
    pytest.param("bash", "'bash' is not a dump write", id="bash"),
    pytest.param("sh -i", "'sh -i' is not a dump write", id="sh"),
    pytest.param("/bin/sh -c id", "is not a dump write", id="sh-c"),
    pytest.param("scp -t {s}/a/dmesg", "is not a dump write", id="scp-sink"),
    pytest.param("scp -f {s}/b/10.0.0.6-202612080300/dump.202612080300", "is not a dump write", id="scp-source"),
    pytest.param("/usr/lib/openssh/sftp-server", "is not a dump write", id="sftp-subsystem"),
    pytest.param("internal-sftp", "is not a dump write", id="internal-sftp"),
    pytest.param("cat {s}/b/10.0.0.6-202612080300/dump.202612080300", "'cat {s}/b/", id="read-other-cat"),
    pytest.param("dd if={s}/b/10.0.0.6-202612080300/dump.202612080300", "is not a dump write", id="read-other-dd"),
    pytest.param("dd if={s}/a/dump of={s}/a/copy", "is not a dump write", id="dd-if"),
    pytest.param("dd of={s}/b/10.0.0.6-202612080300/dump.202612080300", "is not inside {s}/a", id="write-other"),
    pytest.param("mkdir -p {s}/b/new", "is not inside {s}/a", id="mkdir-other"),
    pytest.param("mv {s}/b/10.0.0.6-202612080300/dump.202612080300 {s}/a/stolen", "is not inside {s}/a",
                 id="mv-from-other"),
    pytest.param("rmdir {s}/b/10.0.0.6-202612080300", "is not inside {s}/a", id="rmdir-other"),
    pytest.param("dd of={s}/ab/dump", "is not inside {s}/a", id="prefix-of-another-name"),
    pytest.param("dd of={s}/a/../b/dump", "the name '..' is not allowed", id="dotdot"),
    pytest.param("mkdir -p {s}/a/x/../../b/y", "the name '..' is not allowed", id="dotdot-deeper"),
    pytest.param("dd of={s}/a/./dump", "the name '.' is not allowed", id="dot"),
    pytest.param("dd of={s}/a//dump", "the name '' is not allowed", id="empty-name"),
    pytest.param("dd of={s}/a/", "the name '' is not allowed", id="trailing-slash"),
    pytest.param("dd of=a/dump", "is not inside {s}/a", id="relative"),
    pytest.param("dd of={s}/a", "names the client's directory itself", id="dd-the-directory"),
    pytest.param("rmdir {s}/a", "rmdir of the client's directory itself", id="rmdir-own-root"),
    pytest.param("dd of={s}/a/dump; sh", "holds a character", id="semicolon"),
    pytest.param("mkdir -p {s}/a/$(id)", "holds a character", id="dollar"),
    pytest.param("mkdir -p {s}/a/`id`", "holds a character", id="backquote"),
    pytest.param("dd of={s}/a/dump | sh", "holds a character", id="pipe"),
    pytest.param("cat > {s}/a/dump", "holds a character", id="redirect"),
    pytest.param("mkdir -p '{s}/a/x y'", "holds a character", id="quotes"),
    pytest.param("dd of={s}/a/dump\nsh", "holds a character", id="newline"),
    pytest.param("dd of={s}/a/du\0mp", "holds a character", id="nul-byte"),
    pytest.param("dd of={s}/a/\x1b[2Jdump", "holds a character", id="control-byte"),
    pytest.param("mkdir -p {s}/a/" + "x" * 5000, "longer than 4096 characters", id="overlong"),
    pytest.param("mkdir -p {s}/a/x {s}/b/y", "is not a dump write", id="two-paths"),
    pytest.param("mkdir {s}/a/x", "is not a dump write", id="mkdir-without-p"),
    pytest.param("dd bs=0 of={s}/a/dump", "is not a dump write", id="dd-bad-bs"),
    pytest.param("dd conv=notrunc of={s}/a/dump", "is not a dump write", id="dd-other-operand"),
    pytest.param("umask 0000 && dd of={s}/a/dump", "is not a dump write", id="other-umask"),
    pytest.param("mktemp -dqp {s}/b", "is not inside {s}/a", id="mktemp-other"),
    pytest.param("rm -rf {s}/a", "is not a dump write", id="rm"),
    pytest.param("ln -s {s}/b {s}/a/b", "is not a dump write", id="ln"),
]


@pytest.mark.parametrize("request_, message", REFUSED)
def test_refused_requests_write_nothing(server, request_, message):
    before = tree(server)
    request_ = request_.format(s=server) if request_ is not None else None
    status, out, err = run(server, request_, data=b"attack")
    assert (status, out) == (1, "")
    assert err.startswith("kdump-receive: refused: ") and message.format(s=server) in err
    assert err.count("\n") == 1  # one line
    assert tree(server) == before


# --- no symbolic link is followed -------------------------------------------------------------------------

@pytest.mark.parametrize("request_", [
    "dd of={s}/a/to-b/stolen",                 # a directory link to b's directory
    "mkdir -p {s}/a/to-b/new",
    "dd of={s}/a/to-b-dump",                   # a file link to b's dump: never written through
    "mv {s}/a/to-b-dump {s}/a/mine",           # nor renamed (it is not a regular file)
    "mv {s}/a/mine-too {s}/a/to-b-dump",       # nor replaced
    "mktemp -dqp {s}/a/to-b",
    "rmdir {s}/a/to-b/10.0.0.6-202612080300",
])
def test_symbolic_links_are_not_followed(server, request_):
    (server / "a" / "to-b").symlink_to(server / "b")
    (server / "a" / "to-b-dump").symlink_to(server / "b" / "10.0.0.6-202612080300" / "dump.202612080300")
    (server / "a" / "mine-too").write_bytes(b"mine")
    before = tree(server)
    status, _out, err = run(server, request_.format(s=server), data=b"attack")
    assert status == 1 and err.startswith("kdump-receive: ") and err.count("\n") == 1
    assert tree(server) == before


def test_a_client_directory_that_is_a_link_is_refused(server):
    (server / "c").symlink_to(server / "b")
    status, _out, err = run(server, "dd of=%s/c/dump" % server, data=b"attack", client="c")
    assert status == 1 and err.startswith("kdump-receive: ")
    assert sorted(os.listdir(str(server / "b"))) == ["10.0.0.6-202612080300"]


@pytest.mark.parametrize("argv", [["kdump-receive"], ["kdump-receive", "relative"], ["kdump-receive", "/srv/../x"],
                                  ["kdump-receive", "/srv/a", "extra"]])
def test_a_bad_authorized_keys_line_is_a_usage_error(argv):
    stderr = io.StringIO()
    assert receive.main(argv, {"SSH_ORIGINAL_COMMAND": "mkdir -p /srv/a"}, io.BytesIO(), io.StringIO(), stderr) == 1
    assert stderr.getvalue().startswith("kdump-receive: usage: ")


def test_a_failure_is_one_line_without_a_traceback(server):
    status, _out, err = run(server, "dd of=%s/a/missing-dir/dump" % server, data=b"x")
    assert status == 1 and err == "kdump-receive: missing-dir: No such file or directory\n"
