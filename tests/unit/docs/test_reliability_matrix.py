"""The bad inputs and faults matrix (docs/docsite/rst/reliability.rst, its only copy) names tests that exist:
each unit test is defined in the file it names, each molecule task or block is in its scenario file, and
the counts the page gives are its rows.

Whether a cited test fails without the behaviour its row describes is checked by hand (mutation checks);
this only keeps the citations from going stale.
"""

import os
import re

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RST = os.path.join(REPO, "docs", "docsite", "rst", "reliability.rst")
CITED_PATH = r"(?:tests|extensions/molecule)/"
CITATION = re.compile(r"``(%s[^`]+)``" % CITED_PATH)


def read(path):
    with open(path) as handle:
        return handle.read()


def rst_sections():
    """[(section title, count its text gives, [(title, what, [citations])])] of reliability.rst."""
    sections = []
    lines = read(RST).splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^-+$", line) and index and lines[index - 1].strip():
            sections.append([lines[index - 1], None, []])
        elif sections and sections[-1][1] is None and re.search(r"(\d+) rows\.$", line):
            sections[-1][1] = int(re.search(r"(\d+) rows\.$", line).group(1))
        elif line.startswith("   * - "):
            sections[-1][2].append([line[len("   * - "):], None, []])
        elif line.startswith("     - ") and sections and sections[-1][2] and sections[-1][2][-1][1] is None:
            sections[-1][2][-1][1] = line[len("     - "):]
        elif sections and sections[-1][2]:
            sections[-1][2][-1][2].extend(CITATION.findall(line))
    for section in sections:
        assert section[2][0][:2] == ["Bad input or fault", "What the collection does"]
        del section[2][0]
    return sections


def rst_rows():
    return [row for _title, _count, rows in rst_sections() for row in rows]


def unit_citations():
    return sorted(set(cited for _title, _what, tests in rst_rows() for cited in tests if cited.startswith("tests/")))


def molecule_citations():
    return sorted(set(cited for _title, _what, tests in rst_rows() for cited in tests if cited.startswith("extensions/molecule/")))


def test_every_row_cites_a_test():
    rows = rst_rows()
    assert rows and all(title and what and tests for title, what, tests in rows)


def test_the_counts_the_text_gives_are_the_rows():
    sections = rst_sections()
    for title, count, rows in sections:
        assert count == len(rows), title
    total = sum(len(rows) for _title, _count, rows in sections)
    assert re.search(r"^%d rows, " % total, read(RST), re.M)


@pytest.mark.parametrize("cited", unit_citations())
def test_each_cited_unit_test_exists(cited):
    path, name = cited.split("::")
    name = name.split("[")[0]
    assert re.search(r"^def %s\(" % re.escape(name), read(os.path.join(REPO, path)), re.M), cited


def task_names(items):
    for item in items or []:
        if isinstance(item, dict):
            if "name" in item:
                yield item["name"]
            for key in ("block", "rescue", "always", "tasks"):
                yield from task_names(item.get(key))


def name_pattern(name):
    """A task name as a regular expression: a Jinja expression in it ("...: {{ faults_grub }}", a task
    file included in a loop) stands for any text, so the matrix can cite each rendered name."""
    parts = re.split(r"\{\{.*?\}\}", name)
    return re.compile("^%s$" % ".+".join(re.escape(part) for part in parts))


@pytest.mark.parametrize("cited", molecule_citations())
def test_each_cited_molecule_task_exists(cited):
    path, name = cited.split("::")
    names = task_names(yaml.safe_load(read(os.path.join(REPO, path))))
    assert any(name_pattern(task).match(name) for task in names), cited
