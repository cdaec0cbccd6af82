"""The dataset2d artefacts: ``results/{video}/dataset2d.npz`` and ``results/dataset2d_custom.npz``.

Written by the ``dataset2d`` stage (:mod:`posepipe.dataset2d`), read by lift3d, render, qc, the
summary and upstream VideoPose3D ``run.py -d custom``.

File contract (read with ``posepipe.safeload.load_npz``, or ``np.load(path, allow_pickle=True)`` for
files you made; the first two keys are what upstream ``run.py -d custom`` reads, unchanged):

- ``positions_2d``: object, ``.item()`` is ``{name: {'custom': [float32 (T, 17, 2): x, y pixels]}}``.
- ``metadata``: object, ``.item()`` is ``{'layout_name': 'coco', 'num_joints': 17,
  'keypoints_symmetry': [COCO left, COCO right], 'video_metadata': {name: {'w': W, 'h': H}}}``.
- ``detected``: bool (T,): the frame had a detection (False: interpolated or held).
- ``scores``: float32 (T, 17): keypoint scores of the selected person, 0 where filled.
- ``box_scores``: float32 (T,): box score of the selected person, 0 where filled.
- ``boxes``: float32 (T, 4): x1, y1, x2, y2 of the selected person, filled like the keypoints.
- ``meta``: str, JSON: selection, subject, frame counts, source file and its checksum, detector meta;
  ``warnings`` (list of str, only when there are any; ``summary.csv`` shows them), e.g. a
  ``dataset2d.joint_score_threshold`` above the score of most joints.

Several people (``person: main`` or ``all``, from tracks.npz): ``positions_2d`` / ``metadata`` hold
one subject per segment of each person (``{video}.mp4.p{track}``, or ``...p{track}.s{k}`` when a
long gap splits the person), covering only that segment's frames, so upstream ``run.py`` loads
them unchanged; ``meta["subjects"]`` gives each subject's person, track and first/last frame. The
timeline-aligned per-person arrays replace ``detected`` .. ``boxes``:

- ``person_keypoints``: float32 (P, T, 17, 2), NaN where the person is absent.
- ``person_detected``: bool (P, T); ``person_scores``: float32 (P, T, 17); ``person_box_scores``:
  float32 (P, T) (0 where not detected); ``person_boxes``: float32 (P, T, 4) (NaN where absent).
- ``person_track``: int64 (P,): each person's track id in tracks.npz.

Subject name: upstream names a subject after the detection file, i.e. the video's file name with
its extension (``infer_video_d2.py`` writes ``input_video.mp4.npz``, so the subject is
``input_video.mp4`` and ``run.py --viz-subject input_video.mp4`` selects it). Our detector runs on
the frames stage's constant-frame-rate clip, so we name the subject ``{video_id}.mp4``
(:func:`subject_name`).

``results/dataset2d_custom.npz`` (``merge-dataset2d``): every video's subjects in one custom
dataset, as ``prepare_data_2d_custom.py`` makes for a folder: ``positions_2d`` and ``metadata``
as above (one entry per subject) and ``meta`` (str, JSON): ``stage`` "merge-dataset2d",
``posepipe_version``, ``sources``: [{subject, file, frames}]; ``left_out``: [{video, status}],
the run's videos without a 2D dataset (written after a failed run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from posepipe import __version__
from posepipe.atomic import save_npz
from posepipe.conditioning import runs
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.safeload import load_npz
from posepipe.skeleton import COCO_LEFT, COCO_RIGHT

STAGE = "dataset2d"
VERSION = STAGE_VERSIONS[STAGE]
MERGED_STAGE = "merge-dataset2d"

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
    track_id: int = -1  # the person's track (tracks.npz); -1: one person per frame, no tracking

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)

    @property
    def present(self) -> np.ndarray:
        """bool (T,): frames where this person has keypoints (detected or filled); all for one per frame."""
        return np.isfinite(self.keypoints).all(axis=(1, 2))


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


def person_name(video_id: str, track_id: int) -> str:
    """Name of a person of a video: its subject name plus the track, e.g. ``dance.mp4.p0``."""
    return f"{subject_name(video_id)}.p{track_id}"


def person_subjects(persons: Sequence[Dataset2D]) -> list[dict]:
    """The upstream subjects of per-person data: one per segment, ``NAME`` or ``NAME.sK`` when a
    person has several segments; each with its person index, track, first and last frame."""
    subjects = []
    for p, ds in enumerate(persons):
        segs = runs(ds.present)
        for k, (start, stop) in enumerate(segs):
            name = ds.name if len(segs) == 1 else f"{ds.name}.s{k}"
            subjects.append(
                {"name": name, "person": p, "track": ds.track_id, "first": start, "last": stop - 1}
            )
    return subjects


def save_persons2d(path: str | os.PathLike, persons: Sequence[Dataset2D], *, meta: dict) -> None:
    """Write per-person data (atomic): upstream subjects per segment plus ``person_*`` arrays
    aligned to the timeline (see the module docstring); stage and version stamped into ``meta``."""
    subjects = person_subjects(persons)
    width, height = persons[0].width, persons[0].height
    meta = {"stage": STAGE, "stage_version": VERSION, **meta, "layout": "persons",
            "subjects": subjects, "persons": [ds.meta for ds in persons]}  # fmt: skip
    save_npz(
        path,
        positions_2d={
            s["name"]: {
                ACTION: [persons[s["person"]].keypoints[s["first"] : s["last"] + 1].astype(np.float32)]
            }
            for s in subjects
        },
        metadata=coco_metadata({s["name"]: {"w": width, "h": height} for s in subjects}),
        person_keypoints=np.stack([ds.keypoints for ds in persons]).astype(np.float32),
        person_detected=np.stack([ds.detected for ds in persons]).astype(bool),
        person_scores=np.stack([ds.scores for ds in persons]).astype(np.float32),
        person_box_scores=np.stack([ds.box_scores for ds in persons]).astype(np.float32),
        person_boxes=np.stack([ds.boxes for ds in persons]).astype(np.float32),
        person_track=np.array([ds.track_id for ds in persons], np.int64),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def load_persons2d(path: str | os.PathLike, *, prefer: str | None = None) -> list[Dataset2D]:
    """Every person of a dataset2d file: the ``person_*`` arrays of a per-person file (NaN where a
    person is absent), or the one sequence of a one-person file (track -1)."""
    z = load_npz(path, what="VideoPose3D custom 2D dataset")
    if "person_keypoints" not in z:
        return [load_dataset2d(path, prefer=prefer)]
    try:
        metadata = z["metadata"].item()
        meta = json.loads(str(z["meta"]))
        keypoints, tracks = z["person_keypoints"], z["person_track"]
        P, T = keypoints.shape[:2]
        width, height = next(iter(metadata["video_metadata"].values())).values()
        arrays = {k: z[f"person_{k}"] for k in ("detected", "scores", "box_scores", "boxes")}
    except (KeyError, ValueError, TypeError, StopIteration) as exc:
        raise PosepipeError(path, f"not a per-person dataset2d file ({type(exc).__name__}: {exc})") from exc
    shapes = {"detected": (P, T), "scores": (P, T, NUM_JOINTS), "box_scores": (P, T), "boxes": (P, T, 4)}
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise PosepipeError(path, f"person_{key} has shape {arrays[key].shape}, expected {shape}")
    if keypoints.shape[2:] != (NUM_JOINTS, 2) or tracks.shape != (P,):
        raise PosepipeError(
            path, f"person_keypoints {keypoints.shape} / person_track {tracks.shape} malformed"
        )
    names = meta.get("persons", [{}] * P)
    return [
        Dataset2D(
            name=person_name(meta.get("video_id", "video"), int(tracks[p])),
            keypoints=keypoints[p],
            width=int(width),
            height=int(height),
            detected=arrays["detected"][p].astype(bool),
            scores=arrays["scores"][p],
            box_scores=arrays["box_scores"][p],
            boxes=arrays["boxes"][p],
            meta={**meta, **names[p]} if p < len(names) else meta,
            track_id=int(tracks[p]),
        )  # fmt: skip
        for p in range(P)
    ]


def save_dataset2d(path: str | os.PathLike, ds: Dataset2D) -> None:
    """Write one subject in the custom format plus our per-frame extras (atomic); the stage and
    its version are stamped into the file's
    ``meta`` (``ds`` is not changed)."""
    meta = {"stage": STAGE, "stage_version": VERSION, **ds.meta}
    save_npz(
        path,
        positions_2d={ds.name: {ACTION: [ds.keypoints.astype(np.float32)]}},
        metadata=coco_metadata({ds.name: {"w": ds.width, "h": ds.height}}),
        detected=ds.detected.astype(bool),
        scores=ds.scores.astype(np.float32),
        box_scores=ds.box_scores.astype(np.float32),
        boxes=ds.boxes.astype(np.float32),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )


def read_custom(path: str | os.PathLike) -> tuple[dict, dict, dict]:
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
    positions, metadata, extras = read_custom(path)
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


def save_dataset2d_custom(
    path: str | os.PathLike, positions: dict, video_metadata: dict, sources: list[dict], *, left_out=None
) -> None:
    """Write a merged custom dataset (atomic): ``positions`` {subject: {'custom': [(T, 17, 2)]}},
    ``video_metadata`` {subject: {'w', 'h', ...}}, the ``sources`` list for ``meta`` and, when
    given, ``left_out`` (videos of the run not in it, each {'video', 'status'})."""
    save_npz(
        path,
        positions_2d=positions,
        metadata=coco_metadata(video_metadata),
        meta=np.array(
            json.dumps(
                {"stage": MERGED_STAGE, "posepipe_version": __version__, "sources": sources}
                | ({"left_out": list(left_out)} if left_out is not None else {})
            )
        ),
    )
