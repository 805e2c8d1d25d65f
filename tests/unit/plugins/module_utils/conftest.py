"""Guard for every module_utils test: no real command runs.

A bootloader backend left with its default runner would run real tools
(grub-mkconfig, grubby, zipl) on this machine: make that fail the test instead.
bootloader_fakes keeps the real subprocess.run for the one program the GRUB
tests may run, sh, to source fake defaults files.
"""

import subprocess

import pytest


@pytest.fixture(autouse=True)
def no_real_commands(monkeypatch):
    def refuse(argv, *args, **kwargs):
        raise AssertionError("a real command was about to run: %r; pass a fake runner" % (argv,))
    monkeypatch.setattr(subprocess, "run", refuse)
