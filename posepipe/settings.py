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


def typed_overrides(overrides: dict, node: dict | None = None) -> dict:
    """``snakemake --config`` values with the types the schema asks for.

    Snakemake reads a nested ``--config`` value with YAML's BaseLoader, so in
    ``--config frames='{fps: 50}'`` the 50 arrives as the string ``'50'``. Each string at a key whose
    schema type does not allow strings is read again as a YAML scalar (``'50'`` -> 50, ``'null'`` ->
    None, ``'true'`` -> True); a value that stays a string is kept as given, for the schema to
    report. Keys the schema does not know are kept as they are.
    """
    node = schema() if node is None else node
    return _typed(overrides, node)


def _typed(value, node: dict):
    import yaml

    if isinstance(value, dict):
        props = node.get("properties", {})
        return {key: _typed(item, props[key]) if key in props else item for key, item in value.items()}
    if isinstance(value, list):
        items = node.get("items")
        return [_typed(item, items) for item in value] if isinstance(items, dict) else value
    types = node.get("type")
    types = [types] if isinstance(types, str) else types
    if isinstance(value, str) and types and "string" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if parsed is None or isinstance(parsed, (bool, int, float)):
            return parsed
    return value


def schema_error(error) -> tuple[str, str]:
    """(dotted key, reason) of a jsonschema ``ValidationError``; for a key the schema does not know,
    the reason names the nearest known keys ("did you mean", difflib's ratio >= 0.6) and lists the
    keys allowed there."""
    import difflib

    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        where = "" if key == "(top level)" else f" of {key}"
        hints = []
        for name in error.instance:
            if name in known:
                continue
            close = difflib.get_close_matches(str(name), known, n=2, cutoff=0.6)
            tail = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            hints.append(f"{name!r} is not a key{where}{tail}")
        if hints:
            message = "; ".join(hints) + f" (keys{where}: {', '.join(known)})"
    return key, message


def settings_of_run(args: list[str], *, defaults: str | os.PathLike | None = None) -> dict:
    """The configuration a ``snakemake ARGS`` run of the workflow starts from, without running it.

    ``defaults`` (default: the repository's config.yaml), then every ``--configfile`` /
    ``--configfiles`` file in order (nested mappings merged, as Snakemake merges them), then the
    ``--config KEY=VALUE`` entries (read as Snakemake reads them, with the schema's types, see
    :func:`typed_overrides`). Other arguments are ignored; files named in a profile are not seen.
    """
    import yaml
    from snakemake.cli import parse_config

    config = yaml.safe_load(
        Path(defaults or SCHEMA_PATH.parents[2] / "config.yaml").read_text(encoding="utf-8")
    )
    files: list[str] = []
    entries: list[str] = []
    target = None
    for arg in args:
        name, eq, value = arg.partition("=")
        if arg.startswith("-"):
            target = {"--configfile": files, "--configfiles": files, "--config": entries, "-C": entries}.get(
                name
            )
            if target is not None and eq:
                target.append(value)
                target = None if name != "--config" else target
        elif target is not None:
            target.append(arg)
    for path in files:
        if problem := yaml_problem(path):
            raise ValueError(problem)
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a settings file holds a mapping of keys")
        config = _merge(config, data)
    return _merge(config, typed_overrides(parse_config(entries)))


def register_cli(sub) -> None:
    g = sub.add_parser(
        "settings",
        help="print one setting as a snakemake run with the given arguments would see it",
        description="Print the value of KEY (dotted, e.g. keypoints2d.source) from config.yaml, the "
        "--configfile files and the --config values among SNAKEMAKE_ARGS (put them after --); other "
        "arguments are ignored. make run uses it to install detectron2 only when it is needed.",
    )
    g.add_argument("key", metavar="KEY")
    g.add_argument("snakemake_args", nargs=argparse.REMAINDER, metavar="SNAKEMAKE_ARGS")

    def get(args: argparse.Namespace) -> None:
        from posepipe.errors import PosepipeError

        rest = args.snakemake_args[1:] if args.snakemake_args[:1] == ["--"] else args.snakemake_args
        try:
            value = settings_of_run(rest)
        except OSError as exc:
            raise PosepipeError(exc.filename, exc.strerror or str(exc)) from None
        except ValueError as exc:
            raise PosepipeError(None, str(exc)) from None
        for part in args.key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise PosepipeError(None, f"{args.key!r} is not a setting")
            value = value[part]
        print("null" if value is None else value)

    g.set_defaults(handler=get)

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
            key, reason = schema_error(errors[0])
            raise PosepipeError(
                None, f"config {key}: {reason} (see {SCHEMA_PATH.relative_to(SCHEMA_PATH.parents[2])})"
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
