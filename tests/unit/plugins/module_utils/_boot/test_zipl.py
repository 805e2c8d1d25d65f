"""bootloader.zipl: the parameters of /etc/zipl.conf's boot sections, then zipl."""

import os
import re

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot.base import set_crashkernel
from ansible_collections.kernel.kexec.plugins.module_utils._boot.zipl import Zipl
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError

from ...fakes import bootloader as bf
from ...fakes import host as fakes

CONF = "etc/zipl.conf"
SET = set_crashkernel("256M")
REMOVE = set_crashkernel(None)
SET_PARAMS = bf.ZIPL_PARAMS.replace("crashkernel=auto", "crashkernel=256M")
REMOVED_PARAMS = bf.ZIPL_PARAMS.replace(" crashkernel=auto", "")


def write_conf(tmp_path, text=bf.ZIPL_CONF):
    fakes.write_file(os.path.join(str(tmp_path), CONF), text)
    return os.path.join(str(tmp_path), CONF)


def read(path):
    with open(path) as handle:
        return handle.read()


def plan_text(loader, edit):
    changes = loader.plan_edit(edit)
    assert len(changes) <= 1
    return changes[0].after if changes else None


def test_detect(tmp_path):
    assert not Zipl.detect(str(tmp_path))
    write_conf(tmp_path)
    assert Zipl.detect(str(tmp_path))


def test_every_boot_section_is_edited_defaultboot_and_menu_are_not(tmp_path):
    write_conf(tmp_path)
    after = plan_text(Zipl(str(tmp_path)), SET)
    expected = bf.ZIPL_CONF.replace('\tparameters="%s"' % bf.ZIPL_PARAMS, '\tparameters="%s"' % SET_PARAMS)
    # the rescue section had no parameters: it gets a line right after its image=
    expected = expected.replace("\timage=/boot/vmlinuz-0-rescue-%s\n" % bf.MACHINE_ID,
                                '\timage=/boot/vmlinuz-0-rescue-%s\n\tparameters = "crashkernel=256M"\n'
                                % bf.MACHINE_ID)
    assert after == expected
    head, menu = after.split(":menu\n")
    assert "parameters" not in menu
    assert head.split("[linux]", maxsplit=1)[0] == bf.ZIPL_CONF.split("[linux]", maxsplit=1)[0]  # [defaultboot] untouched


def test_removal_leaves_sections_without_parameters_alone(tmp_path):
    write_conf(tmp_path)
    after = plan_text(Zipl(str(tmp_path)), REMOVE)
    assert after == bf.ZIPL_CONF.replace('"%s"' % bf.ZIPL_PARAMS, '"%s"' % REMOVED_PARAMS)


def test_menu_lines_do_not_belong_to_the_section_before_them(tmp_path):
    write_conf(tmp_path, bf.ZIPL_CONF.replace(":menu\n", ":menu\n\tparameters=\"not a boot section\"\n"))
    after = plan_text(Zipl(str(tmp_path)), SET)
    assert '\tparameters="not a boot section"\n' in after
    assert '\timage=/boot/vmlinuz-0-rescue-%s\n\tparameters = "crashkernel=256M"\n' % bf.MACHINE_ID in after


def test_spacing_and_indentation_are_kept(tmp_path):
    write_conf(tmp_path, "[defaultboot]\ndefault=linux\ntarget=/boot\n[linux]\n    image = /boot/vmlinuz\n"
                         "    parameters = \"root=/dev/dasda1 crashkernel=auto\"\n")
    assert plan_text(Zipl(str(tmp_path)), SET) == ("[defaultboot]\ndefault=linux\ntarget=/boot\n[linux]\n"
                                                   "    image = /boot/vmlinuz\n"
                                                   "    parameters = \"root=/dev/dasda1 crashkernel=256M\"\n")


@pytest.mark.parametrize("kernel", ["3.10.0-1127.el7.s390x", "/boot/vmlinuz-3.10.0-1127.el7.s390x",
                                    "vmlinuz-3.10.0-1127.el7.s390x"])
def test_kernel_filter(tmp_path, kernel):
    write_conf(tmp_path)
    after = plan_text(Zipl(str(tmp_path), kernel=kernel), SET)
    linux, old = after.split("[linux-old]")
    assert bf.ZIPL_PARAMS in linux and SET_PARAMS not in linux
    assert SET_PARAMS in old.split("[rescue]")[0]
    assert "parameters = " not in after  # the rescue section is not that kernel's


@pytest.mark.parametrize("kernel", ["3.10.0-11", "3.10.0-1127.el7", "1127"])
def test_kernel_filter_never_matches_part_of_a_release(tmp_path, kernel):
    write_conf(tmp_path)
    with pytest.raises(KexecError, match=r"^/etc/zipl.conf has no boot section for %s$" % re.escape(kernel)):
        Zipl(str(tmp_path), kernel=kernel).plan_edit(SET)


def test_kernel_all_is_every_section(tmp_path):
    write_conf(tmp_path)
    assert plan_text(Zipl(str(tmp_path), kernel="ALL"), SET) == plan_text(Zipl(str(tmp_path)), SET)


def test_kernel_filter_matching_nothing(tmp_path):
    write_conf(tmp_path)
    with pytest.raises(KexecError, match=r"^/etc/zipl.conf has no boot section for 4\.18\.0$"):
        Zipl(str(tmp_path), kernel="4.18.0").plan_edit(SET)


def test_no_boot_section(tmp_path):
    write_conf(tmp_path, "[defaultboot]\ndefaultmenu=menu\n:menu\ntarget=/boot\n1=linux\n")
    with pytest.raises(KexecError, match=r"^/etc/zipl.conf has no boot section$"):
        Zipl(str(tmp_path)).plan_edit(SET)


def test_missing_conf(tmp_path):
    with pytest.raises(KexecError, match=r"^/etc/zipl.conf does not exist$"):
        Zipl(str(tmp_path)).plan_edit(SET)


def test_idempotent(tmp_path):
    path = write_conf(tmp_path)
    loader = Zipl(str(tmp_path))
    for edit in (SET, set_crashkernel("1G-4G:192M,4G-64G:256M"), REMOVE):
        (change,) = loader.plan_edit(edit)
        fakes.write_file(path, change.after)
        assert loader.plan_edit(edit) == []


def test_configured_args_of_the_first_boot_section(tmp_path):
    write_conf(tmp_path)
    assert Zipl(str(tmp_path)).configured_args() == bf.ZIPL_PARAMS
    assert Zipl(str(tmp_path), kernel="0-rescue").configured_args() == ""


def test_apply_runs_zipl_after_the_write(tmp_path):
    path = write_conf(tmp_path)
    seen = []
    runner = bf.FakeTools(zipl=lambda argv: seen.append(read(path)) or bf.fake_zipl()(argv))
    loader = Zipl(str(tmp_path), runner=runner)
    changes = loader.plan_edit(SET)
    backups = loader.apply(changes, SET)
    assert runner.calls == [["zipl"]]
    assert seen == [changes[0].after] == [read(path)]
    assert read(backups[path]) == bf.ZIPL_CONF


def test_zipl_failing_restores_the_file(tmp_path):
    path = write_conf(tmp_path)
    os.chmod(path, 0o640)  # not mkstemp's 0600: a lost mode must show
    runner = bf.FakeTools(zipl=bf.fake_zipl(rc=1))
    loader = Zipl(str(tmp_path), runner=runner)
    with pytest.raises(KexecError) as caught:
        loader.apply(loader.plan_edit(SET), SET)
    assert caught.value.msg.startswith("zipl (writing the boot record) failed (zipl, rc=1): Error: Could not open")
    assert read(path) == bf.ZIPL_CONF
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert runner.calls == [["zipl"]]
