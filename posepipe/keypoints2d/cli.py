"""Stage ``keypoints2d``: 2D keypoints for one timeline, from the configured 2D source.

    python -m posepipe keypoints2d frames/timeline.json --out keypoints2d.npz --source detectron2 \\
        --config COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml \\
        --weights resources/models/keypoint_rcnn_X_101_32x8d_FPN_3x.pkl
    python -m posepipe keypoints2d frames/timeline.json --out keypoints2d.npz \\
        --source file --input video.d2.npz

The sources are listed in :data:`posepipe.registry.SOURCES2D`; each source module provides
``add_source_options(group)`` (its own options, in a group named after it) and
``run_source(args)`` (write ``args.out`` for ``args.timeline``). Heavy modules (torch, detectron2)
are imported by ``run_source``, so ``--help`` stays fast and the ``file`` source works without
detectron2.
"""

from __future__ import annotations

import argparse
import importlib

from posepipe.artefacts.keypoints2d import join_ranges, load_keypoints2d, save_keypoints2d
from posepipe.artefacts.timeline import load_timeline_header
from posepipe.registry import SOURCES2D
from posepipe.settings import add_option
from posepipe.shards import range_arg


def run_keypoints2d(args: argparse.Namespace) -> None:
    """The ``keypoints2d`` stage: the source named by ``args.source`` writes ``args.out``."""
    importlib.import_module(SOURCES2D[args.source].module).run_source(args)


def run_keypoints2d_gather(shards, *, timeline_json, out) -> None:
    """Join a video's keypoints2d shards into its keypoints2d.npz (the arrays of an unsharded run)."""
    count = int(load_timeline_header(timeline_json)["frame_count"])
    kp = join_ranges([load_keypoints2d(p) for p in shards], frame_count=count, path=out)
    save_keypoints2d(out, kp)


def register_cli(sub) -> None:
    p = sub.add_parser("keypoints2d", help="every person's 17 COCO keypoints in every frame of a timeline")
    p.add_argument("timeline", help="frames/timeline.json")
    p.add_argument("--out", required=True, help="keypoints2d.npz")
    add_option(
        p, "--source", key="keypoints2d.source", choices=tuple(SOURCES2D), help="where keypoints come from"
    )
    add_option(
        p, "--score-threshold", key="keypoints2d.score_threshold", type=float,
        help="persons with a lower box score are dropped, detected or imported",
    )  # fmt: skip
    for name, source in SOURCES2D.items():
        importlib.import_module(source.module).add_source_options(p.add_argument_group(f"--source {name}"))
    p.add_argument(
        "--frames", type=range_arg, default=None, metavar="FIRST:STOP",
        help="only this shard of the timeline (frames FIRST..STOP-1); omit for all",
    )  # fmt: skip
    p.set_defaults(handler=run_keypoints2d)

    g = sub.add_parser("keypoints2d-gather", help="join keypoints2d shards into the video's keypoints2d.npz")
    g.add_argument("shards", nargs="+", help="keypoints2d shard files (any order)")
    g.add_argument("--timeline", required=True, help="frames/timeline.json")
    g.add_argument("--out", required=True, help="keypoints2d.npz")
    g.set_defaults(handler=lambda a: run_keypoints2d_gather(a.shards, timeline_json=a.timeline, out=a.out))
