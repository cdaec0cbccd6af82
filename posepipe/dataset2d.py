"""Stage ``dataset2d``: one person per frame, gaps filled, written as a VideoPose3D custom 2D dataset.

Reads keypoints2d.npz (``posepipe.keypoints2d.store``), keeps one person per frame (by default the
one with the highest box score, as upstream ``prepare_data_2d_custom.py`` does; or the largest box),
fills frames without a detection by linear interpolation of each coordinate between the nearest
detected frames (before the first / after the last detection the nearest detection is held), and
writes results/{video}/dataset2d.npz.

File contract (read with ``posepipe.safeload.load_npz``, or ``np.load(path, allow_pickle=True)`` for
files you made; the first two keys are what upstream
``run.py -d custom`` reads, unchanged):

- ``positions_2d``: object, ``.item()`` is ``{name: {'custom': [float32 (T, 17, 2): x, y pixels]}}``.
- ``metadata``: object, ``.item()`` is ``{'layout_name': 'coco', 'num_joints': 17,
  'keypoints_symmetry': [COCO left, COCO right], 'video_metadata': {name: {'w': W, 'h': H}}}``.
- ``detected``: bool (T,): the frame had a detection (False: interpolated or held).
- ``scores``: float32 (T, 17): keypoint scores of the selected person, 0 where filled.
- ``box_scores``: float32 (T,): box score of the selected person, 0 where filled.
- ``boxes``: float32 (T, 4): x1, y1, x2, y2 of the selected person, filled like the keypoints.
- ``meta``: str, JSON: selection, subject, frame counts, source file and its checksum, detector meta.

Subject name: upstream names a subject after the detection file, i.e. the video's file name with
its extension (``infer_video_d2.py`` writes ``input_video.mp4.npz``, so the subject is
``input_video.mp4`` and ``run.py --viz-subject input_video.mp4`` selects it). Our detector runs on
the frames stage's constant-frame-rate clip, so we name the subject ``{video_id}.mp4``
(``subject_name``); ``--subject`` overrides it.

``merge-dataset2d`` joins several of these files into one custom dataset with one subject per
video (results/dataset2d_custom.npz), as ``prepare_data_2d_custom.py`` does for a folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.atomic import save_npz
from posepipe.errors import PosepipeError
from posepipe.keypoints2d.store import Keypoints2D, load_keypoints2d
from posepipe.safeload import load_npz
from posepipe.settings import add_option
from posepipe.skeleton import COCO_LEFT, COCO_RIGHT
from posepipe.stages import STAGE_VERSIONS

log = logging.getLogger(__name__)

STAGE = "dataset2d"
SELECTIONS = ("highest_score", "largest_box")
ACTION = "custom"
NUM_JOINTS = 17


@dataclass
class Dataset2D:
    """One subject of a custom 2D dataset.

    keypoints: float32 (T, 17, 2): x, y in pixels, COCO order, no gaps.
    detected: bool (T,); scores: float32 (T, 17) or None; box_scores: float32 (T,) or None;
    boxes: float32 (T, 4) or None (None when the file came from elsewhere, e.g. upstream tools).
    """

    name: str
    keypoints: np.ndarray
    width: int
    height: int
    detected: np.ndarray
    scores: np.ndarray | None = None
    box_scores: np.ndarray | None = None
    boxes: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)


def subject_name(video_id: str) -> str:
    """Subject key as upstream would name the detections of ``{video_id}.mp4``."""
    return video_id if video_id.endswith(".mp4") else f"{video_id}.mp4"


def coco_metadata(video_metadata: dict[str, dict[str, int]]) -> dict:
    """The ``metadata`` entry of a custom dataset for COCO keypoints."""
    return {
        "layout_name": "coco",
        "num_joints": NUM_JOINTS,
        "keypoints_symmetry": [list(COCO_LEFT), list(COCO_RIGHT)],
        "video_metadata": {name: {"w": int(r["w"]), "h": int(r["h"])} for name, r in video_metadata.items()},
    }


def select_person(kp: Keypoints2D, *, selection: str = "highest_score") -> np.ndarray:
    """Row (into the flat arrays of ``kp``) of the chosen person per frame; int64 (T,), -1 if none.

    ``highest_score``: highest box score; ``largest_box``: largest box area. Ties go to the first row.
    """
    if selection == "highest_score":
        key = kp.box_scores.astype(np.float64)
    elif selection == "largest_box":
        wh = np.clip(kp.boxes[:, 2:4].astype(np.float64) - kp.boxes[:, 0:2], 0.0, None)
        key = wh[:, 0] * wh[:, 1]
    else:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    counts = kp.counts()
    rows = np.arange(len(key))
    frame_of_row = np.repeat(np.arange(kp.num_frames), counts)
    key = np.nan_to_num(key, nan=-np.inf)
    # Sorted by frame, then best key first, then row: the first row of each frame's block wins.
    order = np.lexsort((rows, -key, frame_of_row))
    chosen = np.full(kp.num_frames, -1, dtype=np.int64)
    has = counts > 0
    chosen[has] = order[kp.frame_offsets[:-1][has]]
    return chosen


def interpolate_missing(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill rows where ``known`` is False by linear interpolation along axis 0, per element.

    values: (T, ...) float; known: bool (T,) with at least one True. Rows before the first / after
    the last known row take that row's values. Known rows are returned unchanged.
    """
    t = np.arange(len(values))
    idx = np.flatnonzero(known)
    flat = values.reshape(len(values), -1)
    out = flat.copy()
    missing = ~known
    if missing.any():
        for j in range(flat.shape[1]):
            out[missing, j] = np.interp(t[missing], idx, flat[idx, j].astype(np.float64))
    return out.reshape(values.shape)


def build_dataset2d(
    kp: Keypoints2D, *, name: str, selection: str = "highest_score", path: str | os.PathLike | None = None
) -> Dataset2D:
    """Select one person per frame and fill the gaps; PosepipeError naming ``path`` if nobody is ever seen."""
    chosen = select_person(kp, selection=selection)
    T = kp.num_frames
    keypoints = np.zeros((T, NUM_JOINTS, 2), np.float32)
    scores = np.zeros((T, NUM_JOINTS), np.float32)
    box_scores = np.zeros(T, np.float32)
    boxes = np.zeros((T, 4), np.float32)
    has = chosen >= 0
    rows = chosen[has]
    keypoints[has] = kp.keypoints[rows, :, :2]
    scores[has] = kp.keypoints[rows, :, 2]
    box_scores[has] = kp.box_scores[rows]
    boxes[has] = kp.boxes[rows]
    # A selected detection with non-finite coordinates is treated like no detection.
    detected = has & np.isfinite(keypoints).all(axis=(1, 2)) & np.isfinite(boxes).all(axis=1)
    scores[~detected] = 0
    box_scores[~detected] = 0
    if T == 0 or not detected.any():
        raise PosepipeError(path, f"no person detected in any of the {T} frames{_threshold_hint(kp.meta)}")
    keypoints = interpolate_missing(keypoints, detected)
    boxes = interpolate_missing(boxes, detected)
    counts = kp.counts()
    meta = {
        "posepipe_version": __version__,
        "subject": name,
        "action": ACTION,
        "selection": selection,
        "num_frames": int(T),
        "detected_frames": int(detected.sum()),
        "interpolated_frames": int((~detected).sum()),
        "frames_without_person": int((counts == 0).sum()),
        "frames_with_several_persons": int((counts > 1).sum()),
        "max_persons": int(counts.max(initial=0)),
        "width": int(kp.width),
        "height": int(kp.height),
        "source": None if path is None else os.fspath(path),
        "keypoints2d_meta": kp.meta,
    }
    return Dataset2D(
        name=name,
        keypoints=keypoints,
        width=int(kp.width),
        height=int(kp.height),
        detected=detected,
        scores=scores,
        box_scores=box_scores,
        boxes=boxes,
        meta=meta,
    )


def _threshold_hint(meta: dict) -> str:
    """Why there may be nobody: the score threshold of the keypoints2d stage, with what it removed."""
    threshold = meta.get("score_threshold")
    if not threshold:
        return ""
    removed = meta.get("persons_below_threshold")
    if removed:
        return (
            f" (keypoints2d.score_threshold {threshold} removed all {removed} persons the source had; "
            "lower it to keep them)"
        )
    return f" (persons scoring below keypoints2d.score_threshold {threshold} are not kept)"


def save_dataset2d(path: str | os.PathLike, ds: Dataset2D) -> None:
    """Write one subject in the custom format plus our per-frame extras (atomic); the stage and
    its version are stamped into ``meta``."""
    ds.meta = {"stage": STAGE, "stage_version": STAGE_VERSIONS[STAGE], **ds.meta}
    save_npz(
        path,
        positions_2d={ds.name: {ACTION: [ds.keypoints.astype(np.float32)]}},
        metadata=coco_metadata({ds.name: {"w": ds.width, "h": ds.height}}),
        detected=ds.detected.astype(bool),
        scores=ds.scores.astype(np.float32),
        box_scores=ds.box_scores.astype(np.float32),
        boxes=ds.boxes.astype(np.float32),
        meta=np.array(json.dumps(ds.meta, sort_keys=True)),
    )


def _read_custom(path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """(positions_2d, metadata, other arrays) of a custom-format file; PosepipeError if unreadable."""
    # The dicts of this format are pickled object arrays: read through the restricted unpickler,
    # so a dataset from elsewhere can hold only arrays, lists, dicts and numbers.
    z = load_npz(path, what="VideoPose3D custom 2D dataset")
    try:
        positions = z["positions_2d"].item()
        metadata = z["metadata"].item()
    except (KeyError, ValueError) as exc:
        raise PosepipeError(path, f"cannot read VideoPose3D custom 2D dataset (no {exc})") from exc
    extras = {k: v for k, v in z.items() if k not in ("positions_2d", "metadata")}
    if not isinstance(positions, dict) or not isinstance(metadata, dict) or "video_metadata" not in metadata:
        raise PosepipeError(path, "not a VideoPose3D custom 2D dataset (positions_2d / metadata malformed)")
    return positions, metadata, extras


def load_dataset2d(
    path: str | os.PathLike, *, subject: str | None = None, prefer: str | None = None
) -> Dataset2D:
    """Read one subject of a custom 2D dataset (ours, merged, or made by upstream tools).

    ``subject`` may be omitted when the file holds exactly one; ``prefer`` names the subject to
    take when it is omitted and the file holds several (e.g. a merged file and a video's id).
    Files without our extras get ``detected`` all True and None for scores and boxes.
    """
    positions, metadata, extras = _read_custom(path)
    if subject is None and prefer is not None and len(positions) > 1 and prefer in positions:
        subject = prefer
    if subject is None:
        if len(positions) != 1:
            raise PosepipeError(path, f"holds {len(positions)} subjects {sorted(positions)}; choose one")
        subject = next(iter(positions))
    if subject not in positions or subject not in metadata["video_metadata"]:
        raise PosepipeError(path, f"no subject {subject!r} (subjects: {sorted(positions)})")
    try:
        keypoints = np.asarray(positions[subject][ACTION][0], dtype=np.float32)
    except (KeyError, IndexError, TypeError) as exc:
        raise PosepipeError(path, f"subject {subject!r} has no '{ACTION}' sequence") from exc
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 2) or len(keypoints) == 0:
        raise PosepipeError(
            path, f"subject {subject!r}: keypoints must be (T>0, 17, 2), got {keypoints.shape}"
        )
    res = metadata["video_metadata"][subject]
    single = len(positions) == 1  # our per-frame extras belong to a one-subject file
    meta = json.loads(str(extras["meta"])) if single and "meta" in extras else {}
    T = len(keypoints)

    def extra(key: str, shape: tuple[int, ...]) -> np.ndarray | None:
        arr = extras.get(key) if single else None
        if arr is not None and arr.shape != shape:
            raise PosepipeError(path, f"{key} has shape {arr.shape}, expected {shape}")
        return arr

    detected = extra("detected", (T,))
    return Dataset2D(
        name=subject,
        keypoints=keypoints,
        width=int(res["w"]),
        height=int(res["h"]),
        detected=np.ones(T, bool) if detected is None else detected.astype(bool),
        scores=extra("scores", (T, NUM_JOINTS)),
        box_scores=extra("box_scores", (T,)),
        boxes=extra("boxes", (T, 4)),
        meta=meta,
    )


def make_dataset2d(
    keypoints2d_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    video_id: str,
    selection: str = "highest_score",
    subject: str | None = None,
) -> Dataset2D:
    """The ``dataset2d`` stage: keypoints2d.npz -> dataset2d.npz. Returns what it wrote."""
    kp = load_keypoints2d(keypoints2d_path)
    ds = build_dataset2d(
        kp, name=subject or subject_name(video_id), selection=selection, path=keypoints2d_path
    )
    ds.meta["video_id"] = video_id
    save_dataset2d(out, ds)
    log.info(
        "%s: %d frames, %d detected, %d interpolated -> %s",
        keypoints2d_path,
        ds.num_frames,
        ds.meta["detected_frames"],
        ds.meta["interpolated_frames"],
        out,
    )
    return ds


def merge_dataset2d(paths: Sequence[str | os.PathLike], out: str | os.PathLike) -> list[str]:
    """Join custom 2D datasets into one file with every subject (upstream's one-file-per-folder form).

    Only ``positions_2d``, ``metadata`` and a JSON ``meta`` (sources and per-subject frame counts)
    are written. A subject name found twice raises PosepipeError. Returns the subject names.
    """
    if not paths:
        raise PosepipeError(out, "nothing to merge")
    positions: dict = {}
    resolutions: dict = {}
    sources = []
    for path in paths:
        pos, metadata, _ = _read_custom(path)
        if metadata.get("layout_name") != "coco":
            raise PosepipeError(path, f"layout {metadata.get('layout_name')!r}, expected 'coco'")
        for name, actions in pos.items():
            if name in positions:
                raise PosepipeError(path, f"subject {name!r} already comes from {resolutions[name]['from']}")
            positions[name] = actions
            resolutions[name] = {**metadata["video_metadata"][name], "from": os.fspath(path)}
            sources.append({"subject": name, "file": os.fspath(path), "frames": int(len(actions[ACTION][0]))})
    save_npz(
        out,
        positions_2d=positions,
        metadata=coco_metadata(resolutions),
        meta=np.array(
            json.dumps({"stage": "merge-dataset2d", "posepipe_version": __version__, "sources": sources})
        ),
    )
    log.info("merged %d subjects -> %s", len(positions), out)
    return list(positions)


def _run_dataset2d(args: argparse.Namespace) -> None:
    make_dataset2d(
        args.keypoints2d, args.out, video_id=args.video_id, selection=args.selection, subject=args.subject
    )


def _run_merge(args: argparse.Namespace) -> None:
    merge_dataset2d(args.inputs, args.out)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "dataset2d",
        help="one person per frame, gaps interpolated -> VideoPose3D custom 2D dataset",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("keypoints2d", type=Path, metavar="KEYPOINTS2D_NPZ")
    p.add_argument("--out", type=Path, required=True, help="dataset2d.npz to write")
    p.add_argument("--video-id", required=True, help="video id (results/{video}); names the subject")
    add_option(p, "--selection", key="dataset2d.selection", choices=SELECTIONS, help="which person per frame")
    p.add_argument(
        "--subject", default=None, help="subject name (default: VIDEO_ID.mp4, as upstream names it)"
    )
    p.set_defaults(handler=_run_dataset2d)

    m = subparsers.add_parser(
        "merge-dataset2d",
        help="join per-video dataset2d files into one custom dataset (one subject per video)",
    )
    m.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    m.add_argument("--out", type=Path, required=True, help="e.g. results/dataset2d_custom.npz")
    m.set_defaults(handler=_run_merge)
