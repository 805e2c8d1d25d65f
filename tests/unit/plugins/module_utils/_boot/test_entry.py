import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot.entry import (
    bls_default_entry, default_entry, grub_default_entry, parse_grub_cfg, running_release_entry,
)
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError, Unreadable

from ...fakes import host as fakes
from ...fakes.host import OLD_RELEASE, RELEASE, ROOT_UUID

ADVANCED = "Advanced options for Debian GNU/Linux"


def debian(tmp_path, default="0", **cfg):
    return fakes.fake_host(tmp_path, grub_cfg=fakes.debian_grub_cfg(default=default, **cfg))


def assert_entry(entry, host, release, mode):
    """``mode`` is the word that tells normal (quiet) from recovery (single) entries apart."""
    assert entry.kernel == host.kernel(release)
    assert entry.initrd == host.initrd(release)
    assert entry.args == "root=UUID=%s ro %s" % (ROOT_UUID, mode)


def test_parse_debian_grub_cfg():
    items, default = parse_grub_cfg(fakes.debian_grub_cfg(default="1>2"))
    assert default == "1>2"  # not the one-shot "${next_entry}" set before it
    assert [(item.kind, item.title, item.ident) for item in items] == [
        ("menuentry", "Debian GNU/Linux", "gnulinux-simple-%s" % ROOT_UUID),
        ("submenu", ADVANCED, "gnulinux-advanced-%s" % ROOT_UUID),
        ("menuentry", "UEFI Firmware Settings", "uefi-firmware"),
    ]
    nested = items[1].children
    assert [item.title for item in nested] == [
        "Debian GNU/Linux, with Linux %s" % RELEASE, "Debian GNU/Linux, with Linux %s (recovery mode)" % RELEASE,
        "Debian GNU/Linux, with Linux %s" % OLD_RELEASE,
        "Debian GNU/Linux, with Linux %s (recovery mode)" % OLD_RELEASE,
    ]
    assert nested[3].linux == ("/boot/vmlinuz-%s" % OLD_RELEASE, "root=UUID=%s ro single" % ROOT_UUID)
    assert nested[3].initrd == "/boot/initrd.img-%s" % OLD_RELEASE
    assert items[2].linux is None


@pytest.mark.parametrize("line, default", [
    ('set default="1>2"', "1>2"),
    ("set default='Debian GNU/Linux, with Linux 6.1'", "Debian GNU/Linux, with Linux 6.1"),
    ("  set default=2", "2"),
    ('set default="${saved_entry}"', "${saved_entry}"),
])
def test_parse_default_line(line, default):
    assert parse_grub_cfg('set default="${next_entry}"\n%s\nset default="9"\n' % line)[1] == default


@pytest.mark.parametrize("default, release, mode", [
    ("0", RELEASE, "quiet"),
    ("1>1", RELEASE, "single"),
    ("1>2", OLD_RELEASE, "quiet"),
    ("1>3", OLD_RELEASE, "single"),
    ("gnulinux-simple-%s" % ROOT_UUID, RELEASE, "quiet"),
    ("gnulinux-advanced-{u}>gnulinux-{r}-recovery-{u}".format(u=ROOT_UUID, r=OLD_RELEASE), OLD_RELEASE, "single"),
    ("%s>Debian GNU/Linux, with Linux %s" % (ADVANCED, OLD_RELEASE), OLD_RELEASE, "quiet"),
    ("1>gnulinux-%s-advanced-%s" % (OLD_RELEASE, ROOT_UUID), OLD_RELEASE, "quiet"),
    # what GRUB cannot resolve to a menuentry falls back to the first entry
    ("7", RELEASE, "quiet"),
    ("1", RELEASE, "quiet"),  # a submenu, not an entry
    ("1>9", RELEASE, "quiet"),
    ("No Such Title", RELEASE, "quiet"),
])
def test_grub_default_selection(tmp_path, default, release, mode):
    host = debian(tmp_path, default)
    entry = grub_default_entry(host.root)
    assert_entry(entry, host, release, mode)
    assert entry.source == "/boot/grub/grub.cfg"


@pytest.mark.parametrize("env, release, mode", [
    (dict(saved_entry="1>3"), OLD_RELEASE, "single"),
    (dict(saved_entry="gnulinux-advanced-{u}>gnulinux-{r}-advanced-{u}".format(u=ROOT_UUID, r=OLD_RELEASE)),
     OLD_RELEASE, "quiet"),
    (dict(), RELEASE, "quiet"),
    (None, RELEASE, "quiet"),
])
def test_grub_saved_entry_from_grubenv(tmp_path, env, release, mode):
    host = debian(tmp_path, "${saved_entry}")
    if env is not None:
        host.write("boot/grub/grubenv", fakes.grubenv(**env))
    assert_entry(grub_default_entry(host.root), host, release, mode)


@pytest.mark.parametrize("env", [dict(saved_entry="1>3"), dict(next_entry="1>3")])
def test_grubenv_is_ignored_unless_the_default_is_saved(tmp_path, env):
    # Every grub.cfg from grub-mkconfig says set default="${next_entry}" (grub-reboot's one-shot
    # choice) before the configured default: a stale saved_entry or a pending next_entry does not
    # change what a GRUB_DEFAULT=0 machine boots by default.
    host = debian(tmp_path, "0")
    host.write("boot/grub/grubenv", fakes.grubenv(**env))
    assert_entry(grub_default_entry(host.root), host, RELEASE, "quiet")


def test_separate_boot_partition_paths(tmp_path):
    host = debian(tmp_path, "1>2", prefix="")
    assert "\tlinux\t/vmlinuz-%s " % OLD_RELEASE in host.read("boot/grub/grub.cfg")
    assert_entry(grub_default_entry(host.root), host, OLD_RELEASE, "quiet")


def test_grub2_config_with_efi_commands(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    host.write("boot/grub2/grub.cfg", fakes.debian_grub_cfg(default="1>2", linux="linuxefi", initrd="initrdefi"))
    host.write("boot/grub2/grubenv", fakes.grubenv(saved_entry="1>3"))
    entry = grub_default_entry(host.root)
    assert_entry(entry, host, OLD_RELEASE, "quiet")
    assert entry.source == "/boot/grub2/grub.cfg"


def test_custom_entry_with_double_quotes_and_no_initrd(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg=(
        'set default="Serial console"\n'
        'menuentry "Debian" {\n\tlinux /boot/vmlinuz-%s root=/dev/vda1\n}\n'
        'menuentry "Serial console" {\n\tlinux /boot/vmlinuz-%s root=/dev/vda1 console=ttyS0\n}\n'
        % (RELEASE, OLD_RELEASE)))
    entry = grub_default_entry(host.root)
    assert (entry.kernel, entry.initrd, entry.args, entry.title) == (
        host.kernel(OLD_RELEASE), None, "root=/dev/vda1 console=ttyS0", "Serial console")


def test_grub_cfg_without_bootable_default(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg="set default=0\nmenuentry 'UEFI Firmware Settings' {\n\tfwsetup\n}\n")
    assert grub_default_entry(host.root) is None


# --- BLS ------------------------------------------------------------------------------------------

MACHINE_ID = "3f0c2b1d9e104b7e9a516a7d2c4f7f0e"
NEW_FC, OLD_FC = "6.10.3-200.fc40.x86_64", "6.8.5-301.fc40.x86_64"  # as strings "6.8" sorts after "6.10"


@pytest.fixture
def fedora(tmp_path):
    """A Fedora-like tree with a separate /boot: BLS entries name files from the partition's root."""
    host = fakes.fake_host(tmp_path, release=NEW_FC, kernels=(), grub_cfg=None)
    for version in (NEW_FC, OLD_FC):
        fakes.write_bzimage(host.kernel(version), release=version)
        host.write("boot/initramfs-%s.img" % version, fakes.GZIP_INITRD)
        host.write("boot/loader/entries/%s-%s.conf" % (MACHINE_ID, version), (
            "title Fedora Linux (%s) 40 (Server Edition)\nversion %s\nlinux /vmlinuz-%s\n"
            "initrd /initramfs-%s.img\noptions root=UUID=%s ro rhgb quiet\ngrub_users $grub_users\n"
            "grub_arg --unrestricted\ngrub_class fedora\n" % (version, version, version, version, ROOT_UUID)))
    return host


def test_bls_newest_entry_by_version(fedora):
    entry = bls_default_entry(fedora.root)
    assert entry.kernel == fedora.kernel(NEW_FC)
    assert entry.initrd == fedora.path("boot/initramfs-%s.img" % NEW_FC)
    assert entry.args == "root=UUID=%s ro rhgb quiet" % ROOT_UUID
    assert entry.source == "/boot/loader/entries/%s-%s.conf" % (MACHINE_ID, NEW_FC)
    assert entry.title == "Fedora Linux (%s) 40 (Server Edition)" % NEW_FC


def test_bls_saved_entry(fedora):
    fedora.write("boot/grub2/grubenv", fakes.grubenv(saved_entry="%s-%s" % (MACHINE_ID, OLD_FC)))
    assert bls_default_entry(fedora.root).kernel == fedora.kernel(OLD_FC)


def test_bls_kernelopts_from_grubenv(fedora):
    conf = "boot/loader/entries/%s-%s.conf" % (MACHINE_ID, NEW_FC)
    fedora.write(conf, fedora.read(conf).replace("options root=UUID=%s ro rhgb quiet" % ROOT_UUID,
                                                 "options $kernelopts systemd.unit=rescue.target"))
    fedora.write("boot/grub2/grubenv", fakes.grubenv(kernelopts="root=/dev/mapper/rhel-root ro crashkernel=auto"))
    assert bls_default_entry(fedora.root).args == \
        "root=/dev/mapper/rhel-root ro crashkernel=auto systemd.unit=rescue.target"


def test_default_entry_prefers_bls_over_grub_cfg(fedora):
    fedora.write("boot/grub2/grub.cfg", fakes.debian_grub_cfg(releases=(OLD_FC,)))
    assert grub_default_entry(fedora.root).kernel == fedora.kernel(OLD_FC)
    assert default_entry(fedora.root, NEW_FC).kernel == fedora.kernel(NEW_FC)


@pytest.mark.parametrize("esp", ["boot/efi", "efi", "boot"])
def test_systemd_boot_entry_files_are_found_on_the_partition_that_holds_the_entries(tmp_path, esp):
    # kernel-install copies the kernel and initrd onto the ESP (or XBOOTLDR) and names them relative to it.
    host = fakes.fake_host(tmp_path, release=NEW_FC, kernels=(), grub_cfg=None)
    fakes.write_bzimage(host.path("%s/debian/%s/linux" % (esp, NEW_FC)), release=NEW_FC)
    host.write("%s/debian/%s/initrd.img-%s" % (esp, NEW_FC, NEW_FC), fakes.GZIP_INITRD)
    host.write("%s/loader/entries/debian-%s.conf" % (esp, NEW_FC), (
        "title Debian GNU/Linux 13 (trixie)\nversion %s\nlinux /debian/%s/linux\n"
        "initrd /debian/%s/initrd.img-%s\noptions root=UUID=%s ro\n" % (NEW_FC, NEW_FC, NEW_FC, NEW_FC, ROOT_UUID)))
    entry = bls_default_entry(host.root)
    assert entry.kernel == host.path("%s/debian/%s/linux" % (esp, NEW_FC))
    assert entry.initrd == host.path("%s/debian/%s/initrd.img-%s" % (esp, NEW_FC, NEW_FC))
    assert entry.source == "/%s/loader/entries/debian-%s.conf" % (esp, NEW_FC)


def test_bls_entry_without_linux_falls_through_to_grub(tmp_path):
    host = debian(tmp_path, "1>2")
    host.write("boot/loader/entries/uki.conf", "title Unified kernel image\nuki /EFI/Linux/linux.efi\n")
    assert bls_default_entry(host.root) is None
    assert_entry(default_entry(host.root, RELEASE), host, OLD_RELEASE, "quiet")


# --- files that are there but this user cannot read: unknown, never missing ---------------------

@pytest.mark.parametrize("cfg", ["boot/grub/grub.cfg", "boot/grub2/grub.cfg"])
def test_an_unreadable_grub_cfg_is_unreadable_not_missing(tmp_path, monkeypatch, cfg):
    # Fedora's grub.cfg is 0600: without root the default entry is unknown, not the running release's files.
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    host.write(cfg, fakes.debian_grub_cfg(default="1>2"))
    fakes.deny_reads(monkeypatch, host.path(cfg))
    for find in (grub_default_entry, lambda root: default_entry(root, RELEASE)):
        with pytest.raises(Unreadable) as caught:
            find(host.root)
        assert caught.value.path == "/" + cfg
        assert caught.value.msg == "/%s cannot be read: run as root (become: true)" % cfg


@pytest.mark.parametrize("denied", [
    "boot/loader/entries",  # the directory
    "boot/loader/entries/%s-%s.conf" % (MACHINE_ID, NEW_FC),  # the newest entry
    "boot/grub2/grubenv",  # its saved_entry may name another entry
])
def test_an_unreadable_bls_file_is_unreadable_not_missing(fedora, monkeypatch, denied):
    fedora.write("boot/grub2/grubenv", fakes.grubenv(saved_entry="%s-%s" % (MACHINE_ID, NEW_FC)))
    fakes.deny_reads(monkeypatch, fedora.path(denied))
    with pytest.raises(Unreadable) as caught:
        default_entry(fedora.root, NEW_FC)
    assert caught.value.path == "/" + denied


def test_an_unreadable_grubenv_a_grub_cfg_does_not_ask_for_is_not_read(tmp_path, monkeypatch):
    host = debian(tmp_path, "1>2")
    host.write("boot/grub/grubenv", fakes.grubenv(saved_entry="0"))
    fakes.deny_reads(monkeypatch, host.path("boot/grub/grubenv"))
    assert_entry(default_entry(host.root, RELEASE), host, OLD_RELEASE, "quiet")


# --- fallback: the running release ----------------------------------------------------------------

@pytest.mark.parametrize("initrd_name", ["initrd.img-%s", "initramfs-%s.img", None])
def test_fallback_to_running_release(tmp_path, initrd_name):
    host = fakes.fake_host(tmp_path, kernels=(), grub_cfg=None)
    fakes.write_bzimage(host.kernel(RELEASE))
    if initrd_name:
        host.write("boot/" + initrd_name % RELEASE, fakes.GZIP_INITRD)
    entry = default_entry(host.root, RELEASE)
    assert entry.kernel == host.kernel(RELEASE)
    assert entry.initrd == (host.path("boot/" + initrd_name % RELEASE) if initrd_name else None)
    assert entry.args is None
    assert entry.source == "running release %s" % RELEASE


@pytest.mark.parametrize("release", [RELEASE, None])
def test_nothing_found(tmp_path, release):
    host = fakes.fake_host(tmp_path, kernels=(OLD_RELEASE,), grub_cfg=None)
    assert default_entry(host.root, release) is None
    assert running_release_entry(host.root, release) is None


# --- boot files that are there but are no text file: one error, never taken for missing ----------------


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_grub_cfg_that_is_no_regular_file_is_one_error_without_hanging(tmp_path, kind, no_hang):
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    path = host.path("boot/grub/grub.cfg")
    shown = fakes.no_regular_file(path, kind)
    with pytest.raises(KexecError, match="^%s is %s, not a regular file$" % (path, shown)):
        default_entry(host.root, RELEASE)


def test_a_grub_cfg_that_is_not_utf8_is_one_error(tmp_path):
    host = fakes.fake_host(tmp_path, grub_cfg=None)
    host.write("boot/grub/grub.cfg", fakes.debian_grub_cfg().encode("utf-8") + b"# \xe9\n")
    with pytest.raises(KexecError, match=r"^%s is not UTF-8 text \(byte \d+\)$" % host.path("boot/grub/grub.cfg")):
        default_entry(host.root, RELEASE)
