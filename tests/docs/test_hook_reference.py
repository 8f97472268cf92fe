"""The hook reference (docs/hooks.md) is generated from offload/core/hookspecs.py and current.

Every hook specification must have a docstring that documents each of its parameters and its
return value, and say when it is ``firstresult``: that docstring is the plugin author's reference.
After editing hookspecs.py, run ``python docs/gen_hooks.py``.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offload_docs_gen_hooks", DOCS / "gen_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_hooks = _load_generator()
SPECS = gen_hooks.hook_specs()


def test_hooks_are_found():
    names = {spec.__name__ for spec in SPECS}
    assert {
        "offload_backends",
        "offload_submit",
        "offload_status",
        "offload_cancel",
        "offload_job_environment",
    } <= names


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.__name__)
def test_each_hook_is_documented(spec):
    docstring = inspect.getdoc(spec) or ""
    assert docstring.strip(), f"{spec.__name__} has no docstring: document it in hookspecs.py"
    documented = set(re.findall(r"^:param (\w+):", docstring, re.MULTILINE))
    parameters = set(inspect.signature(spec).parameters)
    assert parameters <= documented, (
        f"{spec.__name__}: parameters without a ':param name:' line: {sorted(parameters - documented)}"
    )
    assert documented <= parameters, (
        f"{spec.__name__}: documents parameters it does not have: {sorted(documented - parameters)}"
    )
    assert re.search(r"^:returns?:", docstring, re.MULTILINE), f"{spec.__name__}: no ':return:'"
    if gen_hooks.is_firstresult(spec):
        assert "firstresult" in docstring, (
            f"{spec.__name__} is firstresult: say so in its docstring"
        )


def test_hooks_md_is_current():
    expected = gen_hooks.render()
    current = (DOCS / "hooks.md").read_text()
    assert current == expected, "docs/hooks.md is out of date: run python docs/gen_hooks.py"


def test_the_plugin_guide_names_every_hook():
    guide = (DOCS / "writing-a-plugin.md").read_text()
    missing = [spec.__name__ for spec in SPECS if f"`{spec.__name__}`" not in guide]
    assert not missing, f"docs/writing-a-plugin.md does not mention {missing}"
