"""The shard plan artefact: ``results/{video}/shards.json`` (``shard_frames`` set).

``{"stage": "shards", "stage_version", "frame_count", "shard_frames", "align", "ranges": [[first,
stop], ...]}``: contiguous timeline frame ranges (stop exclusive) that tile ``[0, frame_count)``;
how they are cut: :func:`posepipe.shards.plan_ranges`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from posepipe.atomic import write_json
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.shards import tiling_problem

STAGE = "shards"
VERSION = STAGE_VERSIONS[STAGE]


@dataclass
class ShardPlan:
    """The plan: ``ranges`` [(first, stop), ...] tiling ``[0, frame_count)``."""

    frame_count: int
    shard_frames: int
    align: int
    ranges: list[tuple[int, int]]


def save_shards(path: str | os.PathLike, plan: ShardPlan) -> dict:
    """Write shards.json (atomic); returns its content."""
    content = {
        "stage": STAGE, "stage_version": VERSION, "frame_count": plan.frame_count,
        "shard_frames": plan.shard_frames, "align": plan.align, "ranges": [list(r) for r in plan.ranges],
    }  # fmt: skip
    write_json(path, content)
    return content


def load_shards(path: str | os.PathLike) -> list[tuple[int, int]]:
    """The ranges of a shards.json (checked to tile its frame count)."""
    try:
        plan = json.loads(Path(path).read_text())
        ranges = [(int(a), int(b)) for a, b in plan["ranges"]]
        count = int(plan["frame_count"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PosepipeError(path, f"cannot read the shard plan ({type(exc).__name__}: {exc})") from exc
    problem = tiling_problem(ranges, count)
    if problem:
        raise PosepipeError(path, f"its ranges {problem}")
    return ranges
