"""The ``export`` stage: pose3d.npz -> one file per person in ``results/{video}/exports/{format}/``.

Each format is its own Snakemake job (rule ``export``, wildcard ``format``), so adding a format to
``exports:`` in config.yaml runs only the new one. The folder is written whole or not at all:
files go to a temporary folder beside it, which is renamed at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from posepipe.atomic import atomic_folder
from posepipe.errors import PosepipeError
from posepipe.registry import EXPORT_FORMATS, entry_point

log = logging.getLogger(__name__)


def writer(fmt: str):
    """The function ``(path, motion)`` that writes format ``fmt`` (:data:`posepipe.registry.EXPORT_FORMATS`)."""
    if fmt not in EXPORT_FORMATS:
        raise PosepipeError(None, f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    return entry_point(EXPORT_FORMATS[fmt].writer)


def run_export(
    pose3d_npz: str | os.PathLike, *, fmt: str, out_dir: str | os.PathLike, video_id: str, timeline_json=None
) -> list[Path]:
    """Write every person of ``pose3d_npz`` in format ``fmt`` into ``out_dir``; returns the files."""
    from posepipe.artefacts.pose3d import load_pose3d
    from posepipe.exports.motion import motions

    write = writer(fmt)
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
    out_dir = Path(out_dir)
    written = []
    with atomic_folder(out_dir) as tmp:
        for motion in motions(pose, video=video_id, fps=fps):
            if not motion.present.any():
                log.warning("%s: %s is never present; no %s file", pose3d_npz, motion.name, fmt)
                continue
            path = tmp / f"{motion.name}.{fmt}"  # each format's extension is its name
            write(path, motion)
            written.append(out_dir / path.name)
    log.info("%s: %d %s file(s) in %s", video_id, len(written), fmt, out_dir)
    return written


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

    def run(args: argparse.Namespace) -> None:
        run_export(
            args.pose3d,
            fmt=args.fmt,
            out_dir=args.out_dir,
            video_id=args.video_id,
            timeline_json=args.timeline,
        )

    p.set_defaults(handler=run)
