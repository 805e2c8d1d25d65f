"""Every role under roles/ has a README.md, and its variables table matches the role's
meta/argument_specs.yml: the same variables, defaults and choices (run by tests/run import).

Usage: python tests/role_readmes.py [ROLES_DIR]; prints what does not match and exits 1 if anything.
"""

import glob
import os
import re
import sys

import yaml

ROW = re.compile(r"^\|\s*`(\w+)`\s*\|(.*)\|\s*$")


def table_rows(text):
    """The table rows whose first cell is a `name`, as {name: [the other cells]}."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def literal(value):
    """A value as the README writes it: in backticks, YAML spelling for booleans."""
    return "`%s`" % (str(value).lower() if isinstance(value, bool) else value)


def problems(role):
    """What is wrong with ROLE's README, as a list of sentences."""
    readme = os.path.join(role, "README.md")
    if not os.path.isfile(readme):
        return ["no README.md"]
    specs = os.path.join(role, "meta", "argument_specs.yml")
    if not os.path.isfile(specs):
        return []
    with open(specs, encoding="utf-8") as stream:
        options = yaml.safe_load(stream)["argument_specs"]["main"].get("options") or {}
    with open(readme, encoding="utf-8") as stream:
        rows = table_rows(stream.read())
    found = []
    for name, spec in options.items():
        row = rows.pop(name, None)
        if row is None:
            found.append("%s is missing from the variables table" % name)
            continue
        default = literal(spec["default"]) if "default" in spec else ""
        choices = ", ".join(literal(choice) for choice in spec.get("choices", []))
        if row[:2] != [default, choices]:
            found.append("%s: the table says default %r, choices %r; meta/argument_specs.yml says %r, %r"
                         % (name, row[0], row[1] if len(row) > 1 else "", default, choices))
    found.extend("%s is in the variables table but not in meta/argument_specs.yml" % name for name in rows)
    return found


def main(roles_dir):
    failed = False
    for role in sorted(glob.glob(os.path.join(roles_dir, "*", ""))):
        for problem in problems(role):
            print("%sREADME.md: %s" % (role, problem))
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "roles"))
