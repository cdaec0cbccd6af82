"""``python -m posepipe lift3d``: dataset2d.npz -> pose3d.npz + pose3d.csv (torch is imported on use)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from posepipe.settings import add_option, settings_from_args


def _device(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto, cpu, cuda or cuda:N")
    return text


def _run(args: argparse.Namespace) -> None:
    from posepipe.lift3d.stage import Lift3DSettings, run_lift3d

    run_lift3d(
        args.dataset2d,
        checkpoint_path=args.checkpoint,
        out=args.out,
        csv=args.csv,
        timeline=args.timeline,
        fps=args.fps,
        subject=args.subject,
        settings=settings_from_args(Lift3DSettings, args),
    )


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "lift3d",
        help="lift 2D keypoints to 3D with the VideoPose3D temporal CNN",
        description="Lift a dataset2d.npz to camera-space 3D joints (Human3.6M order, metres).",
    )
    p.add_argument("dataset2d", type=Path, metavar="DATASET2D_NPZ")
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="VideoPose3D checkpoint (.bin) or state dict"
    )
    p.add_argument("--out", type=Path, required=True, help="pose3d.npz to write")
    p.add_argument("--csv", type=Path, default=None, help="tidy pose3d.csv to write")
    p.add_argument("--timeline", type=Path, default=None, help="frames/timeline.json (fps, frame_count)")
    p.add_argument("--fps", type=float, default=None, help="frame rate when no timeline is given")
    add_option(
        p, "--causal", key="lift3d.causal",
        help="the checkpoint uses causal convolutions (not recorded in the weights)",
    )  # fmt: skip
    add_option(
        p, "--flip", key="lift3d.flip_augmentation", dest="flip_augmentation",
        help="average with a horizontally mirrored pass (upstream's test-time augmentation)",
    )  # fmt: skip
    add_option(
        p, "--device", key="lift3d.device", type=_device, help="auto (CUDA if present), cpu, cuda or cuda:N"
    )
    add_option(
        p, "--window", key="lift3d.window", type=int,
        help="output frames per model pass (memory bound); 0: whole sequence at once",
    )  # fmt: skip
    add_option(
        p, "--model-fps", key="lift3d.model_fps", type=float,
        help="lift at this frame rate (2D resampled to it, 3D back to the timeline); unset: as is",
    )  # fmt: skip
    p.add_argument("--subject", default=None, help="subject to lift when the file holds several")
    p.set_defaults(handler=_run)
