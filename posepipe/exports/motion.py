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
    # the world frame of world.npz (z up, metres on the floor; posepipe.artefacts.world).
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
