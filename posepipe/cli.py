"""``python -m posepipe <stage> ...``: one sub-command per stage, each runnable alone on one file.

Each stage module exposes ``register_cli(subparsers)``, which adds its sub-command and sets
``handler`` to a function taking the parsed arguments. Stage modules import their heavy
dependencies (torch, detectron2) inside functions so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from posepipe import __version__
from posepipe.errors import PosepipeError

STAGE_MODULES = (
    "posepipe.video",
    "posepipe.weights",
    "posepipe.keypoints2d.cli",
    "posepipe.dataset2d",
    "posepipe.lift3d.cli",
    "posepipe.render",
    "posepipe.summary",
    "posepipe.gpu",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posepipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"posepipe {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name in STAGE_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def _exit_on_sigterm(signum, frame) -> None:
    # Schedulers and Snakemake stop jobs with SIGTERM; exiting through SystemExit runs the
    # `finally` blocks, so atomic writes remove their temporary files instead of leaving them.
    raise SystemExit(128 + signum)


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
    return 0
