"""Stage ``dataset2d``: one person per frame, gaps filled, written as a VideoPose3D custom 2D dataset.

Reads keypoints2d.npz (:mod:`posepipe.artefacts.keypoints2d`), keeps one person per frame (by
default the one with the highest box score, as upstream ``prepare_data_2d_custom.py`` does; or the
largest box), fills frames without a detection by linear interpolation of each coordinate between
the nearest detected frames (before the first / after the last detection the nearest detection is
held), and writes results/{video}/dataset2d.npz (format: :mod:`posepipe.artefacts.dataset2d`).
With ``person: main`` or ``all`` it follows the tracks of tracks.npz instead, one sequence per
person. ``--subject`` overrides the subject name.

``merge-dataset2d`` joins several of these files into one custom dataset with one subject per
video (results/dataset2d_custom.npz), as ``prepare_data_2d_custom.py`` does for a folder.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.artefacts.dataset2d import (
    ACTION,
    NUM_JOINTS,
    Dataset2D,
    person_name,
    person_subjects,
    read_custom,
    save_dataset2d,
    save_dataset2d_custom,
    save_persons2d,
    subject_name,
)
from posepipe.artefacts.keypoints2d import Keypoints2D, load_keypoints2d
from posepipe.conditioning import FILTER_OPTIONS, FILTERS, apply_filter, fill_low_confidence, runs
from posepipe.errors import PosepipeError
from posepipe.settings import add_option, schema_default, settings_from_args

log = logging.getLogger(__name__)

STAGE = "dataset2d"
SELECTIONS = ("highest_score", "largest_box")
PERSON_MODES = ("top_score", "main", "all")


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


# ---------------------------------------------------------------------------------------------
# several people: one sequence per person track


def build_person(
    kp: Keypoints2D, rows: np.ndarray, *, name: str, track_id: int, max_gap_frames: int
) -> Dataset2D:
    """One person's sequence from ``rows`` (int64 (T,): their detection row per frame, -1 if none).

    Gaps of at most ``max_gap_frames`` frames between two detections are filled by linear
    interpolation; longer gaps and the frames before the first / after the last detection stay
    absent (NaN keypoints and boxes), so the sequence falls into segments (:func:`runs` of
    :attr:`Dataset2D.present`) that are lifted separately.
    """
    T = kp.num_frames
    detected = rows >= 0
    keypoints = np.full((T, NUM_JOINTS, 2), np.nan, np.float32)
    boxes = np.full((T, 4), np.nan, np.float32)
    scores = np.zeros((T, NUM_JOINTS), np.float32)
    box_scores = np.zeros(T, np.float32)
    keypoints[detected] = kp.keypoints[rows[detected], :, :2]
    boxes[detected] = kp.boxes[rows[detected]]
    scores[detected] = kp.keypoints[rows[detected], :, 2]
    box_scores[detected] = kp.box_scores[rows[detected]]
    seen = np.flatnonzero(detected)
    present = detected.copy()
    for a, b in zip(seen[:-1], seen[1:], strict=True):
        if 1 < b - a <= max_gap_frames + 1:
            present[a:b] = True
    for start, stop in runs(present):
        known = detected[start:stop]
        keypoints[start:stop] = interpolate_missing(keypoints[start:stop], known)
        boxes[start:stop] = interpolate_missing(boxes[start:stop], known)
    return Dataset2D(
        name=name, keypoints=keypoints, width=int(kp.width), height=int(kp.height), detected=detected,
        scores=scores, box_scores=box_scores, boxes=boxes, track_id=int(track_id),
        meta={"track": int(track_id), "detected_frames": int(detected.sum()),
              "interpolated_frames": int((present & ~detected).sum()), "segments": runs(present)},
    )  # fmt: skip


def build_persons(
    kp: Keypoints2D, tracks, *, person: str, video_id: str, max_gap_frames: int, path=None
) -> list[Dataset2D]:
    """Per-person sequences of the tracks chosen by ``person`` ('main': the longest track, ties by
    total box score; 'all': every track), in track order. PosepipeError if there is no track."""
    if tracks.num_tracks == 0:
        raise PosepipeError(
            path,
            f"no person track in any of the {kp.num_frames} frames (tracks shorter than "
            f"tracks.min_track_frames are dropped){_threshold_hint(kp.meta)}",
        )
    frame_of_row = np.repeat(np.arange(kp.num_frames), kp.counts())
    rows = np.full((tracks.num_tracks, kp.num_frames), -1, np.int64)
    tracked = np.flatnonzero(tracks.track_ids >= 0)
    rows[tracks.track_ids[tracked], frame_of_row[tracked]] = tracked
    if person == "main":
        total = np.array([kp.box_scores[r[r >= 0]].sum() for r in rows])
        chosen = [int(np.lexsort((-total, -tracks.length))[0])]
    elif person == "all":
        chosen = list(range(tracks.num_tracks))
    else:
        raise ValueError(f"person must be main or all for tracks, got {person!r}")
    return [
        build_person(kp, rows[k], name=person_name(video_id, k), track_id=k, max_gap_frames=max_gap_frames)
        for k in chosen
    ]


# ---------------------------------------------------------------------------------------------
# conditioning (off by default): per-joint confidence, temporal filters


@dataclass(frozen=True)
class Dataset2DSettings:
    """Settings of the dataset2d stage (config ``dataset2d:``, and the top-level ``person``);
    defaults are the workflow's.

    ``person``: whose poses (one of :data:`PERSON_MODES`); ``selection``: which person per frame
    for ``top_score`` (one of :data:`SELECTIONS`); ``max_gap_frames``: the longest gap in a track
    that is interpolated (None: the tracker's ``max_lost_frames``); the rest is the 2D
    conditioning, off by default (:attr:`conditioning`).
    """

    person: str = schema_default("person")
    selection: str = schema_default("dataset2d.selection")
    max_gap_frames: int | None = schema_default("dataset2d.max_gap_frames")
    joint_score_threshold: float | None = schema_default("dataset2d.joint_score_threshold")
    filter: str = schema_default("dataset2d.filter")
    butterworth_cutoff_hz: float = schema_default("dataset2d.butterworth_cutoff_hz")
    butterworth_order: int = schema_default("dataset2d.butterworth_order")
    savgol_window: int = schema_default("dataset2d.savgol_window")
    savgol_order: int = schema_default("dataset2d.savgol_order")
    one_euro_min_cutoff: float = schema_default("dataset2d.one_euro_min_cutoff")
    one_euro_beta: float = schema_default("dataset2d.one_euro_beta")
    one_euro_d_cutoff: float = schema_default("dataset2d.one_euro_d_cutoff")

    @property
    def conditioning(self) -> Conditioning:
        """What :func:`condition` does with these settings: the joint score threshold, the filter
        and the options of that filter only (:data:`FILTER_OPTIONS`)."""
        if self.filter not in FILTER_OPTIONS:
            raise ValueError(f"filter must be one of {FILTERS}, got {self.filter!r}")
        options = {name: getattr(self, key) for name, key in FILTER_OPTIONS[self.filter].items()}
        return Conditioning(self.joint_score_threshold, self.filter, options)


@dataclass(frozen=True)
class Conditioning:
    """What :func:`condition` does (made from the config ``dataset2d:`` by
    :attr:`Dataset2DSettings.conditioning`); the defaults change nothing."""

    joint_score_threshold: float | None = schema_default("dataset2d.joint_score_threshold")
    filter: str = schema_default("dataset2d.filter")
    filter_options: dict = field(default_factory=dict)  # per FILTER_OPTIONS[filter]

    @property
    def active(self) -> bool:
        return self.joint_score_threshold is not None or self.filter != "none"


# dataset2d.joint_score_threshold warns when more than this share of the detected joints (detected
# frames x 17) score below it: most of the 2D input is then interpolated or, where a joint is never
# confident in a segment, kept as detected although it scored below the threshold.
MAX_BELOW_THRESHOLD_SHARE = 0.5


def condition(ds: Dataset2D, *, options: Conditioning, fps: float | None) -> dict:
    """Apply ``options`` to ``ds.keypoints`` in place, segment by segment; returns what it did (for QC).

    Returns:
        {'joint_score_threshold', 'joints_refilled', 'filter', 'filter_options',
        'filter_mean_shift_px': mean distance the filter moved each present joint}; with a joint
        score threshold also 'joints_detected' (detected frames x 17), 'joints_below_threshold'
        (those scoring below it) and 'joints_never_confident' (below it in every frame of their
        segment, so nothing to refill from: kept as detected).
    """
    report = {"joint_score_threshold": options.joint_score_threshold, "joints_refilled": 0,
              "filter": options.filter, "filter_options": dict(options.filter_options)}  # fmt: skip
    thresholded = options.joint_score_threshold is not None and ds.scores is not None
    if thresholded:
        report |= {"joints_detected": 0, "joints_below_threshold": 0, "joints_never_confident": 0}
    if options.filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {options.filter!r}")
    if options.filter in ("butterworth", "one_euro") and not fps:
        raise PosepipeError(None, f"the {options.filter} filter needs the frame rate (give --timeline)")
    shifts = []
    for start, stop in runs(ds.present):
        seg = ds.keypoints[start:stop].astype(np.float64)
        if thresholded:
            scores, detected = ds.scores[start:stop], ds.detected[start:stop]
            seg, refilled = fill_low_confidence(
                seg, scores, detected, threshold=options.joint_score_threshold
            )
            report["joints_refilled"] += int(refilled.sum())
            below = detected[:, None] & (scores < options.joint_score_threshold)
            report["joints_detected"] += int(detected.sum()) * scores.shape[1]
            report["joints_below_threshold"] += int(below.sum())
            report["joints_never_confident"] += int((below & ~refilled).sum())
        if options.filter != "none":
            try:
                filtered = apply_filter(seg, name=options.filter, fps=fps, options=options.filter_options)
            except ValueError as exc:  # e.g. a cut-off at or above half the frame rate
                raise PosepipeError(
                    ds.meta.get("source"), f"dataset2d.filter {options.filter}: {exc}"
                ) from None
            shifts.append(np.linalg.norm(filtered - seg, axis=-1).ravel())
            seg = filtered
        ds.keypoints[start:stop] = seg.astype(np.float32)
    if options.filter != "none":
        report["filter_mean_shift_px"] = round(float(np.concatenate(shifts).mean()), 4) if shifts else 0.0
    return report


def conditioning_warnings(report: dict, *, who: str = "") -> list[str]:
    """Warnings about what :func:`condition` did (``report`` is its return value): a joint score
    threshold that finds more than :data:`MAX_BELOW_THRESHOLD_SHARE` of the detected joints below it."""
    total, below = report.get("joints_detected", 0), report.get("joints_below_threshold", 0)
    if not total or below / total <= MAX_BELOW_THRESHOLD_SHARE:
        return []
    return [
        f"{who}dataset2d.joint_score_threshold {report['joint_score_threshold']} is above the score of "
        f"{below / total:.0%} of the detected joints ({below} of {total}; more than "
        f"{MAX_BELOW_THRESHOLD_SHARE:.0%}): {report['joints_refilled']} refilled by interpolation, "
        f"{report['joints_never_confident']} never confident in their segment kept as detected"
    ]


def _threshold_hint(meta: dict) -> str:
    """Why there may be nobody: an imported file with detections of other categories only (COCO
    ``category_id`` other than 1, counted as ``skipped_other_categories`` by the importer), or the
    score threshold of the keypoints2d stage, with what it removed."""
    other = meta.get("skipped_other_categories") or 0
    if other and not meta.get("persons") and not meta.get("persons_below_threshold"):
        return (
            f" (all {other} detections in the keypoints file are of categories other than person: "
            "only COCO category_id 1 is read)"
        )
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


def run_dataset2d(
    keypoints2d_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    video_id: str,
    settings: Dataset2DSettings | None = None,
    subject: str | None = None,
    tracks_path: str | os.PathLike | None = None,
    fps: float | None = None,
    calibration: str | os.PathLike | None = None,
    rotation: int = 0,
) -> list[Dataset2D]:
    """The ``dataset2d`` stage: keypoints2d.npz (+ tracks.npz) -> dataset2d.npz. Returns the persons
    it wrote (one, track -1, for ``top_score``). ``settings``: config ``dataset2d:`` and ``person``
    (None: the defaults).

    ``person='top_score'`` (upstream): one person per frame by ``selection``, one subject. ``main``
    or ``all``: per-person sequences of the tracks in ``tracks_path`` (:func:`build_persons`);
    ``max_gap_frames`` None takes the tracker's ``max_lost_frames``. The conditioning (off by
    default) then works on each sequence, segment by segment (``fps``: the timeline's).
    ``calibration`` (``dataset2d.undistort``, off by default): a calibration file
    (:mod:`posepipe.camera`) whose lens distortion is taken out of the keypoints first: the same
    points in the pixel grid of an ideal pinhole camera with the same camera matrix (boxes stay as
    detected); ``meta["undistorted"]`` records it (``rotation``: the timeline's).
    """
    settings = settings or Dataset2DSettings()
    person, max_gap_frames, conditioning = settings.person, settings.max_gap_frames, settings.conditioning
    kp = load_keypoints2d(keypoints2d_path)
    undistorted = undistort_keypoints(kp, calibration, rotation=rotation) if calibration is not None else None
    if person != "top_score":
        from posepipe.artefacts.tracks import load_tracks

        if tracks_path is None:
            raise PosepipeError(keypoints2d_path, f"person: {person} needs the tracks file (--tracks)")
        tracks = load_tracks(tracks_path, detections=len(kp.boxes))
        gap = tracks.meta.get("max_lost_frames_used", 0) if max_gap_frames is None else max_gap_frames
        persons = build_persons(
            kp, tracks, person=person, video_id=video_id, max_gap_frames=int(gap), path=keypoints2d_path
        )
        warnings = []
        if conditioning.active:
            for i, ds in enumerate(persons):
                ds.meta["conditioning"] = condition(ds, options=conditioning, fps=fps)
                warnings += conditioning_warnings(
                    ds.meta["conditioning"], who=f"person {i} (track {ds.track_id}): "
                )
        meta = {
            "posepipe_version": __version__, "video_id": video_id, "person": person, "max_gap_frames": int(gap),
            "num_frames": kp.num_frames, "width": int(kp.width), "height": int(kp.height),
            "source": os.fspath(keypoints2d_path), "tracks": os.fspath(tracks_path), "keypoints2d_meta": kp.meta,
        }  # fmt: skip
        if undistorted is not None:
            meta["undistorted"] = undistorted
        if warnings:  # the list summary.csv reads (only when there is one: defaults stay byte-identical)
            meta["warnings"] = warnings
        for warning in warnings:
            log.warning("%s: %s", keypoints2d_path, warning)
        save_persons2d(out, persons, meta=meta)
        log.info(
            "%s: %d persons (%s), %d segments -> %s", keypoints2d_path, len(persons), person,
            len(person_subjects(persons)), out,
        )  # fmt: skip
        return persons
    ds = build_dataset2d(
        kp, name=subject or subject_name(video_id), selection=settings.selection, path=keypoints2d_path
    )
    ds.meta["video_id"] = video_id
    if undistorted is not None:
        ds.meta["undistorted"] = undistorted
    if conditioning.active:
        ds.meta["conditioning"] = condition(ds, options=conditioning, fps=fps)
        if warnings := conditioning_warnings(ds.meta["conditioning"]):
            ds.meta["warnings"] = warnings  # the list summary.csv reads
        for warning in warnings:
            log.warning("%s: %s", keypoints2d_path, warning)
    save_dataset2d(out, ds)
    log.info(
        "%s: %d frames, %d detected, %d interpolated -> %s",
        keypoints2d_path,
        ds.num_frames,
        ds.meta["detected_frames"],
        ds.meta["interpolated_frames"],
        out,
    )
    return [ds]


def undistort_keypoints(kp, calibration: str | os.PathLike, *, rotation: int = 0) -> dict:
    """Take the lens distortion of ``calibration`` out of ``kp``'s keypoints in place (x, y; scores
    kept); returns the record for ``meta["undistorted"]``."""
    from posepipe.camera import fit_to_video, load_calibration, undistort_points

    camera = fit_to_video(load_calibration(calibration), int(kp.width), int(kp.height), rotation=rotation)
    if len(kp.keypoints):
        kp.keypoints[..., :2] = undistort_points(kp.keypoints[..., :2], camera).astype(kp.keypoints.dtype)
    return {"calibration": os.fspath(calibration), "lens": camera.lens, "camera_matrix": camera.matrix.tolist(),
            "dist_coeffs": camera.dist.tolist()}  # fmt: skip


def merge_dataset2d(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, left_out: Sequence[dict] | None = None
) -> list[str]:
    """Join custom 2D datasets into one file with every subject (upstream's one-file-per-folder form).

    Only ``positions_2d``, ``metadata`` and a JSON ``meta`` (sources and per-subject frame counts)
    are written. ``left_out``: videos of the run that are not in it, each ``{'video', 'status'}``
    (e.g. a video that failed before dataset2d), recorded as ``meta["left_out"]`` when given.
    A subject name found twice raises PosepipeError. Returns the subject names.
    """
    if not paths:
        raise PosepipeError(out, "nothing to merge")
    positions: dict = {}
    resolutions: dict = {}
    sources = []
    for path in paths:
        pos, metadata, _ = read_custom(path)
        if metadata.get("layout_name") != "coco":
            raise PosepipeError(path, f"layout {metadata.get('layout_name')!r}, expected 'coco'")
        for name, actions in pos.items():
            if name in positions:
                raise PosepipeError(path, f"subject {name!r} already comes from {resolutions[name]['from']}")
            positions[name] = actions
            resolutions[name] = {**metadata["video_metadata"][name], "from": os.fspath(path)}
            sources.append({"subject": name, "file": os.fspath(path), "frames": int(len(actions[ACTION][0]))})
    save_dataset2d_custom(out, positions, resolutions, sources, left_out=left_out)
    log.info("merged %d subjects -> %s", len(positions), out)
    return list(positions)


def _cli_dataset2d(args: argparse.Namespace) -> None:
    fps = None
    if args.timeline is not None:
        from posepipe.artefacts.timeline import load_timeline_header

        fps = float(load_timeline_header(args.timeline)["fps"])
    rotation = 0
    if args.timeline is not None:
        rotation = int(load_timeline_header(args.timeline).get("rotation", 0) or 0)
    run_dataset2d(
        args.keypoints2d, args.out, video_id=args.video_id, settings=settings_from_args(Dataset2DSettings, args),
        subject=args.subject, tracks_path=args.tracks, fps=fps, calibration=args.undistort, rotation=rotation,
    )  # fmt: skip


def _run_merge(args: argparse.Namespace) -> None:
    merge_dataset2d(args.inputs, args.out)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "dataset2d",
        help="one person per frame, gaps interpolated -> VideoPose3D custom 2D dataset",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    p.add_argument("keypoints2d", type=Path, metavar="KEYPOINTS2D_NPZ")
    p.add_argument("--out", type=Path, required=True, help="dataset2d.npz to write")
    p.add_argument("--video-id", required=True, help="video id (results/{video}); names the subject")
    add_option(p, "--selection", key="dataset2d.selection", choices=SELECTIONS, help="which person per frame")
    p.add_argument(
        "--subject", default=None, help="subject name (default: VIDEO_ID.mp4, as upstream names it)"
    )
    add_option(p, "--person", key="person", choices=PERSON_MODES, help="whose poses: top_score, main or all")
    p.add_argument("--tracks", type=Path, default=None, help="tracks.npz (needed by --person main / all)")
    add_option(
        p, "--max-gap-frames", key="dataset2d.max_gap_frames", type=int,
        help="longest gap in a track that is interpolated; longer ones split it (unset: tracks' max_lost_frames)",
    )  # fmt: skip
    g = p.add_argument_group("conditioning (off by default; see README, 2D conditioning)")
    g.add_argument(
        "--timeline", type=Path, default=None, help="frames/timeline.json: the frame rate filters need"
    )
    add_option(
        g, "--joint-score-threshold", key="dataset2d.joint_score_threshold", type=float,
        help="joints scoring lower are refilled from the same joint's confident frames",
    )  # fmt: skip
    add_option(
        g, "--filter", key="dataset2d.filter", choices=FILTERS, help="temporal filter of the 2D keypoints"
    )
    for names in FILTER_OPTIONS.values():
        for key in names.values():
            kind = int if key.endswith(("order", "window")) else float
            add_option(
                g, f"--{key.replace('_', '-')}", key=f"dataset2d.{key}", type=kind, help=key.replace("_", " ")
            )
    p.add_argument(
        "--undistort", type=Path, default=None, metavar="CALIBRATION",
        help="take this calibration's lens distortion out of the keypoints first (config dataset2d.undistort; "
        "--timeline gives the rotation)",
    )  # fmt: skip
    p.set_defaults(handler=_cli_dataset2d)

    m = subparsers.add_parser(
        "merge-dataset2d",
        help="join per-video dataset2d files into one custom dataset (one subject per video)",
    )
    m.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    m.add_argument("--out", type=Path, required=True, help="e.g. results/dataset2d_custom.npz")
    m.set_defaults(handler=_run_merge)
