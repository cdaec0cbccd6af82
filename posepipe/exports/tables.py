"""CSV (one row per frame) and JSON (per frame, joint names -> x, y, z) exports, camera space (or the
world frame with ``export.frame: world``), metres."""

from __future__ import annotations

import json
import os

import numpy as np

from posepipe.atomic import atomic_path, write_text
from posepipe.exports.motion import Motion

# The JSON header's "axes": the lifter's camera space, as pose3d.npz holds it. The hip is the
# model's own output for it (not set to 0), so the root is not exactly at the origin.
AXES = "camera: x right, y down, z forward; root-relative as the lifter outputs it (the hip is not set to 0)"
# With ``export.frame: world`` (the world stage's frame, posepipe.artefacts.world).
WORLD_AXES = "world: z up along the floor normal, origin on the floor under the main person's first root, x along the camera's view on the floor"


def write_csv(path: str | os.PathLike, motion: Motion) -> None:
    """``frame, time, {joint}_x, {joint}_y, {joint}_z`` for the frames the person is present."""
    import pandas as pd

    frames = np.flatnonzero(motion.present)
    columns = {"frame": frames, "time": motion.time[frames]}
    for j, joint in enumerate(motion.joints):
        for c, axis in enumerate("xyz"):
            columns[f"{joint}_{axis}"] = motion.camera[frames, j, c]
    with atomic_path(path) as tmp:
        pd.DataFrame(columns).to_csv(tmp, index=False, float_format="%.6f")


def write_json(path: str | os.PathLike, motion: Motion) -> None:
    """Header and ``frames: [{"frame", "time", "joints": {name: [x, y, z]}}]`` (frames present)."""
    frames = np.flatnonzero(motion.present)
    document = {
        "video": motion.video, "person": motion.name, "track": motion.track, "fps": motion.fps,
        "units": "m", "axes": WORLD_AXES if motion.frame == "world" else AXES,
        "joints": list(motion.joints),
        "frames": [
            {"frame": int(t), "time": round(float(motion.time[t]), 6),
             "joints": {name: [round(float(v), 6) for v in motion.camera[t, j]] for j, name in enumerate(motion.joints)}}
            for t in frames
        ],
    }  # fmt: skip
    write_text(path, json.dumps(document, separators=(",", ":")) + "\n")
