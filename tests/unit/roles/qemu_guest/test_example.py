"""The docs page on QEMU test hosts shows the example project's files (docs/examples/qemu_scenario) as they are:
each ``code-block`` with a ``:caption:`` naming a file of the project holds that file, byte for byte."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
PAGE = os.path.join(REPO, "docs", "docsite", "rst", "qemu_test_hosts.rst")
EXAMPLE = os.path.join(REPO, "docs", "examples", "qemu_scenario")
BLOCK = re.compile(r"^\.\. code-block:: \w+\n   :caption: (?P<path>\S+)\n\n(?P<body>(?:   .*\n|\n)+)", re.MULTILINE)


def shown_files():
    with open(PAGE) as handle:
        text = handle.read()
    for match in BLOCK.finditer(text):
        body = "".join(line[3:] + "\n" for line in match.group("body").rstrip("\n").split("\n"))
        yield match.group("path"), body


@pytest.mark.skipif(not os.path.isdir(EXAMPLE), reason="the example is not in the built collection (build_ignore)")
def test_the_page_shows_the_example_files_as_they_are():
    shown = dict(shown_files())
    assert set(shown) == {"extensions/molecule/default/" + name
                          for name in ("molecule.yml", "create.yml", "destroy.yml", "converge.yml")}
    for path, body in shown.items():
        with open(os.path.join(EXAMPLE, path)) as handle:
            assert body == handle.read(), "%s on the page differs from the file" % path
