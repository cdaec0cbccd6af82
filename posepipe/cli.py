"""``python -m posepipe <stage> ...``: one sub-command per stage, each runnable alone on one file.

Each stage module exposes ``register_cli(subparsers)``, which adds its sub-command and sets
``handler`` to a function taking the parsed arguments. Stage modules import their heavy
dependencies (torch, detectron2) inside functions so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from posepipe import __version__
from posepipe.errors import PosepipeError
from posepipe.registry import cli_modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posepipe",
        description="One sub-command per stage of the workflow, each runnable alone on one file "
        "(the workflow runs them for you: snakemake, see README.md).",
        epilog="posepipe STAGE --help describes a stage's options.",
    )
    parser.add_argument("--version", action="version", version=f"posepipe {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name in cli_modules():  # stages (posepipe.registry.STAGES) in workflow order, then the tools
        importlib.import_module(name).register_cli(sub)
    return parser


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM (schedulers and Snakemake stop jobs with it)."""


def _exit_on_sigterm(signum, frame) -> None:
    # Exiting through SystemExit runs the `finally` blocks, so atomic writes remove their
    # temporary files instead of leaving them.
    raise Terminated(128 + signum)


def _subject(args: argparse.Namespace) -> str:
    """The file a stage works on, for messages: its first positional path argument."""
    for name, value in vars(args).items():
        if name not in ("stage", "handler") and isinstance(value, str | os.PathLike):
            return os.fspath(value)
    return "?"


def _reason(exc: BaseException) -> str:
    """One line for an unexpected exception: the file it names (OSError) and the cause."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} ({type(exc).__name__}, errno {exc.errno})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        args.handler(args)
    except PosepipeError as exc:
        # Expected input problems: one clear line, no traceback.
        print(f"posepipe {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"posepipe {args.stage}: error: {_subject(args)}: stopped by SIGTERM (killed by the "
              "scheduler or Snakemake; nothing was written)", file=sys.stderr)  # fmt: skip
        raise
    except KeyboardInterrupt:
        print(
            f"posepipe {args.stage}: error: {_subject(args)}: interrupted; nothing was written",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # a bug or a failing system (disk full): traceback for us, one line for the user
        logging.getLogger("posepipe").exception("unexpected failure; traceback follows")
        print(f"posepipe {args.stage}: error: {_subject(args)}: {_reason(exc)}", file=sys.stderr)
        return 1
    return 0
