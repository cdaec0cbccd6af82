"""One source for every setting's default: the workflow's config schema.

``workflow/schemas/config.schema.yaml`` holds the default of every key of ``config.yaml``; the
workflow fills them in with ``validate(..., set_default=True)``. The stage command lines take
their defaults from the same file through :func:`add_option`, so running a stage by hand with no
options does what the workflow does with the default configuration. Each option made that way
carries its key (``action.config_key``), which is how the tests check the two against each other.

Unset is spelled one way: an option whose setting is null has the default None and is omitted
from a rule's command line.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def schema() -> dict:
    """The parsed config schema (read once per process)."""
    import yaml

    try:
        return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    except OSError as exc:  # a broken install: the package was copied without the workflow beside it
        raise RuntimeError(
            f"{SCHEMA_PATH}: cannot read the config schema ({exc.strerror}); posepipe runs from its "
            "repository folder (the workflow and the package side by side)"
        ) from exc


def schema_node(key: str) -> dict:
    """The schema of a dotted config key such as ``"render.audio"``."""
    node = schema()
    for part in key.split("."):
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"{key!r} is not a key of {SCHEMA_PATH.name}") from None
    return node


def schema_default(key: str):
    """The default of a dotted config key, as the workflow fills it in."""
    node = schema_node(key)
    if "default" not in node:
        raise KeyError(f"{key!r} has no default in {SCHEMA_PATH.name}")
    return node["default"]


def leaf_keys(section: str) -> list[str]:
    """Dotted keys of the settings (not sub-objects) under ``section``."""
    props = schema_node(section).get("properties", {})
    return [f"{section}.{name}" for name, node in props.items() if node.get("type") != "object"]


def add_option(parser, *flags: str, key: str, help: str = "", **kwargs) -> argparse.Action:  # noqa: A002
    """``parser.add_argument(*flags, default=<schema default of key>, ...)`` that records ``key``.

    Booleans become ``--x/--no-x``; the help text ends with the default and the config key.
    """
    default = schema_default(key)
    if isinstance(default, bool) and "action" not in kwargs:
        kwargs["action"] = argparse.BooleanOptionalAction
    shown = "unset" if default is None else "%(default)s"
    action = parser.add_argument(
        *flags, default=default, help=f"{help} (default: {shown}; config {key})".lstrip(), **kwargs
    )
    action.config_key = key
    return action


def command_options(values: dict, keys, *, flags: dict | None = None) -> str:
    """The command-line options of ``keys`` of one config section ``values``, in the order given:
    ``--key-name VALUE`` (strings shell-quoted), ``--key``/``--no-key`` for booleans; an unset
    (None) value is left out. ``flags`` maps a key to its option where the names differ. The rules
    build every stage's options with this, so a config key reaches its stage one way."""
    import shlex

    parts = []
    for key in keys:
        value = values[key]
        flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
        if value is None:
            continue
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        else:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def settings_from_args(cls, args, **extra):
    """A settings object (frozen dataclass) from parsed options: each field from the attribute of
    ``args`` of the same name, or from ``extra``."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(cls)]
    return cls(**{name: extra[name] if name in extra else getattr(args, name) for name in names})


def yaml_problem(path: str | os.PathLike) -> str | None:
    """The YAML syntax error of the file ``path`` as one line with its line and column, or None."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            problem += f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
        return f"{os.fspath(path)}{where}: YAML syntax error: {problem}"
    return None


def register_cli(sub) -> None:
    p = sub.add_parser(
        "check-config",
        help="check settings files (YAML syntax with line and column, then the config schema)",
        description="Snakemake reads a --configfile before the workflow runs and says only 'not valid "
        "JSON or YAML' about a syntax error; this names the line and column, and the key of a bad value.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="SETTINGS_YAML")

    def run(args: argparse.Namespace) -> None:
        import jsonschema
        import yaml

        from posepipe.errors import PosepipeError

        merged: dict = {}
        for path in args.files:
            if problem := yaml_problem(path):
                raise PosepipeError(None, problem)
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise PosepipeError(path, "a settings file holds a mapping of keys")
            merged = _merge(merged, data)
        errors = sorted(
            jsonschema.Draft202012Validator(schema()).iter_errors(merged), key=lambda e: list(e.path)
        )
        if errors:
            first = errors[0]
            key = ".".join(str(p) for p in first.absolute_path) or "(top level)"
            raise PosepipeError(
                None, f"config {key}: {first.message} (see {SCHEMA_PATH.relative_to(SCHEMA_PATH.parents[2])})"
            )
        print(f"{', '.join(map(str, args.files))}: fine")

    p.set_defaults(handler=run)


def _merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, nested mappings merged (as Snakemake merges config files)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
