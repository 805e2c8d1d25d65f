"""Fixtures the _kexec tests share."""

import pytest

from .legacy import legacy_fakes


@pytest.fixture
def legacy_host(host):
    """The fake host (BIOS, x86_64, no lockdown), with what the legacy loader reads and a kernel with a
    full setup header."""
    legacy_fakes.host(host.root)
    legacy_fakes.bzimage(host.kernel())
    return host
