"""meta/execution-environment.yml lists what the controller-side code needs: every import outside Python's
standard library and ansible-core, in plugins/action, plugins/plugin_utils and the collection's modules they
import (followed through), is a requirement in the file it names; and the system file names the SSH client.
"""

import ast
import os
import re
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OURS = "ansible_collections.kernel.kexec."
CONTROLLER_SIDE = ("plugins/action", "plugins/plugin_utils")
# Import names whose distribution is named otherwise; extend when the controller side needs one.
DISTRIBUTIONS = {"yaml": "PyYAML", "jinja2": "Jinja2"}


def ee():
    with open(os.path.join(REPO, "meta", "execution-environment.yml")) as handle:
        return yaml.safe_load(handle)


def requirement_names(path):
    """The distribution names a requirements.txt or bindep file lists, lower case."""
    with open(os.path.join(REPO, path)) as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    return sorted(re.split(r"[\s<>=!~;\[]", line, 1)[0].lower() for line in lines if line)


def imports_of(path):
    """(collection files, other top-level names) that the Python file ``path`` imports."""
    with open(os.path.join(REPO, path)) as handle:
        tree = ast.parse(handle.read())
    ours, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module] + ["%s.%s" % (node.module, alias.name) for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(OURS):
                relative = name[len(OURS):].replace(".", "/")
                ours.update(candidate for candidate in (relative + ".py", relative + "/__init__.py")
                            if os.path.isfile(os.path.join(REPO, candidate)))
            else:
                others.add(name.split(".")[0])
    return ours, others


def controller_imports():
    """(every collection file the controller runs, every other top-level name they import)."""
    todo = [os.path.join(top, name) for top in CONTROLLER_SIDE for name in sorted(os.listdir(os.path.join(REPO, top)))
            if name.endswith(".py")]
    seen, others = set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        ours, found = imports_of(path)
        todo.extend(ours - seen)
        others |= found
    return seen, others


def test_it_names_its_requirement_files_and_they_ship():
    dependencies = ee()["dependencies"]
    assert ee()["version"] == 3
    assert sorted(dependencies) == ["python", "system"]
    for path in dependencies.values():
        assert os.path.isfile(os.path.join(REPO, path)), path
    # In the checkout, build_ignore keeps them; where the collection is installed, being there shows it.
    if os.path.isfile(os.path.join(REPO, "galaxy.yml")):
        with open(os.path.join(REPO, "galaxy.yml")) as handle:
            ignored = yaml.safe_load(handle)["build_ignore"]
        for path in dependencies.values():
            assert not any(path == pattern or path.startswith(pattern.rstrip("/") + "/") for pattern in ignored), path


def test_every_third_party_import_of_the_controller_side_is_listed():
    files, names = controller_imports()
    assert "plugins/action/kexec_reboot.py" in files and "plugins/module_utils/_argspec.py" in files
    third_party = sorted(name for name in names - set(sys.stdlib_module_names) - {"ansible", "__future__"})
    listed = requirement_names(ee()["dependencies"]["python"])
    missing = [name for name in third_party if DISTRIBUTIONS.get(name, name).lower() not in listed]
    assert missing == [], "controller-side imports missing from %s" % ee()["dependencies"]["python"]


def test_the_finder_sees_a_third_party_import(tmp_path, monkeypatch):
    """The scan is not blind: a file importing a third-party package shows it."""
    path = tmp_path / "plugins" / "action" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text("import os\nimport requests.adapters\nfrom ansible.errors import AnsibleError\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
    assert imports_of("plugins/action/probe.py") == (set(), {"os", "requests", "ansible"})


def test_the_ssh_client_is_a_system_requirement_on_both_package_families():
    with open(os.path.join(REPO, ee()["dependencies"]["system"])) as handle:
        entries = [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]
    assert entries == ["openssh-clients [platform:rpm]", "openssh-client [platform:dpkg]"]
