"""Stage ``lift3d``: dataset2d.npz -> pose3d.npz + pose3d.csv, with the configured lifter.

The lifter (:data:`posepipe.registry.LIFTERS`, VideoPose3D by default: :mod:`posepipe.lift3d.videopose3d`)
turns one sequence of 2D COCO keypoints in pixels into camera-space Human3.6M joints; this driver
reads the artefacts, lifts each person's segments alone (the model never sees across a long
absence), optionally at another frame rate (``model_fps``), and writes pose3d (format:
:mod:`posepipe.artefacts.pose3d`).
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from posepipe import __version__
from posepipe.artefacts.dataset2d import load_dataset2d, load_persons2d
from posepipe.artefacts.pose3d import Pose3D, save_pose3d, save_pose3d_csv
from posepipe.artefacts.timeline import load_timeline_header
from posepipe.conditioning import runs
from posepipe.errors import PosepipeError
from posepipe.lift3d.infer import (
    H36M_DISPLAY_QUATERNION,
    camera_to_display,
    lift_at_rate,
    place_side_by_side,
    resolve_device,
)
from posepipe.registry import DEFAULT_LIFTER, LIFTERS
from posepipe.settings import schema_default
from posepipe.skeleton import H36M_JOINTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lift3DSettings:
    """Settings of the lift3d stage (config ``lift3d:``); defaults are the workflow's.

    ``causal``: the checkpoint uses causal convolutions (not recorded in its weights);
    ``flip_augmentation``: average with a horizontally mirrored pass (flag ``--flip``); ``device``:
    ``auto`` (CUDA if present), ``cpu``, ``cuda`` or ``cuda:N``; ``window``: output frames per model
    pass (0: the whole sequence at once); ``model_fps``: frames per second to lift at (None: the
    timeline's own rate).
    """

    causal: bool = schema_default("lift3d.causal")
    flip_augmentation: bool = schema_default("lift3d.flip_augmentation")
    device: str = schema_default("lift3d.device")
    window: int = schema_default("lift3d.window")
    model_fps: float | None = schema_default("lift3d.model_fps")


def run_lift3d(
    dataset2d_path: str | os.PathLike,
    *,
    checkpoint_path: str | os.PathLike,
    out: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    timeline: str | os.PathLike | None = None,
    fps: float | None = None,
    subject: str | None = None,
    lifter: str = DEFAULT_LIFTER,
    settings: Lift3DSettings | None = None,
) -> dict:
    """The ``lift3d`` stage. Writes ``out`` (pose3d.npz) and, if given, ``csv``; returns the meta dict.

    The files are described in :mod:`posepipe.artefacts.pose3d`; ``lifter`` names the lifter
    (:data:`posepipe.registry.LIFTERS`) that reads ``checkpoint_path``. Frame times come from the timeline's
    fps when given, else ``fps``. Non-finite model output is an error naming the checkpoint.
    ``settings``: config ``lift3d:`` (None: the defaults; :class:`Lift3DSettings`). Its
    ``model_fps``: lift each sequence resampled to that rate and resample the 3D back
    (:func:`lift_at_rate`); None or the timeline's own rate lifts the frames as they are.
    """
    settings = settings or Lift3DSettings()
    causal, flip, device = settings.causal, settings.flip_augmentation, settings.device
    window, model_fps = settings.window, settings.model_fps
    t_start = time.perf_counter()
    # Always per person: one (track -1) for a one-person file, else one per track (NaN where absent).
    people = [load_dataset2d(dataset2d_path, subject=subject)] if subject else load_persons2d(dataset2d_path)
    ds, tracked = people[0], people[0].track_id >= 0
    T = ds.num_frames
    if timeline is not None:
        header = load_timeline_header(timeline)
        fps_used, count = float(header["fps"]), int(header["frame_count"])
        if count != T:
            raise PosepipeError(
                dataset2d_path, f"has {T} frames but timeline {os.fspath(timeline)} has {count}"
            )
        if fps is not None and abs(fps - fps_used) > 1e-6 * fps_used:
            log.warning("--fps %s ignored: timeline says %s", fps, fps_used)
        time_source = "timeline"
    elif fps is not None and fps > 0:
        fps_used, time_source = float(fps), "fps"
    else:
        raise PosepipeError(dataset2d_path, "frame times unknown: give a timeline or a positive fps")

    lifting = importlib.import_module(LIFTERS[lifter].module)
    model = lifting.build(checkpoint_path, causal=causal)
    dev = resolve_device(device)
    t_loaded = time.perf_counter()
    log.info(
        "lift3d %s: %d frames, receptive field %d, causal=%s, flip=%s, device=%s, window=%s",
        ds.name,
        T,
        lifting.receptive_field(model),
        causal,
        flip,
        dev,
        window,
    )
    resample_to = None if model_fps is None or abs(model_fps - fps_used) < 1e-9 * fps_used else model_fps

    def lift(keypoints: np.ndarray, start: int, label: str) -> np.ndarray:
        options = dict(width=ds.width, height=ds.height, flip=flip, window=window, device=dev, label=label)
        if resample_to is None:
            return lifting.infer(model, keypoints, **options)
        times = (start + np.arange(len(keypoints))) / fps_used
        return lift_at_rate(
            keypoints,
            times,
            model_fps=resample_to,
            lift=lambda k, **o: lifting.infer(model, k, **o),
            **options,
        )

    # Each segment of each person is lifted alone: the model never sees across a long absence. (A
    # one-person file is filled: its one segment is the whole timeline.)
    positions = np.full((len(people), T, len(H36M_JOINTS), 3), np.nan, np.float32)
    present = np.zeros((len(people), T), bool)
    for p, person in enumerate(people):
        for start, stop in runs(person.present) if tracked else [(0, T)]:
            label = f"lift3d {person.name} frames {start}-{stop - 1}" if tracked else "lift3d"
            positions[p, start:stop] = lift(person.keypoints[start:stop], start, label)
            present[p, start:stop] = True
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t_inferred = time.perf_counter()
    display = np.stack([camera_to_display(person_positions) for person_positions in positions])
    if tracked:  # several people stand side by side on the floor, by their place in the image
        display = place_side_by_side(
            display, np.stack([person.keypoints for person in people]), width=ds.width
        )
    times = np.arange(T, dtype=np.float64) / fps_used

    if not np.isfinite(positions[present]).all():
        bad = int((~np.isfinite(positions[present]).all(axis=(1, 2))).sum())
        raise PosepipeError(
            checkpoint_path,
            f"the model gave non-finite 3D joints in {bad} of {T} frames of {dataset2d_path} "
            "(NaN or infinite weights in the checkpoint?); nothing was written",
        )
    meta = {
        "posepipe_version": __version__,
        "torch_version": torch.__version__,
        "dataset2d": os.fspath(dataset2d_path),
        "subject": ds.name,
        "num_frames": T,
        "interpolated_frames": int((~ds.detected).sum()),
        **lifting.describe(model),
        "causal": bool(causal),
        "flip": bool(flip),
        "device": str(dev),
        "window": window,
        "fps": fps_used,
        "model_fps": resample_to,
        "time_source": time_source,
        "timeline": None if timeline is None else os.fspath(timeline),
        "joints": list(H36M_JOINTS),
        "units": "m",
        "display": {"quaternion": H36M_DISPLAY_QUATERNION.tolist(), "translation": [0.0, 0.0, 0.0]},
    }
    if tracked:
        meta["persons"] = [
            {"name": person.name, "track": person.track_id, "frames": int(person.present.sum()),
             "segments": runs(person.present)}
            for person in people
        ]  # fmt: skip
    track_ids = np.array([person.track_id for person in people], np.int64)
    pose = Pose3D(positions=positions, display=display, time=times, meta=meta, track_ids=track_ids)
    # The CSV goes first so that pose3d.npz, written last, can record every timing.
    if csv is not None:
        save_pose3d_csv(csv, pose)
    meta["timings_s"] = {
        "load": round(t_loaded - t_start, 4),
        "inference": round(t_inferred - t_loaded, 4),
        "csv": round(time.perf_counter() - t_inferred, 4),
    }
    meta["frames_per_second"] = round(T / max(t_inferred - t_loaded, 1e-9), 2)
    written = save_pose3d(out, pose)
    log.info("lift3d %s: %d frames at %.0f frames/s -> %s", ds.name, T, meta["frames_per_second"], out)
    return written
