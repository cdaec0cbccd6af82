"""Frame-range shards of one video (``shard_frames``): all range arithmetic, and the plan stage.

The plan (``results/{video}/shards.json``, :mod:`posepipe.artefacts.shards`) holds contiguous
timeline frame ranges (stop exclusive) that tile ``[0, frame_count)``, each ``shard_frames`` long
(rounded up to a multiple of ``align``, the detector's batch size) but the last. The workflow
makes it with a checkpoint once the frame timeline exists; keypoints2d and render then run one
job per range and a gather job joins them into the files an unsharded run writes.

Why ``align``: the detector runs frames in batches of consecutive frames from the start of its
range, and a batch of 4 gives results that differ from batches of 1 or 3 in the last float bits
(~1e-5 px: other summation orders). With shards cut at multiples of the batch size, every shard's
batches are the unsharded run's batches, so the joined arrays are the same to the bit.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from posepipe.errors import PosepipeError


def plan_ranges(frame_count: int, shard_frames: int, *, align: int = 1) -> list[tuple[int, int]]:
    """Contiguous ``[first, stop)`` ranges of ``shard_frames`` frames, rounded up to a multiple of
    ``align``, tiling the timeline (one range when ``shard_frames`` is 0 or not smaller than it)."""
    if frame_count <= 0:
        raise ValueError("a timeline has at least one frame")
    align = max(1, align)
    size = frame_count if shard_frames <= 0 else -(-shard_frames // align) * align
    return [(first, min(first + size, frame_count)) for first in range(0, frame_count, size)]


def tiling_problem(ranges, frame_count: int) -> str | None:
    """Why ``[first, stop)`` ranges (in any order) do not tile ``[0, frame_count)`` without gap or
    overlap, as words that follow "the ranges ..." / "the shards ..."; None when they do. The one
    tiling check (shard plans, keypoints2d shards)."""
    if not ranges:
        return "are empty"
    expected = 0
    for first, stop in sorted(ranges, key=lambda r: (r[0] is None, r[0])):
        if first != expected or stop is None or not first < stop:
            return f"do not tile the timeline: expected one starting at frame {expected}, got {first}..{stop}"
        expected = stop
    if expected != frame_count:
        return f"cover frames 0..{expected}, the timeline has {frame_count}"
    return None


def render_frame_count(frame_count: int, *, every: int, max_frames: int | None = None) -> int:
    """Output frames of a render of a ``frame_count``-frame timeline: every ``every``-th frame
    (0, every, 2 every, ...), at most ``max_frames`` (None: no cap)."""
    count = -(-frame_count // every)
    return count if max_frames is None else min(count, max_frames)


def render_segments(
    ranges: list[tuple[int, int]], *, every: int, max_frames: int | None = None
) -> list[tuple[int, int]]:
    """The non-empty output-frame ranges ``[first, stop)`` that the timeline-frame ranges of a shard
    plan render to (one segment per shard, empty ones left out)."""
    count = render_frame_count(ranges[-1][1], every=every, max_frames=max_frames)
    segments = [output_range(a, b, every=every, count=count) for a, b in ranges]
    return [(a, b) for a, b in segments if a < b]


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


def check_range(frame_range, frame_count: int, *, path=None) -> tuple[int, int]:
    """``(first, stop)`` checked against a timeline of ``frame_count`` frames."""
    first, stop = (int(v) for v in frame_range)
    if not 0 <= first < stop <= frame_count:
        raise PosepipeError(path, f"frame range {first}:{stop} is not inside the timeline's 0:{frame_count}")
    return first, stop


def run_shards(
    timeline_json: str | os.PathLike, out: str | os.PathLike, *, shard_frames: int, align: int = 1
) -> dict:
    """The ``shards`` stage: frames/timeline.json -> shards.json (the plan); returns its content."""
    from posepipe.artefacts.shards import ShardPlan, save_shards  # (they use this module's tiling check)
    from posepipe.artefacts.timeline import load_timeline_header

    count = int(load_timeline_header(timeline_json)["frame_count"])
    plan = ShardPlan(count, shard_frames, align, plan_ranges(count, shard_frames, align=align))
    return save_shards(out, plan)


def register_cli(sub) -> None:
    p = sub.add_parser("shards", help="cut a timeline into frame-range shards (shards.json)")
    p.add_argument("timeline", type=Path, metavar="TIMELINE_JSON")
    p.add_argument("--frames", type=int, required=True, help="frames per shard (0: one shard)")
    p.add_argument("--out", type=Path, required=True, help="shards.json")
    p.add_argument(
        "--align", type=int, default=1, help="shard lengths are multiples of this (the batch size)"
    )

    def run(args: argparse.Namespace) -> None:
        run_shards(args.timeline, args.out, shard_frames=args.frames, align=args.align)

    p.set_defaults(handler=run)
