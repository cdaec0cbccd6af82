"""The keypoints2d artefact ``results/{video}/keypoints2d.npz``: every detected person in every frame.

Written by the ``keypoints2d`` stage (any 2D source of :data:`posepipe.registry.SOURCES2D`).

Persons are stored flat, with per-frame offsets (no pickled objects, loads with
``allow_pickle=False``):

- ``frame_offsets``: int64 (T + 1,); persons of frame ``t`` are rows ``frame_offsets[t]:frame_offsets[t + 1]``.
  A frame with nobody in view has an empty range; T always equals the timeline's frame count.
- ``boxes``: float32 (N, 4): x1, y1, x2, y2 in pixels of the timeline's frames.
- ``box_scores``: float32 (N,): detector confidence in [0, 1].
- ``keypoints``: float32 (N, 17, 3): x, y, score per COCO joint (``posepipe.skeleton.COCO_JOINTS``).
- ``image_size``: int64 (2,): width, height of the frames the coordinates refer to.
- ``meta``: str, JSON: ``stage``, ``stage_version`` (:data:`posepipe.registry.STAGE_VERSIONS`), detector,
  config, weights checksum, score threshold, device, timings, ...

A shard (``shard_frames``) is the same file for a contiguous range of the timeline: T is the
range's length and ``meta["frame_range"]`` its ``[first, stop)``; :func:`join_ranges` joins the
shards of a video into the file the unsharded stage writes (the same arrays).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from posepipe.atomic import save_npz
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.shards import tiling_problem

STAGE = "keypoints2d"
VERSION = STAGE_VERSIONS[STAGE]
NUM_COCO_JOINTS = 17


@dataclass
class Keypoints2D:
    """All persons of all frames; see the module docstring for shapes."""

    frame_offsets: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    keypoints: np.ndarray
    width: int
    height: int
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frame_offsets) - 1

    def counts(self) -> np.ndarray:
        """int64 (T,): number of persons in each frame."""
        return np.diff(self.frame_offsets)

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (n, 4), box_scores (n,), keypoints (n, 17, 3)) of frame ``t``."""
        lo, hi = self.frame_offsets[t], self.frame_offsets[t + 1]
        return self.boxes[lo:hi], self.box_scores[lo:hi], self.keypoints[lo:hi]

    def validate(self, path: str | os.PathLike | None = None) -> None:
        """Raise PosepipeError if the arrays break the contract."""
        n = len(self.boxes)
        checks = [
            (self.frame_offsets.ndim == 1 and len(self.frame_offsets) >= 1, "frame_offsets must be (T+1,)"),
            (self.frame_offsets[0] == 0 and self.frame_offsets[-1] == n, "frame_offsets must run 0..N"),
            (bool(np.all(np.diff(self.frame_offsets) >= 0)), "frame_offsets must not decrease"),
            (self.boxes.shape == (n, 4), f"boxes must be (N, 4), got {self.boxes.shape}"),
            (self.box_scores.shape == (n,), f"box_scores must be (N,), got {self.box_scores.shape}"),
            (
                self.keypoints.shape == (n, NUM_COCO_JOINTS, 3),
                f"keypoints must be (N, 17, 3), got {self.keypoints.shape}",
            ),
            (self.width > 0 and self.height > 0, f"bad image size {self.width}x{self.height}"),
        ]
        for ok, reason in checks:
            if not ok:
                raise PosepipeError(path, f"not a valid keypoints2d file: {reason}")


def from_frames(
    frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    width: int,
    height: int,
    meta: dict | None = None,
) -> Keypoints2D:
    """Build the flat store from per-frame (boxes (n, 4), box_scores (n,), keypoints (n, 17, 3))."""
    counts = np.array([len(b) for b, _, _ in frames], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def stack(i: int, shape: tuple[int, ...]) -> np.ndarray:
        parts = [np.asarray(f[i], dtype=np.float32).reshape((-1, *shape)) for f in frames]
        return np.concatenate(parts) if parts else np.zeros((0, *shape), np.float32)

    return Keypoints2D(
        frame_offsets=offsets,
        boxes=stack(0, (4,)),
        box_scores=stack(1, ()),
        keypoints=stack(2, (NUM_COCO_JOINTS, 3)),
        width=int(width),
        height=int(height),
        meta=dict(meta or {}),
    )


def join_ranges(parts: Sequence[Keypoints2D], *, frame_count: int, path=None) -> Keypoints2D:
    """Join shards (each with ``meta["frame_range"]``) into one store of ``frame_count`` frames.

    The shards must tile ``[0, frame_count)`` without gap or overlap, in any order, and share
    their image size. The joined meta is the first shard's, without ``frame_range``, with the
    shards' ranges and timings under ``shards``.
    """
    if not parts:
        raise PosepipeError(path, "no shards to join")
    ordered = sorted(parts, key=lambda kp: kp.meta.get("frame_range", [0])[0])
    problem = tiling_problem([tuple(kp.meta.get("frame_range", (None, None))) for kp in ordered], frame_count)
    if problem:
        raise PosepipeError(path, f"shards {problem}")
    for kp in ordered:
        first, stop = kp.meta["frame_range"]
        if stop - first != kp.num_frames:
            raise PosepipeError(path, f"shard {first}..{stop} holds {kp.num_frames} frames")
        if (kp.width, kp.height) != (ordered[0].width, ordered[0].height):
            raise PosepipeError(path, "shards of different image sizes")
    counts = np.concatenate([kp.counts() for kp in ordered]) if ordered else np.zeros(0, np.int64)
    meta = {
        k: v
        for k, v in ordered[0].meta.items()
        if k not in ("frame_range", "stage", "stage_version", "timings")
    }
    meta["shards"] = [
        {"frame_range": kp.meta["frame_range"], "timings": kp.meta.get("timings")} for kp in ordered
    ]
    for key in ("persons", "frames_with_person", "persons_below_threshold"):
        if all(key in kp.meta for kp in ordered):
            meta[key] = int(sum(kp.meta[key] for kp in ordered))
    meta["frame_count"] = frame_count
    return Keypoints2D(
        frame_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        boxes=np.concatenate([kp.boxes for kp in ordered]),
        box_scores=np.concatenate([kp.box_scores for kp in ordered]),
        keypoints=np.concatenate([kp.keypoints for kp in ordered]),
        width=ordered[0].width,
        height=ordered[0].height,
        meta=meta,
    )


def frame_slice(kp: Keypoints2D, first: int, stop: int) -> Keypoints2D:
    """The frames ``[first, stop)`` of ``kp`` as a shard (``meta["frame_range"]`` set)."""
    lo, hi = int(kp.frame_offsets[first]), int(kp.frame_offsets[stop])
    meta = {**kp.meta, "frame_range": [int(first), int(stop)]}
    for key in ("persons", "frames_with_person", "persons_below_threshold"):  # counts of the whole file
        meta.pop(key, None)
    sliced = Keypoints2D(
        frame_offsets=kp.frame_offsets[first : stop + 1] - lo, boxes=kp.boxes[lo:hi],
        box_scores=kp.box_scores[lo:hi], keypoints=kp.keypoints[lo:hi], width=kp.width, height=kp.height, meta=meta,
    )  # fmt: skip
    sliced.meta["persons"] = int(hi - lo)
    sliced.meta["frames_with_person"] = int((sliced.counts() > 0).sum())
    return sliced


def save_keypoints2d(path: str | os.PathLike, kp: Keypoints2D) -> None:
    """Validate and write atomically; the stage and its version are stamped into the file's ``meta``
    (``kp`` is not changed)."""
    kp.validate(path)
    meta = {**kp.meta, "stage": STAGE, "stage_version": VERSION}
    save_npz(
        path,
        frame_offsets=kp.frame_offsets.astype(np.int64),
        boxes=kp.boxes.astype(np.float32),
        box_scores=kp.box_scores.astype(np.float32),
        keypoints=kp.keypoints.astype(np.float32),
        image_size=np.array([kp.width, kp.height], dtype=np.int64),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def load_keypoints2d(path: str | os.PathLike) -> Keypoints2D:
    """Read and validate a keypoints2d.npz; a broken file raises PosepipeError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            kp = Keypoints2D(
                frame_offsets=z["frame_offsets"],
                boxes=z["boxes"],
                box_scores=z["box_scores"],
                keypoints=z["keypoints"],
                width=int(z["image_size"][0]),
                height=int(z["image_size"][1]),
                meta=json.loads(str(z["meta"])),
            )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise PosepipeError(path, f"cannot read keypoints2d file ({exc})") from exc
    kp.validate(path)
    return kp
