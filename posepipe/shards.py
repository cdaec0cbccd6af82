"""Frame-range shards of one video (``shard_frames``): the plan file and how ranges are cut.

``results/{video}/shards.json``: ``{"stage": "shards", "stage_version", "frame_count",
"shard_frames", "ranges": [[first, stop], ...]}``: contiguous timeline frame ranges (stop
exclusive) that tile ``[0, frame_count)``, each ``shard_frames`` long (rounded up to a multiple of
``align``, the detector's batch size) but the last. The workflow
makes it with a checkpoint once the frame timeline exists; keypoints2d and render then run one
job per range and a gather job joins them into the files an unsharded run writes.

Why ``align``: the detector runs frames in batches of consecutive frames from the start of its
range, and a batch of 4 gives results that differ from batches of 1 or 3 in the last float bits
(~1e-5 px: other summation orders). With shards cut at multiples of the batch size, every shard's
batches are the unsharded run's batches, so the joined arrays are the same to the bit.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from posepipe.atomic import write_json
from posepipe.errors import PosepipeError
from posepipe.stages import STAGE_VERSIONS

STAGE = "shards"


def plan_ranges(frame_count: int, shard_frames: int, *, align: int = 1) -> list[tuple[int, int]]:
    """Contiguous ``[first, stop)`` ranges of ``shard_frames`` frames, rounded up to a multiple of
    ``align``, tiling the timeline (one range when ``shard_frames`` is 0 or not smaller than it)."""
    if frame_count <= 0:
        raise ValueError("a timeline has at least one frame")
    align = max(1, align)
    size = frame_count if shard_frames <= 0 else -(-shard_frames // align) * align
    return [(first, min(first + size, frame_count)) for first in range(0, frame_count, size)]


def output_range(first: int, stop: int, *, every: int, count: int) -> tuple[int, int]:
    """Render output frames made from the timeline frames ``[first, stop)``: output frame i is timeline
    frame ``i * every``; ``count`` output frames in all (``max_frames``). May be empty (a == b)."""
    a = min(-(-first // every), count)
    b = min(-(-stop // every), count)
    return a, b


def range_arg(text: str) -> tuple[int, int]:
    """``FIRST:STOP`` on a command line (frames, stop exclusive), for argparse ``type=``."""
    try:
        first, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIRST:STOP, e.g. 0:9000") from None
    if not 0 <= first < stop:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= FIRST < STOP")
    return first, stop


def write_shards(
    timeline_json: str | os.PathLike, out: str | os.PathLike, *, shard_frames: int, align: int = 1
) -> dict:
    from posepipe.video import load_timeline_header

    count = int(load_timeline_header(timeline_json)["frame_count"])
    plan = {
        "stage": STAGE, "stage_version": STAGE_VERSIONS[STAGE], "frame_count": count, "shard_frames": shard_frames,
        "align": align, "ranges": [list(r) for r in plan_ranges(count, shard_frames, align=align)],
    }  # fmt: skip
    write_json(out, plan)
    return plan


def load_shards(path: str | os.PathLike) -> list[tuple[int, int]]:
    """The ranges of a shards.json (checked to tile its frame count)."""
    try:
        plan = json.loads(Path(path).read_text())
        ranges = [(int(a), int(b)) for a, b in plan["ranges"]]
        count = int(plan["frame_count"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PosepipeError(path, f"cannot read the shard plan ({type(exc).__name__}: {exc})") from exc
    if (
        not ranges
        or ranges[0][0] != 0
        or ranges[-1][1] != count
        or any(
            a >= b or b != c
            for (a, b), (c, _) in zip(ranges, ranges[1:] + [(ranges[-1][1], None)], strict=True)
        )
    ):
        raise PosepipeError(path, "its ranges do not tile the timeline")
    return ranges


def register_cli(sub) -> None:
    p = sub.add_parser("shards", help="cut a timeline into frame-range shards (shards.json)")
    p.add_argument("timeline", type=Path, metavar="TIMELINE_JSON")
    p.add_argument("--frames", type=int, required=True, help="frames per shard (0: one shard)")
    p.add_argument("--out", type=Path, required=True, help="shards.json")
    p.add_argument(
        "--align", type=int, default=1, help="shard lengths are multiples of this (the batch size)"
    )

    def run(args: argparse.Namespace) -> None:
        write_shards(args.timeline, args.out, shard_frames=args.frames, align=args.align)

    p.set_defaults(handler=run)
