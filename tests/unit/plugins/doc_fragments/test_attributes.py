"""The attribute fragments: every module extends them, and the action group they name is meta/runtime.yml's."""

import importlib
import os

import pytest
import yaml

from ansible_collections.kernel.kexec.plugins.doc_fragments.attributes import ModuleDocFragment

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(COLLECTION, "plugins", "modules")) if name.endswith(".py"))
FRAGMENTS = ["kernel.kexec.attributes", "kernel.kexec.attributes.platform", "kernel.kexec.attributes.action_group"]


def fragment(name):
    return yaml.safe_load(getattr(ModuleDocFragment, name))["attributes"]


def module_doc(name):
    module = importlib.import_module("ansible_collections.kernel.kexec.plugins.modules." + name)
    return yaml.safe_load(module.DOCUMENTATION)


def extended_attributes(doc):
    """The attributes the fragments a module extends define."""
    defined = {}
    for slug in doc["extends_documentation_fragment"]:
        if slug.startswith("kernel.kexec.attributes"):
            defined.update(fragment(slug.split(".")[3].upper() if slug.count(".") == 3 else "DOCUMENTATION"))
    return defined


def test_the_action_group_is_the_one_meta_runtime_lists():
    with open(os.path.join(COLLECTION, "meta", "runtime.yml")) as handle:
        groups = yaml.safe_load(handle)["action_groups"]
    assert fragment("ACTION_GROUP")["action_group"]["membership"] == ["kernel.kexec.%s" % name for name in groups]


@pytest.mark.parametrize("name", MODULES)
def test_each_module_extends_the_fragments_and_states_only_its_support(name):
    doc = module_doc(name)
    assert set(FRAGMENTS) <= set(doc["extends_documentation_fragment"])
    defined = extended_attributes(doc)
    for attribute, stated in doc["attributes"].items():
        assert attribute in defined, "%s: attribute %s is in no fragment it extends" % (name, attribute)
        assert "description" not in stated, "%s: %s's meaning is the fragment's to say" % (name, attribute)
    for attribute, meaning in defined.items():
        assert "support" in meaning or "support" in doc["attributes"].get(attribute, {}), \
            "%s states no support for %s" % (name, attribute)
