"""No function of a stage carries a literal default that disagrees with the config schema.

Walks the signatures of every public function of the stage modules (those of the registry's
stages and 2D sources) and of their settings dataclasses: a parameter named like a key of the
stage's config section (``keypoints2d.score_threshold`` for ``score_threshold`` in a keypoints2d
module) must default to the schema's value, or have no default, or None when the schema's
default is None. The schema is the one place a default is written.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

from posepipe import registry
from posepipe.settings import leaf_keys, schema_default, schema_node

# Parameters whose name matches a config key but mean something else there (none so far).
UNRELATED: set[tuple[str, str]] = set()


def stage_modules():
    """(module name, config section) of every module of each stage and 2D source with a section."""
    seen = {}
    for stage in registry.STAGES:
        if not stage.section:
            continue
        package = stage.entry.split(":")[0].rsplit(".", 1)[0] if stage.entry.count(".") > 1 else None
        names = {stage.entry.split(":")[0], stage.cli}
        if package and package != "posepipe":
            pkg = importlib.import_module(package)
            if hasattr(pkg, "__path__"):
                names |= {f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)}
        for name in names:
            seen.setdefault(name, stage.section)
    for source in registry.SOURCES2D.values():
        seen.setdefault(source.module, "keypoints2d")
    return sorted(seen.items())


def defaults_of(module):
    """(where, parameter, default) of every public function and dataclass field of ``module``.

    A settings dataclass that is the field of another (a config sub-section, such as ``rtmlib`` of
    Keypoints2DSettings) yields its fields dotted with that field's name (``rtmlib.model``)."""
    public = {
        name: obj for name, obj in vars(module).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    }  # fmt: skip
    nested = {
        f.default_factory: f.name
        for obj in public.values() if dataclasses.is_dataclass(obj)
        for f in dataclasses.fields(obj) if dataclasses.is_dataclass(f.default_factory)
    }  # fmt: skip
    for name, obj in public.items():
        if dataclasses.is_dataclass(obj):
            prefix = f"{nested[obj]}." if obj in nested else ""
            for f in dataclasses.fields(obj):
                if f.default is not dataclasses.MISSING:
                    yield f"{name}.{f.name}", prefix + f.name, f.default
        elif inspect.isfunction(obj):
            for p in inspect.signature(obj).parameters.values():
                if p.default is not inspect.Parameter.empty:
                    yield f"{name}({p.name})", p.name, p.default


@pytest.mark.parametrize(("module", "section"), stage_modules())
def test_literal_defaults_agree_with_the_schema(module, section):
    keys = {key.split(".")[-1] for key in leaf_keys(section)}
    subsections = {
        name for name, node in schema_node(section).get("properties", {}).items() if node.get("type") == "object"
    }  # fmt: skip
    keys |= {key.split(".", 1)[1] for sub in subsections for key in leaf_keys(f"{section}.{sub}")}
    wrong = []
    for where, name, default in defaults_of(importlib.import_module(module)):
        if name not in keys or (module, name) in UNRELATED:
            continue
        expected = schema_default(f"{section}.{name}")
        if default is None and expected is not None:
            continue  # None: "take the schema's default" inside the function
        if default != expected:
            wrong.append(f"{where} = {default!r}, schema {section}.{name} = {expected!r}")
    assert not wrong, f"{module}: " + "; ".join(wrong)
