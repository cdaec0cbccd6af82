"""C3D files through ezc3d: one point per Human3.6M joint, labelled, millimetres, Z up."""

from __future__ import annotations

import os

import numpy as np

from posepipe.atomic import atomic_path
from posepipe.exports.motion import Motion


def point_positions(motion: Motion) -> np.ndarray:
    """(T', 17, 3) millimetres in the display frame (Z up) over the person's span."""
    return motion.display[motion.span] * 1000.0


def write_c3d(path: str | os.PathLike, motion: Motion) -> None:
    """POINT:RATE = fps, POINT:LABELS = joint names, POINT:UNITS = mm; absent joints are NaN
    (ezc3d writes them as invalid, residual -1). The first frame is the timeline frame + 1."""
    import ezc3d

    points = point_positions(motion)
    data = np.ones((4, points.shape[1], points.shape[0]))
    data[:3] = points.transpose(2, 1, 0)
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [motion.fps]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = tuple(motion.joints)
    c3d["data"]["points"] = data
    c3d.add_parameter("POINT", "UNITS", ["mm"])
    c3d.add_parameter("POINT", "DESCRIPTIONS", tuple(f"{motion.name} {joint}" for joint in motion.joints))
    c3d["header"]["points"]["first_frame"] = motion.span.start
    with atomic_path(path) as tmp:
        c3d.write(os.fspath(tmp))
