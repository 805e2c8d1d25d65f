import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Unreadable
from ansible_collections.kernel.kexec.plugins.module_utils._kdump.providers import (
    KdumpTools, KdumpUtils, SuseKdump, detect, host_file, parse_kdump_conf, parse_shell_vars,
)

from ...fakes import host as fakes
from .kdump_fakes import debian_kdump_tools

RELEASE = fakes.RELEASE


def test_parse_shell_vars_unquotes_and_skips_what_is_not_an_assignment():
    text = ("# comment\nUSE_KDUMP=1\nKDUMP_COREDIR=\"/var/crash\"  # trailing\nexport SSH='u@h'\n#NFS=x\n"
            "MAKEDUMP_ARGS=\"-c -d 31\"\nBROKEN=\"unbalanced\nEMPTY=\nnot an assignment\n2X=1\n")
    assert parse_shell_vars(text) == {"USE_KDUMP": "1", "KDUMP_COREDIR": "/var/crash", "SSH": "u@h",
                                      "MAKEDUMP_ARGS": "-c -d 31", "EMPTY": ""}
    assert parse_shell_vars(None) == {}


def test_parse_kdump_conf_takes_the_last_of_an_option():
    text = "# kdump.conf\npath /var/crash\nssh u@h  # the server\ncore_collector makedumpfile -l -d 31\npath /srv\n"
    assert parse_kdump_conf(text) == {"path": "/srv", "ssh": "u@h", "core_collector": "makedumpfile -l -d 31"}


def test_host_file_follows_links_inside_the_root(tmp_path):
    host = fakes.FakeHost(tmp_path)
    host.write("boot/vmlinuz-1", "k")
    os.makedirs(host.path("var/lib/kdump"))
    os.symlink("/boot/vmlinuz-1", host.path("var/lib/kdump/vmlinuz"))  # absolute: inside the root, not the host's
    os.symlink("vmlinuz", host.path("var/lib/kdump/relative"))
    os.symlink("/missing", host.path("var/lib/kdump/dangling"))
    os.symlink("loop", host.path("var/lib/kdump/loop"))
    assert host_file(host.root, "/var/lib/kdump/vmlinuz") == "/boot/vmlinuz-1"
    assert host_file(host.root, "/var/lib/kdump/relative") == "/boot/vmlinuz-1"
    assert host_file(host.root, "/var/lib/kdump/dangling") is None
    assert host_file(host.root, "/var/lib/kdump/loop") is None
    assert host_file(host.root, "/var/lib/kdump") is None  # a directory


@pytest.mark.parametrize("files, provider", [
    (["etc/kdump.conf", "etc/sysconfig/kdump"], KdumpUtils),  # Fedora and RHEL have both
    (["etc/default/kdump-tools"], KdumpTools),
    (["etc/sysconfig/kdump"], SuseKdump),
    ([], type(None)),
])
def test_detect_by_configuration_file(tmp_path, files, provider):
    host = fakes.FakeHost(tmp_path)
    for name in files:
        host.write(name, "")
    assert detect(host.root, RELEASE).__class__ is provider  # exactly this provider, not a subclass


@pytest.mark.parametrize("config, settings", [
    ("USE_KDUMP=1\n", {"target": "local", "location": None, "path": "/var/crash", "config_enabled": True}),
    ("USE_KDUMP=0\nKDUMP_COREDIR=/srv/crash\n",
     {"target": "local", "location": None, "path": "/srv/crash", "config_enabled": False}),
    ("SSH=\"kdump@dumps\"\nNFS=\"nfs:/x\"\n",
     {"target": "ssh", "location": "kdump@dumps", "path": "/var/crash", "config_enabled": False}),
    ("USE_KDUMP=1\nNFS=\"nfs:/export\"\nKDUMP_COREDIR=/mnt\n",
     {"target": "nfs", "location": "nfs:/export", "path": "/mnt", "config_enabled": True}),
])
def test_kdump_tools_settings(tmp_path, config, settings):
    host = debian_kdump_tools(tmp_path, config=config)
    assert detect(host.root, RELEASE).settings() == settings


def test_kdump_tools_loads_the_links_kdump_config_keeps(tmp_path):
    host = debian_kdump_tools(tmp_path)
    assert detect(host.root, RELEASE).capture_files() == (
        "/boot/vmlinuz-%s" % RELEASE, "/var/lib/kdump/initrd.img-%s" % RELEASE)


def test_kdump_tools_before_the_first_load_has_no_capture_initrd(tmp_path):
    host = debian_kdump_tools(tmp_path, built=False)
    # The links are made at the first load: the kernel is not found through them yet, the initrd not at all.
    assert detect(host.root, RELEASE).capture_files() == (None, None)


def test_kdump_tools_without_kdump_kernel_takes_the_running_ones_from_boot(tmp_path):
    host = debian_kdump_tools(tmp_path, config="USE_KDUMP=1\n", built=False)
    assert detect(host.root, RELEASE).capture_files() == (
        "/boot/vmlinuz-%s" % RELEASE, "/boot/initrd.img-%s" % RELEASE)


@pytest.mark.parametrize("conf, settings", [
    ("core_collector makedumpfile -l -d 31\n", {"target": "local", "location": None, "path": "/var/crash"}),
    ("ssh kdump@dumps\nsshkey /root/.ssh/k\npath /srv/dumps\n",
     {"target": "ssh", "location": "kdump@dumps", "path": "/srv/dumps"}),
    ("nfs nfs.example:/export\n", {"target": "nfs", "location": "nfs.example:/export", "path": "/var/crash"}),
    ("xfs UUID=0b1c\npath /crash\n", {"target": "xfs", "location": "UUID=0b1c", "path": "/crash"}),
])
def test_kdump_utils_settings(tmp_path, conf, settings):
    host = fakes.FakeHost(tmp_path)
    host.write("etc/kdump.conf", conf)
    assert detect(host.root, RELEASE).settings() == dict(settings, config_enabled=None)


def test_kdump_utils_capture_files(tmp_path):
    host = fakes.FakeHost(tmp_path)
    host.write("etc/kdump.conf", "")
    host.write("etc/sysconfig/kdump", 'KDUMP_KERNELVER="6.12.0-1.el10"\n')
    host.write("boot/vmlinuz-6.12.0-1.el10", "k")
    host.write("var/lib/kdump/initramfs-6.12.0-1.el10kdump.img", "i")
    assert detect(host.root, RELEASE).capture_files() == (
        "/boot/vmlinuz-6.12.0-1.el10", "/var/lib/kdump/initramfs-6.12.0-1.el10kdump.img")
    host.write("boot/initramfs-6.12.0-1.el10kdump.img", "i")
    assert detect(host.root, RELEASE).capture_files()[1] == "/boot/initramfs-6.12.0-1.el10kdump.img"


@pytest.mark.parametrize("savedir, settings", [
    (None, {"target": "local", "location": None, "path": "/var/crash"}),
    ('"file:///var/log/dump"', {"target": "local", "location": None, "path": "/var/log/dump"}),
    ("/srv/dump", {"target": "local", "location": None, "path": "/srv/dump"}),
    ('"ssh://kdump@dumps/srv/dumps"', {"target": "ssh", "location": "kdump@dumps", "path": "/srv/dumps"}),
    ('"sftp://dumps/srv"', {"target": "ssh", "location": "dumps", "path": "/srv"}),
    ('"nfs://nfs.example/export/var/crash file:///var/crash"',
     {"target": "nfs", "location": "nfs.example", "path": "/export/var/crash"}),
])
def test_suse_settings(tmp_path, savedir, settings):
    host = fakes.FakeHost(tmp_path)
    host.write("etc/sysconfig/kdump", "KDUMP_DUMPLEVEL=31\n" + ("KDUMP_SAVEDIR=%s\n" % savedir if savedir else ""))
    assert detect(host.root, RELEASE).settings() == dict(settings, config_enabled=None)


def test_suse_capture_files(tmp_path):
    host = fakes.FakeHost(tmp_path)
    host.write("etc/sysconfig/kdump", "")
    host.write("boot/Image-%s" % RELEASE, "k")
    host.write("boot/initrd-%s-kdump" % RELEASE, "i")
    assert detect(host.root, RELEASE).capture_files() == ("/boot/Image-%s" % RELEASE, "/boot/initrd-%s-kdump" % RELEASE)


# --- a configuration that is there but cannot be read as text: one error, never "no configuration" -------


def test_a_configuration_it_may_not_read_is_unreadable_not_empty(tmp_path, monkeypatch):
    host = debian_kdump_tools(str(tmp_path), config='USE_KDUMP=1\nSSH="kdump@dumps.example"\n')
    path = host.path("etc/default/kdump-tools")
    fakes.deny_reads(monkeypatch, path)
    with pytest.raises(Unreadable) as caught:
        detect(host.root, RELEASE)
    assert caught.value.msg == "kdump configuration %s cannot be read: run as root (become: true)" % path


@pytest.mark.parametrize("data, error", [
    (b"path /var/crash\n\xff\xfe\n", "is not UTF-8 text"), (b"path /var/crash\0\n", "holds a NUL byte"),
], ids=["not-utf8", "nul"])
def test_a_configuration_that_is_not_text_is_one_error(tmp_path, data, error):
    host = fakes.FakeHost(tmp_path)
    host.write("etc/kdump.conf", data)
    with pytest.raises(KexecError, match="^kdump configuration %s %s" % (host.path("etc/kdump.conf"), error)):
        detect(host.root, RELEASE)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_sysconfig_that_is_no_regular_file_is_one_error_without_hanging(tmp_path, kind, no_hang):
    host = fakes.FakeHost(tmp_path)
    host.write("etc/kdump.conf", "path /var/crash\n")
    path = host.path("etc/sysconfig/kdump")
    shown = fakes.no_regular_file(path, kind)
    with pytest.raises(KexecError, match="^kdump configuration %s is %s, not a regular file$" % (path, shown)):
        detect(host.root, RELEASE).capture_files()
