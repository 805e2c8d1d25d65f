"""Fake bootloader tools and configuration trees for the bootloader backend tests.

Everything acts on a tree below the test's tmp_path. The tools (grub-mkconfig,
grub-script-check, grubby, zipl) are Python emulations handed to the backends
as their ``runner``; no real bootloader tool is ever executed. The only real
program run is ``sh``, to source the fake /etc/default/grub the way
grub-mkconfig does, as an independent check of what the files mean.
"""

import glob
import os
import re
import subprocess

from . import host as fakes

# Saved before the tests' autouse guard replaces subprocess.run.
_REAL_RUN = subprocess.run

# --- /etc/default/grub -------------------------------------------------------

DEBIAN_DEFAULT_GRUB = """\
# If you change this file or any /etc/default/grub.d/*.cfg file,
# run 'update-grub' afterwards to update /boot/grub/grub.cfg.
# For full documentation of the options in these files, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`( . /etc/os-release && echo ${NAME} ) 2>/dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""

# If your computer has multiple operating systems installed, then you
# probably want to run os-prober. However, if your computer is a host
# for guest OSes installed via LVM or raw disk devices, running
# os-prober can cause damage to those guest OSes as it mounts
# filesystems to look for things.
#GRUB_DISABLE_OS_PROBER=false

# Uncomment to enable BadRAM filtering, modify to suit your needs
# This works with Linux (no patch required) and with any kernel that obtains
# the memory map information from GRUB (GNU Mach, kernel of FreeBSD ...)
#GRUB_BADRAM="0x01234567,0xfefefefe,0x89abcdef,0xefefefef"

# Uncomment to disable graphical terminal
#GRUB_TERMINAL=console
#GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
"""

# What kdump-tools installs (Debian, Ubuntu).
KDUMP_TOOLS_CFG = 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=384M-:128M"\n'


def default_grub(linux='""', linux_default='"quiet"'):
    """DEBIAN_DEFAULT_GRUB with the two assignments' raw right-hand sides replaced (None drops the line)."""
    text = DEBIAN_DEFAULT_GRUB
    for name, raw in (("GRUB_CMDLINE_LINUX_DEFAULT", linux_default), ("GRUB_CMDLINE_LINUX", linux)):
        pattern = re.compile(r"^%s=.*\n" % name, re.M)
        line = "" if raw is None else "%s=%s\n" % (name, raw)
        text = pattern.sub(lambda _match, line=line: line, text, count=1)
    return text


def sourced_args(root):
    """(GRUB_CMDLINE_LINUX, GRUB_CMDLINE_LINUX_DEFAULT) as sh sees them after sourcing what grub-mkconfig sources."""
    script = ('. "$1/etc/default/grub"; for x in "$1"/etc/default/grub.d/*.cfg; do '
              'if [ -e "$x" ]; then . "$x"; fi; done; '
              'printf "%s\\n%s\\n" "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT"')
    proc = _REAL_RUN(["sh", "-c", script, "sh", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     universal_newlines=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, check=True)
    linux, linux_default = proc.stdout.split("\n")[:2]
    return linux, linux_default


def effective_args(root):
    """The arguments grub-mkconfig puts on a normal entry's linux line (after root= and ro), normalised."""
    linux, linux_default = sourced_args(root)
    return " ".join((linux + " " + linux_default).split())


def grub_cfg_with_args(normal, recovery_extra="", default="0"):
    """debian_grub_cfg whose normal entries boot with ``normal`` (and recovery ones with single + extra)."""
    text = fakes.debian_grub_cfg(default=default)
    text = text.replace(" ro quiet\n", (" ro %s" % normal).rstrip() + "\n")
    return text.replace(" ro single\n", (" ro single %s" % recovery_extra).rstrip() + "\n")


# --- BLS entries ---------------------------------------------------------------

MACHINE_ID = "4ce7a933859f4a76a5111fba2d010ca3"
FEDORA_KERNELS = ("6.8.9-300.fc40.x86_64", "6.8.5-301.fc40.x86_64")
FEDORA_OPTIONS = ("root=UUID=%s ro rootflags=subvol=root crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M "
                  "rhgb quiet" % fakes.ROOT_UUID)


def bls_entry(release, options=FEDORA_OPTIONS, title="Fedora Linux"):
    """A BLS entry as kernel-install / grubby write them on Fedora (options None: no options line)."""
    text = ("title %s (%s) 40 (Forty)\n"
            "version %s\n"
            "linux /vmlinuz-%s\n"
            "initrd /initramfs-%s.img\n" % (title, release, release, release, release))
    if options is not None:
        text += "options %s\n" % options
    return text + "grub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"


def entry_path(root, release, directory="boot/loader/entries"):
    return os.path.join(str(root), directory, "%s-%s.conf" % (MACHINE_ID, release))


def entry_options(text):
    return next(line.partition(" ")[2] for line in text.splitlines() if line.startswith("options "))


# --- runners ------------------------------------------------------------------


class FakeTools:
    """A runner (argv -> (rc, stdout, stderr)) dispatching to fake tools by name; records every argv.

    An argv naming a tool without a fake fails the test: nothing real is ever run.
    """

    def __init__(self, **tools):
        self.calls = []
        self.tools = dict((name.replace("_", "-"), tool) for name, tool in tools.items())

    def __call__(self, argv):
        argv = list(argv)
        self.calls.append(argv)
        name = os.path.basename(argv[0])
        if name not in self.tools:
            raise AssertionError("unexpected command %r: no fake for %s" % (argv, name))
        return self.tools[name](argv)

    def names(self):
        return [os.path.basename(argv[0]) for argv in self.calls]


def fake_grub_mkconfig(root, rc=0, stderr=""):
    """grub-mkconfig -o FILE: writes a Debian grub.cfg with the arguments /etc/default/grub(.d) give."""
    def tool(argv):
        assert argv[1] == "-o" and len(argv) == 3, argv
        out = argv[2]
        assert out.startswith(str(root)), "grub-mkconfig must write inside the fake tree: %s" % out
        linux, linux_default = sourced_args(root)
        text = grub_cfg_with_args("%s %s" % (linux, linux_default), linux)
        if rc:
            text = text[:len(text) // 2]  # died half way
        fakes.write_file(out, text)
        return rc, "Generating grub configuration file ...\ndone\n", stderr
    return tool


def fake_grub_script_check(ok=True):
    def tool(argv):
        assert len(argv) == 2 and os.path.exists(argv[1]), argv
        if ok:
            return 0, "", ""
        return 1, "", "%s:12:syntax error\nIncorrect command\n" % argv[1]
    return tool


def grub_tools(root, check_ok=True, mkconfig_rc=0):
    """A FakeTools runner with fake grub-mkconfig and grub-script-check for the tree at ``root``."""
    return FakeTools(grub_mkconfig=fake_grub_mkconfig(root, rc=mkconfig_rc, stderr="mkconfig: error"),
                     grub_script_check=fake_grub_script_check(ok=check_ok))


def _bls_files(root):
    found = []
    for directory in ("boot/loader/entries", "efi/loader/entries", "boot/efi/loader/entries"):
        found.extend(sorted(glob.glob(os.path.join(str(root), directory, "*.conf"))))
    return found


def _arg_name(token):
    return token.split("=", 1)[0]


def grubby_update_args(args, remove_args, add_args, in_place=False):
    """grubby-bls update_args: --remove-args NAME drops every NAME[=...], NAME=V only that exact one;
    --args drops every argument of the same name and appends the new ones at the end (newer grubby), or
    with ``in_place`` replaces the first one's value where it stands (older grubby)."""
    tokens = args.split()
    for arg in remove_args:
        if "=" in arg:
            tokens = [t for t in tokens if t != arg]
        else:
            tokens = [t for t in tokens if _arg_name(t) != arg]
    for arg in add_args:
        name = _arg_name(arg)
        if in_place and any(_arg_name(t) == name for t in tokens):
            first = next(i for i, t in enumerate(tokens) if _arg_name(t) == name)
            tokens = [arg if i == first else t for i, t in enumerate(tokens) if i == first or _arg_name(t) != name]
        else:
            tokens = [t for t in tokens if _arg_name(t) != name] + [arg]
    return " ".join(tokens)


class FakeGrubby:
    """grubby-bls --update-kernel=ALL|KERNEL [--args=...] [--remove-args=...] [--no-etc-grub-update] on the fake tree.

    Does what grubby-bls (the shell wrapper Fedora and RHEL ship) does, read from its source:
    options are parsed as getopt prints them, and --no-etc-grub-update shifts once more than it
    should, so an option after it is lost (the value left behind is an invalid option). KERNEL must
    equal an entry's linux line, or do so once reduced to "/" and its last component; otherwise
    "The param ... is incorrect". For ALL (not on s390x) it rewrites every GRUB_CMDLINE_LINUX*
    line of /etc/default/grub unless told not to, and sets grubenv's kernelopts when there is one;
    entries whose options are $kernelopts are left alone for ALL and expanded for one kernel;
    for ALL /etc/kernel/cmdline is edited too (created from the first entry when missing).

    ``mangle`` (options -> options) lets a test make it do something other than asked;
    ``also`` runs before it returns, e.g. to damage an unplanned file.
    """

    VALUED = ("--update-kernel", "--args", "--remove-args")

    def __init__(self, root, in_place=False, rc=0, mangle=None, also=None, machine="x86_64"):
        self.root = str(root)
        self.in_place = in_place
        self.rc = rc
        self.mangle = mangle
        self.also = also
        self.machine = machine

    def parse(self, argv):
        tokens = []
        for arg in argv[1:]:
            name, sep, value = arg.partition("=")
            assert name in self.VALUED + ("--no-etc-grub-update",), argv
            tokens.extend([name, value] if sep else [name])
        tokens.append("--")
        opts, index = {}, 0
        while index < len(tokens):
            token = tokens[index]
            if token == "--":
                break
            if token in self.VALUED:
                opts[token[2:]] = tokens[index + 1]
                index += 1
            elif token == "--no-etc-grub-update":
                opts["no-etc-grub-update"] = True
                index += 1  # the wrapper's extra shift
            else:
                return None, "grubby: invalid option \"%s\"\n" % token
            index += 1
        return opts, None

    def path(self, rel):
        return os.path.join(self.root, rel)

    def grubenv(self):
        path = self.path("boot/grub2/grubenv")
        return path if os.path.exists(path) else None

    def env(self):
        values = {}
        if self.grubenv():
            for line in open(self.grubenv()).read().splitlines():
                key, sep, value = line.partition("=")
                if sep and not key.startswith("#"):
                    values[key] = value
        return values

    def expand(self, options):
        env = self.env()
        return " ".join(env.get(t[1:], t) if t.startswith("$") and env.get(t[1:]) else t for t in options.split())

    def __call__(self, argv):
        opts, error = self.parse(argv)
        if error:
            return 1, "", error
        if self.rc:
            return self.rc, "", "grubby: The param %s is incorrect\n" % opts["update-kernel"]
        target = opts["update-kernel"]
        remove, add = opts.get("remove-args", "").split(), opts.get("args", "").split()
        entries = []
        for path in _bls_files(self.root):
            with open(path) as handle:
                text = handle.read()
            linux = next((line.split(None, 1)[1] for line in text.splitlines() if line.startswith("linux ")), "")
            if target == "ALL" or target == linux or "/" + target.rsplit("/", 1)[-1] == linux:
                entries.append((path, text))
        if not entries:
            return 1, "", "The param %s is incorrect\n" % target
        grub2 = self.machine != "s390x"
        if target == "ALL" and grub2:
            self.update_etc_default_grub(opts, remove, add)
            kernelopts = self.env().get("kernelopts")
            if kernelopts:
                self.set_kernelopts(grubby_update_args(kernelopts, remove, add, self.in_place))
        for path, text in entries:
            lines = text.splitlines(True)
            for index, line in enumerate(lines):
                if not line.startswith("options "):
                    continue
                options = line[len("options "):].strip()
                if target == "ALL" and "$kernelopts" in options.split():
                    continue
                new = grubby_update_args(self.expand(options), remove, add, self.in_place)
                if self.mangle:
                    new = self.mangle(new)
                lines[index] = "options %s\n" % new
            with open(path, "w") as handle:  # sed -i: a new file in place of the old
                handle.write("".join(lines))
        if target == "ALL":
            cmdline = self.path("etc/kernel/cmdline")
            if not os.path.exists(cmdline):
                fakes.write_file(cmdline, self.expand(entry_options(entries[0][1])) + "\n")
            old = open(cmdline).read().split("\n")[0]
            fakes.write_file(cmdline, grubby_update_args(old, remove, add, self.in_place) + "\n")
        if self.also:
            self.also()
        return 0, "", ""

    def update_etc_default_grub(self, opts, remove, add):
        """sed -i 's/^GRUB_CMDLINE_LINUX.*/GRUB_CMDLINE_LINUX="NEW"/': _DEFAULT lines too, as the real one does."""
        path = self.path("etc/default/grub")
        if opts.get("no-etc-grub-update") or not os.path.exists(path):
            return
        linux = sourced_args(self.root)[0]
        if not linux:
            return
        new = grubby_update_args(linux, remove, add, self.in_place)
        text = re.sub(r"(?m)^GRUB_CMDLINE_LINUX.*$", 'GRUB_CMDLINE_LINUX="%s"' % new, open(path).read())
        fakes.write_file(path, text)

    def set_kernelopts(self, value):
        """grub2-editenv set: the block stays 1024 bytes, '#' padded."""
        env = self.env()
        env["kernelopts"] = value
        fakes.write_file(self.grubenv(), fakes.grubenv(**env))


def fake_zipl(rc=0):
    def tool(argv):
        assert argv == ["zipl"], argv
        if rc:
            return rc, "Using config file '/etc/zipl.conf'\n", "Error: Could not open image file '/boot/vmlinuz-x'\n"
        return 0, "Using config file '/etc/zipl.conf'\nBuilding bootmap in '/boot'\nDone.\n", ""
    return tool


# --- zipl.conf -----------------------------------------------------------------

ZIPL_PARAMS = "root=/dev/mapper/rhel-root crashkernel=auto rd.dasd=0.0.0100 rd.lvm.lv=rhel/root cio_ignore=all,!condev"

ZIPL_CONF = """\
[defaultboot]
defaultauto
prompt=1
timeout=5
default=linux
target=/boot
[linux]
\timage=/boot/vmlinuz-3.10.0-1160.el7.s390x
\tramdisk=/boot/initramfs-3.10.0-1160.el7.s390x.img
\tparameters="%(params)s"
[linux-old]
\timage=/boot/vmlinuz-3.10.0-1127.el7.s390x
\tramdisk=/boot/initramfs-3.10.0-1127.el7.s390x.img
\tparameters="%(params)s"
# no parameters: zipl boots it with none
[rescue]
\timage=/boot/vmlinuz-0-rescue-%(machine)s
\tramdisk=/boot/initramfs-0-rescue-%(machine)s.img
:menu
\ttarget=/boot
\t1=linux
\t2=linux-old
\t3=rescue
\tdefault=1
\tprompt=1
\ttimeout=5
""" % {"params": ZIPL_PARAMS, "machine": MACHINE_ID}
