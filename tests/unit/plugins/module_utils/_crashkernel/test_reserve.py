"""reserve: kdump_reserve's logic on a fake Debian host (GRUB defaults, fake grub-mkconfig).

The host is fakes.fake_host: /proc/cmdline has crashkernel=384M-:128M, /proc/iomem shows
two Crash kernel regions (128M + 16M) and System RAM just under 8G (8G once the kernel
rounds it up to 128M). /etc/default/grub is Debian's, without crashkernel=.
"""

import errno
import os

import pytest

from ansible_collections.kernel.kexec.plugins.module_utils._boot import base
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel import reserve
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.auto import auto_size
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.kernel import (
    round_system_ram, system_ram_from_iomem,
)
from ansible_collections.kernel.kexec.plugins.module_utils._crashkernel.value import parse, reserved_bytes
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError
from ansible_collections.kernel.kexec.plugins.module_utils._host.state import KernelState

from ...fakes import bootloader as bf
from ...fakes import host as fakes

MIB = 1 << 20
GIB = 1 << 30
DEFAULTS = "etc/default/grub"
CFG = "boot/grub/grub.cfg"
RAM = 8 * GIB - 549888  # the System RAM lines of fakes.IOMEM, added up by hand
CRASH_SIZE = 0x9000000  # fake_host's kexec_crash_size: 144M
IOMEM_HIDDEN = "".join("%s-%s : %s\n" % ("0" * 8, "0" * 8, line.partition(" : ")[2])
                       for line in fakes.IOMEM.splitlines())


def iomem_with_ram(size):
    return "00000000-00000fff : Reserved\n00001000-%08x : System RAM\n" % (size + 0xfff)


@pytest.fixture
def debian(host):
    """fake_host plus Debian's /etc/default/grub (no crashkernel=); grub.cfg boots with 'quiet'."""
    host.write(DEFAULTS, bf.default_grub())
    return host


@pytest.fixture
def tools(debian, which):
    return bf.grub_tools(debian.root)


def ensure(host, tools, **kwargs):
    kwargs.setdefault("machine", "x86_64")
    return reserve.ensure_reservation(root=host.root, runner=tools, **kwargs)


def generated(host):
    new = host.path(CFG) + ".new"
    return [["grub-mkconfig", "-o", new], ["grub-script-check", new]]


def without_backups(snapshot):
    return dict((path, data) for path, data in snapshot.items() if not path.endswith(".kexec-bak"))


def test_the_fake_ram_is_what_the_tests_assume():
    assert system_ram_from_iomem(fakes.IOMEM) == RAM
    assert round_system_ram(RAM) == 8 * GIB


# --- present with an explicit size -----------------------------------------------------------


def test_present_edits_the_defaults_regenerates_and_reports(debian, tools):
    old_defaults = debian.read(DEFAULTS)
    old_cfg = debian.read(CFG)
    result = ensure(debian, tools, size="256M", backup=True)

    assert tools.calls == generated(debian)
    assert not debian.exists(CFG + ".new")
    new_defaults = debian.read(DEFAULTS)
    assert new_defaults == old_defaults.replace('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="crashkernel=256M"')
    assert bf.effective_args(debian.root) == "crashkernel=256M quiet"  # as sh reads the file
    assert "root=UUID=%s ro crashkernel=256M quiet\n" % fakes.ROOT_UUID in debian.read(CFG)

    assert result["changed"] is True
    assert result["bootloader"] == "grub"
    assert result["crashkernel"] == "256M"
    assert result["active"] == "384M-:128M"
    assert result["reserved"] == 144 * MIB  # the two Crash kernel regions of /proc/iomem
    assert result["expected"] == 256 * MIB
    assert result["system_ram"] == RAM
    assert result["reboot_required"] is True
    assert result["changed_files"] == [debian.path(DEFAULTS)]
    assert "explanation" not in result

    backup = result["backup_files"][debian.path(DEFAULTS)]
    assert backup.startswith(debian.path(DEFAULTS) + ".") and backup.endswith(".kexec-bak")
    with open(backup) as handle:
        assert handle.read() == old_defaults
    cfg_backups = [name for name in os.listdir(debian.path("boot/grub")) if name.startswith("grub.cfg.")]
    assert len(cfg_backups) == 1
    assert debian.read("boot/grub/" + cfg_backups[0]) == old_cfg
    assert result["backup_files"] == {debian.path(DEFAULTS): backup, debian.path(CFG): debian.path("boot/grub/" + cfg_backups[0])}
    assert result["backups"] == sorted(result["backup_files"].values())

    assert result["diff"] == [{"before": old_defaults, "after": new_defaults,
                               "before_header": "/etc/default/grub", "after_header": "/etc/default/grub"}]


def test_second_run_changes_nothing(debian, tools):
    ensure(debian, tools, size="256M")
    before = debian.snapshot()
    calls = len(tools.calls)
    result = ensure(debian, tools, size="256M")
    assert result["changed"] is False
    assert len(tools.calls) == calls  # no generator
    assert debian.snapshot() == before
    assert (result["changed_files"], result["backups"], result["diff"]) == ([], [], [])
    assert (result["crashkernel"], result["expected"], result["reboot_required"]) == ("256M", 256 * MIB, True)


@pytest.mark.parametrize("default", ["0", "1>1", "1>3", "uefi-firmware"],
                         ids=["newest", "recovery", "old-recovery", "not-linux"])
def test_an_unchanged_host_is_no_change_whatever_entry_is_default(debian, tools, default):
    debian.write(DEFAULTS, bf.default_grub(linux_default='"quiet crashkernel=256M"'))
    debian.write(CFG, bf.grub_cfg_with_args("quiet crashkernel=256M", default=default))
    before = debian.snapshot()
    result = ensure(debian, tools, size="256M")
    assert (result["changed"], result["changed_files"], tools.calls) == (False, [], [])
    assert debian.snapshot() == before


def test_the_same_value_in_another_spelling_is_no_change(debian, tools):
    ensure(debian, tools, size="256M")
    calls = len(tools.calls)
    result = ensure(debian, tools, size="crashkernel=262144K")
    assert (result["changed"], result["crashkernel"], len(tools.calls)) == (False, "256M", calls)


def test_a_new_size_replaces_the_old_one(debian, tools):
    ensure(debian, tools, size="256M")
    result = ensure(debian, tools, size="512M")
    assert result["changed"] is True
    assert bf.effective_args(debian.root) == "crashkernel=512M quiet"
    assert (result["crashkernel"], result["expected"]) == ("512M", 512 * MIB)
    assert "crashkernel=512M quiet\n" in debian.read(CFG) and "crashkernel=256M" not in debian.read(CFG)


def test_no_reboot_required_when_the_running_kernel_has_it(debian, tools):
    result = ensure(debian, tools, size="384M-:128M")
    assert result["changed"] is True
    assert (result["crashkernel"], result["active"], result["reboot_required"]) == ("384M-:128M", "384M-:128M", False)
    assert result["expected"] == 128 * MIB


@pytest.mark.parametrize("size, expected", [
    # the kernel matches ranges against the RAM rounded up to 128M: 8G, not the 8G - 537K there is
    ("0-8G:128M,8G-:384M", 384 * MIB),
    ("2G-64G:256M,64G-:512M", 256 * MIB),
    ("1G,high", GIB + 256 * MIB),  # plus x86_64's default low part
    ("256M@16M", 256 * MIB),
])
def test_expected_is_the_kernels_arithmetic_on_the_fake_ram(debian, tools, size, expected):
    assert ensure(debian, tools, size=size)["expected"] == expected


def test_a_high_value_is_reported_as_configured(debian, tools):
    # last_crashkernel() without a suffix skips ',high' tokens; the value must still be reported
    result = ensure(debian, tools, size="1G,high")
    assert bf.effective_args(debian.root) == "crashkernel=1G,high quiet"
    assert (result["crashkernel"], result["expected"], result["reboot_required"]) == ("1G,high", GIB + 256 * MIB, True)
    again = ensure(debian, tools, size="1G,high")
    assert (again["changed"], again["crashkernel"]) == (False, "1G,high")


def test_a_high_value_the_kernel_booted_with_needs_no_reboot(debian, tools):
    debian.write("proc/cmdline", fakes.CMDLINE.replace("crashkernel=384M-:128M", "crashkernel=1G,high") + "\n")
    result = ensure(debian, tools, size="1G,high")
    assert (result["active"], result["reboot_required"]) == ("1G,high", False)


def test_a_plain_value_wins_over_high_as_in_the_kernel(debian, tools):
    debian.write("proc/cmdline", "ro crashkernel=256M crashkernel=1G,high\n")
    result = ensure(debian, tools, size="256M")
    assert (result["active"], result["reboot_required"]) == ("256M", False)


def test_a_forced_lone_low_value_is_reported_and_reserves_nothing(debian, tools):
    result = ensure(debian, tools, size="256M,low", force=True)
    assert (result["crashkernel"], result["expected"]) == ("256M,low", 0)


def test_explicit_size_works_without_root(debian, tools):
    debian.write("proc/iomem", IOMEM_HIDDEN)
    debian.set_sys("sys/kernel/kexec_crash_size", 64 * MIB)
    result = ensure(debian, tools, size="256M")
    assert (result["changed"], result["crashkernel"]) == (True, "256M")
    assert (result["system_ram"], result["expected"]) == (None, 0)
    assert result["reserved"] == 64 * MIB  # from kexec_crash_size when iomem hides addresses
    # the RAM is unknown, so the size could not be checked against it: said, not hidden
    assert result["warnings"] == ["crashkernel=256M was not checked against this host's RAM: /proc/iomem shows its "
                                  "addresses to root only (use become: true)"]


# --- values that reserve nothing here, or leave too little: refused unless forced -------------
# The fake RAM: System RAM 0x1000-0x9fbff, 0x100000-0xbffdafff (about 3G) and 4G-9G (5G); 8G - 537K
# in all (RAM), 8G as the kernel compares it for ranges (rounded up to 128M).

REFUSED = [
    pytest.param("256M,low", None, "',low' alone reserves nothing", id="lone-low"),
    pytest.param("64M,cma", None, "',cma' alone reserves nothing", id="lone-cma"),
    pytest.param("16G-:512M", None, "matches no range for %d bytes (8.00G) of RAM (the kernel compares 8G)" % RAM,
                 id="no-range-matches"),
    # 8G - 537K rounds up to 8G, and an end is excluded: the kernel's round-up decides, not the raw RAM
    pytest.param("0-4G:128M,4G-8G:256M", None, "matches no range", id="no-range-after-round-up"),
    pytest.param("2G-:9G", None, "crashkernel: invalid size", id="range-size-not-below-ram"),
    pytest.param("8G", None, "asks for 8G, not less than the host's %d bytes (8.00G) of RAM" % RAM,
                 id="size-not-below-ram"),
    pytest.param("6G", None, "no System RAM range of /proc/iomem holds 6G in one piece (the largest is 5G)",
                 id="no-piece-of-ram-holds-it"),
    pytest.param("256M@16G", None, "[0x400000000, 0x410000000) (256M at @16G) is not inside one System RAM range",
                 id="offset-beyond-ram"),
    pytest.param("512M@2816M", None, "(512M at @2816M) is not inside one System RAM range", id="offset-across-a-hole"),
    pytest.param("768M", GIB, "it reserves 768M on this host's 1G of RAM and leaves 256M, "
                 "less than the 512M", id="leaves-too-little"),
    pytest.param("384M-:128M", 512 * MIB, "leaves 384M, less than the 512M", id="debian-default-on-512M"),
    pytest.param("0-2G:600M", GIB, "leaves 424M", id="range-leaves-too-little"),
    pytest.param("513M", GIB, "leaves 511M", id="one-mib-below-the-floor"),
]


def refused(host, tools, size, ram, check_mode):
    if ram is not None:
        host.write("proc/iomem", iomem_with_ram(ram))
    before = host.snapshot()
    with pytest.raises(KexecError) as caught:
        ensure(host, tools, size=size, check_mode=check_mode)
    assert host.snapshot() == before
    assert tools.calls == []
    return caught.value


@pytest.mark.parametrize("size, ram, words", REFUSED)
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_value_that_reserves_nothing_or_too_much_is_refused(debian, tools, size, ram, words, check_mode):
    error = refused(debian, tools, size, ram, check_mode)
    assert error.msg.startswith("crashkernel=%s refused, nothing was changed: " % size)
    assert words in error.msg
    assert error.msg.endswith("give another size, or force: true to write it anyway")
    assert error.extra["crashkernel"] == size


def test_the_refusal_comes_before_the_bootloader_is_looked_at(debian, tools, monkeypatch):
    def no_bootloader(*args, **kwargs):
        raise AssertionError("the bootloader was looked at")
    monkeypatch.setattr(reserve.detect, "create", no_bootloader)
    with pytest.raises(KexecError, match="matches no range"):
        ensure(debian, tools, size="16G-:512M")


def test_the_refusal_says_what_the_kernel_computes(debian, tools):
    computed = refused(debian, tools, "16G-:512M", None, False).extra["computed"]
    assert (computed["present"], computed["kind"], computed["size"]) == (True, "plain", 0)
    assert (computed["system_ram"], computed["compared_ram"]) == (RAM, 8 * GIB)
    assert "matches no range" in computed["error"]
    # a size the kernel parses and accepts, but cannot place: the size is the kernel's, the failure ours
    computed = refused(debian, tools, "6G", None, False).extra["computed"]
    assert (computed["size"], computed["error"]) == (6 * GIB, None)
    computed = refused(debian, tools, "256M,low", None, False).extra["computed"]
    assert (computed["present"], computed["size"], computed["low"]) == (False, 0, 0)


@pytest.mark.parametrize("size, ram, expected", [
    ("512M", GIB, 512 * MIB),  # leaves exactly the floor
    ("256M@1G", None, 256 * MIB),  # inside the 3G piece
    ("4G,high", None, 4 * GIB + 256 * MIB),  # the high part fits the 5G piece, the low part below 4G
    ("5G", None, 5 * GIB),  # exactly the largest piece, 16M aligned
    ("0-4G:128M,4G-8G:256M,8G-:384M", None, 384 * MIB),
])
def test_a_value_that_fits_is_written_without_warning(debian, tools, size, ram, expected):
    if ram is not None:
        debian.write("proc/iomem", iomem_with_ram(ram))
    result = ensure(debian, tools, size=size)
    assert (result["changed"], result["crashkernel"], result["expected"]) == (True, size, expected)
    assert "warnings" not in result


@pytest.mark.parametrize("size, ram, words", REFUSED)
@pytest.mark.parametrize("check_mode", [False, True])
def test_force_writes_it_anyway_with_a_warning(debian, tools, size, ram, words, check_mode):
    if ram is not None:
        debian.write("proc/iomem", iomem_with_ram(ram))
    before = debian.snapshot()
    result = ensure(debian, tools, size=size, force=True, check_mode=check_mode)
    assert (result["changed"], result["crashkernel"]) == (True, size)
    [warning] = result["warnings"]
    assert warning.startswith("force: true writes it anyway: ") and words in warning
    if check_mode:
        assert debian.snapshot() == before and tools.calls == []
    else:
        assert bf.effective_args(debian.root) == "crashkernel=%s quiet" % size


def test_a_lone_low_value_is_refused_without_root_too(debian, tools):
    # it reserves nothing whatever the RAM, so the hidden RAM does not matter
    debian.write("proc/iomem", IOMEM_HIDDEN)
    with pytest.raises(KexecError, match="',low' alone reserves nothing"):
        ensure(debian, tools, size="256M,low", check_mode=True)
    assert tools.calls == []


def test_auto_is_refused_where_even_the_small_host_row_leaves_too_little(debian, tools):
    debian.write("proc/iomem", iomem_with_ram(600 * MIB))  # 0-2G:192M leaves 408M
    with pytest.raises(KexecError, match=r"crashkernel=0-2G:192M,2G-64G:256M,64G-:512M refused.*leaves 408M"):
        ensure(debian, tools, size="auto")
    assert tools.calls == []


def test_absent_is_never_refused(debian, tools):
    debian.write("proc/iomem", iomem_with_ram(GIB))
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=768M"'))
    result = ensure(debian, tools, state="absent", size="768M")
    assert (result["changed"], result["crashkernel"]) == (True, None)
    assert "warnings" not in result


# --- size: auto ------------------------------------------------------------------------------


@pytest.mark.parametrize("machine, iomem, value, reserves", [
    ("x86_64", fakes.IOMEM, "2G-64G:256M,64G-:512M", "256M"),
    ("aarch64", fakes.IOMEM, "2G-4G:256M,4G-64G:320M,64G-:576M", "320M"),
    ("x86_64", iomem_with_ram(GIB), "0-2G:192M,2G-64G:256M,64G-:512M", "192M"),
])
def test_auto_uses_auto_size_for_the_fake_ram(debian, tools, machine, iomem, value, reserves):
    debian.write("proc/iomem", iomem)
    ram = system_ram_from_iomem(iomem)
    result = ensure(debian, tools, size="auto", machine=machine)
    assert (result["crashkernel"], result["explanation"]) == auto_size(machine, ram)
    assert result["crashkernel"] == value
    assert "it reserves %s" % reserves in result["explanation"]
    assert result["expected"] == reserved_bytes(value, ram) > 0
    assert bf.effective_args(debian.root) == "crashkernel=%s quiet" % value


def test_auto_is_the_default(debian, tools):
    result = ensure(debian, tools)
    assert result["crashkernel"] == "2G-64G:256M,64G-:512M" and "explanation" in result


def test_auto_without_root_visible_iomem_asks_for_become(debian, tools):
    debian.write("proc/iomem", IOMEM_HIDDEN)
    before = debian.snapshot()
    with pytest.raises(KexecError, match=r"size: auto needs the host's RAM from /proc/iomem.*become: true"):
        ensure(debian, tools, size="auto")
    assert debian.snapshot() == before
    assert tools.calls == []


def test_no_explanation_for_absent(debian, tools):
    assert "explanation" not in ensure(debian, tools, state="absent")


# --- malformed sizes -----------------------------------------------------------------------


@pytest.mark.parametrize("size, problem", [
    ("256Q", "crashkernel=256Q: unknown size suffix 'Q' at position 3"),
    ("1.5G", "unexpected '.' at position 1"),
    ("2G-1G:256M", "range end 1G is not above its start 2G"),
    ("0256M", "starts with 0, which makes the kernel read it as octal"),
    ("256M@", "offset after '@' expected at position 5"),
    ("256M@1M", "offset 1M is not a multiple of 16M"),
    ("auto,high", "size expected, found 'a'"),
    ("", "size expected at position 0"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_malformed_size_names_the_problem_and_writes_nothing(debian, tools, size, problem, check_mode):
    before = debian.snapshot()
    with pytest.raises(KexecError) as caught:
        ensure(debian, tools, size=size, check_mode=check_mode)
    assert problem in caught.value.msg
    assert debian.snapshot() == before
    assert tools.calls == []


@pytest.mark.parametrize("options, problem", [
    (dict(size="256M", kernel=""), "kernel is an empty string: leave it out to change every boot entry"),
    (dict(size="256M", kernel="6.1.0-28-amd64\0"), "kernel holds a NUL byte"),
    (dict(size="256M\0"), "size holds a NUL byte"),
    (dict(size="256M", shrink_to="128M\0"), "shrink_to holds a NUL byte"),
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_empty_kernel_and_nul_bytes_are_refused(debian, tools, options, problem, check_mode):
    before = debian.snapshot()
    with pytest.raises(KexecError) as caught:
        ensure(debian, tools, check_mode=check_mode, **options)
    assert caught.value.msg == "kdump_reserve options refused (nothing was changed): %s" % problem
    assert debian.snapshot() == before and tools.calls == []


def test_high_on_an_arch_without_it_is_refused(debian, tools):
    with pytest.raises(KexecError, match="s390x reads no ',high' value"):
        ensure(debian, tools, size="1G,high", machine="s390x")
    assert tools.calls == []


# --- state: absent ---------------------------------------------------------------------------


def test_absent_removes_it_and_regenerates(debian, tools):
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    debian.write(CFG, bf.grub_cfg_with_args("crashkernel=256M quiet", "crashkernel=256M"))
    old = debian.read(DEFAULTS)
    result = ensure(debian, tools, state="absent", size="512M", backup=True)  # size is ignored
    assert tools.calls == generated(debian)
    assert bf.effective_args(debian.root) == "quiet"
    assert "crashkernel" not in debian.read(DEFAULTS)
    assert "crashkernel" not in debian.read(CFG)
    assert result["changed"] is True
    assert (result["crashkernel"], result["expected"]) == (None, 0)
    assert result["active"] == "384M-:128M"
    assert result["reboot_required"] is True  # the running kernel still has crashkernel=
    assert result["changed_files"] == [debian.path(DEFAULTS)]
    with open(result["backup_files"][debian.path(DEFAULTS)]) as handle:
        assert handle.read() == old

    again = ensure(debian, tools, state="absent")
    assert (again["changed"], len(tools.calls), again["reboot_required"]) == (False, 2, True)


def test_absent_takes_it_out_of_the_kdump_tools_dropin(debian, tools):
    debian.write("etc/default/grub.d/kdump-tools.cfg", bf.KDUMP_TOOLS_CFG)
    debian.write(CFG, bf.grub_cfg_with_args("quiet crashkernel=384M-:128M"))
    result = ensure(debian, tools, state="absent")
    assert result["changed_files"] == [debian.path("etc/default/grub.d/kdump-tools.cfg")]
    assert bf.effective_args(debian.root) == "quiet"
    assert "crashkernel" not in debian.read(CFG)


def test_absent_with_nothing_anywhere_is_no_change_and_no_reboot(debian, tools):
    debian.write("proc/cmdline", fakes.CMDLINE.replace(" crashkernel=384M-:128M", "") + "\n")
    before = debian.snapshot()
    result = ensure(debian, tools, state="absent")
    assert (result["changed"], result["crashkernel"], result["active"], result["reboot_required"]) == (
        False, None, None, False)
    assert tools.calls == [] and debian.snapshot() == before


# --- check mode ------------------------------------------------------------------------------


def test_check_mode_writes_nothing_but_reports_the_change(debian, tools):
    before = debian.snapshot()
    old = debian.read(DEFAULTS)
    result = ensure(debian, tools, size="256M", check_mode=True)
    assert debian.snapshot() == before
    assert tools.calls == []
    assert result["changed"] is True
    assert (result["crashkernel"], result["expected"], result["reboot_required"]) == ("256M", 256 * MIB, True)
    assert result["changed_files"] == [debian.path(DEFAULTS)]
    assert result["backups"] == []
    [diff] = result["diff"]
    assert diff["before"] == old
    assert diff["after"] == old.replace('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="crashkernel=256M"')
    assert diff["before_header"] == diff["after_header"] == "/etc/default/grub"


def test_check_mode_reports_what_a_real_run_does(debian, tools):
    planned = ensure(debian, tools, size="0-8G:128M,8G-:384M", check_mode=True)
    done = ensure(debian, tools, size="0-8G:128M,8G-:384M")
    for key in ("changed", "crashkernel", "expected", "reboot_required", "changed_files", "diff"):
        assert planned[key] == done[key], key


def test_check_mode_absent_reports_none_configured(debian, tools):
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    before = debian.snapshot()
    result = ensure(debian, tools, state="absent", check_mode=True)
    assert (result["changed"], result["crashkernel"], result["expected"]) == (True, None, 0)
    assert debian.snapshot() == before and tools.calls == []


# --- a missed update-grub --------------------------------------------------------------------


def test_needs_regenerate_when_only_grub_cfg_lags(debian, tools):
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    defaults = debian.read_bytes(DEFAULTS)
    result = ensure(debian, tools, size="256M")
    assert result["changed"] is True
    assert tools.calls == generated(debian)
    assert debian.read_bytes(DEFAULTS) == defaults
    assert (result["changed_files"], result["backups"], result["diff"]) == ([], [], [])
    assert "ro crashkernel=256M quiet\n" in debian.read(CFG)
    assert ensure(debian, tools, size="256M")["changed"] is False
    assert len(tools.calls) == 2


def test_needs_regenerate_in_check_mode_runs_nothing(debian, tools):
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    before = debian.snapshot()
    result = ensure(debian, tools, size="256M", check_mode=True)
    assert (result["changed"], result["crashkernel"]) == (True, "256M")
    assert tools.calls == [] and debian.snapshot() == before


# --- generator failure -----------------------------------------------------------------------


@pytest.mark.parametrize("failure, message, ran", [
    (dict(mkconfig_rc=1), r"generating the GRUB configuration failed .*rc=1\): mkconfig: error", 1),
    (dict(check_ok=False), r"checking the new grub.cfg failed .*syntax error", 2),
])
def test_generator_failure_restores_the_defaults(debian, which, failure, message, ran):
    tools = bf.grub_tools(debian.root, **failure)
    before = debian.snapshot()
    with pytest.raises(KexecError, match=message):
        ensure(debian, tools, size="256M")
    assert len(tools.calls) == ran
    after = debian.snapshot()
    assert after[DEFAULTS] == before[DEFAULTS]
    assert without_backups(after) == before  # grub.cfg untouched, no grub.cfg.new left
    assert ensure(debian, tools, size="256M", check_mode=True)["changed_files"] == [debian.path(DEFAULTS)]


def test_missing_grub_tools_restore_the_defaults(debian, which):
    which.clear()
    tools = bf.grub_tools(debian.root)
    before = debian.snapshot()
    with pytest.raises(KexecError, match="none of grub-mkconfig, grub2-mkconfig is installed"):
        ensure(debian, tools, size="256M")
    assert without_backups(debian.snapshot()) == before
    assert tools.calls == []


# --- expected_bytes --------------------------------------------------------------------------


def test_expected_reads_a_value_the_strict_parser_refuses_the_kernels_way():
    with pytest.raises(KexecError):
        parse("256M@")
    with pytest.raises(KexecError):
        parse("0256M")
    assert reserve.expected_bytes("256M@", RAM, "x86_64") == 256 * MIB  # '@' with no offset: base 0
    assert reserve.expected_bytes("0256M", RAM, "x86_64") == 0o256 * MIB  # octal, as the kernel reads it


@pytest.mark.parametrize("configured", ["garbage", "256M,lowish", "2G-1G:256M", "-", "@"])
def test_expected_is_zero_for_what_the_kernel_rejects(configured):
    assert reserve.expected_bytes(configured, RAM, "x86_64") == 0


@pytest.mark.parametrize("arch, expected", [
    ("x86_64", GIB + 256 * MIB),
    ("amd64", GIB + 256 * MIB),
    ("aarch64", GIB + 128 * MIB),
    ("s390x", 0),  # reads no ',high'
])
def test_expected_high_includes_the_default_low_part(arch, expected):
    assert reserve.expected_bytes("1G,high", RAM, arch) == expected


@pytest.mark.parametrize("configured, ram", [
    (None, RAM), ("", RAM), ("256M", None), ("256M", 0),
])
def test_expected_is_zero_without_a_value_or_ram(configured, ram):
    assert reserve.expected_bytes(configured, ram, "x86_64") == 0


def test_expected_is_zero_when_it_does_not_fit_the_ram():
    assert reserve.expected_bytes("256M", 256 * MIB, "x86_64") == 0
    assert reserve.expected_bytes("256M", 256 * MIB + 1, "x86_64") == 256 * MIB


def test_expected_matches_ranges_on_ram_rounded_to_128m():
    assert reserve.expected_bytes("0-8G:128M,8G-:384M", RAM, "x86_64") == 384 * MIB
    assert reserve.expected_bytes("0-8G:128M,8G-:384M", 8 * GIB - 128 * MIB, "x86_64") == 128 * MIB


# --- wanted_value ----------------------------------------------------------------------------


def test_wanted_value_is_canonical_without_explanation():
    assert reserve.wanted_value("crashkernel=262144K", "x86_64", RAM) == ("256M", None)
    assert reserve.wanted_value(" 2048M-64G:256M ", "x86_64", None) == ("2G-64G:256M", None)


def test_wanted_value_auto():
    assert reserve.wanted_value("auto", "x86_64", RAM) == auto_size("x86_64", RAM)
    with pytest.raises(KexecError, match="become"):
        reserve.wanted_value("auto", "x86_64", None)


# --- shrink ----------------------------------------------------------------------------------


@pytest.fixture
def kstate(host):
    return KernelState(host.root)


def crash_size(host):
    return host.read("sys/kernel/kexec_crash_size")


@pytest.mark.parametrize("shrink_to", ["128M", "134217728", 134217728, " 128m ", "0x8000000", "131072K"])
def test_shrink_writes_the_new_size(host, kstate, shrink_to):
    assert reserve.shrink(kstate, host.root, shrink_to, False) is True
    assert crash_size(host) == "134217728\n"
    assert kstate.kexec_crash_size == 128 * MIB


def test_shrink_to_zero_frees_it_all(host, kstate):
    assert reserve.shrink(kstate, host.root, "0", False) is True
    assert crash_size(host) == "0\n"


def test_shrink_in_check_mode_writes_nothing(host, kstate):
    before = host.snapshot()
    assert reserve.shrink(kstate, host.root, "128M", True) is True
    assert host.snapshot() == before


@pytest.mark.parametrize("shrink_to", [CRASH_SIZE, CRASH_SIZE - 1, "144M", CRASH_SIZE - os.sysconf("SC_PAGE_SIZE") + 1])
@pytest.mark.parametrize("check_mode", [False, True])
def test_shrink_to_the_same_size_after_page_rounding_is_no_change(host, kstate, shrink_to, check_mode):
    before = host.snapshot()
    assert reserve.shrink(kstate, host.root, shrink_to, check_mode) is False
    assert host.snapshot() == before


def test_shrink_by_one_page_is_a_change(host, kstate):
    target = CRASH_SIZE - os.sysconf("SC_PAGE_SIZE")
    assert reserve.shrink(kstate, host.root, target, False) is True
    assert crash_size(host) == "%d\n" % target


@pytest.mark.parametrize("shrink_to", ["256M", CRASH_SIZE + 1])
def test_shrink_cannot_grow(host, kstate, shrink_to):
    before = host.snapshot()
    with pytest.raises(KexecError, match=r"larger than the %d bytes reserved" % CRASH_SIZE):
        reserve.shrink(kstate, host.root, shrink_to, False)
    assert host.snapshot() == before


@pytest.mark.parametrize("check_mode", [False, True])
def test_shrink_refuses_while_a_crash_kernel_is_loaded(tmp_path, check_mode):
    host = fakes.fake_host(tmp_path, crash_loaded=1)
    before = host.snapshot()
    with pytest.raises(KexecError, match="a crash kernel is loaded: unload it first"):
        reserve.shrink(KernelState(host.root), host.root, "128M", check_mode)
    assert host.snapshot() == before


@pytest.mark.parametrize("shrink_to", ["", "  ", "abc", "12Q", "128M,high", "-1", "1.5G", None])
def test_shrink_refuses_what_is_not_a_size(host, kstate, shrink_to):
    before = host.snapshot()
    with pytest.raises(KexecError, match="is not a size: give bytes or a size like 128M"):
        reserve.shrink(kstate, host.root, shrink_to, False)
    assert host.snapshot() == before


def test_shrink_without_the_sys_file(tmp_path):
    host = fakes.fake_host(tmp_path, crash_size=None)
    with pytest.raises(KexecError, match="/sys/kernel/kexec_crash_size is missing"):
        reserve.shrink(KernelState(host.root), host.root, "128M", False)
    assert not host.exists("sys/kernel/kexec_crash_size")


@pytest.mark.parametrize("err, message", [
    (errno.ENOENT, "the kernel refused to resize the crash region"),
    (errno.EACCES, "writing /sys/kernel/kexec_crash_size failed"),
])
def test_shrink_reports_a_refused_write(host, kstate, monkeypatch, err, message):
    opened = []

    def refusing_open(path, mode="r"):
        opened.append((path, mode))
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(reserve, "open", refusing_open, raising=False)
    with pytest.raises(KexecError, match=message):
        reserve.shrink(kstate, host.root, "128M", False)
    assert opened == [(host.path("sys/kernel/kexec_crash_size"), "w")]


def test_ensure_shrinks_and_reports_the_new_reservation(debian, tools):
    debian.write("proc/iomem", IOMEM_HIDDEN)  # not root: reserved comes from kexec_crash_size
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    debian.write(CFG, bf.grub_cfg_with_args("crashkernel=256M quiet"))
    result = ensure(debian, tools, size="256M", shrink_to="128M")
    assert result["changed"] is True  # only the shrink changed anything
    assert tools.calls == []
    assert result["reserved"] == 128 * MIB
    assert crash_size(debian) == "134217728\n"
    again = ensure(debian, tools, size="256M", shrink_to="128M")
    assert (again["changed"], again["reserved"]) == (False, 128 * MIB)


def test_ensure_shrink_in_check_mode(debian, tools):
    debian.write(DEFAULTS, bf.default_grub(linux='"crashkernel=256M"'))
    debian.write(CFG, bf.grub_cfg_with_args("crashkernel=256M quiet"))
    before = debian.snapshot()
    result = ensure(debian, tools, size="256M", shrink_to="128M", check_mode=True)
    assert (result["changed"], result["reserved"]) == (True, 144 * MIB)
    assert debian.snapshot() == before


def test_ensure_refuses_a_shrink_that_would_grow(debian, tools):
    with pytest.raises(KexecError, match="larger than"):
        ensure(debian, tools, size="256M", shrink_to="1G")
    assert crash_size(debian) == "%d\n" % CRASH_SIZE


def test_refused_shrink_changes_no_bootloader_file(tmp_path, which):
    host = fakes.fake_host(tmp_path, crash_size=128 << 20)
    before = host.snapshot()
    runner = bf.grub_tools(host.root)
    with pytest.raises(KexecError, match="larger than"):
        reserve.ensure_reservation(size="256M", shrink_to="512M", root=host.root, runner=runner, machine="x86_64")
    assert host.snapshot() == before
    assert runner.calls == []


# --- backup: what stays beside the files -----------------------------------------------------------


@pytest.mark.parametrize("backup", [False, True])
def test_backup_decides_what_stays_and_at_most_five_of_ours_stay(debian, tools, backup):
    """Eight edits in a row (one second: the backups differ by their counter). backup: false leaves none;
    backup: true leaves this edit's and the four before it, per file, and returns them as backup_files."""
    old_defaults = None
    for size in ["256M", "512M"] * 4:
        old_defaults = debian.read(DEFAULTS)
        result = ensure(debian, tools, size=size, backup=backup)
        assert result["changed"] is True
    on_disk = sorted(path for path in debian.snapshot() if path.endswith(".kexec-bak"))
    if not backup:
        assert (result["backup_files"], result["backups"], on_disk) == ({}, [], [])
        return
    files = result["backup_files"]
    assert sorted(files) == sorted([debian.path(DEFAULTS), debian.path(CFG)])
    assert result["backups"] == sorted(files.values())
    for path, backup_file in files.items():
        assert base.own_backups(path)[-1] == backup_file and len(base.own_backups(path)) == base.KEEP_BACKUPS
    with open(files[debian.path(DEFAULTS)]) as handle:
        assert handle.read() == old_defaults
    assert len(on_disk) == 2 * base.KEEP_BACKUPS


def test_check_mode_keeps_no_backup(debian, tools):
    before = debian.snapshot()
    result = ensure(debian, tools, size="256M", backup=True, check_mode=True)
    assert (result["changed"], result["backup_files"], result["backups"]) == (True, {}, [])
    assert debian.snapshot() == before
