"""bootloader.grub: GRUB_CMDLINE_LINUX(_DEFAULT) in /etc/default/grub and its drop-ins, and grub-mkconfig.

What the files mean is checked against sh itself (bootloader_fakes.sourced_args sources them the way
grub-mkconfig does), not only against the backend's own reading of them.
"""

import difflib
import os
import re

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline_args
from ansible_collections.kernel.kexec.plugins.module_utils._boot import base
from ansible_collections.kernel.kexec.plugins.module_utils._boot import grub as grub_module
from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import ArgEdit, set_crashkernel
from ansible_collections.kernel.kexec.plugins.module_utils._boot.grub import GrubDefaults
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

from ...fakes import bootloader as bf
from ...fakes import host as fakes

DEFAULTS = "etc/default/grub"
KDUMP = "etc/default/grub.d/kdump-tools.cfg"
CFG = "boot/grub/grub.cfg"


Tree = fakes.FakeHost


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path)


def debian(tree, linux='""', linux_default='"quiet"', kdump=False, dropins=None):
    tree.write(DEFAULTS, bf.default_grub(linux, linux_default))
    if kdump:
        tree.write(KDUMP, bf.KDUMP_TOOLS_CFG)
    for name, text in (dropins or {}).items():
        tree.write("etc/default/grub.d/%s" % name, text)
    return GrubDefaults(tree.root, runner=bf.FakeTools())


def apply_plan(changes):
    for change in changes:
        fakes.write_file(change.path, change.after)


def changed_lines(before, after):
    """(removed, added) lines between two texts."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


def by_path(changes, tree):
    return dict((os.path.relpath(c.path, tree.root), c) for c in changes)


# --- detect and configured_args -------------------------------------------------


def test_detect(tree):
    assert not GrubDefaults.detect(tree.root)
    tree.write(DEFAULTS, bf.DEBIAN_DEFAULT_GRUB)
    assert GrubDefaults.detect(tree.root)


@pytest.mark.parametrize("linux, linux_default, dropins, expected", [
    ('""', '"quiet"', {}, "quiet"),
    ('"console=ttyS0,115200n8"', '"quiet splash"', {}, "console=ttyS0,115200n8 quiet splash"),
    ('"rootflags=subvol=@"', '"quiet"', {"kdump-tools.cfg": bf.KDUMP_TOOLS_CFG},
     "rootflags=subvol=@ quiet crashkernel=384M-:128M"),
    ("''", "'quiet'", {"kdump-tools.cfg": bf.KDUMP_TOOLS_CFG}, "quiet crashkernel=384M-:128M"),
    ('nomodeset', None, {}, "nomodeset"),
    (None, '"quiet"', {}, "quiet"),
    ('""', '"quiet"', {"10-console.cfg": 'GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} console=ttyS0"\n',
                       "50-cloudimg-settings.cfg": 'export GRUB_CMDLINE_LINUX_DEFAULT="console=tty1 '
                                                   'console=ttyS0"\n',
                       "kdump-tools.cfg": bf.KDUMP_TOOLS_CFG},
     "console=ttyS0 console=tty1 console=ttyS0 crashkernel=384M-:128M"),
    ('"crashkernel=auto"', '"quiet"', {"kdump-tools.cfg": bf.KDUMP_TOOLS_CFG},
     "crashkernel=auto quiet crashkernel=384M-:128M"),
])
def test_configured_args_match_what_sh_sources(tree, linux, linux_default, dropins, expected):
    loader = debian(tree, linux, linux_default, dropins=dropins)
    assert loader.configured_args() == expected
    assert bf.effective_args(tree.root) == expected  # the fixture itself means what we think


def test_configured_args_ignore_commented_assignments(tree):
    loader = debian(tree)
    assert "#GRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8\"" in tree.read(DEFAULTS)
    assert loader.configured_args() == "quiet"


def test_configured_args_refuse_unsafe_assignments(tree):
    loader = debian(tree, linux='"$(cat /etc/args)"')
    with pytest.raises(KexecError, match="line 10"):
        loader.configured_args()


# --- plan_edit ---------------------------------------------------------------------


def test_adds_to_grub_cmdline_linux_when_absent(tree):
    loader = debian(tree)
    before = tree.read(DEFAULTS)
    changes = loader.plan_edit(set_crashkernel("256M"))
    assert [c.path for c in changes] == [tree.path(DEFAULTS)]
    assert changes[0].before == before
    assert changed_lines(before, changes[0].after) == (
        ['GRUB_CMDLINE_LINUX=""'], ['GRUB_CMDLINE_LINUX="crashkernel=256M"'])
    assert changes[0].after.endswith("\n")
    apply_plan(changes)
    assert bf.effective_args(tree.root) == "crashkernel=256M quiet"


def test_plan_writes_nothing(tree):
    loader = debian(tree, kdump=True)
    before = tree.snapshot()
    assert loader.plan_edit(set_crashkernel("256M"))
    assert loader.plan_edit(set_crashkernel(None))
    assert tree.snapshot() == before


def test_appends_a_line_when_the_variable_is_missing(tree):
    loader = debian(tree, linux=None)
    before = tree.read(DEFAULTS)
    (change,) = loader.plan_edit(set_crashkernel("256M"))
    assert change.after == before + 'GRUB_CMDLINE_LINUX="crashkernel=256M"\n'
    apply_plan([change])
    assert bf.sourced_args(tree.root) == ("crashkernel=256M", "quiet")


def test_removal_with_nothing_to_remove_changes_nothing(tree):
    assert debian(tree).plan_edit(set_crashkernel(None)) == []
    assert debian(tree, linux=None).plan_edit(set_crashkernel(None)) == []


@pytest.mark.parametrize("raw, expected", [
    ('"root=/dev/vda1 crashkernel=128M console=ttyS0"', '"root=/dev/vda1 crashkernel=256M console=ttyS0"'),
    ("'root=/dev/vda1 crashkernel=128M console=ttyS0'", "'root=/dev/vda1 crashkernel=256M console=ttyS0'"),
    ("crashkernel=128M", "crashkernel=256M"),
    ('"crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M"', '"crashkernel=256M"'),
])
def test_changes_the_value_in_place_with_its_quoting(tree, raw, expected):
    loader = debian(tree, linux=raw)
    before = tree.read(DEFAULTS)
    (change,) = loader.plan_edit(set_crashkernel("256M"))
    assert changed_lines(before, change.after) == (["GRUB_CMDLINE_LINUX=%s" % raw],
                                                   ["GRUB_CMDLINE_LINUX=%s" % expected])


def test_export_and_indentation_are_kept(tree):
    tree.write(DEFAULTS, '# site\n  export GRUB_CMDLINE_LINUX="crashkernel=128M quiet"\nGRUB_TIMEOUT=1\n')
    (change,) = GrubDefaults(tree.root).plan_edit(set_crashkernel("256M"))
    assert change.after == '# site\n  export GRUB_CMDLINE_LINUX="crashkernel=256M quiet"\nGRUB_TIMEOUT=1\n'


def test_adds_to_an_unquoted_empty_assignment(tree):
    """NAME= is valid shell for an empty value; it was refused as 'unsafe'."""
    loader = debian(tree, linux="")
    (change,) = loader.plan_edit(set_crashkernel("256M"))
    assert "\nGRUB_CMDLINE_LINUX=crashkernel=256M\n" in change.after
    apply_plan([change])
    assert bf.sourced_args(tree.root) == ("crashkernel=256M", "quiet")


def test_kdump_tools_dropin_is_changed_in_place(tree):
    loader = debian(tree, kdump=True)
    grub_before = tree.read(DEFAULTS)
    (change,) = loader.plan_edit(set_crashkernel("512M"))
    assert change.path == tree.path(KDUMP)
    assert change.after == 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=512M"\n'
    apply_plan([change])
    assert tree.read(DEFAULTS) == grub_before
    assert loader.configured_args() == bf.effective_args(tree.root) == "quiet crashkernel=512M"


def test_kdump_tools_dropin_loses_it_on_removal(tree):
    loader = debian(tree, kdump=True)
    (change,) = loader.plan_edit(set_crashkernel(None))
    assert change.after == 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT"\n'
    apply_plan([change])
    assert loader.configured_args() == bf.effective_args(tree.root) == "quiet"


def test_several_holders_the_last_is_set_and_the_others_lose_it(tree):
    loader = debian(tree, linux='"crashkernel=auto console=ttyS0"', linux_default='"quiet crashkernel=128M"',
                    kdump=True)
    before = tree.read(DEFAULTS)
    changes = by_path(loader.plan_edit(set_crashkernel("256M")), tree)
    assert sorted(changes) == [DEFAULTS, KDUMP]
    assert changed_lines(before, changes[DEFAULTS].after) == (
        ['GRUB_CMDLINE_LINUX_DEFAULT="quiet crashkernel=128M"', 'GRUB_CMDLINE_LINUX="crashkernel=auto console=ttyS0"'],
        ['GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX="console=ttyS0"'])
    assert changes[KDUMP].after == 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=256M"\n'
    apply_plan(changes.values())
    assert bf.effective_args(tree.root) == "console=ttyS0 quiet crashkernel=256M"


def test_several_holders_in_one_file_the_last_line_keeps_it(tree):
    # Debian's file assigns GRUB_CMDLINE_LINUX_DEFAULT first, GRUB_CMDLINE_LINUX after it
    loader = debian(tree, linux='"crashkernel=auto"', linux_default='"quiet crashkernel=128M splash"')
    (change,) = loader.plan_edit(set_crashkernel("256M"))
    apply_plan([change])
    assert bf.sourced_args(tree.root) == ("crashkernel=256M", "quiet splash")
    tree.write(DEFAULTS, 'GRUB_CMDLINE_LINUX="crashkernel=auto"\nGRUB_CMDLINE_LINUX_DEFAULT="quiet crashkernel=1G"\n')
    apply_plan(loader.plan_edit(set_crashkernel("256M")))
    assert tree.read(DEFAULTS) == 'GRUB_CMDLINE_LINUX=""\nGRUB_CMDLINE_LINUX_DEFAULT="quiet crashkernel=256M"\n'


def test_removal_takes_it_out_of_every_assignment(tree):
    loader = debian(tree, linux='"crashkernel=auto console=ttyS0 crashkernel=64M,low"',
                    linux_default='"crashkernel=128M quiet"', kdump=True)
    changes = loader.plan_edit(set_crashkernel(None))
    apply_plan(changes)
    assert bf.sourced_args(tree.root) == ("console=ttyS0", "quiet")


def test_the_last_grub_cmdline_linux_gets_a_new_argument(tree):
    """A second GRUB_CMDLINE_LINUX line overwrites the first: adding to the first would be lost."""
    tree.write(DEFAULTS, bf.default_grub() + 'GRUB_CMDLINE_LINUX="console=ttyS0"\n')
    apply_plan(GrubDefaults(tree.root).plan_edit(set_crashkernel("256M")))
    assert bf.sourced_args(tree.root) == ("console=ttyS0 crashkernel=256M", "quiet")


def test_a_dropin_that_sets_grub_cmdline_linux_gets_a_new_argument(tree):
    loader = debian(tree, dropins={"50-console.cfg": 'GRUB_CMDLINE_LINUX="console=ttyS0"\n'})
    apply_plan(loader.plan_edit(set_crashkernel("256M")))
    assert bf.sourced_args(tree.root) == ("console=ttyS0 crashkernel=256M", "quiet")


LAYOUTS = {
    "debian": dict(),
    "missing": dict(linux=None),
    "unquoted-empty": dict(linux=""),
    "kdump-tools": dict(kdump=True),
    "everywhere": dict(linux='"crashkernel=auto ro"', linux_default='"quiet crashkernel=1G"', kdump=True),
    "duplicates": dict(linux='"crashkernel=1 a crashkernel=2"', linux_default="'crashkernel=3 b'"),
    "console-dropin": dict(dropins={"40-a.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX console=ttyS0"\n',
                                    "60-b.cfg": 'GRUB_CMDLINE_LINUX_DEFAULT="${GRUB_CMDLINE_LINUX_DEFAULT} x"\n'}),
}
EDITS = {"set": set_crashkernel("256M"), "range": set_crashkernel("1G-4G:192M,4G-64G:256M,64G-:512M"),
         "remove": set_crashkernel(None)}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_plan_is_effective_and_idempotent(tree, layout, edit):
    loader = debian(tree, **LAYOUTS[layout])
    edit = EDITS[edit]
    before = bf.effective_args(tree.root)
    apply_plan(loader.plan_edit(edit))
    after = bf.effective_args(tree.root)
    # the effective command line is the edit of the old one: one crashkernel= (or none), the rest as it was
    assert sorted(cmdline_args.split(after)) == sorted(cmdline_args.split(edit(before)))
    assert loader.configured_args() == after
    assert loader.plan_edit(edit) == []


def test_no_change_when_already_set(tree):
    loader = debian(tree, kdump=True)
    assert loader.plan_edit(set_crashkernel("384M-:128M")) == []


@pytest.mark.parametrize("raw", [
    '"`cat /etc/kernel-args`"',
    '"$(cat /etc/kernel-args) quiet"',
    '$(cat /etc/kernel-args)',
    '"quiet',
    "'quiet",
    '"quiet" # comment',
    '"quiet \\"x\\""',
    'quiet;reboot',
    '"a"b"',
])
def test_unsafe_assignments_are_refused_and_nothing_is_written(tree, raw):
    loader = debian(tree, linux=raw, kdump=True)
    before = tree.snapshot()
    with pytest.raises(KexecError) as caught:
        changes = loader.plan_edit(set_crashkernel("256M"))
        loader.apply(changes, set_crashkernel("256M"))
    assert "%s line 10:" % tree.path(DEFAULTS) in caught.value.msg
    assert tree.snapshot() == before


def test_unsafe_assignment_in_a_dropin_names_that_file(tree):
    loader = debian(tree, dropins={"99-local.cfg": '# local\n\nGRUB_CMDLINE_LINUX_DEFAULT="`hostname`"\n'})
    with pytest.raises(KexecError, match=re.escape(tree.path("etc/default/grub.d/99-local.cfg")) + " line 3"):
        loader.plan_edit(set_crashkernel(None))


def test_a_value_that_cannot_be_quoted_is_refused(tree):
    """A double quote inside "..." would end the string: the shell would run what follows."""
    loader = debian(tree)
    before = tree.snapshot()
    with pytest.raises(KexecError, match=re.escape(tree.path(DEFAULTS)) + " line 10"):
        loader.plan_edit(ArgEdit(append=['dyndbg="file x +p"']))
    assert tree.snapshot() == before


def test_single_quotes_can_hold_a_quoted_argument(tree):
    loader = debian(tree, linux="'quiet'")
    apply_plan(loader.plan_edit(ArgEdit(append=['dyndbg="file x +p"'])))
    assert bf.sourced_args(tree.root)[0] == 'quiet dyndbg="file x +p"'


def test_missing_defaults_is_a_clear_error(tree):
    loader = GrubDefaults(tree.root)
    with pytest.raises(KexecError, match=r"^/etc/default/grub does not exist: .*bootloader explicitly"):
        loader.plan_edit(set_crashkernel("256M"))


def test_missing_defaults_with_a_dropin_is_still_an_error(tree):
    tree.write(KDUMP, bf.KDUMP_TOOLS_CFG)
    with pytest.raises(KexecError, match="/etc/default/grub does not exist"):
        GrubDefaults(tree.root).plan_edit(set_crashkernel("256M"))


# --- needs_regenerate ------------------------------------------------------------


def test_needs_regenerate_when_grub_cfg_lacks_the_argument(tree):
    loader = debian(tree)
    tree.write(CFG, bf.grub_cfg_with_args("quiet"))
    assert loader.needs_regenerate(set_crashkernel("256M"))
    assert not loader.needs_regenerate(set_crashkernel(None))


def test_no_regenerate_when_grub_cfg_has_it(tree):
    loader = debian(tree)
    tree.write(CFG, bf.grub_cfg_with_args("crashkernel=256M quiet"))
    assert not loader.needs_regenerate(set_crashkernel("256M"))
    assert loader.needs_regenerate(set_crashkernel("512M"))
    assert loader.needs_regenerate(set_crashkernel(None))


@pytest.mark.parametrize("default", ["0", "1>0", "1>1", "1>2", "1>3", "uefi-firmware"],
                         ids=["simple", "advanced", "recovery", "old-kernel", "old-recovery", "not-linux"])
def test_needs_regenerate_whatever_entry_is_default(tree, default):
    """Recovery entries lack GRUB_CMDLINE_LINUX_DEFAULT, another entry may be default: the generated
    normal entry decides, so an up-to-date grub.cfg is never regenerated again (changed: false)."""
    loader = debian(tree, linux_default='"quiet crashkernel=256M"')
    tree.write(CFG, bf.grub_cfg_with_args("quiet crashkernel=256M", default=default))
    assert not loader.needs_regenerate(set_crashkernel("256M"))
    tree.write(CFG, bf.grub_cfg_with_args("quiet", default=default))
    assert loader.needs_regenerate(set_crashkernel("256M"))


def test_no_regenerate_judged_without_linux_entries(tree):
    """A BLS grub.cfg (blscfg) has no linux lines to compare: never a change on every run."""
    loader = debian(tree)
    tree.write(CFG, "set default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n")
    assert not loader.needs_regenerate(set_crashkernel("256M"))


def test_needs_regenerate_without_grub_cfg(tree):
    assert debian(tree).needs_regenerate(set_crashkernel(None))


# --- regenerate through apply -------------------------------------------------------


def runner_for(tree, check_ok=True, mkconfig_rc=0):
    return bf.grub_tools(tree.root, check_ok=check_ok, mkconfig_rc=mkconfig_rc)


def test_apply_regenerates_through_a_checked_new_file(tree, which):
    debian(tree)
    old_cfg = bf.grub_cfg_with_args("quiet")
    tree.write(CFG, old_cfg)
    checked = []
    check = bf.fake_grub_script_check()
    runner = bf.FakeTools(grub_mkconfig=bf.fake_grub_mkconfig(tree.root),
                          grub_script_check=lambda argv: checked.append(os.stat(argv[1]).st_ino) or check(argv))
    loader = GrubDefaults(tree.root, runner=runner)
    edit = set_crashkernel("256M")
    assert loader.needs_regenerate(edit)
    backups = loader.apply(loader.plan_edit(edit), edit)
    new = tree.path(CFG) + ".new"
    assert runner.calls == [["grub-mkconfig", "-o", new], ["grub-script-check", new]]
    assert not os.path.exists(new)
    assert checked == [os.stat(tree.path(CFG)).st_ino]  # the checked file was renamed into place, as is
    assert not loader.needs_regenerate(edit)
    assert "root=UUID=%s ro crashkernel=256M quiet\n" % fakes.ROOT_UUID in tree.read(CFG)
    cfg_backups = [n for n in os.listdir(tree.path("boot/grub")) if n.startswith("grub.cfg.")]
    assert len(cfg_backups) == 1 and cfg_backups[0].endswith(".kexec-bak")
    assert tree.read("boot/grub/" + cfg_backups[0]) == old_cfg
    # the grub.cfg copy is one of the edit's backups: returned, bounded and restored with the rest
    assert sorted(backups) == sorted([tree.path(DEFAULTS), tree.path(CFG)])
    assert backups[tree.path(CFG)] == tree.path("boot/grub/" + cfg_backups[0])
    assert loader.plan_edit(edit) == []


@pytest.mark.parametrize("backup", [True, False])
def test_the_grub_cfg_copy_follows_backup_and_is_bounded(tree, which, backup):
    """grub.cfg in /boot is the file whose copies would fill it: kept only with backup, and then at most
    KEEP_BACKUPS of the collection's own; without backup none is left."""
    debian(tree)
    tree.write(CFG, bf.grub_cfg_with_args("quiet"))
    cfg = tree.path(CFG)
    old = [tree.write("%s.202401%02dT000000.kexec-bak" % (CFG, day), "old %d\n" % day) for day in range(1, 8)]
    mine = tree.write("boot/grub/grub.cfg.bak", "a user's copy\n")
    loader = GrubDefaults(tree.root, runner=runner_for(tree))
    edit = set_crashkernel("256M")
    kept = loader.apply(loader.plan_edit(edit), edit, backup=backup)
    if backup:
        assert base.own_backups(cfg) == old[-(base.KEEP_BACKUPS - 1):] + [kept[cfg]]
        assert set(kept) == {cfg, tree.path(DEFAULTS)}
    else:
        assert kept == {} and base.own_backups(cfg) == old  # earlier backups are not this edit's to prune
        assert base.own_backups(tree.path(DEFAULTS)) == []
    assert os.path.exists(mine)


def test_regenerate_keeps_a_symlinked_grub_cfg_and_its_mode(tree, which):
    """boot/grub/grub.cfg -> ../efi/grub.cfg: the link stays, its target is replaced with the old mode."""
    debian(tree)
    tree.write("boot/efi/grub.cfg", bf.grub_cfg_with_args("quiet"))
    os.chmod(tree.path("boot/efi/grub.cfg"), 0o400)
    os.makedirs(tree.path("boot/grub"))
    os.symlink("../efi/grub.cfg", tree.path(CFG))
    runner = runner_for(tree)
    loader = GrubDefaults(tree.root, runner=runner)
    edit = set_crashkernel("256M")
    loader.apply(loader.plan_edit(edit), edit)
    assert runner.calls[0] == ["grub-mkconfig", "-o", tree.path("boot/efi/grub.cfg.new")]
    assert os.path.islink(tree.path(CFG)) and os.readlink(tree.path(CFG)) == "../efi/grub.cfg"
    assert "ro crashkernel=256M quiet\n" in tree.read("boot/efi/grub.cfg")
    assert os.stat(tree.path("boot/efi/grub.cfg")).st_mode & 0o7777 == 0o400


def test_regenerate_creates_a_missing_grub_cfg(tree, which):
    debian(tree, kdump=True)
    loader = GrubDefaults(tree.root, runner=runner_for(tree))
    loader.regenerate(set_crashkernel(None))
    assert os.listdir(tree.path("boot/grub")) == ["grub.cfg"]
    assert "crashkernel=384M-:128M" in tree.read(CFG)


def test_regenerate_uses_grub2_tools_and_grub2_cfg(tree, which, monkeypatch):
    which.clear()
    which.update({"grub2-mkconfig", "grub2-script-check"})
    debian(tree)
    tree.write("boot/grub2/grub.cfg", bf.grub_cfg_with_args("quiet"))
    runner = bf.FakeTools(grub2_mkconfig=bf.fake_grub_mkconfig(tree.root),
                          grub2_script_check=bf.fake_grub_script_check())
    GrubDefaults(tree.root, runner=runner).regenerate(set_crashkernel(None))
    new = tree.path("boot/grub2/grub.cfg.new")
    assert runner.calls == [["grub2-mkconfig", "-o", new], ["grub2-script-check", new]]
    assert not os.path.exists(tree.path(CFG))


def test_script_check_failure_leaves_grub_cfg_and_restores_the_defaults(tree, which):
    debian(tree, kdump=True)
    tree.write(CFG, bf.grub_cfg_with_args("quiet crashkernel=384M-:128M"))
    before = tree.snapshot()
    runner = runner_for(tree, check_ok=False)
    loader = GrubDefaults(tree.root, runner=runner)
    edit = set_crashkernel("256M")
    with pytest.raises(KexecError) as caught:
        loader.apply(loader.plan_edit(edit), edit)
    new = tree.path(CFG) + ".new"
    assert runner.calls == [["grub-mkconfig", "-o", new], ["grub-script-check", new]]
    assert "checking the new grub.cfg failed (grub-script-check %s, rc=1)" % new in caught.value.msg
    assert "syntax error" in caught.value.msg
    after = tree.snapshot()
    backups = [name for name in after if name.endswith(".kexec-bak")]
    assert [os.path.dirname(name) for name in backups] == ["etc/default/grub.d"]
    assert dict((k, v) for k, v in after.items() if k not in backups) == before
    assert loader.plan_edit(edit)  # still to do


def test_mkconfig_failure_removes_its_half_written_file(tree, which):
    debian(tree)
    tree.write(CFG, bf.grub_cfg_with_args("quiet"))
    before = tree.snapshot()
    runner = runner_for(tree, mkconfig_rc=1)
    loader = GrubDefaults(tree.root, runner=runner)
    with pytest.raises(KexecError, match=r"generating the GRUB configuration failed .*rc=1\): mkconfig: error"):
        loader.apply(loader.plan_edit(set_crashkernel("256M")), set_crashkernel("256M"))
    assert runner.names() == ["grub-mkconfig"]
    after = tree.snapshot()
    assert dict((k, v) for k, v in after.items() if not k.endswith(".kexec-bak")) == before


def test_missing_tools_is_a_clear_error_and_restores(tree, which):
    which.clear()
    debian(tree)
    before = tree.read(DEFAULTS)
    loader = GrubDefaults(tree.root, runner=runner_for(tree))
    with pytest.raises(KexecError, match="none of grub-mkconfig, grub2-mkconfig is installed"):
        loader.apply(loader.plan_edit(set_crashkernel("256M")), set_crashkernel("256M"))
    assert tree.read(DEFAULTS) == before
    assert loader.runner.calls == []


def test_shutil_which_is_what_finds_the_tools(tree, monkeypatch):
    seen = []
    monkeypatch.setattr(grub_module.shutil, "which", lambda name: seen.append(name) or None)
    with pytest.raises(KexecError):
        GrubDefaults(tree.root)._tool("grub-mkconfig", "grub2-mkconfig")
    assert seen == ["grub-mkconfig", "grub2-mkconfig"]


# --- /etc/default/grub that is no text file: one error, nothing written ---------------------------------


@pytest.mark.parametrize("data, error", [
    (b'GRUB_CMDLINE_LINUX=""\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n# caf\xe9\n', r"is not UTF-8 text \(byte \d+\)"),
    (b'GRUB_CMDLINE_LINUX="\0"\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n', "holds a NUL byte: it is not a text file"),
], ids=["latin-1", "nul"])
def test_defaults_that_are_not_text_are_one_error_and_nothing_is_written(tree, data, error):
    loader = debian(tree)
    tree.write(DEFAULTS, data)
    before = tree.snapshot()
    with pytest.raises(KexecError, match="^%s %s$" % (tree.path(DEFAULTS), error)):
        loader.plan_edit(set_crashkernel("256M"))
    assert tree.snapshot() == before
