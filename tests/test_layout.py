"""The package's floors, read from its import statements (ast, nothing imported but the registry).

- A stage module (a module or package named by a stage or backend of :mod:`posepipe.registry`)
  imports artefacts and the ground floor only, never another stage.
- An artefact module imports the ground floor only (no stage, no other artefact's stage logic).
- Every entry point, CLI module, 2D source, lifter and export writer the registry names exists.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from posepipe import registry

PACKAGE = Path(registry.__file__).resolve().parent
# Ground floor: helpers any floor may import. shards.py is here (range arithmetic every sharded
# stage uses; its plan sub-command imports artefacts only).
GROUND = {
    "posepipe", "posepipe.atomic", "posepipe.errors", "posepipe.safeload", "posepipe.settings",
    "posepipe.skeleton", "posepipe.progress", "posepipe.registry", "posepipe.weights", "posepipe.gpu",
    "posepipe.conditioning", "posepipe.decode", "posepipe.benchmarks", "posepipe.shards", "posepipe.report",
    "posepipe.inputs", "posepipe.jobenv", "posepipe.runlock", "posepipe.camera", "posepipe.calibrate",
}  # fmt: skip
GROUND |= {"posepipe.biomech", "posepipe.biomech.angles"}  # pure numerics on joint arrays
GROUND |= {"posepipe.objectstore"}  # S3 listing for posepipe.inputs


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """posepipe modules imported by the file (module-level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "posepipe":  # from posepipe import video
                found |= {
                    f"posepipe.{a.name}"
                    for a in node.names
                    if (PACKAGE / f"{a.name}.py").exists() or (PACKAGE / a.name).is_dir()
                }
            elif node.module.startswith("posepipe."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("posepipe.")}
    return found


def stage_of(module: str) -> str | None:
    """The stage (room) a module belongs to: its first package level under posepipe
    (posepipe.lift3d.infer -> posepipe.lift3d), unless it is ground floor or an artefact."""
    if module in GROUND or module == "posepipe.artefacts" or module.startswith("posepipe.artefacts."):
        return None
    if module in ("posepipe.cli", "posepipe.testing", "posepipe.warm", "posepipe.__main__"):
        return None  # the wiring: built from the registry, imports stages by name on purpose
    parts = module.split(".")
    return ".".join(parts[:2])


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_floor():
    stages = {stage_of(m) for m in MODULES} - {None}
    named = {".".join(s.cli.split(".")[:2]) for s in registry.STAGES}
    named |= {".".join(s.module.split(".")[:2]) for s in registry.SOURCES2D.values()}
    named |= {".".join(s.module.split(".")[:2]) for s in registry.LIFTERS.values()}
    # Every room is a registered stage (or a backend's package): nothing floats between floors.
    assert stages <= named, f"modules outside any stage and not ground floor: {sorted(stages - named)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if stage_of(m)))
def test_stage_imports_no_other_stage(module):
    own = stage_of(module)
    others = sorted(m for m in imports(MODULES[module]) if stage_of(m) not in (None, own))
    assert not others, f"{module} (stage {own}) imports other stages: {others}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("posepipe.artefacts.")))
def test_artefact_imports_ground_floor_only(module):
    bad = sorted(m for m in imports(MODULES[module]) if stage_of(m) is not None or m in ("posepipe.cli",))
    assert not bad, f"{module} imports stage code: {bad}"
    tree = ast.parse(MODULES[module].read_text())
    assert ast.get_docstring(tree), f"{module}: the file format belongs in the module docstring"
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert any(n.startswith("save_") for n in names) and any(n.startswith("load_") for n in names), module
    assert "register_cli" not in names, f"{module}: no CLI in an artefact module"


def test_ground_floor_imports_no_stage():
    for module in sorted(GROUND & set(MODULES)):
        bad = sorted(m for m in imports(MODULES[module]) if stage_of(m) is not None)
        assert not bad, f"ground-floor {module} imports stage code: {bad}"


def test_registry_names_resolve():
    for stage in registry.STAGES:
        assert callable(registry.entry_point(stage.entry)), stage.entry
        assert stage.entry.split(":")[1].startswith(("run_", "write_summary")), stage.entry
        assert hasattr(importlib.import_module(stage.cli), "register_cli"), stage.cli
    for source in registry.SOURCES2D.values():
        module = importlib.import_module(source.module)
        assert callable(module.run_source) and callable(module.add_source_options), source.name
        assert source.input in ("weights", "onnx", "keypoints"), source.name
    for fmt in registry.EXPORT_FORMATS.values():
        assert callable(registry.entry_point(fmt.writer)), fmt.writer
    from posepipe.weights import PUBLISHED

    for lifter in registry.LIFTERS.values():
        assert lifter.weights in PUBLISHED, lifter.weights
        module = importlib.import_module(lifter.module)
        for name in ("build", "receptive_field", "infer"):
            assert callable(getattr(module, name)), f"{lifter.module}.{name}"


def test_schema_lists_what_the_registry_registers():
    from posepipe.settings import schema_node

    assert list(schema_node("keypoints2d.source")["enum"]) == list(registry.SOURCES2D)
    assert list(schema_node("exports")["items"]["enum"]) == list(registry.EXPORT_FORMATS)
    sections = {stage.section for stage in registry.STAGES if stage.section}
    for section in sections:
        assert schema_node(section), f"registry names config section {section!r}, the schema has none"
    for source in registry.SOURCES2D.values():
        for key in source.options:
            schema_node(f"keypoints2d.{key}")  # raises for a key the schema lacks
