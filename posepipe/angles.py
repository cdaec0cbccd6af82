"""Stage ``angles``: 3D joint angles of every person, per frame, on the video's timeline.

Reads the world-frame joints (``world.npz``) when the world stage ran, else the camera-frame
joints (``pose3d.npz``; "up" is then the camera's -Y, image up: right for a level camera, tilted
with it otherwise), and the frame timeline (each value's time). Writes into ``results/{video}/``:
``angles.npz``, ``angles.csv``, ``angles_summary.csv`` (:mod:`posepipe.artefacts.angles`) and
``angles.png`` (per person: the angles over time, left and right overlaid; QC embeds it).

Angle definitions, signs and zero poses: :mod:`posepipe.biomech.angles` (ISB, Wu et al. 2002 and
2005, where the 17 Human3.6M joints allow it).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.artefacts.angles import Angles, save_angles, save_angles_csv, save_angles_summary
from posepipe.atomic import atomic_path
from posepipe.biomech.angles import CAMERA_UP, WORLD_UP, compute_angles
from posepipe.errors import PosepipeError
from posepipe.settings import add_option, schema_default, settings_from_args

log = logging.getLogger(__name__)

# Panels of the figure: (title, angles drawn; a pair (left, right) is overlaid in the side colours).
PANELS = (
    ("hip flexion (+) / extension", ("hip_flexion_l", "hip_flexion_r")),
    ("hip adduction (+) / abduction", ("hip_adduction_l", "hip_adduction_r")),
    ("knee flexion", ("knee_flexion_l", "knee_flexion_r")),
    ("shoulder elevation", ("shoulder_elevation_l", "shoulder_elevation_r")),
    ("shoulder plane of elevation", ("shoulder_plane_l", "shoulder_plane_r")),
    ("elbow flexion", ("elbow_flexion_l", "elbow_flexion_r")),
    ("trunk flexion (+) and lateral bend (+ right)", ("trunk_flexion", "trunk_lateral_bend")),
    ("rotation about the vertical (+ left)", ("pelvis_rotation", "trunk_rotation")),
    ("neck flexion", ("neck_flexion",)),
)
SIDE_COLOURS = {"_l": "tab:blue", "_r": "tab:red"}  # posepipe's render: left blue, right red
MIN_SPAN_DEG = 10.0  # smallest y range of a panel
MAX_PERSONS_DRAWN = 6  # the figure shows the persons present longest; the CSVs have everyone


@dataclass(frozen=True)
class AnglesSettings:
    """Settings of the angles stage (config ``angles:``); defaults are the workflow's.

    ``figure``: also draw angles.png (per person, left and right overlaid; QC embeds it).
    """

    figure: bool = schema_default("angles.figure")


def read_joints(*, world_npz=None, pose3d_npz=None, frame_count: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(joints (P, T, 17, 3), track_ids (P,), meta: frame, up, source) from world.npz when given,
    else pose3d.npz."""
    if world_npz is not None:
        from posepipe.artefacts.world import load_world

        world = load_world(world_npz, frame_count=frame_count)
        meta = {"frame": "world", "up": list(WORLD_UP), "source": os.fspath(world_npz)}
        return np.asarray(world.joints, dtype=np.float64), np.asarray(world.track_ids), meta
    if pose3d_npz is None:
        raise PosepipeError(None, "angles needs world.npz or pose3d.npz")
    from posepipe.artefacts.pose3d import load_pose3d

    pose = load_pose3d(pose3d_npz, frame_count=frame_count)
    meta = {
        "frame": "camera",
        "up": list(CAMERA_UP),
        "up_note": "camera frame: up is the camera's -Y (image up); angles against the vertical assume a level camera",
        "source": os.fspath(pose3d_npz),
    }
    return np.asarray(pose.positions, dtype=np.float64), np.asarray(pose.track_ids), meta


def joint_angles(joints: np.ndarray, *, frame: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """compute_angles with the frame's vertical: world +Z, or the camera's -Y."""
    return compute_angles(joints, up=WORLD_UP if frame == "world" else CAMERA_UP)


def person_label(track: int) -> str:
    return "person" if track < 0 else f"track {track}"


def draw_angles(path: str | os.PathLike, angles: Angles, *, title: str) -> None:
    """The angles figure (PNG, atomic): per person a 3 x 3 grid of the :data:`PANELS` over time."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    index = {name: i for i, name in enumerate(angles.names)}
    present = np.isfinite(angles.values).any(axis=2).sum(axis=1)
    persons = [p for p in np.argsort(-present, kind="stable")[:MAX_PERSONS_DRAWN] if present[p]]
    rows = max(1, len(persons))
    fig = Figure(figsize=(12, 7.5 * rows), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    shown = (
        f" ({len(persons)} of {len(angles.track_ids)} persons, longest present)"
        if len(persons) < len(angles.track_ids)
        else ""
    )
    fig.suptitle(f"{title}: joint angles in degrees, {angles.frame} frame{shown}")
    subfigs = np.atleast_1d(fig.subfigures(rows, 1))
    if not persons:
        subfigs[0].suptitle("no person has any angle (no 3D joints)")
    for sub, p in zip(subfigs, persons, strict=False):
        sub.suptitle(person_label(int(angles.track_ids[p])))
        axes = sub.subplots(3, 3, sharex=True).reshape(-1)
        for ax, (panel, names) in zip(axes, PANELS, strict=True):
            for k, name in enumerate(names):
                colour = SIDE_COLOURS.get(name[-2:], ("black", "tab:green")[k % 2])
                ax.plot(angles.time, angles.values[p, :, index[name]], color=colour, lw=0.9, label=name)
            low, high = ax.get_ylim()
            if high - low < MIN_SPAN_DEG:  # a steady angle: no axis of float noise
                middle = (low + high) / 2
                ax.set_ylim(middle - MIN_SPAN_DEG / 2, middle + MIN_SPAN_DEG / 2)
            ax.set_title(panel, fontsize="small")
            ax.legend(fontsize="x-small", loc="best")
            ax.grid(alpha=0.3)
        for ax in axes[-3:]:
            ax.set_xlabel("time (s)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def run_angles(
    *, timeline_json, out_dir, world_npz=None, pose3d_npz=None, settings: AnglesSettings | None = None
) -> Angles:
    """The ``angles`` stage: angles.csv, angles_summary.csv, angles.png (``settings.figure``) and,
    last, angles.npz into ``out_dir``, from ``world_npz`` when given, else ``pose3d_npz``
    (``settings``: config ``angles:``; None: the defaults)."""
    from posepipe.artefacts.timeline import load_timeline

    settings = settings or AnglesSettings()

    timeline = load_timeline(timeline_json)
    joints, track_ids, meta = read_joints(
        world_npz=world_npz, pose3d_npz=pose3d_npz, frame_count=timeline.frame_count
    )
    values, names = joint_angles(joints, frame=meta["frame"])
    never = [int(t) for t, v in zip(track_ids, values, strict=True) if not np.isfinite(v).any()]
    meta["warnings"] = [f"{person_label(t)}: no frame with 3D joints, every angle NaN" for t in never]
    angles = Angles(
        values=values.astype(np.float32), names=names, time=timeline.time, track_ids=track_ids, meta=meta
    )
    out_dir = Path(out_dir)
    save_angles_csv(out_dir / "angles.csv", angles)
    save_angles_summary(out_dir / "angles_summary.csv", angles)
    if settings.figure:
        draw_angles(out_dir / "angles.png", angles, title=timeline.video_id)
    save_angles(out_dir / "angles.npz", angles)  # last: its presence means the stage finished
    log.info("%s: %d angles of %d persons (%s frame) in %s", timeline.video_id, len(names), len(track_ids),
             meta["frame"], out_dir)  # fmt: skip
    return angles


def register_cli(sub) -> None:
    p = sub.add_parser("angles", help="3D joint angles (ISB conventions) of every person, per frame")
    p.add_argument("timeline", type=Path, metavar="TIMELINE_JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--world", type=Path, help="world.npz (world frame, up = +Z)")
    source.add_argument("--pose3d", type=Path, help="pose3d.npz (camera frame, up = camera -Y)")
    p.add_argument("--out-dir", type=Path, required=True, help="results/{video}")
    add_option(
        p, "--figure", key="angles.figure", help="write angles.png (per person, left and right overlaid)"
    )

    def run(args: argparse.Namespace) -> None:
        run_angles(
            timeline_json=args.timeline, out_dir=args.out_dir, world_npz=args.world, pose3d_npz=args.pose3d,
            settings=settings_from_args(AnglesSettings, args),
        )  # fmt: skip

    p.set_defaults(handler=run)
