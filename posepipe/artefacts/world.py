"""The world artefact: ``results/{video}/world.npz`` and its table ``world.csv``.

Written by the ``world`` stage (:mod:`posepipe.world.stage`), read by angles, evaluate, opensim,
exports (``frame: world``) and QC. The only module that writes or reads these files.

World frame: right-handed, metres. +Z up along the floor normal; the origin on the floor under
the main person's root (pelvis) in the first frame it is seen; +X along the camera's viewing
direction projected on the floor; +Y = Z x X (to the left as seen from the camera). A static
camera is assumed.

``world.npz`` (plain arrays, loads with ``allow_pickle=False``; always with the person axis, P = 1
with track id -1 for the one-person selection):

- ``joints``: float32 (P, T, 17, 3): world metres, Human3.6M joint order
  (:data:`posepipe.skeleton.H36M_JOINTS`), NaN where the person is absent.
- ``root``: float32 (P, T, 3): the root (pelvis) in world metres; ``root_camera``: float32
  (P, T, 3): the same in camera coordinates (OpenCV axes: x right, y down, z forward), metres.
- ``camera_matrix``: float64 (3, 3); ``dist_coeffs``: float64 (N,) (OpenCV order: k1, k2, p1,
  p2[, k3[, k4, k5, k6]] for "radtan", k1..k4 for "fisheye", empty for "pinhole"); ``lens``: str
  "pinhole" | "radtan" | "fisheye"; ``image_size``: int64 (2,) width, height (of the frames as
  shown, after rotation metadata).
- ``R_world_camera``: float64 (3, 3), ``t_world_camera``: float64 (3,): x_world = R @ x_cam + t.
- ``floor``: float64 (4,): the floor plane n . x + d = 0 in camera coordinates (n unit, pointing
  up, away from the floor).
- ``contacts``: bool (P, T, 2): left foot, right foot on the floor.
- ``reprojection_px``: float32 (P, T): mean reprojection error of the joints in pixels (NaN where
  absent).
- ``scale``: float32 (P,): the metric factor applied to the lifted pose (1 with the lifter's
  scale); ``height_m``: float32 (P,): the subject height given (NaN if none).
- ``track_ids``: int64 (P,); ``time``: float64 (T,) seconds on the frame timeline.
- ``meta``: str (JSON): ``stage``, ``stage_version``, ``intrinsics_source`` ("calibration" |
  "sheet" | "config" | "assumed"), ``scale_source`` ("height" | "lifter"), ``floor_source``
  ("contacts" | "camera_height" | "assumed_tilt"), ``warnings`` (list of str), and the stage's
  figures (floor residual, settings).

``world.csv``: one row per person and frame where the person is present: ``person`` (track id),
``frame``, ``time``, ``root_x, root_y, root_z``, ``contact_left``, ``contact_right`` (0/1),
``reprojection_px``, then ``<joint>_x, <joint>_y, <joint>_z`` for the 17 joints, world metres.
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

STAGE = "world"
VERSION = STAGE_VERSIONS[STAGE]
NUM_JOINTS = len(H36M_JOINTS)
LENSES = ("pinhole", "radtan", "fisheye")
INTRINSICS_SOURCES = ("calibration", "sheet", "config", "assumed")
SCALE_SOURCES = ("height", "lifter")
FLOOR_SOURCES = ("contacts", "camera_height", "assumed_tilt")
DIST_LENGTHS = {"pinhole": (0,), "radtan": (4, 5, 8), "fisheye": (4,)}
ARRAYS = (
    "joints", "root", "root_camera", "camera_matrix", "dist_coeffs", "lens", "image_size", "R_world_camera",
    "t_world_camera", "floor", "contacts", "reprojection_px", "scale", "height_m", "track_ids", "time", "meta",
)  # fmt: skip


@dataclass
class World:
    """Every person of one video in the world frame (shapes as in the module docstring)."""

    joints: np.ndarray
    root: np.ndarray
    root_camera: np.ndarray
    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    lens: str
    image_size: np.ndarray
    R_world_camera: np.ndarray
    t_world_camera: np.ndarray
    floor: np.ndarray
    contacts: np.ndarray
    reprojection_px: np.ndarray
    scale: np.ndarray
    height_m: np.ndarray
    track_ids: np.ndarray
    time: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.time)

    @property
    def num_persons(self) -> int:
        return len(self.track_ids)

    def present(self) -> np.ndarray:
        """bool (P, T): the person is seen in the frame (finite root)."""
        return np.isfinite(self.root).all(axis=-1)


def _typed(world: World) -> dict[str, np.ndarray]:
    """The arrays as the file stores them (dtype-converted copies; ``world`` is not changed)."""
    return {
        "joints": np.asarray(world.joints, dtype=np.float32),
        "root": np.asarray(world.root, dtype=np.float32),
        "root_camera": np.asarray(world.root_camera, dtype=np.float32),
        "camera_matrix": np.asarray(world.camera_matrix, dtype=np.float64),
        "dist_coeffs": np.asarray(world.dist_coeffs, dtype=np.float64).reshape(-1),
        "lens": np.array(str(world.lens)),
        "image_size": np.asarray(world.image_size, dtype=np.int64),
        "R_world_camera": np.asarray(world.R_world_camera, dtype=np.float64),
        "t_world_camera": np.asarray(world.t_world_camera, dtype=np.float64),
        "floor": np.asarray(world.floor, dtype=np.float64),
        "contacts": np.asarray(world.contacts, dtype=bool),
        "reprojection_px": np.asarray(world.reprojection_px, dtype=np.float32),
        "scale": np.asarray(world.scale, dtype=np.float32),
        "height_m": np.asarray(world.height_m, dtype=np.float32),
        "track_ids": np.asarray(world.track_ids, dtype=np.int64),
        "time": np.asarray(world.time, dtype=np.float64),
    }


def check_world(path: str | os.PathLike | None, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Raise PosepipeError (naming ``path``) unless the arrays and meta keep the contract."""
    P, T = len(arrays["track_ids"]), len(arrays["time"])
    shapes = {
        "joints": (P, T, NUM_JOINTS, 3), "root": (P, T, 3), "root_camera": (P, T, 3), "camera_matrix": (3, 3),
        "lens": (), "image_size": (2,), "R_world_camera": (3, 3), "t_world_camera": (3,), "floor": (4,),
        "contacts": (P, T, 2), "reprojection_px": (P, T), "scale": (P,), "height_m": (P,), "track_ids": (P,),
    }  # fmt: skip
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise PosepipeError(path, f"world {name} has shape {arrays[name].shape}, expected {shape}")
    lens = str(arrays["lens"])
    if lens not in LENSES:
        raise PosepipeError(path, f"world lens {lens!r} is not one of {', '.join(LENSES)}")
    if arrays["dist_coeffs"].ndim != 1 or len(arrays["dist_coeffs"]) not in DIST_LENGTHS[lens]:
        raise PosepipeError(
            path, f"{len(arrays['dist_coeffs'])} distortion coefficients for a {lens} lens "
            f"(expected {' or '.join(map(str, DIST_LENGTHS[lens]))})",
        )  # fmt: skip
    R = arrays["R_world_camera"]
    if not np.all(np.isfinite(R)) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise PosepipeError(path, "world R_world_camera is not a rotation")
    if not np.all(np.isfinite(arrays["camera_matrix"])) or np.any(np.diag(arrays["camera_matrix"])[:2] <= 0):
        raise PosepipeError(path, "world camera_matrix has no positive focal lengths")
    if np.any(arrays["image_size"] <= 0):
        raise PosepipeError(path, f"world image_size {arrays['image_size'].tolist()} is not positive")
    for key, allowed in (
        ("intrinsics_source", INTRINSICS_SOURCES), ("scale_source", SCALE_SOURCES), ("floor_source", FLOOR_SOURCES)
    ):  # fmt: skip
        if meta.get(key) not in allowed:
            raise PosepipeError(
                path, f"world meta {key} is {meta.get(key)!r}, expected one of {', '.join(allowed)}"
            )


def save_world(path: str | os.PathLike, world: World) -> dict:
    """Write ``world.npz`` (atomic) after checking it; the stage and its version are stamped into
    the file's ``meta`` (``world`` is not changed). Returns the meta written.

    Raises:
        PosepipeError: the arrays or meta break the contract (nothing is written).
    """
    meta = {"stage": STAGE, "stage_version": VERSION, "warnings": [], **world.meta}
    arrays = _typed(world)
    check_world(path, arrays, meta)
    save_npz(path, **arrays, meta=np.array(json.dumps(meta)))
    return meta


def load_world(path: str | os.PathLike, *, frame_count: int | None = None) -> World:
    """Read and check ``world.npz``.

    Args:
        frame_count: when given, the file must have this many frames (the timeline's).

    Raises:
        PosepipeError: unreadable file, missing arrays, wrong shapes or values, another frame count.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = set(ARRAYS) - set(z.files)
            if missing:
                raise PosepipeError(path, f"not a world.npz: no {', '.join(sorted(missing))} array")
            arrays = {name: np.asarray(z[name]) for name in ARRAYS if name != "meta"}
            meta = json.loads(str(z["meta"]))
    except PosepipeError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # zip, header and JSON errors
        raise PosepipeError(path, f"cannot read world poses ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict):
        raise PosepipeError(path, "world meta is not a JSON object")
    world = World(
        **{name: arrays[name] for name in arrays if name != "lens"}, lens=str(arrays["lens"]), meta=meta
    )
    arrays = _typed(world)
    check_world(path, arrays, meta)
    if frame_count is not None and world.num_frames != frame_count:
        raise PosepipeError(
            path, f"has {world.num_frames} frames of world poses, the timeline has {frame_count}"
        )
    for name, array in arrays.items():
        setattr(world, name, array if name != "lens" else str(array))
    return world


def world_table(world: World):
    """The ``world.csv`` table (pandas DataFrame), columns as in the module docstring."""
    import pandas as pd

    tables = []
    present = world.present()
    for p, track in enumerate(np.asarray(world.track_ids)):
        frames = np.flatnonzero(present[p])
        columns = {
            "person": np.full(len(frames), int(track), np.int64),
            "frame": frames,
            "time": np.asarray(world.time)[frames],
            "root_x": world.root[p, frames, 0],
            "root_y": world.root[p, frames, 1],
            "root_z": world.root[p, frames, 2],
            "contact_left": np.asarray(world.contacts[p, frames, 0], dtype=np.int64),
            "contact_right": np.asarray(world.contacts[p, frames, 1], dtype=np.int64),
            "reprojection_px": world.reprojection_px[p, frames],
        }
        for j, joint in enumerate(H36M_JOINTS):
            for a, axis in enumerate("xyz"):
                columns[f"{joint}_{axis}"] = world.joints[p, frames, j, a]
        tables.append(pd.DataFrame(columns))
    return pd.concat(tables, ignore_index=True)


def save_world_csv(path: str | os.PathLike, world: World) -> None:
    """Write ``world.csv`` (atomic; floats with 6 significant digits)."""
    with atomic_path(path) as tmp:
        world_table(world).to_csv(tmp, index=False, float_format="%.6g")
