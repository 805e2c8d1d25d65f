"""bootloader.bls: BLS entries and /etc/kernel/cmdline, edited directly (systemd-boot) or through grubby."""

import errno
import os
import re

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot import base
from ansible_collections.kernel.kexec.plugins.module_utils._boot import bls as bls_module
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import ArgEdit, set_crashkernel
from ansible_collections.kernel.kexec.plugins.module_utils._boot.bls import BlsEntries, Grubby
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

from ...fakes import bootloader as bf
from ...fakes import host as fakes

NEW, OLD = bf.FEDORA_KERNELS
RESCUE = "0-rescue-%s" % bf.MACHINE_ID
CMDLINE = "etc/kernel/cmdline"
PROC_CMDLINE = ("BOOT_IMAGE=(hd0,gpt2)/vmlinuz-%s root=UUID=%s ro rootflags=subvol=root "
                "initrd=\\initramfs-%s.img rhgb quiet" % (NEW, fakes.ROOT_UUID, NEW))
SET = set_crashkernel("256M")
REMOVE = set_crashkernel(None)


class Tree(fakes.FakeHost):
    def snapshot(self, backups=False):
        return super(Tree, self).snapshot(backups)

    def entry(self, release, directory="boot/loader/entries"):
        return os.path.relpath(bf.entry_path(self.root, release, directory), self.root)


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path)


def fedora(tree, kernel_cmdline=True, options=bf.FEDORA_OPTIONS, directory="boot/loader/entries"):
    """Fedora 40 with grub2 and BLS: two kernels and a rescue entry, /etc/kernel/cmdline, /proc/cmdline."""
    for release in (NEW, OLD):
        tree.write(tree.entry(release, directory), bf.bls_entry(release, options))
    tree.write(tree.entry(RESCUE, directory), bf.bls_entry(RESCUE, options, title="Fedora Linux (rescue)"))
    if kernel_cmdline:
        tree.write(CMDLINE, options + "\n")
    tree.write("proc/cmdline", PROC_CMDLINE + "\n")
    return tree


def systemd_boot(tree, esp="efi"):
    """Debian with systemd-boot: kernel-install's entries (aligned keys, comments) on the ESP."""
    tree.write("%s/loader/loader.conf" % esp, "timeout 3\ndefault @saved\n")
    for release in (fakes.RELEASE, fakes.OLD_RELEASE):
        tree.write("%s/loader/entries/%s-%s.conf" % (esp, bf.MACHINE_ID, release),
                   "# Boot Loader Specification type#1 entry\n"
                   "# File created by /usr/lib/kernel/install.d/90-loaderentry.install (systemd 252.22-1~deb12u1)\n"
                   "title      Debian GNU/Linux 12 (bookworm)\n"
                   "version    %s\n"
                   "machine-id %s\n"
                   "sort-key   debian\n"
                   "options    root=UUID=%s ro quiet\n"
                   "linux      /%s/%s/linux\n"
                   "initrd     /%s/%s/initrd.img-%s\n"
                   % (release, bf.MACHINE_ID, fakes.ROOT_UUID, bf.MACHINE_ID, release, bf.MACHINE_ID, release,
                      release))
    tree.write(CMDLINE, "root=UUID=%s ro quiet\n" % fakes.ROOT_UUID)
    return tree


def by_path(changes, tree):
    return dict((os.path.relpath(c.path, tree.root), c) for c in changes)


def only_options_changed(change):
    before, after = change.before.splitlines(), change.after.splitlines()
    assert len(before) == len(after)
    differing = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(differing) == 1 and differing[0][0].split()[0] == "options" and differing[0][1].split()[0] == "options"
    return differing[0][1].split(None, 1)[1]


def apply_plan(changes):
    for change in changes:
        fakes.write_file(change.path, change.after)


def refuse(argv):
    raise AssertionError("no command expected: %r" % (argv,))


# --- systemd-boot (BlsEntries) -----------------------------------------------------


@pytest.mark.parametrize("conf", ["boot/loader/loader.conf", "efi/loader/loader.conf", "boot/efi/loader/loader.conf"])
def test_detect_systemd_boot_by_loader_conf(tree, conf):
    fedora(tree)
    assert not BlsEntries.detect(tree.root)  # BLS entries alone are grub2's (grubby)
    tree.write(conf, "timeout 3\n")
    assert BlsEntries.detect(tree.root)


def test_plan_edits_every_entry_and_kernel_cmdline_in_place(tree):
    fedora(tree)
    changes = by_path(BlsEntries(tree.root, runner=refuse).plan_edit(SET), tree)
    assert sorted(changes) == sorted([tree.entry(NEW), tree.entry(OLD), tree.entry(RESCUE), CMDLINE])
    expected = bf.FEDORA_OPTIONS.replace("crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M", "crashkernel=256M")
    for release in (NEW, OLD, RESCUE):
        assert only_options_changed(changes[tree.entry(release)]) == expected
    assert changes[CMDLINE].before == bf.FEDORA_OPTIONS + "\n"
    assert changes[CMDLINE].after == expected + "\n"


def test_removal_drops_every_occurrence(tree):
    fedora(tree, options="root=/dev/vda2 crashkernel=auto ro crashkernel=64M,low quiet")
    changes = BlsEntries(tree.root).plan_edit(REMOVE)
    assert len(changes) == 4
    for change in changes:
        assert "crashkernel" not in change.after
        assert "root=/dev/vda2 ro quiet" in change.after


def test_plan_is_idempotent(tree):
    fedora(tree)
    loader = BlsEntries(tree.root)
    for edit in (SET, set_crashkernel("512M"), REMOVE):
        apply_plan(loader.plan_edit(edit))
        assert loader.plan_edit(edit) == []


def test_plan_writes_nothing(tree):
    fedora(tree, kernel_cmdline=False)
    before = tree.snapshot()
    assert BlsEntries(tree.root).plan_edit(SET)
    assert tree.snapshot() == before


def test_missing_kernel_cmdline_is_created_from_proc_cmdline(tree):
    fedora(tree, kernel_cmdline=False)
    changes = by_path(BlsEntries(tree.root).plan_edit(SET), tree)
    change = changes[CMDLINE]
    assert change.before is None
    assert change.after == "root=UUID=%s ro rootflags=subvol=root rhgb quiet crashkernel=256M\n" % fakes.ROOT_UUID
    assert change.diff(tree.root)["before_header"] == "/etc/kernel/cmdline (absent)"


def test_missing_kernel_cmdline_is_not_created_for_one_kernel(tree):
    fedora(tree, kernel_cmdline=False)
    changes = by_path(BlsEntries(tree.root, kernel=OLD).plan_edit(SET), tree)
    assert sorted(changes) == [tree.entry(OLD)]


def test_existing_kernel_cmdline_is_edited_with_a_kernel_filter_too(tree):
    fedora(tree)
    changes = by_path(BlsEntries(tree.root, kernel=OLD).plan_edit(SET), tree)
    assert sorted(changes) == sorted([tree.entry(OLD), CMDLINE])


def test_kernel_filter_matching_nothing_is_an_error(tree):
    fedora(tree)
    with pytest.raises(KexecError, match=r"^no boot entry boots kernel 5\.14\.0-1\.el9 \(looked for linux "
                                         r"\.\.\./vmlinuz-5\.14\.0-1\.el9 or version 5\.14\.0-1\.el9\)$"):
        BlsEntries(tree.root, kernel="5.14.0-1.el9").plan_edit(SET)


def test_kernelopts_entries_are_refused(tree):
    """RHEL 8 before its BLS conversion: the options live in grubenv."""
    fedora(tree, options="$kernelopts")
    tree.write("boot/grub2/grubenv", fakes.grubenv(kernelopts="root=/dev/vda2 ro crashkernel=auto"))
    before = tree.snapshot()
    with pytest.raises(KexecError) as caught:
        BlsEntries(tree.root).plan_edit(SET)
    assert "$kernelopts" in caught.value.msg and "grub2-mkconfig" in caught.value.msg
    assert tree.snapshot() == before


def test_entry_without_options_gets_a_line_only_when_something_is_added(tree):
    fedora(tree, options="ro")
    tree.write(tree.entry("6.9.0-1.fc40.x86_64"), bf.bls_entry("6.9.0-1.fc40.x86_64", options=None))
    loader = BlsEntries(tree.root, kernel="6.9.0-1.fc40.x86_64")
    (change,) = [c for c in loader.plan_edit(SET) if c.path.endswith(".conf")]
    assert change.after == change.before + "options crashkernel=256M\n"
    assert [c.path for c in loader.plan_edit(REMOVE) if c.path.endswith(".conf")] == []


def test_systemd_boot_entries_on_the_esp(tree):
    systemd_boot(tree)
    loader = BlsEntries(tree.root)
    changes = by_path(loader.plan_edit(SET), tree)
    assert len(changes) == 3
    for rel, change in changes.items():
        if rel != CMDLINE:
            assert only_options_changed(change) == "root=UUID=%s ro quiet crashkernel=256M" % fakes.ROOT_UUID
            assert change.after.startswith("# Boot Loader Specification type#1 entry\n")
            # kernel-install's alignment stays: only the value changes.
            assert "\noptions    root=UUID=%s ro quiet crashkernel=256M\n" % fakes.ROOT_UUID in change.after


def test_entries_separated_by_tabs_or_aligned_are_read_and_edited_alike(tree):
    systemd_boot(tree)
    entry = "efi/loader/entries/%s-%s.conf" % (bf.MACHINE_ID, fakes.RELEASE)
    tree.write(entry, tree.read(entry).replace("options    ", "options\t").replace("linux      ", "linux\t "))
    loader = BlsEntries(tree.root)
    assert loader.configured_args() == "root=UUID=%s ro quiet" % fakes.ROOT_UUID
    change = by_path(loader.plan_edit(SET), tree)[entry]
    assert "\noptions\troot=UUID=%s ro quiet crashkernel=256M\n" % fakes.ROOT_UUID in change.after
    assert loader.entries() == loader.all_entries()


def test_configured_args_from_the_default_entry(tree):
    fedora(tree, options="root=/dev/vda2 ro")
    tree.write(tree.entry(NEW), bf.bls_entry(NEW, "root=/dev/vda2 ro crashkernel=256M"))
    assert BlsEntries(tree.root).configured_args() == "root=/dev/vda2 ro crashkernel=256M"
    tree.write("boot/grub2/grubenv", fakes.grubenv(saved_entry="%s-%s" % (bf.MACHINE_ID, OLD)))
    assert BlsEntries(tree.root).configured_args() == "root=/dev/vda2 ro"


def test_configured_args_without_entries_come_from_kernel_cmdline(tree):
    tree.write(CMDLINE, "root=/dev/vda2 ro crashkernel=1G\n\n")
    assert BlsEntries(tree.root).configured_args() == "root=/dev/vda2 ro crashkernel=1G"
    os.unlink(tree.path(CMDLINE))
    assert BlsEntries(tree.root).configured_args() == ""


def test_systemd_boot_apply_writes_with_backups_and_runs_nothing(tree):
    systemd_boot(tree)
    loader = BlsEntries(tree.root, runner=refuse)
    before = tree.snapshot()
    changes = loader.plan_edit(SET)
    backups = loader.apply(changes, SET)
    assert sorted(backups) == sorted(c.path for c in changes)
    for change in changes:
        with open(change.path) as handle:
            assert handle.read() == change.after
        with open(backups[change.path]) as handle:
            assert handle.read() == change.before
        assert re.search(r"\.\d{8}T\d{6}\.kexec-bak$", backups[change.path])
        assert not backups[change.path].endswith(".conf")  # not an entry of its own
    assert loader.plan_edit(SET) == []
    assert set(tree.snapshot()) - set(before) == set()  # backups aside, no new files


# --- grubby ---------------------------------------------------------------------------


@pytest.fixture
def grubby_installed(monkeypatch):
    monkeypatch.setattr(bls_module.shutil, "which", lambda name: "/usr/sbin/grubby" if name == "grubby" else None)


def test_detect_grubby_needs_entries_and_the_tool(tree, monkeypatch):
    monkeypatch.setattr(bls_module.shutil, "which", lambda name: None)
    fedora(tree)
    assert not Grubby.detect(tree.root)
    monkeypatch.setattr(bls_module.shutil, "which", lambda name: "/usr/sbin/grubby" if name == "grubby" else None)
    assert Grubby.detect(tree.root)
    assert not Grubby.detect(os.path.join(tree.root, "empty"))


def grubby(tree, kernel=None, **kwargs):
    runner = bf.FakeTools(grubby=bf.FakeGrubby(tree.root, **kwargs))
    return runner, Grubby(tree.root, runner=runner, kernel=kernel)


@pytest.fixture
def written(monkeypatch):
    """The paths the backend itself writes (through base.write_atomic)."""
    paths = []
    real = base.write_atomic

    def spy(path, text, mode=0o644):
        paths.append(path)
        return real(path, text, mode)
    monkeypatch.setattr(base, "write_atomic", spy)
    return paths


@pytest.mark.parametrize("in_place", [False, True], ids=["grubby-appends", "grubby-in-place"])
def test_grubby_apply(tree, written, in_place):
    fedora(tree)
    runner, loader = grubby(tree, in_place=in_place)
    changes = loader.plan_edit(SET)
    loader.apply(changes, SET)
    assert runner.calls == [["grubby", "--update-kernel=ALL", "--args=crashkernel=256M", "--no-etc-grub-update"]]
    assert written == [tree.path(CMDLINE)]  # the entries are grubby's to write
    # grubby edits /etc/kernel/cmdline too, after us: the same arguments, in its order
    assert sorted(tree.read(CMDLINE).split()) == sorted(bf.FEDORA_OPTIONS.replace(
        "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M", "crashkernel=256M").split())
    for release in (NEW, OLD, RESCUE):
        options = bf.entry_options(tree.read(tree.entry(release))).split()
        assert [o for o in options if o.startswith("crashkernel")] == ["crashkernel=256M"]
        assert options[-1 if not in_place else 3] == "crashkernel=256M"
    assert loader.plan_edit(SET) == []


def test_grubby_apply_removal(tree):
    fedora(tree)
    runner, loader = grubby(tree)
    loader.apply(loader.plan_edit(REMOVE), REMOVE)
    assert runner.calls == [["grubby", "--update-kernel=ALL", "--remove-args=crashkernel", "--no-etc-grub-update"]]
    assert "crashkernel" not in tree.read(tree.entry(NEW)) + tree.read(CMDLINE)
    assert loader.plan_edit(REMOVE) == []


def test_grubby_apply_with_both_args_and_remove_args(tree):
    fedora(tree)
    runner, loader = grubby(tree)
    edit = ArgEdit(append=["crashkernel=256M", "console=ttyS0"], remove=["rhgb"])
    loader.apply(loader.plan_edit(edit), edit)
    assert runner.calls == [["grubby", "--update-kernel=ALL", "--args=crashkernel=256M console=ttyS0",
                             "--remove-args=rhgb", "--no-etc-grub-update"]]
    assert loader.plan_edit(edit) == []


def test_grubby_apply_for_one_kernel(tree):
    fedora(tree)
    kernel = "/vmlinuz-%s" % OLD
    runner, loader = grubby(tree, kernel=kernel)
    untouched = tree.read(tree.entry(NEW))
    loader.apply(loader.plan_edit(SET), SET)
    assert runner.calls == [["grubby", "--update-kernel=%s" % kernel, "--args=crashkernel=256M", "--no-etc-grub-update"]]
    assert "crashkernel=256M" in tree.read(tree.entry(OLD))
    assert tree.read(tree.entry(NEW)) == untouched


def test_grubby_not_run_when_only_kernel_cmdline_changes(tree, written):
    fedora(tree, kernel_cmdline=False)
    for release in (NEW, OLD, RESCUE):
        tree.write(tree.entry(release), bf.bls_entry(release, "root=/dev/vda2 ro crashkernel=256M"))
    runner, loader = grubby(tree)
    changes = loader.plan_edit(SET)
    assert [c.path for c in changes] == [tree.path(CMDLINE)]
    loader.apply(changes, SET)
    assert runner.calls == []
    assert written == [tree.path(CMDLINE)]


def test_kernel_cmdline_is_written_before_grubby_runs(tree):
    fedora(tree)
    seen = []
    runner = bf.FakeTools(grubby=lambda argv: seen.append(tree.read(CMDLINE)) or bf.FakeGrubby(tree.root)(argv))
    loader = Grubby(tree.root, runner=runner)
    loader.apply(loader.plan_edit(SET), SET)
    assert "crashkernel=256M" in seen[0].split()
    assert sorted(seen[0].split()) == sorted(tree.read(CMDLINE).split())  # grubby's own edit changed nothing more


@pytest.mark.parametrize("mangle", [
    lambda options: options.replace("crashkernel=256M", "crashkernel=512M"),
    lambda options: options + " crashkernel=1G",
    lambda options: options.replace(" quiet", ""),
], ids=["other-value", "duplicate", "dropped-argument"])
@pytest.mark.parametrize("kernel_cmdline", [True, False], ids=["cmdline", "no-cmdline"])
def test_grubby_doing_something_else_restores_everything(tree, mangle, kernel_cmdline):
    fedora(tree, kernel_cmdline=kernel_cmdline)
    before = tree.snapshot()
    runner, loader = grubby(tree, mangle=mangle)
    with pytest.raises(KexecError, match="after grubby, .* do not hold the planned options"):
        loader.apply(loader.plan_edit(SET), SET)
    assert runner.names() == ["grubby"]
    assert tree.snapshot() == before


def test_grubby_failing_restores_everything(tree):
    fedora(tree)
    before = tree.snapshot()
    runner, loader = grubby(tree, rc=1)
    with pytest.raises(KexecError) as caught:
        loader.apply(loader.plan_edit(SET), SET)
    assert caught.value.msg == ("grubby failed (grubby --update-kernel=ALL --args=crashkernel=256M "
                                "--no-etc-grub-update, rc=1): "
                                "grubby: The param ALL is incorrect")
    assert tree.snapshot() == before


def test_grubby_damage_to_entries_outside_the_plan_is_undone(tree):
    """--update-kernel=ALL rewrites every entry, also those the plan did not need to change."""
    fedora(tree)
    done = bf.bls_entry(OLD, bf.FEDORA_OPTIONS.replace("crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M",
                                                       "crashkernel=256M"))
    tree.write(tree.entry(OLD), done)
    before = tree.snapshot()
    runner, loader = grubby(tree, mangle=lambda options: options + " crashkernel=1G")
    changes = loader.plan_edit(SET)
    assert tree.path(tree.entry(OLD)) not in [c.path for c in changes]
    with pytest.raises(KexecError):
        loader.apply(changes, SET)
    assert tree.read(tree.entry(OLD)) == done
    assert tree.snapshot() == before


def test_grubby_verification_ignores_where_grubby_put_the_argument(tree):
    """Newer grubby appends --args at the end; older grubby replaces in place: both are what was planned."""
    fedora(tree)
    runner, loader = grubby(tree)
    changes = loader.plan_edit(SET)
    planned = bf.entry_options(changes[0].after).split()
    loader.apply(changes, SET)
    actual = bf.entry_options(tree.read(os.path.relpath(changes[0].path, tree.root))).split()
    assert actual != planned and sorted(actual) == sorted(planned)


# --- everything grubby writes is planned, backed up and restored ----------------------------

GRUBENV = "boot/grub2/grubenv"
ETC_DEFAULT_GRUB = "etc/default/grub"
FEDORA_DEFAULT_GRUB = ('GRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR="$(sed \'s, release .*$,,g\' /etc/system-release)"\n'
                       'GRUB_DEFAULT=saved\nGRUB_CMDLINE_LINUX="rhgb quiet crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M"\n'
                       'GRUB_CMDLINE_LINUX_DEFAULT="console=tty0"\nGRUB_ENABLE_BLSCFG=true\n')


def fedora_with_grub(tree, **kwargs):
    """fedora() plus /etc/default/grub and a grubenv, as a stock Fedora install has them."""
    fedora(tree, **kwargs)
    tree.write(ETC_DEFAULT_GRUB, FEDORA_DEFAULT_GRUB)
    tree.write(GRUBENV, fakes.grubenv(saved_entry="%s-%s" % (bf.MACHINE_ID, NEW), boot_success="1"))
    return tree


def test_grubby_is_told_to_leave_etc_default_grub_alone(tree):
    """Without --no-etc-grub-update, grubby-bls rewrites every GRUB_CMDLINE_LINUX* line (the _DEFAULT one too)."""
    fedora_with_grub(tree)
    runner, loader = grubby(tree)
    loader.apply(loader.plan_edit(SET), SET)
    assert runner.calls[0][-1] == "--no-etc-grub-update"
    assert tree.read(ETC_DEFAULT_GRUB) == FEDORA_DEFAULT_GRUB


def test_fake_grubby_loses_the_option_after_no_etc_grub_update():
    """Why the flag goes last: grubby-bls shifts once more after it (as its source does)."""
    fake = bf.FakeGrubby("/nonexistent")
    assert fake.parse(["grubby", "--update-kernel=ALL", "--no-etc-grub-update"])[0] == {
        "update-kernel": "ALL", "no-etc-grub-update": True}
    assert fake.parse(["grubby", "--no-etc-grub-update", "--update-kernel=ALL"])[1] == 'grubby: invalid option "ALL"\n'


def test_grubby_backs_up_every_file_it_may_write(tree):
    fedora_with_grub(tree)
    before = tree.snapshot()
    runner, loader = grubby(tree)
    backups = loader.apply(loader.plan_edit(SET), SET)
    expected = [tree.entry(r) for r in (NEW, OLD, RESCUE)] + [CMDLINE, GRUBENV, ETC_DEFAULT_GRUB]
    assert sorted(os.path.relpath(p, tree.root) for p in backups) == sorted(expected)
    for path, backup in backups.items():
        with open(backup, "rb") as handle:
            assert handle.read() == before[os.path.relpath(path, tree.root)]


@pytest.mark.parametrize("rc", [0, 1], ids=["success", "grubby-fails"])
def test_grubby_with_backup_false_leaves_no_copy_and_still_restores(tree, rc):
    """backup: false - every file grubby may write is still copied first (the restore needs it), and no copy
    stays: none after a success, none after a failure once every file is back."""
    fedora_with_grub(tree)
    before = tree.snapshot()
    runner, loader = grubby(tree, rc=rc)
    if rc:
        with pytest.raises(KexecError, match="grubby failed"):
            loader.apply(loader.plan_edit(SET), SET, backup=False)
        assert tree.snapshot() == before
    else:
        assert loader.apply(loader.plan_edit(SET), SET, backup=False) == {}
        assert "crashkernel=256M" in tree.read(CMDLINE)
    assert [path for path in tree.snapshot(backups=True) if path.endswith(".kexec-bak")] == []


def damage_etc_default_grub(tree):
    """What a grubby that ignored --no-etc-grub-update would leave."""
    return lambda: tree.write(ETC_DEFAULT_GRUB, 'GRUB_CMDLINE_LINUX="crashkernel=256M"\n')


def test_grubby_writing_outside_the_plan_is_an_error_and_everything_is_restored(tree):
    fedora_with_grub(tree, options="$kernelopts")
    tree.write(GRUBENV, fakes.grubenv(kernelopts=bf.FEDORA_OPTIONS, saved_entry="%s-%s" % (bf.MACHINE_ID, NEW)))
    before = tree.snapshot(backups=False)
    runner, loader = grubby(tree, also=damage_etc_default_grub(tree))
    with pytest.raises(KexecError, match=r"^after grubby, .*etc/default/grub do not hold the planned options"):
        loader.apply(loader.plan_edit(SET), SET)
    assert tree.snapshot(backups=False) == before  # grubenv's kernelopts and /etc/default/grub too


# --- s390x: zipl after the entries ----------------------------------------------------------


def s390x_grubby(tree, zipl_rc=0, kernel=None):
    runner = bf.FakeTools(grubby=bf.FakeGrubby(tree.root, machine="s390x"), zipl=bf.fake_zipl(rc=zipl_rc))
    return runner, Grubby(tree.root, runner=runner, kernel=kernel, machine="s390x")


def test_grubby_on_s390x_runs_zipl_after_the_entries(tree):
    fedora(tree)
    seen = []
    runner, loader = s390x_grubby(tree)
    runner.tools["zipl"] = lambda argv: seen.append(tree.read(tree.entry(NEW))) or bf.fake_zipl()(argv)
    loader.apply(loader.plan_edit(SET), SET)
    assert runner.names() == ["grubby", "zipl"]
    assert "crashkernel=256M" in bf.entry_options(seen[0]).split()  # zipl read the edited entries


def test_zipl_failing_after_grubby_restores_every_file(tree):
    fedora(tree)
    before = tree.snapshot(backups=False)
    runner, loader = s390x_grubby(tree, zipl_rc=1)
    with pytest.raises(KexecError, match=r"^zipl \(writing the boot record\) failed \(zipl, rc=1\): Error: "):
        loader.apply(loader.plan_edit(SET), SET)
    assert runner.names() == ["grubby", "zipl"]
    assert tree.snapshot(backups=False) == before


def test_grubby_elsewhere_runs_no_zipl(tree):
    fedora(tree)
    runner, loader = grubby(tree)
    loader.apply(loader.plan_edit(SET), SET)
    assert runner.names() == ["grubby"]


# --- the kernel forms users write, matched exactly -----------------------------------------


@pytest.mark.parametrize("kernel", [OLD, "/boot/vmlinuz-%s" % OLD, "/vmlinuz-%s" % OLD, "vmlinuz-%s" % OLD])
def test_grubby_accepts_the_kernel_forms_users_write(tree, kernel):
    fedora(tree)
    runner, loader = grubby(tree, kernel=kernel)
    untouched = tree.read(tree.entry(NEW))
    changes = loader.plan_edit(SET)
    assert [os.path.relpath(c.path, tree.root) for c in changes] == [tree.entry(OLD), CMDLINE]
    loader.apply(changes, SET)
    # the entry's own linux path: grubby matches nothing else for a bare release
    assert runner.calls == [["grubby", "--update-kernel=/vmlinuz-%s" % OLD, "--args=crashkernel=256M",
                             "--no-etc-grub-update"]]
    assert "crashkernel=256M" in bf.entry_options(tree.read(tree.entry(OLD))).split()
    assert tree.read(tree.entry(NEW)) == untouched
    assert loader.plan_edit(SET) == []


def test_grubby_kernel_all_is_every_entry(tree):
    fedora(tree)
    runner, loader = grubby(tree, kernel="ALL")
    changes = loader.plan_edit(SET)
    assert len(changes) == 4
    loader.apply(changes, SET)
    assert runner.calls[0][1] == "--update-kernel=ALL"


@pytest.mark.parametrize("backend", [BlsEntries, Grubby])
def test_a_release_never_matches_a_longer_one(tree, backend):
    """6.1.0-1 is a prefix of 6.1.0-18-amd64: each names only its own entry."""
    for release in ("6.1.0-18-amd64", "6.1.0-1"):
        tree.write(tree.entry(release), bf.bls_entry(release))
    loader = backend(tree.root, kernel="6.1.0-1")
    assert [os.path.relpath(p, tree.root) for p in loader.entries()] == [tree.entry("6.1.0-1")]
    os.unlink(tree.path(tree.entry("6.1.0-1")))
    with pytest.raises(KexecError, match="^no boot entry boots kernel 6.1.0-1 "):
        backend(tree.root, kernel="6.1.0-1").plan_edit(SET)


def test_systemd_boot_entries_match_by_version(tree):
    systemd_boot(tree)
    loader = BlsEntries(tree.root, kernel=fakes.OLD_RELEASE)
    assert [os.path.basename(p) for p in loader.entries()] == ["%s-%s.conf" % (bf.MACHINE_ID, fakes.OLD_RELEASE)]


# --- stock entries whose options are $kernelopts ---------------------------------------------


def kernelopts_tree(tree, kernelopts=bf.FEDORA_OPTIONS):
    """RHEL 8 / Fedora 30 stock: every entry says 'options $kernelopts', grubenv holds the arguments."""
    fedora(tree, options="$kernelopts")
    tree.write(GRUBENV, fakes.grubenv(saved_entry="%s-%s" % (bf.MACHINE_ID, NEW), kernelopts=kernelopts))
    return tree


def grubenv_kernelopts(tree):
    return next(line for line in tree.read(GRUBENV).splitlines() if line.startswith("kernelopts="))[11:]


def test_kernelopts_for_all_kernels_is_planned_in_grubenv(tree):
    kernelopts_tree(tree)
    runner, loader = grubby(tree)
    changes = by_path(loader.plan_edit(SET), tree)
    assert sorted(changes) == sorted([GRUBENV, CMDLINE])  # the entries keep $kernelopts
    after = changes[GRUBENV].after
    assert len(after) == 1024 and after.startswith("# GRUB Environment Block\n")
    assert "crashkernel=256M" in grubenv_kernelopts_of(after).split()
    assert changes[GRUBENV].diff(tree.root)["before_header"] == "/" + GRUBENV
    loader.apply(list(changes.values()), SET)
    assert runner.calls == [["grubby", "--update-kernel=ALL", "--args=crashkernel=256M", "--no-etc-grub-update"]]
    assert "crashkernel=256M" in grubenv_kernelopts(tree).split()
    assert bf.entry_options(tree.read(tree.entry(NEW))) == "$kernelopts"
    assert "crashkernel=256M" in loader.configured_args().split()
    assert loader.plan_edit(SET) == []


def grubenv_kernelopts_of(text):
    return next(line for line in text.splitlines() if line.startswith("kernelopts="))[11:]


def test_kernelopts_for_one_kernel_is_expanded_into_its_entry(tree):
    kernelopts_tree(tree)
    runner, loader = grubby(tree, kernel=OLD)
    changes = by_path(loader.plan_edit(SET), tree)
    assert sorted(changes) == sorted([tree.entry(OLD), CMDLINE])
    loader.apply(list(changes.values()), SET)
    options = bf.entry_options(tree.read(tree.entry(OLD))).split()
    assert "crashkernel=256M" in options and "$kernelopts" not in options and "rhgb" in options
    assert bf.entry_options(tree.read(tree.entry(NEW))) == "$kernelopts"
    assert grubenv_kernelopts(tree) == bf.FEDORA_OPTIONS
    assert loader.plan_edit(SET) == []


def test_kernelopts_without_a_grubenv_value_is_a_clear_error(tree):
    fedora(tree, options="$kernelopts")
    tree.write(GRUBENV, fakes.grubenv(saved_entry="x"))
    with pytest.raises(KexecError, match=r"take their options from grubenv's kernelopts .* no grubenv sets kernelopts"):
        grubby(tree)[1].plan_edit(SET)


@pytest.mark.parametrize("saved", [NEW, OLD, RESCUE])
def test_grubby_unchanged_host_plans_nothing_whatever_entry_is_default(tree, saved):
    kernelopts_tree(tree, kernelopts=bf.FEDORA_OPTIONS.replace("crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M",
                                                               "crashkernel=256M"))
    tree.write(CMDLINE, bf.FEDORA_OPTIONS.replace("crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M",
                                                  "crashkernel=256M") + "\n")
    tree.write(GRUBENV, tree.read(GRUBENV).replace("%s-%s" % (bf.MACHINE_ID, NEW), "%s-%s" % (bf.MACHINE_ID, saved)))
    assert grubby(tree)[1].plan_edit(SET) == []


def test_a_stale_kernelopts_no_entry_uses_is_planned_too(tree):
    """An upgraded host keeps kernelopts in grubenv after its entries got their own options; grubby
    --update-kernel=ALL edits it all the same, so the plan must say so or the check would fail."""
    fedora(tree)
    tree.write(GRUBENV, fakes.grubenv(saved_entry="x", kernelopts=bf.FEDORA_OPTIONS))
    runner, loader = grubby(tree)
    changes = loader.plan_edit(SET)
    assert tree.path(GRUBENV) in [c.path for c in changes]
    loader.apply(changes, SET)
    assert "crashkernel=256M" in grubenv_kernelopts(tree).split()
    assert loader.plan_edit(SET) == []


def test_zipl_missing_after_grubby_is_a_clear_error_and_restores_every_file(tree):
    # The module's runner raises for a tool that is not installed (run_command with
    # handle_exceptions=False): grubby has edited the entries already, so every file goes back.
    fedora(tree)
    before = tree.snapshot(backups=False)
    runner, loader = s390x_grubby(tree)

    def not_installed(argv):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    runner.tools["zipl"] = not_installed
    with pytest.raises(KexecError) as caught:
        loader.apply(loader.plan_edit(SET), SET)
    assert caught.value.msg.startswith("zipl (writing the boot record) failed: zipl could not be started: "
                                       "No such file or directory")  # not "writing the boot configuration failed"
    assert "Traceback" not in caught.value.msg
    assert tree.snapshot(backups=False) == before
