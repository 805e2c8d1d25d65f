"""The layout page (docs/docsite/rst/layout.rst) names every file of plugins/module_utils, plugin_utils and
doc_fragments, and each package's __init__.py docstring names entry points that exist.
"""

import ast
import importlib
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAYOUT = os.path.join(REPO, "docs", "docsite", "rst", "layout.rst")
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
PACKAGE = "ansible_collections.kernel.kexec.plugins.module_utils"
# ``name`` or ``name.attribute`` in a docstring: a reference, resolved from the package it is in.
REFERENCE = re.compile(r"``([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)``")


def source_files():
    for top in ("module_utils", "plugin_utils", "doc_fragments"):
        for directory, _dirs, files in os.walk(os.path.join(REPO, "plugins", top)):
            for name in sorted(files):
                if name.endswith(".py") and name != "__init__.py":
                    yield os.path.relpath(os.path.join(directory, name), REPO)


def packages():
    return sorted(os.path.relpath(directory, MODULE_UTILS).replace(os.sep, ".")
                  for directory, _dirs, files in os.walk(MODULE_UTILS)
                  if directory != MODULE_UTILS and "__init__.py" in files)


def resolve(package, reference):
    """The object ``reference`` names inside ``package``: the longest importable module, then attributes."""
    parts = reference.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join([package] + parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError("%s names nothing in %s" % (reference, package))


@pytest.mark.parametrize("path", list(source_files()))
def test_the_layout_page_names_each_file(path):
    with open(LAYOUT) as handle:
        assert re.search(r"\b%s\b" % re.escape(os.path.basename(path)), handle.read()), path


@pytest.mark.parametrize("package", packages())
def test_each_package_docstring_names_entry_points_that_exist(package):
    with open(os.path.join(MODULE_UTILS, package.replace(".", os.sep), "__init__.py")) as handle:
        docstring = ast.get_docstring(ast.parse(handle.read()))
    assert docstring, "%s/__init__.py has no docstring saying where to start" % package
    references = REFERENCE.findall(docstring)
    assert references, "%s/__init__.py names no entry point" % package
    for reference in references:
        resolve("%s.%s" % (PACKAGE, package), reference)


def unit_test_files():
    """Every test file below tests/unit/plugins, relative to tests/unit."""
    tests = os.path.join(REPO, "tests", "unit")
    for directory, _dirs, files in os.walk(os.path.join(tests, "plugins")):
        for name in sorted(files):
            if name.startswith("test_") and name.endswith(".py"):
                yield os.path.relpath(os.path.join(directory, name), tests)


def source_of(test_path):
    """The source file a test file follows: the same directory below the repository, and a name that is
    the test's name less ``test_`` (or a leading part of it, for a source tested in several files by topic),
    with or without the private ``_`` prefix."""
    directory = os.path.join(REPO, os.path.dirname(test_path))
    words = os.path.basename(test_path)[len("test_"):-len(".py")].split("_")
    for count in range(len(words), 0, -1):
        stem = "_".join(words[:count])
        for name in (stem, "_" + stem):
            if os.path.isfile(os.path.join(directory, name + ".py")):
                return os.path.relpath(os.path.join(directory, name + ".py"), REPO)
    return None


@pytest.mark.parametrize("path", list(unit_test_files()))
def test_each_unit_test_file_follows_a_source_file(path):
    assert source_of(path), "%s: no source file of that name in %s" % (path, os.path.dirname(path))
