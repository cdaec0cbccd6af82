"""The ``export`` stage: pose3d.npz -> one file per person in ``results/{video}/exports/{format}/``.

Each format is its own Snakemake job (rule ``export``, wildcard ``format``), so adding a format to
``exports:`` in config.yaml runs only the new one. The folder is written whole or not at all:
files go to a temporary folder beside it, which is renamed at the end.

Beside the files, ``timing.csv`` states where each file sits on the video's time line (every
format has its own way, or, BVH, none): one row per file, ``file, first_frame, last_frame, frames,
start_time_s, end_time_s, fps``: the timeline frames (0-based) and times (seconds; 0 is the
timeline's first frame: the video's first frame, or ``frames.start`` when that trims) of the
file's first and last frame, and how many frames it has (csv / json: the frames present; trc, c3d:
the person's first to last frame present; bvh: that, or from frame 0 with ``bvh_start: video``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.atomic import atomic_folder
from posepipe.errors import PosepipeError
from posepipe.exports.bvh import BVH_STARTS
from posepipe.exports.motion import BVH_SOURCES
from posepipe.registry import EXPORT_FORMATS, entry_point
from posepipe.settings import add_option, schema_default, settings_from_args

log = logging.getLogger(__name__)


def writer(fmt: str):
    """The function ``(path, motion)`` that writes format ``fmt`` (:data:`posepipe.registry.EXPORT_FORMATS`)."""
    if fmt not in EXPORT_FORMATS:
        raise PosepipeError(None, f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    return entry_point(EXPORT_FORMATS[fmt].writer)


TIMING_FILE = "timing.csv"


@dataclass(frozen=True)
class ExportSettings:
    """Settings of the export stage (config ``export:``); defaults are the workflow's. The formats
    (the top-level ``exports:`` list) are not among them: each format is its own run
    (:func:`run_export`'s ``fmt``).

    ``bvh_start``: 'person' (a BVH file starts at the person's first frame) or 'video' (at the
    timeline's first frame, the first pose held until the person enters). ``frame``: 'camera'
    (pose3d's camera space and display frame) or 'world' (every format in the world frame of the
    world stage's world.npz: metres on the floor, z up; TRC and BVH turned to Y up; BVH's root
    carries the trajectory). ``bvh_source``: 'lift3d' (the lifter's joints) or 'opensim' (a BVH
    file's joints are the opensim stage's solved joint centres, constant bone lengths:
    :func:`posepipe.exports.motion.from_opensim`; other formats are unchanged).
    """

    bvh_start: str = schema_default("export.bvh_start")
    frame: str = schema_default("export.frame")
    bvh_source: str = schema_default("export.bvh_source")


def file_frames(motion, fmt: str, *, bvh_start: str = schema_default("export.bvh_start")) -> np.ndarray:
    """The timeline frames (int (n,)) a file of ``fmt`` holds for ``motion``, in order."""
    if fmt in ("csv", "json"):
        return np.flatnonzero(motion.present)
    if fmt == "bvh":
        from posepipe.exports.bvh import bvh_frames

        frames = bvh_frames(motion, start=bvh_start)
    else:
        frames = motion.span
    return np.arange(frames.start, frames.stop)


def run_export(
    pose3d_npz: str | os.PathLike,
    *,
    fmt: str,
    out_dir: str | os.PathLike,
    video_id: str,
    timeline_json=None,
    settings: ExportSettings | None = None,
    world_npz: str | os.PathLike | None = None,
    opensim_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Write every person of ``pose3d_npz`` in format ``fmt`` into ``out_dir``, and its
    ``timing.csv`` (see the module docstring); returns the motion files. ``settings``: config
    ``export:`` (:class:`ExportSettings`; None: the schema's defaults). ``world_npz``: the world
    stage's world.npz, needed with ``settings.frame`` 'world'; ``opensim_dir``: the opensim stage's
    folder, needed for a BVH file with ``settings.bvh_source`` 'opensim'."""
    from posepipe.artefacts.pose3d import load_pose3d
    from posepipe.exports.motion import motions

    settings = settings or ExportSettings()
    bvh_start, frame, bvh_source = settings.bvh_start, settings.frame, settings.bvh_source
    write = writer(fmt)
    if fmt == "bvh":
        write = functools.partial(write, start=bvh_start)
    pose = load_pose3d(pose3d_npz)
    if timeline_json is not None:
        from posepipe.artefacts.timeline import load_timeline_header

        header = load_timeline_header(timeline_json)
        fps = float(header["fps"])
        if int(header["frame_count"]) != pose.num_frames:
            raise PosepipeError(
                pose3d_npz, f"has {pose.num_frames} frames, the timeline {header['frame_count']}"
            )
    else:
        fps = float(pose.meta.get("fps") or 0) or 1.0 / float(pose.time[1] - pose.time[0])
    people = motions(pose, video=video_id, fps=fps)
    if frame == "world":
        from posepipe.artefacts.world import load_world
        from posepipe.exports.motion import in_world

        if world_npz is None:
            raise PosepipeError(pose3d_npz, "export frame 'world' needs the video's world.npz (--world)")
        world = load_world(world_npz, frame_count=pose.num_frames)
        if world.track_ids.tolist() != pose.track_ids.tolist():
            raise PosepipeError(
                world_npz, f"persons {world.track_ids.tolist()} are not those of {os.fspath(pose3d_npz)}"
            )
        people = in_world(people, world)
    elif frame != "camera":
        raise PosepipeError(None, f"unknown export frame {frame!r}; camera or world")
    if bvh_source not in BVH_SOURCES:
        raise PosepipeError(None, f"unknown BVH source {bvh_source!r}; {' or '.join(BVH_SOURCES)}")
    if fmt == "bvh" and bvh_source == "opensim":
        from posepipe.exports.motion import from_opensim

        if opensim_dir is None:
            raise PosepipeError(
                pose3d_npz, "BVH source 'opensim' needs the opensim stage's folder (--opensim)"
            )
        people = from_opensim(people, opensim_dir)
    out_dir = Path(out_dir)
    written, timing = [], []
    with atomic_folder(out_dir) as tmp:
        for motion in people:
            if not motion.present.any():
                log.warning("%s: %s is never present; no %s file", pose3d_npz, motion.name, fmt)
                continue
            path = tmp / f"{motion.name}.{fmt}"  # each format's extension is its name
            write(path, motion)
            written.append(out_dir / path.name)
            frames = file_frames(motion, fmt, bvh_start=bvh_start)
            timing.append({
                "file": path.name, "first_frame": int(frames[0]), "last_frame": int(frames[-1]),
                "frames": len(frames), "start_time_s": round(float(motion.time[frames[0]]), 6),
                "end_time_s": round(float(motion.time[frames[-1]]), 6), "fps": motion.fps,
            })  # fmt: skip
        write_table(tmp / TIMING_FILE, timing)
    log.info("%s: %d %s file(s) in %s", video_id, len(written), fmt, out_dir)
    return written


def write_table(path: Path, rows: list[dict]) -> None:
    """``timing.csv``: the rows, with the header of the module docstring also when empty."""
    import csv

    columns = ["file", "first_frame", "last_frame", "frames", "start_time_s", "end_time_s", "fps"]
    with open(path, "w", newline="", encoding="utf-8") as fh:  # inside the folder renamed at the end
        table = csv.DictWriter(fh, fieldnames=columns)
        table.writeheader()
        table.writerows(rows)


def register_cli(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write the 3D motion as CSV, JSON, TRC (OpenSim), C3D or BVH",
        description="Write the 3D motion of pose3d.npz in one format, one file per person, into a folder "
        "that is replaced whole: csv and json in the lifter's camera space (metres), trc (OpenSim, mm, Y up), "
        "c3d (mm, Z up) and bvh (a Human3.6M hierarchy, cm, Y up) in the display frame. "
        "Files are named VIDEO_ID.EXT, or VIDEO_ID.pTRACK.EXT for several people. README.md, "
        "section Exports, tells what each holds and which program opens it.",
    )
    p.add_argument("pose3d", type=Path, metavar="POSE3D_NPZ", help="the lift3d stage's pose3d.npz")
    p.add_argument(
        "--format",
        required=True,
        choices=tuple(EXPORT_FORMATS),
        dest="fmt",
        help="the file format to write (one per run)",
    )
    p.add_argument(
        "--out-dir", type=Path, required=True,
        help="the folder to (re)write, e.g. results/VIDEO/exports/FORMAT; its old content is replaced",
    )  # fmt: skip
    p.add_argument("--video-id", required=True, help="the video's id: the start of every file name")
    p.add_argument(
        "--timeline", type=Path, default=None,
        help="the video's frames/timeline.json: its fps is the files' rate and its frame count is checked "
        "(unset: the rate recorded in pose3d.npz)",
    )  # fmt: skip
    add_option(
        p, "--bvh-start", key="export.bvh_start", choices=BVH_STARTS,
        help="a BVH file starts at the person's first frame (person) or at the video's first frame (video, "
        "the first pose held until the person enters); timing.csv beside the files says where each starts",
    )  # fmt: skip

    add_option(
        p, "--frame", key="export.frame", choices=("camera", "world"),
        help="camera: today's files (camera space; display frame); world: every format in the world frame of --world",
    )  # fmt: skip
    p.add_argument(
        "--world", type=Path, default=None, help="the world stage's world.npz (with --frame world)"
    )

    add_option(
        p, "--bvh-source", key="export.bvh_source", choices=BVH_SOURCES,
        help="the joints of a BVH file: the lifter's (lift3d) or the opensim stage's solved joint centres "
        "(opensim, constant bone lengths; needs --opensim)",
    )  # fmt: skip
    p.add_argument(
        "--opensim", type=Path, default=None, metavar="DIR",
        help="the opensim stage's folder (results/VIDEO/opensim) for --bvh-source opensim",
    )  # fmt: skip

    def run(args: argparse.Namespace) -> None:
        run_export(
            args.pose3d,
            fmt=args.fmt,
            out_dir=args.out_dir,
            video_id=args.video_id,
            timeline_json=args.timeline,
            settings=settings_from_args(ExportSettings, args),
            world_npz=args.world,
            opensim_dir=args.opensim,
        )

    p.set_defaults(handler=run)
