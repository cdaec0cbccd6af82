"""Stage ``tracks``: link the detections of keypoints2d.npz into person tracks.

Duplicates first: a detection whose keypoints match those of a higher-scoring detection of the
same frame with an OKS above ``duplicate_oks`` (0.95: the same person detected twice, as a file
listing each detection twice gives; two people never overlap that closely) is merged into it:
it takes no part in linking and gets track id −1. They are counted in ``meta["duplicates"]`` and
warned about (``meta["warnings"]``, shown in summary.csv); ``duplicate_oks: 1`` turns this off.

Linking, frame by frame:

- Each live track predicts its box in the new frame: its last box, moved by its box velocity
  (constant-velocity model, exponentially smoothed; ``velocity: false`` keeps the last box) for
  at most :data:`MAX_EXTRAPOLATION` frames, so a person lost for seconds is looked for near where
  they were last seen rather than off-screen.
- Similarity of a track and a detection: ``iou_weight`` × IoU(predicted box, detected box) +
  (1 − ``iou_weight``) × OKS(track's last keypoints, detected keypoints), OKS with the COCO
  per-joint sigmas over joints whose score is at least ``keypoint_score`` in both, the detected
  box's area as the scale. Cost = 1 − similarity.
- Hungarian assignment per frame (``scipy.optimize.linear_sum_assignment``) on costs where every
  pair above ``max_cost`` is made prohibitive first (so the assignment prefers the pairing that
  matches the most pairs within the gate), and checked again after it: a pair above the gate is
  never matched (detectron2's own Hungarian trackers skip that check). Unmatched detections start
  tracks.
- A track not seen for more than ``max_lost_frames`` frames ends; until then it can be re-found
  (counted in ``refound``). Tracks with fewer than ``min_track_frames`` detections are dropped:
  their detections get track id −1.
- Track ids are renumbered 0..K−1 by first frame, then by the box's left edge there, so ids do not
  depend on the order of detections within a frame.

Writes ``results/{video}/tracks.npz`` (format: :mod:`posepipe.artefacts.tracks`).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.artefacts.keypoints2d import Keypoints2D, load_keypoints2d
from posepipe.artefacts.tracks import Tracks, save_tracks
from posepipe.settings import add_option, schema_default, settings_from_args

log = logging.getLogger(__name__)

STAGE = "tracks"
# COCO keypoint sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles), as in
# the COCO keypoint evaluation.
COCO_SIGMAS = np.array(
    [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087,
     0.089, 0.089]
)  # fmt: skip
GATED_COST = 1e6  # a pair above the gate, for the assignment: taken only when nothing else is left
MAX_EXTRAPOLATION = 10  # frames a lost track's box is moved on by its velocity, at most
VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity estimate


@dataclass(frozen=True)
class TracksSettings:
    """Settings of the linker (config ``tracks:``); defaults are the workflow's."""

    iou_weight: float = schema_default("tracks.iou_weight")
    max_cost: float = schema_default("tracks.max_cost")
    max_lost_frames: int | None = schema_default("tracks.max_lost_frames")
    min_track_frames: int = schema_default("tracks.min_track_frames")
    keypoint_score: float = schema_default("tracks.keypoint_score")
    velocity: bool = schema_default("tracks.velocity")
    duplicate_oks: float = schema_default("tracks.duplicate_oks")

    def lost_frames(self, fps: float) -> int:
        """``max_lost_frames``, or about one second of frames when unset."""
        return int(self.max_lost_frames) if self.max_lost_frames is not None else max(1, round(fps))


# ---------------------------------------------------------------------------------------------
# similarity


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4) and (B, 4) boxes x1, y1, x2, y2 -> (A, B) intersection over union (0 for empty boxes)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)


def keypoint_similarity(
    a: np.ndarray, b: np.ndarray, areas: np.ndarray, *, min_score: float = 0.0
) -> np.ndarray:
    """COCO object keypoint similarity of (A, 17, 3) and (B, 17, 3) keypoints (x, y, score).

    ``areas`` (B,): the scale s² of each ``b`` (its box area). Joints count where both scores are
    at least ``min_score``; a pair with no such joint has similarity 0.
    """
    d2 = np.sum((a[:, None, :, :2] - b[None, :, :, :2]) ** 2, axis=-1)  # (A, B, 17)
    k2 = (2 * COCO_SIGMAS) ** 2
    e = d2 / (2 * k2 * np.maximum(areas, 1.0)[None, :, None])
    seen = (a[:, None, :, 2] >= min_score) & (b[None, :, :, 2] >= min_score)
    count = seen.sum(-1)
    total = np.where(seen, np.exp(-e), 0.0).sum(-1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


# ---------------------------------------------------------------------------------------------
# linking


@dataclass
class _Live:
    box: np.ndarray
    keypoints: np.ndarray
    last: int
    velocity: np.ndarray
    rows: list
    refound: int = 0

    def predict(self, t: int, *, use_velocity: bool) -> np.ndarray:
        if not use_velocity:
            return self.box
        return self.box + self.velocity * min(t - self.last, MAX_EXTRAPOLATION)


def assign(cost: np.ndarray, *, max_cost: float) -> list[tuple[int, int]]:
    """Hungarian pairs of (track, detection) for a (A, B) cost matrix, none costlier than ``max_cost``.

    Pairs above the gate are prohibitive for the assignment (so it matches as many pairs within the
    gate as it can: with costs [[0.45, 0], [0.8, 0.45]] and a gate of 0.6 it pairs 0-0 and 1-1,
    not 0-1 and then nothing), and dropped after it.
    """
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(np.where(cost > max_cost, GATED_COST, cost))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_cost]


def find_duplicates(kp: Keypoints2D, *, oks_threshold: float, min_score: float = 0.0) -> np.ndarray:
    """bool (N,) over the detection rows of ``kp``: True for a detection whose OKS with a detection
    of the same frame that is kept (a higher box score; ties: the earlier row) is above
    ``oks_threshold``. OKS as in :func:`keypoint_similarity`, with the smaller of the two boxes'
    areas as the scale (so the measure is symmetric and strict)."""
    duplicate = np.zeros(len(kp.boxes), bool)
    if oks_threshold >= 1.0:
        return duplicate
    for t in np.flatnonzero(kp.counts() > 1):
        lo = int(kp.frame_offsets[t])
        boxes, scores, keypoints = kp.frame(t)
        areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=-1)
        oks = np.minimum(
            keypoint_similarity(keypoints, keypoints, areas, min_score=min_score),
            keypoint_similarity(keypoints, keypoints, areas, min_score=min_score).T,
        )
        kept: list[int] = []
        for c in np.argsort(-scores, kind="stable"):
            if any(oks[c, k] > oks_threshold for k in kept):
                duplicate[lo + c] = True
            else:
                kept.append(int(c))
    return duplicate


def link(kp: Keypoints2D, *, params: TracksSettings, fps: float, skip: np.ndarray | None = None) -> Tracks:
    """Link the detections of ``kp`` into tracks (see the module docstring); rows where ``skip``
    (bool (N,)) is True take no part and get track id −1."""
    max_lost = params.lost_frames(fps)
    tracks: list[_Live] = []
    live: list[int] = []  # indices into tracks still within max_lost
    for t in range(kp.num_frames):
        lo = int(kp.frame_offsets[t])
        boxes, _, keypoints = kp.frame(t)
        rows = np.arange(lo, lo + len(boxes))
        if skip is not None:
            keep = ~skip[rows]
            boxes, keypoints, rows = boxes[keep], keypoints[keep], rows[keep]
        live = [i for i in live if t - tracks[i].last <= max_lost + 1]
        # Left to right, so new tracks do not depend on the order detections are listed in.
        order = np.lexsort((boxes[:, 1], boxes[:, 0])) if len(boxes) else np.zeros(0, int)
        matched = np.zeros(len(boxes), bool)
        if live and len(boxes):
            pred = np.stack([tracks[i].predict(t, use_velocity=params.velocity) for i in live])
            last_kp = np.stack([tracks[i].keypoints for i in live])
            areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=-1)
            similarity = params.iou_weight * box_iou(pred, boxes) + (
                1 - params.iou_weight
            ) * keypoint_similarity(last_kp, keypoints, areas, min_score=params.keypoint_score)
            for r, c in assign(1.0 - similarity, max_cost=params.max_cost):
                track = tracks[live[r]]
                gap = t - track.last
                velocity = (boxes[c] - track.box) / gap
                track.velocity = VELOCITY_SMOOTHING * velocity + (1 - VELOCITY_SMOOTHING) * track.velocity
                track.refound += gap > 1
                track.box, track.keypoints, track.last = boxes[c].astype(np.float64), keypoints[c], t
                track.rows.append(int(rows[c]))
                matched[c] = True
        for c in order:
            if not matched[c]:
                tracks.append(
                    _Live(boxes[c].astype(np.float64), keypoints[c], t, np.zeros(4), [int(rows[c])])
                )
                live.append(len(tracks) - 1)
    return _finish(kp, tracks, params=params, fps=fps, max_lost=max_lost)


def _finish(
    kp: Keypoints2D, tracks: list[_Live], *, params: TracksSettings, fps: float, max_lost: int
) -> Tracks:
    """Drop short tracks, renumber by first frame and left edge, gather per-track facts."""
    kept = [tr for tr in tracks if len(tr.rows) >= params.min_track_frames]
    frame_of_row = np.repeat(np.arange(kp.num_frames), kp.counts())
    kept.sort(key=lambda tr: (frame_of_row[tr.rows[0]], kp.boxes[tr.rows[0], 0]))
    track_ids = np.full(len(kp.boxes), -1, np.int64)
    for k, tr in enumerate(kept):
        track_ids[tr.rows] = k
    rows = [np.asarray(tr.rows) for tr in kept]
    counts = kp.counts()
    meta = {
        "posepipe_version": __version__,
        # duplicate_oks is recorded with the duplicates it found (meta "duplicates"): without any,
        # it changed nothing, and the file stays as it was before the setting existed.
        "params": {k: v for k, v in asdict(params).items() if k != "duplicate_oks"},
        "max_lost_frames_used": max_lost,
        "fps": fps,
        "num_frames": kp.num_frames,
        "detections": len(kp.boxes),
        "tracks": len(kept),
        "tracks_dropped_short": len(tracks) - len(kept),
        "frames_with_several_persons": int((counts > 1).sum()),
        "keypoints2d_meta": kp.meta,
    }
    return Tracks(
        track_ids=track_ids,
        first=np.array([frame_of_row[r[0]] for r in rows], np.int64),
        last=np.array([frame_of_row[r[-1]] for r in rows], np.int64),
        length=np.array([len(r) for r in rows], np.int64),
        score=np.array([kp.box_scores[r].mean() for r in rows], np.float32),
        refound=np.array([tr.refound for tr in kept], np.int64),
        meta=meta,
    )


# ---------------------------------------------------------------------------------------------
# the artefact


def run_tracks(
    keypoints2d: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fps: float,
    settings: TracksSettings | None = None,
) -> Tracks:
    """The ``tracks`` stage: keypoints2d.npz -> tracks.npz (``settings``: config ``tracks:``)."""
    params = settings or TracksSettings()
    kp = load_keypoints2d(keypoints2d)
    duplicates = find_duplicates(kp, oks_threshold=params.duplicate_oks, min_score=params.keypoint_score)
    tracks = link(kp, params=params, fps=fps, skip=duplicates)
    tracks.meta["keypoints2d"] = os.fspath(keypoints2d)
    if duplicates.any():
        frames = int(np.unique(np.repeat(np.arange(kp.num_frames), kp.counts())[duplicates]).size)
        merged = int(duplicates.sum())
        tracks.meta["duplicates"] = {
            "oks_threshold": params.duplicate_oks,
            "merged": merged,
            "frames": frames,
        }
        tracks.meta["warnings"] = [
            f"{merged} duplicate detections in {frames} frames merged into the detection they repeat "
            f"(keypoint similarity above tracks.duplicate_oks {params.duplicate_oks})"
        ]
        log.warning("%s: %s", keypoints2d, tracks.meta["warnings"][0])
    save_tracks(out, tracks)
    log.info(
        "%s: %d tracks (%d short ones dropped) from %d detections in %d frames", out, tracks.num_tracks,
        tracks.meta["tracks_dropped_short"], len(kp.boxes), kp.num_frames,
    )  # fmt: skip
    return tracks


def register_cli(sub) -> None:
    p = sub.add_parser("tracks", help="link the detections of keypoints2d.npz into person tracks")
    p.add_argument("keypoints2d", type=Path, metavar="KEYPOINTS2D_NPZ")
    p.add_argument("--out", type=Path, required=True, help="tracks.npz to write")
    p.add_argument("--timeline", type=Path, required=True, help="frames/timeline.json (its fps)")
    add_option(p, "--iou-weight", key="tracks.iou_weight", type=float, help="weight of box IoU vs OKS")
    add_option(p, "--max-cost", key="tracks.max_cost", type=float, help="pairs costlier are never matched")
    add_option(
        p, "--max-lost-frames", key="tracks.max_lost_frames", type=int,
        help="frames a lost track can be re-found within (unset: one second)",
    )  # fmt: skip
    add_option(
        p, "--min-track-frames", key="tracks.min_track_frames", type=int, help="shorter tracks are dropped"
    )
    add_option(p, "--keypoint-score", key="tracks.keypoint_score", type=float, help="joints counted in OKS")
    add_option(p, "--velocity", key="tracks.velocity", help="predict boxes with a constant-velocity model")
    add_option(
        p, "--duplicate-oks", key="tracks.duplicate_oks", type=float,
        help="a detection this similar (OKS) to a higher-scoring one of the same frame is merged into it (1: off)",
    )  # fmt: skip

    def run(args: argparse.Namespace) -> None:
        from posepipe.artefacts.timeline import load_timeline_header

        fps = float(load_timeline_header(args.timeline)["fps"])
        run_tracks(args.keypoints2d, args.out, fps=fps, settings=settings_from_args(TracksSettings, args))

    p.set_defaults(handler=run)
