"""The pose3d artefact: ``results/{video}/pose3d.npz`` and its tidy twin ``pose3d.csv``.

Written by the ``lift3d`` stage (:mod:`posepipe.lift3d.stage`). The only module that writes or
reads these files; it imports no torch, so the renderer, the
summary and exports read 3D poses without loading the model code.

``pose3d.npz`` (plain arrays, loads with ``allow_pickle=False``):

- ``positions_3d``: float32 (T, 17, 3): x, y, z in metres, camera space, Human3.6M joint order
  (:data:`posepipe.skeleton.H36M_JOINTS`), root-relative unless the checkpoint had a trajectory
  model; what upstream ``run.py --viz-export`` writes.
- ``positions_3d_display``: float32 (T, 17, 3): the same poses rotated by a Human3.6M camera's
  orientation (z up) with the lowest joint of the sequence at height 0, for display.
- ``time``: float64 (T,): seconds of each frame on the frame timeline.
- ``meta``: str (JSON): ``stage``, ``stage_version`` (:data:`posepipe.registry.STAGE_VERSIONS`),
  checkpoint path and SHA-256, architecture, options, timings.

Several people (``person: main`` or ``all``): ``positions_3d`` and ``positions_3d_display`` are
float32 (P, T, 17, 3), NaN in the frames where a person is absent (outside their track's
segments); in camera space each person is root-relative at the origin, in the display copy each
stands on the floor and is moved along it by their horizontal place in the image
(:func:`posepipe.lift3d.infer.place_side_by_side`); ``track_ids``: int64 (P,), their tracks in
tracks.npz; ``meta["persons"]``: per person its name, track, frame count and segments
([start, stop) frame ranges, lifted separately).

``pose3d.csv``: one row per frame and joint: ``frame, time, joint, x, y, z`` (camera space); with
several people a ``person`` column (the track id) comes first and absent frames have no rows.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from posepipe.atomic import atomic_path, save_npz
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.skeleton import H36M_JOINTS

STAGE = "lift3d"
VERSION = STAGE_VERSIONS[STAGE]
NUM_JOINTS = len(H36M_JOINTS)


@dataclass
class Pose3D:
    """3D poses of one video, always per person in memory.

    positions, display: float32 (P, T, 17, 3) metres (camera space; display frame), NaN where a
    person is absent; time: float64 (T,) seconds; track_ids: int64 (P,), each person's track, -1
    for the one person of a one-person-per-frame selection (P = 1; written in the one-person
    layout). Built from (T, 17, 3) arrays without ``track_ids``, it becomes that one person.
    """

    positions: np.ndarray
    display: np.ndarray
    time: np.ndarray
    meta: dict = field(default_factory=dict)
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.track_ids is None:  # one person per frame
            self.positions, self.display = np.asarray(self.positions)[None], np.asarray(self.display)[None]
            self.track_ids = np.full(1, -1, np.int64)
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64)

    @property
    def num_frames(self) -> int:
        return len(self.time)

    @property
    def tracked(self) -> bool:
        """People followed by track (``person: main / all``): the per-person file layout."""
        return bool(len(self.track_ids) and self.track_ids[0] >= 0)


def pose3d_table(positions: np.ndarray, times: np.ndarray, track_ids: np.ndarray | None = None):
    """Tidy pandas DataFrame: one row per frame and joint: frame, time, joint, x, y, z; with
    ``track_ids`` (positions (P, T, 17, 3)) a first column ``person`` and no rows for absent frames."""
    import pandas as pd

    if track_ids is not None:
        tables = []
        for track, person in zip(track_ids, positions, strict=True):
            table = pose3d_table(person, times)
            table.insert(0, "person", int(track))
            tables.append(table[np.repeat(np.isfinite(person).all(axis=(1, 2)), person.shape[1])])
        return pd.concat(tables, ignore_index=True)
    T, J, _ = positions.shape
    return pd.DataFrame(
        {
            "frame": np.repeat(np.arange(T), J),
            "time": np.repeat(times, J),
            "joint": np.tile(np.array(H36M_JOINTS[:J], dtype=object), T),
            "x": positions[..., 0].reshape(-1),
            "y": positions[..., 1].reshape(-1),
            "z": positions[..., 2].reshape(-1),
        }
    )


def save_pose3d_csv(path: str | os.PathLike, pose: Pose3D) -> None:
    """Write ``pose3d.csv`` (atomic)."""
    with atomic_path(path) as tmp:
        table = pose3d_table(pose.positions, pose.time, pose.track_ids) if pose.tracked else None
        (pose3d_table(pose.positions[0], pose.time) if table is None else table).to_csv(tmp, index=False)


def save_pose3d(path: str | os.PathLike, pose: Pose3D) -> dict:
    """Write ``pose3d.npz`` (atomic); the stage and its version are stamped into the file's ``meta``
    (``pose`` is not changed). Returns the meta written."""
    meta = {"stage": STAGE, "stage_version": VERSION, **pose.meta}
    persons = {"track_ids": pose.track_ids} if pose.tracked else {}
    one = slice(None) if pose.tracked else 0  # the one-person layout has no person axis
    save_npz(
        path,
        positions_3d=np.asarray(pose.positions[one], dtype=np.float32),
        positions_3d_display=np.asarray(pose.display[one], dtype=np.float32),
        time=np.asarray(pose.time, dtype=np.float64),
        meta=np.array(json.dumps(meta)),
        **persons,
    )
    return meta


def load_pose3d(path: str | os.PathLike, *, frame_count: int | None = None) -> Pose3D:
    """Read and check ``pose3d.npz``.

    Args:
        frame_count: when given, the file must have this many frames (the timeline's).

    Raises:
        PosepipeError: unreadable file, missing arrays, wrong shapes, or another frame count.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"positions_3d", "positions_3d_display", "time"} - set(z.files)
            if missing:
                raise PosepipeError(path, f"not a pose3d.npz: no {', '.join(sorted(missing))} array")
            positions = np.asarray(z["positions_3d"], dtype=np.float32)
            display = np.asarray(z["positions_3d_display"], dtype=np.float32)
            times = np.asarray(z["time"], dtype=np.float64)
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            track_ids = np.asarray(z["track_ids"], dtype=np.int64) if "track_ids" in z.files else None
    except PosepipeError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # zip, header and JSON errors
        raise PosepipeError(path, f"cannot read 3D poses ({type(exc).__name__}: {exc})") from exc
    lead = (len(times),) if track_ids is None else (len(track_ids), len(times))
    for name, array in (("positions_3d", positions), ("positions_3d_display", display)):
        if array.shape != (*lead, NUM_JOINTS, 3):
            raise PosepipeError(path, f"{name} has shape {array.shape}, expected {(*lead, NUM_JOINTS, 3)}")
    if frame_count is not None and len(times) != frame_count:
        raise PosepipeError(path, f"has {len(times)} frames of 3D poses, the timeline has {frame_count}")
    return Pose3D(positions=positions, display=display, time=times, meta=meta, track_ids=track_ids)
