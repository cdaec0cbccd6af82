"""One person's 3D motion as the exporters take it, and the axis conversions they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posepipe.artefacts.pose3d import Pose3D
from posepipe.skeleton import H36M_JOINTS


@dataclass
class Motion:
    """One person: ``camera`` and ``display`` float (T, 17, 3) metres (NaN where absent), ``time`` (T,)
    seconds on the timeline, ``fps``; ``name`` is the file stem, ``track`` -1 for one person per frame."""

    video: str
    name: str
    track: int
    camera: np.ndarray
    display: np.ndarray
    time: np.ndarray
    fps: float

    joints: tuple[str, ...] = H36M_JOINTS
    # "camera": camera = the lifter's camera space, display = the display frame; "world": both are
    # the world frame of world.npz (z up, metres on the floor; posepipe.artefacts.world); "opensim":
    # both are the opensim stage's solved joint centres (from_opensim).
    frame: str = "camera"

    @property
    def present(self) -> np.ndarray:
        """bool (T,): frames where the person has a pose."""
        return np.isfinite(self.camera).all(axis=(1, 2))

    @property
    def span(self) -> slice:
        """First to last frame present (an empty slice if never)."""
        frames = np.flatnonzero(self.present)
        return slice(int(frames[0]), int(frames[-1]) + 1) if len(frames) else slice(0, 0)


def motions(pose: Pose3D, *, video: str, fps: float) -> list[Motion]:
    """The people of a pose3d.npz, in its order."""
    tracks = [int(t) for t in pose.track_ids]  # -1: the one person of a one-person-per-frame file
    camera, display = pose.positions, pose.display
    return [
        Motion(video=video, name=video if track < 0 else f"{video}.p{track}", track=track,
               camera=camera[p].astype(np.float64), display=display[p].astype(np.float64), time=pose.time, fps=fps)
        for p, track in enumerate(tracks)
    ]  # fmt: skip


def in_world(motions_: list[Motion], world) -> list[Motion]:
    """The motions with their joints in the world frame of ``world`` (a
    :class:`posepipe.artefacts.world.World` of the same people, in the same order)."""
    for p, motion in enumerate(motions_):
        joints = np.asarray(world.joints[p], dtype=np.float64)
        motion.camera, motion.display, motion.frame = joints, joints, "world"
    return motions_


def y_up(display: np.ndarray) -> np.ndarray:
    """Display frame (z up) -> y up, right-handed: (x, y, z) -> (x, z, -y)."""
    return np.stack([display[..., 0], display[..., 2], -display[..., 1]], axis=-1)


BVH_SOURCES = ("lift3d", "opensim")


def read_storage_text(path) -> tuple[list[str], np.ndarray]:
    """(column names, values (N, C)) of an OpenSim Storage file (.sto, version 1, as the IK tool
    writes it: header lines up to ``endheader``, then a tab-separated line of column names and
    one line of numbers per row). Plain text, so the export needs no OpenSim package."""
    from posepipe.errors import PosepipeError

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip() == "endheader":
                break
        else:
            raise PosepipeError(path, "is not an OpenSim storage file (no endheader line)")
        columns = fh.readline().strip().split("\t")
        try:
            values = np.loadtxt(fh, ndmin=2)
        except ValueError as exc:
            raise PosepipeError(path, f"has a row that is not numbers ({exc})") from None
    if values.size and values.shape[1] != len(columns):
        raise PosepipeError(path, f"has {values.shape[1]} values a row for {len(columns)} columns")
    return columns, values.reshape(-1, len(columns))


def from_opensim(motions_: list[Motion], opensim_dir) -> list[Motion]:
    """The motions with their joints replaced by the opensim stage's solved joint centres: per
    person, the generic model's markers (one at each joint centre) as the IK tool reports them
    after solving each frame (``<person>/ik_marker_locations.sto``, OpenSim's forward kinematics
    of ``ik.mot`` on ``model_scaled.osim``). Bone lengths are the scaled model's, constant by
    construction. Frames the stage left out (person absent) stay NaN. OpenSim's axes are Y up,
    so the joints are stored as :func:`y_up` 's inverse of them: the files turned to Y up (BVH,
    TRC) hold OpenSim's own coordinates (world frame: the world export's; camera frame: X forward,
    Y up, root-relative)."""
    import json
    from pathlib import Path

    from posepipe.errors import PosepipeError

    folder = Path(opensim_dir)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PosepipeError(folder / "summary.json", f"cannot be read ({exc})") from None
    if summary.get("model") != "generic":
        raise PosepipeError(
            folder, "a BVH from OpenSim needs posepipe's generic model (its markers are the joint centres)"
        )
    persons = {int(p["track"]): p for p in summary["persons"]}
    for motion in motions_:
        person = persons.get(motion.track)
        if person is None or person["status"] != "ok":
            why = "not in the stage's summary" if person is None else person.get("reason", person["status"])
            raise PosepipeError(folder, f"{motion.name}: no OpenSim IK to take the BVH from ({why})")
        path = folder / person["person"] / "ik_marker_locations.sto"
        columns, table = read_storage_text(path)
        try:
            picks = [
                [columns.index(f"{joint}_{axis}") for axis in ("tx", "ty", "tz")] for joint in motion.joints
            ]
        except ValueError:
            raise PosepipeError(path, "has not every joint's _tx, _ty, _tz column") from None
        times, points = table[:, columns.index("time")], table[:, np.array(picks)]
        frames = np.searchsorted(motion.time, times)
        frames = np.clip(frames, 0, len(motion.time) - 1)
        if not np.allclose(motion.time[frames], times, atol=1e-6):
            raise PosepipeError(path, f"its times are not the timeline's ({motion.name})")
        joints = np.full_like(motion.display, np.nan)
        joints[frames] = np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)
        motion.camera, motion.display, motion.frame = joints, joints, "opensim"
    return motions_
