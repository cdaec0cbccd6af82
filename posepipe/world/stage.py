"""Stage ``world``: pose3d.npz + dataset2d.npz + the timeline -> world.npz + world.csv.

Every person of the video in metres, on one floor, in one world frame (the frame is defined in
:mod:`posepipe.artefacts.world`; the numerics are :mod:`posepipe.world.solve`; the camera comes
from :mod:`posepipe.camera`). A static camera is assumed: a moving camera is out of scope.

Steps: the camera (calibration file, sample-sheet columns, config, or an assumed field of view),
the 2D keypoints undistorted into the ideal pinhole grid, the metric scale per person (a height
per person from ``--persons``, else ``--height-m``, else the lifter's scale), the root trajectory
per person (closed-form weighted least squares, optional robust refinement and smoothing), then
the floor (from feet at contact over every person and frame; or from ``--camera-height-m`` and
``--camera-tilt-deg``; or, with no contact, from the assumed tilt with a warning), the world
frame, the foot contacts and the reprojection error per frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.artefacts.dataset2d import load_persons2d
from posepipe.artefacts.pose3d import load_pose3d
from posepipe.artefacts.timeline import load_timeline_header
from posepipe.artefacts.world import World, save_world, save_world_csv
from posepipe.camera import Camera, resolve_camera, undistort_points
from posepipe.errors import PosepipeError
from posepipe.settings import add_option, schema_default, settings_from_args
from posepipe.world import solve

log = logging.getLogger(__name__)

STAGE = "world"
MAX_HEIGHT_M = 3.0


@dataclass(frozen=True)
class WorldSettings:
    """Settings of the world stage (config ``world:``); defaults are the workflow's."""

    fov_deg: float | None = schema_default("world.fov_deg")
    assumed_fov_deg: float = schema_default("world.assumed_fov_deg")
    height_m: float | None = schema_default("world.height_m")
    camera_height_m: float | None = schema_default("world.camera_height_m")
    camera_tilt_deg: float | None = schema_default("world.camera_tilt_deg")
    assumed_tilt_deg: float = schema_default("world.assumed_tilt_deg")
    contact_height_m: float = schema_default("world.contact_height_m")
    contact_speed_mps: float = schema_default("world.contact_speed_mps")
    robust: bool = schema_default("world.robust")
    huber_px: float = schema_default("world.huber_px")
    smooth_hz: float | None = schema_default("world.smooth_hz")


def check_height(value, origin: str) -> float:
    """A subject height in metres, or PosepipeError naming ``origin`` (0, negative, > 3 m)."""
    try:
        h = float(value)
    except (TypeError, ValueError):
        raise PosepipeError(origin, f"height {value!r} is not a number of metres") from None
    if not math.isfinite(h) or h <= 0 or h > MAX_HEIGHT_M:
        raise PosepipeError(
            origin, f"height {value!r} m is not a person's height (0 < height <= {MAX_HEIGHT_M} m)"
        )
    return h


def load_person_heights(path: str | os.PathLike | None) -> dict[int, float]:
    """Heights per track from a ``<stem>.persons.yaml`` (``{track: {height_m: 1.8}}`` or
    ``{track: 1.8}``; an optional top-level ``persons:`` mapping)."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PosepipeError(path, f"cannot read the persons file ({type(exc).__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("persons"), dict):
        data = data["persons"]
    if not isinstance(data, dict):
        raise PosepipeError(path, "persons file: expected a mapping of track id to {height_m: metres}")
    out = {}
    for key, value in data.items():
        try:
            track = int(key)
        except (TypeError, ValueError):
            raise PosepipeError(path, f"persons file: key {key!r} is not a track id") from None
        height = value.get("height_m") if isinstance(value, dict) else value
        if height is not None:
            out[track] = check_height(height, f"{os.fspath(path)} (track {track})")
    return out


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def world_from_arrays(
    rel: np.ndarray,
    points: np.ndarray,
    scores: np.ndarray,
    camera: Camera,
    *,
    fps: float,
    time: np.ndarray,
    track_ids: np.ndarray,
    heights: np.ndarray,
    params: WorldSettings,
    label: str = "video",
    undistorted: bool = False,
) -> World:
    """The world of arrays already read: ``rel`` (P, T, 17, 3) root-relative lifted joints,
    ``points`` (P, T, 17, 2) COCO keypoints in pixels of the real lens, ``scores`` (P, T, 17),
    ``heights`` (P,) metres or NaN; ``undistorted``: the points are already in the ideal pinhole
    grid (dataset2d.undistort). Raises PosepipeError (naming ``label``) when no person is seen in
    any frame or none can be placed."""
    P, T = rel.shape[:2]
    warnings: list[str] = []
    undist = np.asarray(points, dtype=np.float64) if undistorted else undistort_points(points, camera)
    rel = np.array(rel, dtype=np.float64)
    seen = np.isfinite(rel).all(axis=(2, 3)) & np.isfinite(undist[:, :, solve.COCO_IDX]).all(axis=(2, 3))
    counts = seen.sum(axis=1)
    # People seen in one frame are left out beside people seen longer; when nobody is seen twice
    # (a one-frame clip) each is placed from its frame alone (no speeds: no contacts, assumed floor).
    least = 2 if np.any(counts >= 2) else 1
    if not np.any(counts >= least):
        raise PosepipeError(label, "no person is seen in any frame: no trajectory, no floor")
    if least == 1:
        warnings.append(
            "no person is seen in two frames or more: roots placed frame by frame, no foot contacts"
        )
    scale = np.ones(P)
    for p in range(P):
        if counts[p] < least:
            warnings.append(
                f"person {int(track_ids[p])} is seen in {int(counts[p])} frame(s): left out (NaN)"
            )
            rel[p] = np.nan
            continue
        if math.isfinite(heights[p]):
            scale[p] = solve.metric_scale(rel[p], float(heights[p]))
    rel = rel * scale[:, None, None, None]
    roots = np.stack(
        [
            solve.solve_root(
                rel[p],
                undist[p],
                scores[p],
                camera.matrix,
                robust=params.robust,
                huber_px=params.huber_px,
                smooth_hz=params.smooth_hz,
                fps=fps,
            )  # fmt: skip
            for p in range(P)
        ]
    )
    cam_joints = rel + roots[:, :, None, :]
    placed = np.isfinite(roots).all(axis=2).sum(axis=1)
    if not placed.any():
        raise PosepipeError(label, "no person could be placed: the 2D keypoints fit no root translation")
    reproj = np.stack(
        [solve.reprojection_px(cam_joints[p], undist[p], scores[p], camera.matrix) for p in range(P)]
    )

    # Floor.
    up = solve.up_estimate(cam_joints)
    speed = solve.foot_speed(cam_joints, fps)
    residual = None
    if params.camera_height_m is not None:
        if params.camera_tilt_deg is None:
            raise PosepipeError(label, "world.camera_height_m needs world.camera_tilt_deg (degrees down) too")
        n, d = solve.tilt_floor(params.camera_tilt_deg, params.camera_height_m, None)
        floor_source = "camera_height"
    else:
        cand = solve.contact_candidates(
            cam_joints, speed, up, height_m=params.contact_height_m, speed_mps=params.contact_speed_mps
        )
        fitted = None
        if cand.sum() >= solve.MIN_CONTACT_POINTS:
            plants, frames = solve.contact_episodes(cam_joints, cand)
            n, d, residual = solve.fit_plane(plants, up, frames)
            if residual <= solve.MAX_FLOOR_RESIDUAL_M:
                fitted = (n, d + solve.ANKLE_HEIGHT_M)  # through the soles, below the ankles
            else:
                warnings.append(f"floor fit residual {residual * 100:.1f} cm: not a floor")
        if fitted is not None:
            n, d = fitted
            floor_source = "contacts"
        else:
            tilt = params.camera_tilt_deg if params.camera_tilt_deg is not None else params.assumed_tilt_deg
            n, _ = solve.tilt_floor(tilt, None, 0.0)
            heights_along = cam_joints[:, :, list(solve.FEET)] @ n
            lowest = float(np.nanpercentile(heights_along, 2)) - solve.ANKLE_HEIGHT_M
            n, d = solve.tilt_floor(tilt, None, lowest)
            floor_source = "assumed_tilt"
            residual = None
            warnings.append(
                f"no foot is still on the floor: floor assumed from a camera tilt of {tilt:g} degrees "
                "through the lowest feet"
            )
    main = int(np.argmax(placed))  # the person placed in the most frames (the first of ties)
    first = int(np.flatnonzero(np.isfinite(roots[main]).all(axis=1))[0])
    R, t = solve.world_frame(n, d, roots[main, first])
    joints_world = cam_joints @ R.T + t
    root_world = roots @ R.T + t
    contacts = solve.foot_contacts(
        joints_world, speed, height_m=params.contact_height_m, speed_mps=params.contact_speed_mps
    )
    if camera.source == "assumed":
        warnings.append(f"intrinsics assumed: horizontal field of view {params.assumed_fov_deg:g} degrees")
    meta = {
        "intrinsics_source": camera.source,
        "intrinsics_origin": camera.origin,
        "scale_source": "height" if np.isfinite(heights).any() else "lifter",
        "floor_source": floor_source,
        "floor_residual_m": residual,
        "reprojection_px_mean": float(np.nanmean(reproj)) if np.isfinite(reproj).any() else None,
        "stature_m": [_finite_or_none(solve.stature(joints_world[p])) for p in range(P)],
        "main_person": int(track_ids[main]),
        "settings": {k: getattr(params, k) for k in params.__dataclass_fields__},
        "warnings": warnings,
    }
    return World(
        joints=joints_world, root=root_world, root_camera=roots, camera_matrix=camera.matrix, dist_coeffs=camera.dist,
        lens=camera.lens, image_size=np.array(camera.size), R_world_camera=R, t_world_camera=t,
        floor=np.array([*n, d]), contacts=contacts, reprojection_px=reproj, scale=scale, height_m=heights,
        track_ids=track_ids, time=time, meta=meta,
    )  # fmt: skip


def run_world(
    pose3d_path: str | os.PathLike,
    dataset2d_path: str | os.PathLike,
    timeline: str | os.PathLike,
    out: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    *,
    settings: WorldSettings | None = None,
    calibration: str | os.PathLike | None = None,
    camera_name: str | None = None,
    sheet: dict | None = None,
    persons: str | os.PathLike | None = None,
) -> World:
    """Write world.npz (and world.csv) for one video; returns what it wrote (module docstring)."""
    params = settings or WorldSettings()
    header = load_timeline_header(timeline)
    pose = load_pose3d(pose3d_path, frame_count=int(header["frame_count"]))
    people = load_persons2d(dataset2d_path)
    tracks2d = [ds.track_id for ds in people]
    if len(people) != len(pose.track_ids) or (pose.tracked and tracks2d != pose.track_ids.tolist()):
        raise PosepipeError(
            dataset2d_path,
            f"persons {tracks2d} do not match those of {os.fspath(pose3d_path)} {pose.track_ids.tolist()}",
        )
    T = pose.num_frames
    points = np.stack([ds.keypoints for ds in people]).astype(np.float64)
    if points.shape[1] != T:
        raise PosepipeError(dataset2d_path, f"has {points.shape[1]} frames, the 3D poses have {T}")
    scores = np.stack([ds.scores if ds.scores is not None else np.ones((T, 17)) for ds in people]).astype(
        np.float64
    )
    width, height = int(header["width"]), int(header["height"])
    camera = resolve_camera(
        width, height, rotation=int(header.get("rotation", 0) or 0), calibration=calibration,
        name=camera_name or header.get("video_id"), sheet=sheet, fov_deg=params.fov_deg,
        assumed_fov_deg=params.assumed_fov_deg,
    )  # fmt: skip
    per_track = load_person_heights(persons)
    default = check_height(params.height_m, "world.height_m") if params.height_m is not None else float("nan")
    heights = np.array([per_track.get(int(tr), default) for tr in pose.track_ids])
    rel = pose.positions.astype(np.float64) - pose.positions[:, :, :1].astype(np.float64)
    world = world_from_arrays(
        rel, points, scores, camera, fps=float(header["fps"]), time=pose.time, track_ids=pose.track_ids,
        heights=heights, params=params, label=os.fspath(pose3d_path),
        undistorted=bool(people[0].meta.get("undistorted")),
    )  # fmt: skip
    world.meta.update({"pose3d": os.fspath(pose3d_path), "dataset2d": os.fspath(dataset2d_path)})
    if csv is not None:
        save_world_csv(csv, world)
    world.meta = save_world(out, world)
    for warning in world.meta["warnings"]:
        log.warning("%s: %s", os.fspath(out), warning)
    return world


def register_cli(sub) -> None:
    p = sub.add_parser("world", help="root trajectory, metric scale, floor and world frame of every person")
    p.add_argument("pose3d", type=Path, metavar="POSE3D_NPZ")
    p.add_argument("--dataset2d", type=Path, required=True, help="dataset2d.npz (the 2D keypoints)")
    p.add_argument("--timeline", type=Path, required=True, help="frames/timeline.json (size, rotation, fps)")
    p.add_argument("--out", type=Path, required=True, help="world.npz to write")
    p.add_argument("--csv", type=Path, help="world.csv to write")
    p.add_argument(
        "--calibration", type=Path, help="calibration file (OpenCV YAML/JSON, Pose2Sim/aniposelib TOML)"
    )
    p.add_argument(
        "--camera-name", help="the camera to take from a calibration with several (default: video id)"
    )
    p.add_argument("--persons", type=Path, help="<stem>.persons.yaml: {track: {height_m: metres}}")
    sheet = p.add_argument_group("sample-sheet intrinsics (pixels; or fov; or focal_mm + sensor_width_mm)")
    for name in ("fx", "fy", "cx", "cy", "focal_mm", "sensor_width_mm"):
        sheet.add_argument(f"--{name.replace('_', '-')}", type=float, dest=f"sheet_{name}")
    sheet.add_argument("--sheet-fov-deg", type=float, dest="sheet_fov_deg", help="horizontal field of view")
    add_option(
        p, "--fov-deg", key="world.fov_deg", type=float, help="horizontal field of view for every video"
    )
    add_option(
        p, "--assumed-fov-deg", key="world.assumed_fov_deg", type=float, help="assumed when nothing is given"
    )
    add_option(p, "--height-m", key="world.height_m", type=float, help="subject height in metres")
    add_option(p, "--camera-height-m", key="world.camera_height_m", type=float, help="camera above the floor")
    add_option(p, "--camera-tilt-deg", key="world.camera_tilt_deg", type=float, help="camera pitched down")
    add_option(p, "--assumed-tilt-deg", key="world.assumed_tilt_deg", type=float, help="tilt with no contact")
    add_option(p, "--contact-height-m", key="world.contact_height_m", type=float, help="foot contact height")
    add_option(p, "--contact-speed-mps", key="world.contact_speed_mps", type=float, help="foot contact speed")
    add_option(p, "--robust", key="world.robust", help="Huber-weighted refinement of the root")
    add_option(p, "--huber-px", key="world.huber_px", type=float, help="Huber threshold in pixels")
    add_option(p, "--smooth-hz", key="world.smooth_hz", type=float, help="low-pass of the root trajectory")

    def run(args: argparse.Namespace) -> None:
        sheet_row = {
            k: getattr(args, f"sheet_{k}")
            for k in ("fx", "fy", "cx", "cy", "fov_deg", "focal_mm", "sensor_width_mm")
            if getattr(args, f"sheet_{k}") is not None
        }
        world = run_world(
            args.pose3d, args.dataset2d, args.timeline, args.out, args.csv,
            settings=settings_from_args(WorldSettings, args), calibration=args.calibration,
            camera_name=args.camera_name, sheet=sheet_row or None, persons=args.persons,
        )  # fmt: skip
        print(json.dumps({k: world.meta[k] for k in ("intrinsics_source", "scale_source", "floor_source")}))

    p.set_defaults(handler=run)
