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
        "KDUMP_FAIL_CMD": "systemctl --no-block emergency", "MAKEDUMP_ARGS": "-l -d 1",
        # the server keeps each client's dumps in a directory of its own, the only one its key may write
        "KDUMP_COREDIR": "/srv/dumps/guest"}


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
        "ssh kdump-receiver@dumps.example", "sshkey /root/.ssh/kdump_id_ed25519", "path /var/crash/guest",
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
        "KDUMP_SAVEDIR": "ssh://kdump@dumps.example/srv/dumps/guest", "KDUMP_DUMPLEVEL": "31", "KDUMP_DUMPFORMAT": "ELF",
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


# --- The SSH dump target: the server account, the restricted key, a fresh host ----------------------------

def find_task(tasks, name):
    """The task called ``name`` in ``tasks``, looking inside blocks; with the block it is in (or None)."""
    for task in tasks:
        if task.get("name") == name:
            return task, None
        for inner in task.get("block", []):
            if inner.get("name") == name:
                return inner, task
    raise KeyError(name)


AUTHORIZE = "Authorize this host's dump key, restricted to writing its dumps from its address"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClientKeyOfGuest kdump@guest"


def ssh_vars(**overrides):
    """The role's variables with what ssh.yml has found by the time it authorizes the key."""
    import base64
    variables = role_vars("Debian", kdump_target="ssh", kdump_ssh_host="dumps.example", kdump_path="/srv/dumps",
                          __kdump_ssh_from="10.0.0.5", ansible_check_mode=False,
                          __kdump_ssh_pubkey={"content": base64.b64encode(PUBKEY.encode()).decode()},
                          __kdump_ssh_passwd={"ansible_facts": {"getent_passwd": {
                              "kdump-receiver": ["x", "998", "998", "", "/var/lib/kdump-receiver", "/bin/sh"]}}})
    variables.update(overrides)
    task, block = find_task(tasks_of("ssh.yml"), AUTHORIZE)
    variables.update(block["vars"])
    return variables, task, block


def test_the_dump_account_is_unprivileged_by_default():
    assert role_vars("Debian")["kdump_ssh_user"] == "kdump-receiver"
    _variables, _task, block = ssh_vars()
    [create] = [task for task in block["block"] if "ansible.builtin.user" in task]
    # a system account with no usable password, made only when getent did not find it
    assert create["ansible.builtin.user"]["system"] is True and create["ansible.builtin.user"]["password"] == "*"
    assert create["when"] == "__kdump_ssh_entry is none"
    # clients sharing a server edit its authorized_keys one at a time
    assert block["throttle"] == 1 and block["delegate_to"] == "{{ kdump_ssh_host }}"


def test_the_key_is_authorized_with_restrict_from_and_the_forced_command():
    variables, task, _block = ssh_vars()
    module = task["ansible.builtin.lineinfile"]
    assert expression(module["path"], variables) == "/var/lib/kdump-receiver/.ssh/authorized_keys"
    assert expression(module["line"], variables) == (
        'restrict,from="10.0.0.5",command="/usr/bin/python3 -I /usr/local/lib/kernel-kexec/kdump-receive '
        '/srv/dumps/guest" ' + PUBKEY)
    assert expression(module["owner"], variables) == "kdump-receiver" and module["mode"] == "0600"
    assert expression("{{ %s }}" % task["when"], variables) is True


def test_the_line_that_authorizes_the_key_is_replaced_not_added():
    """An older line for the same key (unrestricted, or another address) is the one the task rewrites."""
    import re
    variables, task, _block = ssh_vars()
    pattern = re.compile(expression(task["ansible.builtin.lineinfile"]["regexp"], variables))
    assert pattern.search(PUBKEY)
    assert pattern.search('restrict,from="10.9.9.9",command="/x /y" ' + PUBKEY)
    assert not pattern.search("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClientKeyOfGuestTwo kdump@guest2")


def test_a_fresh_server_account_takes_its_home_after_it_is_made():
    # before the account exists (check mode): a home is planned, and what needs the account waits for the run
    missing = {"ansible_facts": {"getent_passwd": {"kdump-receiver": None}}}
    variables, _task, _block = ssh_vars(__kdump_ssh_passwd=missing, ansible_check_mode=True)
    assert expression("{{ __kdump_ssh_entry is none }}", variables) is True
    assert expression("{{ __kdump_ssh_home }}", variables) == "/var/lib/kdump-receiver"
    assert expression("{{ __kdump_ssh_account | bool }}", variables) is False
    # a real run reads the account again once it is made, and uses that
    made = {"ansible_facts": {"getent_passwd": {"kdump-receiver": ["x", "997", "996", "", "/home/kr", "/bin/sh"]}}}
    variables, _task, _block = ssh_vars(__kdump_ssh_passwd=missing, __kdump_ssh_passwd_new=made)
    assert expression("{{ __kdump_ssh_home }}", variables) == "/home/kr"
    assert expression("{{ __kdump_ssh_account | bool }}", variables) is True
    # an existing account: the second look was skipped, the first one counts
    variables, _task, _block = ssh_vars(__kdump_ssh_passwd_new={"skipped": True, "changed": False})
    assert expression("{{ __kdump_ssh_home }}", variables) == "/var/lib/kdump-receiver"


@pytest.mark.parametrize("stdout, source", [
    ("10.0.0.9 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0 \n    cache \n", "10.0.0.5"),
    ("10.0.2.2 dev ens3 src 10.0.2.15 uid 0 \n    cache \n", "10.0.2.15"),
    ("2001:db8::9 from :: via fe80::1 dev eth0 proto ra src 2001:db8::5 metric 100 pref medium\n", "2001:db8::5"),
    ("local 127.0.0.1 dev lo src 127.0.0.1 uid 0 \n    cache <local> \n", "127.0.0.1"),
    ("", ""),
])
def test_from_is_the_source_address_of_the_route_to_the_server(stdout, source):
    variables = role_vars("Debian", __kdump_ssh_route={"stdout": stdout})
    assert expression("{{ __kdump_ssh_route_source }}", variables) == source
    assert expression("{{ __kdump_ssh_route_source }}", role_vars("Debian")) == ""  # the route was not looked up


@pytest.mark.parametrize("value, allowed", [
    ("10.0.0.5", True), ("192.0.2.0/24", True), ("2001:db8::5", True), ("10.0.0.*,!10.0.0.66", True),
    ("bastion.example", True), ("", False), ('10.0.0.5",command="sh', False), ("10.0.0.5 10.0.0.6", False),
])
def test_the_from_pattern_is_checked_before_it_goes_into_authorized_keys(value, allowed):
    task, _block = find_task(tasks_of("ssh.yml"), "The key can be restricted to this host's address")
    variables = role_vars("Debian", __kdump_ssh_from=value)
    assert expression("{{ %s }}" % task["ansible.builtin.assert"]["that"], variables) is allowed


@pytest.mark.parametrize("path, host, allowed", [
    ("/var/crash", "guest", True), ("/srv/dumps", "web-1.example.com", True), ("/srv/dumps", "10.0.0.5", True),
    ("/var/crash/", "guest", False), ("/var//crash", "guest", False), ("/var/crash", "..", False),
    ("/var/crash", ".hidden", False), ("/var/../etc", "guest", False), ("/var/crash", "a/b", False),
])
def test_the_client_directory_on_the_server_is_one_the_forced_command_takes(path, host, allowed):
    variables = role_vars("Debian", kdump_path=path, inventory_hostname=host)
    assert expression("{{ __kdump_ssh_dir_ok | bool }}", variables) is allowed
    [check] = [task for task in tasks_of("present.yml") if task.get("name") == "The dump target is complete"]
    assert "kdump_target != 'ssh' or __kdump_ssh_dir_ok | bool" in \
        check["ansible.builtin.assert"]["that"]


def test_a_fresh_host_gets_root_ssh_directory_before_its_key():
    tasks = tasks_of("ssh.yml")
    names = [task["name"] for task in tasks]
    create = names.index("Create root's SSH directory and the key's directory where missing (a fresh host has neither)")
    assert create < names.index("Create this host's dump key once")
    module = tasks[create]["ansible.builtin.file"]
    assert (module["state"], module["owner"], module["mode"]) == ("directory", "root", "0700")
    # only the missing ones: an existing directory keeps its mode (the run again changes nothing)
    stats = {"results": [{"item": "/root/.ssh", "stat": {"exists": False}},
                         {"item": "/etc/kdump", "stat": {"exists": True}}]}
    variables = role_vars("Debian", __kdump_ssh_dirs=stats)
    assert expression(tasks[create]["loop"], variables) == [stats["results"][0]]
    looked = role_vars("Debian", kdump_ssh_key="/etc/kdump/id")
    assert expression(tasks[names.index("Find root's SSH directory and the key's directory")]["loop"],
                      looked) == ["/root/.ssh", "/etc/kdump"]


@pytest.mark.parametrize("check_mode, keygen_changed, read", [
    (False, True, True), (False, False, True), (True, False, True), (True, True, False)])
def test_check_mode_on_a_fresh_host_does_not_read_a_key_it_did_not_make(check_mode, keygen_changed, read):
    task, _block = find_task(tasks_of("ssh.yml"), "Read the dump key's public half")
    variables = role_vars("Debian", ansible_check_mode=check_mode,
                          __kdump_ssh_keygen={"changed": keygen_changed, "rc": 0})
    assert expression("{{ %s }}" % task["when"], variables) is read


def test_the_dumps_are_looked_for_in_the_client_directory_on_the_server():
    variables = role_vars("Debian", kdump_target="ssh", kdump_path="/srv/dumps")
    variables.update(find_task(tasks_of("find_dumps.yml"), "Look at the dumps")[0]["vars"])
    assert expression("{{ __kdump_dump_dir }}", variables) == "/srv/dumps/guest"
