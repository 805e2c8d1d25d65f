"""The kdump role's rendering, with ansible-core's own templating: every distribution's configuration file,
the values each vars file computes, and the expressions the tasks decide with.

Variables come from the role's own defaults and vars files, loaded the way Ansible loads them (trusted as
templates); templates are rendered as the template module renders them (trim_blocks). The shell files are
then read back by /bin/sh, as kdump-config, kdumpctl and kdumptool source them.
"""

import os
import subprocess

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ROLE = os.path.join(REPO, "roles", "kdump")
FACTS = {
    "Debian": {"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "12"},
    "RedHat": {"os_family": "RedHat", "distribution": "Fedora", "distribution_major_version": "41"},
    "Suse": {"os_family": "Suse", "distribution": "SLES", "distribution_major_version": "15"},
}
SERVER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKexecTestKey"


def role_vars(family, **overrides):
    """defaults/main.yml, vars/main.yml and vars/FAMILY.yml as the play would see them, with ``overrides``."""
    loader = DataLoader()
    variables = {}
    for name in ("defaults/main.yml", "vars/main.yml", "vars/%s.yml" % family):
        variables.update(loader.load_from_file(os.path.join(ROLE, name), trusted_as_template=True))
    variables["ansible_facts"] = dict(FACTS[family])
    variables["ansible_managed"] = "Ansible managed"
    variables["inventory_hostname"] = "guest"
    variables.update(overrides)
    return variables


def expression(text, variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text))


def render(template, variables):
    with open(os.path.join(ROLE, "templates", template)) as handle:
        text = handle.read()
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template(text), overrides={"trim_blocks": True}, escape_backslashes=False)


def sourced(text, names, prelude=""):
    """The values of ``names`` after /bin/sh sources ``text`` (with ``prelude`` before it)."""
    script = prelude + "\n" + text + "\n" + "".join('printf "%%s\\n" "$%s"\n' % name for name in names)
    out = subprocess.run(["/bin/sh", "-euc", script], stdout=subprocess.PIPE, check=True, env={"PATH": "/usr/bin:/bin"},
                         universal_newlines=True).stdout
    return dict(zip(names, out.split("\n")))


def tasks_of(tasks_file):
    """The tasks of one of the role's task files, as written."""
    return DataLoader().load_from_file(os.path.join(ROLE, "tasks", tasks_file), trusted_as_template=True)


def task_vars(tasks_file, task_name):
    """The ``vars`` of one task of the role, as written."""
    return next(task["vars"] for task in tasks_of(tasks_file) if task.get("name") == task_name)


# --- Debian: /etc/default/kdump-tools ------------------------------------------------------------------

def test_debian_local_defaults():
    text = render("kdump-tools.j2", role_vars("Debian"))
    assert text.startswith("#\n# Ansible managed\n#\n")
    values = sourced(text, ["USE_KDUMP", "KDUMP_KERNEL", "KDUMP_INITRD", "KDUMP_COREDIR", "KDUMP_DUMP_DMESG",
                            "MAKEDUMP_ARGS", "KDUMP_FAIL_CMD"])
    assert values == {"USE_KDUMP": "1", "KDUMP_KERNEL": "/var/lib/kdump/vmlinuz",
                      "KDUMP_INITRD": "/var/lib/kdump/initrd.img", "KDUMP_COREDIR": "/var/crash",
                      "KDUMP_DUMP_DMESG": "1", "MAKEDUMP_ARGS": "-c -d 31", "KDUMP_FAIL_CMD": "reboot -f"}
    # Unset, kdump-config keeps its own capture command line and writes locally.
    for name in ("KDUMP_CMDLINE_APPEND", "SSH", "NFS"):
        assert "\n%s=" % name not in text


def test_debian_ssh_append_and_shell():
    variables = role_vars("Debian", kdump_target="ssh", kdump_ssh_host="dumps.example", kdump_ssh_user="kdump",
                          kdump_capture_append=["nmi_watchdog=0", "panic=5"], kdump_after_dump="shell",
                          kdump_compression="lzo", kdump_dump_level=1, kdump_path="/srv/dumps")
    values = sourced(render("kdump-tools.j2", variables),
                     ["SSH", "SSH_KEY", "KDUMP_CMDLINE_APPEND", "KDUMP_FAIL_CMD", "MAKEDUMP_ARGS", "KDUMP_COREDIR"])
    assert values == {
        "SSH": "kdump@dumps.example", "SSH_KEY": "/root/.ssh/kdump_id_ed25519",
        # Setting KDUMP_CMDLINE_APPEND replaces kdump-config's default: the role keeps it in front.
        "KDUMP_CMDLINE_APPEND": "reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll "
                                "usbcore.nousb nmi_watchdog=0 panic=5",
        "KDUMP_FAIL_CMD": "systemctl --no-block emergency", "MAKEDUMP_ARGS": "-l -d 1", "KDUMP_COREDIR": "/srv/dumps"}


def test_debian_nfs_and_halt():
    variables = role_vars("Debian", kdump_target="nfs", kdump_nfs_export="nfs.example:/export/dumps",
                          kdump_after_dump="halt", kdump_compression="none")
    values = sourced(render("kdump-tools.j2", variables), ["NFS", "KDUMP_FAIL_CMD", "MAKEDUMP_ARGS"])
    assert values == {"NFS": "nfs.example:/export/dumps", "KDUMP_FAIL_CMD": "halt -f", "MAKEDUMP_ARGS": "-d 31"}
    assert expression("{{ __kdump_packages + __kdump_target_packages[kdump_target] }}", variables) == [
        "kdump-tools", "makedumpfile", "nfs-common"]


# --- Fedora, RHEL: /etc/kdump.conf and the block in /etc/sysconfig/kdump -----------------------------------

def conf_lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_redhat_local_defaults():
    assert conf_lines(render("kdump.conf.j2", role_vars("RedHat"))) == [
        "path /var/crash", "core_collector makedumpfile -c -d 31 --message-level 7",
        "failure_action reboot", "final_action reboot"]


@pytest.mark.parametrize("after, failure, final", [("halt", "halt", "halt"), ("shell", "shell", "reboot")])
def test_redhat_after_dump(after, failure, final):
    lines = conf_lines(render("kdump.conf.j2", role_vars("RedHat", kdump_after_dump=after)))
    assert lines[-2:] == ["failure_action %s" % failure, "final_action %s" % final]


def test_redhat_ssh_takes_the_flattened_format():
    variables = role_vars("RedHat", kdump_target="ssh", kdump_ssh_host="dumps.example", kdump_compression="zstd",
                          kdump_dump_level=17)
    assert conf_lines(render("kdump.conf.j2", variables)) == [
        "ssh root@dumps.example", "sshkey /root/.ssh/kdump_id_ed25519", "path /var/crash",
        "core_collector makedumpfile -F -z -d 17 --message-level 7", "failure_action reboot", "final_action reboot"]


def test_redhat_nfs():
    variables = role_vars("RedHat", kdump_target="nfs", kdump_nfs_export="nfs.example:/export")
    assert conf_lines(render("kdump.conf.j2", variables))[:2] == ["nfs nfs.example:/export", "path /var/crash"]
    assert expression("{{ __kdump_nfs_subdir }}", variables) == "/var/crash"


def test_redhat_capture_append_extends_the_distribution_default():
    block = render("sysconfig-kdump-append.j2", role_vars("RedHat", kdump_capture_append=["nmi_watchdog=0"]))
    # kdumpctl sources /etc/sysconfig/kdump: the block comes after the packaged line and keeps it.
    packaged = 'KDUMP_COMMANDLINE_APPEND="irqpoll nr_cpus=1 reset_devices"'
    assert sourced(packaged + "\n" + block, ["KDUMP_COMMANDLINE_APPEND"]) == {
        "KDUMP_COMMANDLINE_APPEND": "irqpoll nr_cpus=1 reset_devices nmi_watchdog=0"}


@pytest.mark.parametrize("distribution, version, packages", [
    ("Fedora", "39", ["kexec-tools"]),
    ("Fedora", "40", ["kdump-utils", "makedumpfile"]),
    ("RedHat", "9", ["kexec-tools"]),
    ("CentOS", "10", ["kdump-utils", "makedumpfile"]),
    ("Amazon", "2023", ["kexec-tools"]),
])
def test_redhat_package_split(distribution, version, packages):
    variables = role_vars("RedHat")
    variables["ansible_facts"].update(distribution=distribution, distribution_major_version=version)
    assert expression("{{ __kdump_packages }}", variables) == packages


# --- SUSE: /etc/sysconfig/kdump -----------------------------------------------------------------------------

SUSE_NAMES = ["KDUMP_SAVEDIR", "KDUMP_DUMPLEVEL", "KDUMP_DUMPFORMAT", "KDUMP_IMMEDIATE_REBOOT",
              "KDUMP_CONTINUE_ON_ERROR", "KDUMP_COMMANDLINE_APPEND"]


def test_suse_local_defaults():
    assert sourced(render("suse-sysconfig-kdump.j2", role_vars("Suse")), SUSE_NAMES) == {
        "KDUMP_SAVEDIR": "file:///var/crash", "KDUMP_DUMPLEVEL": "31", "KDUMP_DUMPFORMAT": "compressed",
        "KDUMP_IMMEDIATE_REBOOT": "yes", "KDUMP_CONTINUE_ON_ERROR": "true", "KDUMP_COMMANDLINE_APPEND": ""}


def test_suse_ssh_with_the_host_key_and_a_shell_on_failure():
    variables = role_vars("Suse", kdump_target="ssh", kdump_ssh_host="dumps.example", kdump_ssh_user="kdump",
                          kdump_path="/srv/dumps", kdump_after_dump="shell", kdump_compression="none",
                          kdump_capture_append=["panic=5"], __kdump_ssh_server_key=SERVER_KEY)
    values = sourced(render("suse-sysconfig-kdump.j2", variables),
                     SUSE_NAMES + ["KDUMP_SSH_IDENTITY", "KDUMP_HOST_KEY"])
    assert values == {
        "KDUMP_SAVEDIR": "ssh://kdump@dumps.example/srv/dumps", "KDUMP_DUMPLEVEL": "31", "KDUMP_DUMPFORMAT": "ELF",
        "KDUMP_IMMEDIATE_REBOOT": "yes", "KDUMP_CONTINUE_ON_ERROR": "false", "KDUMP_COMMANDLINE_APPEND": "panic=5",
        "KDUMP_SSH_IDENTITY": "/root/.ssh/kdump_id_ed25519", "KDUMP_HOST_KEY": SERVER_KEY}


def test_suse_nfs_url():
    variables = role_vars("Suse", kdump_target="nfs", kdump_nfs_export="nfs.example:/export")
    assert sourced(render("suse-sysconfig-kdump.j2", variables), ["KDUMP_SAVEDIR"]) == {
        "KDUMP_SAVEDIR": "nfs://nfs.example/export/var/crash"}


def test_suse_has_no_halt():
    assert expression("{{ 'halt' in __kdump_after_dump_choices }}", role_vars("Suse")) is False


# --- The tasks' own expressions -----------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, unsafe", [
    ({}, []),
    ({"kdump_capture_append": ["panic=5", "a b"]}, ["a b"]),
    ({"kdump_path": '/var/"crash'}, ['/var/"crash']),
    ({"kdump_ssh_host": "$(reboot)"}, ["$(reboot)"]),
    ({"kdump_nfs_export": "x:/`id`"}, ["x:/`id`"]),
    ({"kdump_ssh_key": "/root/k\\ey", "kdump_ssh_user": "it's"}, ["it's", "/root/k\\ey"]),
])
def test_values_that_would_break_the_configuration_files_are_refused(overrides, unsafe):
    name = "The values are safe in the services' configuration files (quoted shell and kdump.conf)"
    tasks = tasks_of("present.yml")
    [at] = [index for index, task in enumerate(tasks) if task.get("name") == name]
    variables = role_vars("Debian", **overrides)
    variables.update(tasks[at]["vars"])
    assert expression("{{ __kdump_unsafe }}", variables) == unsafe
    # the task is an assert that fails on exactly those values, and nothing before it changes the host
    assert expression("{{ %s }}" % tasks[at]["ansible.builtin.assert"]["that"], variables) is (not unsafe)
    assert all("ansible.builtin.assert" in task for task in tasks[:at])


@pytest.mark.parametrize("hexdump, dump_format", [
    (" 4b 44 55 4d 50 20 20 20 00 00 00 00 06 00 00 00\n", "kdump-compressed"),
    (" 6d 61 6b 65 64 75 6d 70 66 69 6c 65 00 00 00 00\n", "flattened"),
    (" 7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00\n", "elf"),
    (" 1f 8b 08 00 00 00 00 00 00 03 00 00 00 00 00 00\n", "gzip"),
    (" 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n", "unknown"),
])
def test_dump_format_from_its_first_bytes(hexdump, dump_format):
    variables = role_vars("Debian", __kdump_dump_header={"stdout": hexdump})
    variables.update(task_vars("test_crash.yml", "Publish the test crash's result"))
    assert expression("{{ __kdump_format | default('unknown', true) }}", variables) == dump_format


def test_every_template_variable_is_documented_and_defaulted():
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert sorted(options) == sorted(defaults)
    assert all(options[name].get("default") == value for name, value in defaults.items())


def test_the_reservation_passes_kdump_crashkernel_backup_on():
    """Both ways the role runs the crashkernel role (reserve, and absent with kdump_crashkernel_remove) pass it."""
    for tasks_file, task_name in (("reserve.yml", "Reserve crash memory and apply it"),
                                  ("absent.yml", "Remove the crash-memory reservation")):
        assert task_vars(tasks_file, task_name)["crashkernel_backup"] == "{{ kdump_crashkernel_backup }}"
    assert role_vars("Debian")["kdump_crashkernel_backup"] is False
