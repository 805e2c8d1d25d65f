"""Fake host trees for each init system: what PID 1 leaves in /run and /proc, and its programs.

Everything is written below the tree's root (a test's tmp_path); nothing runs.
"""

import os


class Tree:
    """A host tree below tmp_path with what each init system leaves in it."""

    def __init__(self, root):
        self.root = str(root)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def write(self, rel, text=""):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w") as handle:
            handle.write(text)
        return self

    def program(self, rel):
        self.write(rel, "#!/bin/sh\n")
        os.chmod(self.path(rel), 0o755)
        return self

    def fifo(self, rel):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        os.mkfifo(self.path(rel))
        return self

    def pid1(self, comm, exe=None):
        self.write("proc/1/comm", comm + "\n")
        if exe:
            os.symlink(exe, self.path("proc/1/exe"))
        return self

    def systemd(self):
        os.makedirs(self.path("run/systemd/system"))
        return self

    def openrc_init(self):
        return self.pid1("init").fifo("run/openrc/init.ctl").program("sbin/openrc-shutdown")

    def runit(self, kexec_step=True, kexec=True):
        self.pid1("runit").program("usr/bin/runit-init")
        if kexec_step:
            self.write("etc/runit/shutdown.d/90-kexec.sh", "kexec -e\n")
        if kexec:
            self.program("usr/bin/kexec")
        return self

    def sysvinit(self, kexec_script=True, kexec=True):
        self.pid1("init").fifo("run/initctl").program("sbin/telinit")
        if kexec_script:
            self.write("etc/init.d/kexec", "/sbin/kexec -e\n")
            os.makedirs(self.path("etc/rc6.d"))
            os.symlink("../init.d/kexec", self.path("etc/rc6.d/K01kexec"))
        if kexec:
            self.program("sbin/kexec")
        return self

    def busybox(self):
        return self.pid1("init", exe="/bin/busybox").program("sbin/reboot")
