"""The angles artefact: ``results/{video}/angles.npz``, its long table ``angles.csv`` and
``angles_summary.csv``.

Written by the ``angles`` stage (:mod:`posepipe.angles`) from the world-frame joints (world.npz)
when the world stage ran, else the camera-frame joints (pose3d.npz). Angle definitions, signs and
zero poses: :mod:`posepipe.biomech.angles`.

``angles.npz`` (plain arrays, loads with ``allow_pickle=False``):

- ``values``: float32 (P, T, A) degrees, NaN where the angle is undefined or the person absent.
- ``names``: str (A,) angle names (``hip_flexion_l``, ``knee_flexion_r``, ``trunk_flexion``, ...).
- ``time``: float64 (T,) seconds of each frame on the frame timeline.
- ``track_ids``: int64 (P,) each person's track (-1: the one person of a one-person selection).
- ``meta``: str (JSON): ``stage``, ``stage_version``, ``frame`` ("world" | "camera": the joints'
  frame; in the camera frame "up" is the camera's -Y, image up), ``up``, ``source`` (the file read).

``angles.csv``: long format, one row per person, frame and angle with a finite value:
``person, frame, time, angle, value`` (person: the track id, -1 for the one-person selection;
value in degrees, 4 decimals).

``angles_summary.csv``: one row per person and angle: ``person, angle, frame_of_reference,
frames`` (frames with a value), ``mean, min, max, range`` (range of motion = max - min) and, for
the two sides of a bilateral angle, ``left_minus_right_mean`` (mean over frames where both are
defined of left - right) and ``left_minus_right_range`` (range left - range right), the same on
both rows; empty for a midline angle.
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

STAGE = "angles"
VERSION = STAGE_VERSIONS[STAGE]
FRAMES = ("world", "camera")


@dataclass
class Angles:
    """Joint angles of one video, per person.

    values: float32 (P, T, A) degrees; names: tuple of A str; time: float64 (T,) seconds;
    track_ids: int64 (P,); meta: dict with ``frame`` ("world" | "camera").
    """

    values: np.ndarray
    names: tuple[str, ...]
    time: np.ndarray
    track_ids: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def frame(self) -> str:
        return self.meta.get("frame", "camera")


def angles_table(angles: Angles):
    """Long pandas DataFrame ``person, frame, time, angle, value``; rows only for finite values."""
    import pandas as pd

    P, T, A = angles.values.shape
    person, frame, angle = np.meshgrid(np.arange(P), np.arange(T), np.arange(A), indexing="ij")
    values = np.asarray(angles.values, dtype=np.float64).reshape(-1)
    keep = np.isfinite(values)
    return pd.DataFrame(
        {
            "person": np.asarray(angles.track_ids, dtype=np.int64)[person.reshape(-1)[keep]],
            "frame": frame.reshape(-1)[keep],
            "time": np.asarray(angles.time, dtype=np.float64)[frame.reshape(-1)[keep]],
            "angle": np.asarray(angles.names, dtype=object)[angle.reshape(-1)[keep]],
            "value": values[keep],
        }
    )


def save_angles_csv(path: str | os.PathLike, angles: Angles) -> None:
    """Write ``angles.csv`` (atomic)."""
    with atomic_path(path) as tmp:
        angles_table(angles).to_csv(tmp, index=False, float_format="%.4f")


def summary_table(angles: Angles):
    """The summary DataFrame (see the module docstring)."""
    import pandas as pd

    values = np.asarray(angles.values, dtype=np.float64)
    index = {name: i for i, name in enumerate(angles.names)}
    rows = []
    for p, track in enumerate(np.asarray(angles.track_ids, dtype=np.int64)):
        for name, a in index.items():
            v = values[p, :, a]
            ok = np.isfinite(v)
            row = {
                "person": int(track),
                "angle": name,
                "frame_of_reference": angles.frame,
                "frames": int(ok.sum()),
                "mean": float(v[ok].mean()) if ok.any() else np.nan,
                "min": float(v[ok].min()) if ok.any() else np.nan,
                "max": float(v[ok].max()) if ok.any() else np.nan,
            }
            row["range"] = row["max"] - row["min"]
            row["left_minus_right_mean"] = row["left_minus_right_range"] = np.nan
            if name.endswith(("_l", "_r")) and {name[:-1] + "l", name[:-1] + "r"} <= index.keys():
                left, right = values[p, :, index[name[:-1] + "l"]], values[p, :, index[name[:-1] + "r"]]
                both = np.isfinite(left) & np.isfinite(right)
                if both.any():
                    row["left_minus_right_mean"] = float((left[both] - right[both]).mean())
                if np.isfinite(left).any() and np.isfinite(right).any():
                    row["left_minus_right_range"] = float(
                        np.ptp(left[np.isfinite(left)]) - np.ptp(right[np.isfinite(right)])
                    )
            rows.append(row)
    return pd.DataFrame(rows)


def save_angles_summary(path: str | os.PathLike, angles: Angles) -> None:
    """Write ``angles_summary.csv`` (atomic)."""
    with atomic_path(path) as tmp:
        summary_table(angles).to_csv(tmp, index=False, float_format="%.4f")


def save_angles(path: str | os.PathLike, angles: Angles) -> dict:
    """Write ``angles.npz`` (atomic); stage and version are stamped into ``meta`` (``angles`` is not
    changed). Returns the meta written."""
    meta = {"stage": STAGE, "stage_version": VERSION, **angles.meta}
    save_npz(
        path,
        values=np.asarray(angles.values, dtype=np.float32),
        names=np.asarray(angles.names, dtype=str),
        time=np.asarray(angles.time, dtype=np.float64),
        track_ids=np.asarray(angles.track_ids, dtype=np.int64),
        meta=np.array(json.dumps(meta)),
    )
    return meta


def load_angles(path: str | os.PathLike) -> Angles:
    """Read and check ``angles.npz``.

    Raises:
        PosepipeError: unreadable file, missing arrays or shapes that do not agree.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"values", "names", "time", "track_ids", "meta"} - set(z.files)
            if missing:
                raise PosepipeError(path, f"not an angles.npz: no {', '.join(sorted(missing))} array")
            values = np.asarray(z["values"], dtype=np.float32)
            names = tuple(str(n) for n in z["names"])
            times = np.asarray(z["time"], dtype=np.float64)
            track_ids = np.asarray(z["track_ids"], dtype=np.int64)
            meta = json.loads(str(z["meta"]))
    except PosepipeError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # zip, header and JSON errors
        raise PosepipeError(path, f"cannot read joint angles ({type(exc).__name__}: {exc})") from exc
    expected = (len(track_ids), len(times), len(names))
    if values.shape != expected:
        raise PosepipeError(
            path, f"values has shape {values.shape}, expected {expected} (persons, frames, angles)"
        )
    if meta.get("frame") not in FRAMES:
        raise PosepipeError(path, f"meta frame is {meta.get('frame')!r}, expected one of {', '.join(FRAMES)}")
    return Angles(values=values, names=names, time=times, track_ids=track_ids, meta=meta)
