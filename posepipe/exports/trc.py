"""OpenSim marker files (.trc): one marker per Human3.6M joint, millimetres, Y up.

Layout (tab-separated): the ``PathFileType 4 (X/Y/Z) NAME`` line; the header names
``DataRate CameraRate NumFrames NumMarkers Units OrigDataRate OrigDataStartFrame OrigNumFrames``
and their values (rate = the timeline's fps); the marker names (each over three columns); the
``X1 Y1 Z1 X2 ...`` coordinate names; an empty line; then ``Frame#`` (timeline frame + 1),
``Time`` (seconds) and the coordinates, an empty field where the person is absent.
"""

from __future__ import annotations

import os

import numpy as np

from posepipe.atomic import write_text
from posepipe.exports.motion import Motion, y_up


def marker_positions(motion: Motion) -> np.ndarray:
    """(T', 17, 3) millimetres, Y up, over the person's span."""
    return y_up(motion.display[motion.span]) * 1000.0


def write_trc(path: str | os.PathLike, motion: Motion) -> None:
    span = motion.span
    points = marker_positions(motion)
    frames = np.arange(span.start, span.stop)
    n, rate = len(motion.joints), f"{motion.fps:.10g}"
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{os.path.basename(path)}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate}\t{rate}\t{len(frames)}\t{n}\tmm\t{rate}\t{span.start + 1}\t{len(frames)}",
        "\t".join(["Frame#", "Time"] + [f"{name}\t\t" for name in motion.joints]).rstrip("\t"),
        "\t".join(["", ""] + [f"X{i}\tY{i}\tZ{i}" for i in range(1, n + 1)]),
        "",
    ]
    for k, t in enumerate(frames):
        values = ["" if not np.isfinite(v) else f"{v:.5f}" for v in points[k].ravel()]
        lines.append("\t".join([str(t + 1), f"{motion.time[t]:.6f}", *values]))
    write_text(path, "\n".join(lines) + "\n")


def read_trc(path: str | os.PathLike) -> tuple[dict, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(header {name: value}, marker names, frame numbers (N,), times (N,), points (N, M, 3) with NaN)."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    header = dict(zip(lines[1].split("\t"), lines[2].split("\t"), strict=True))
    names = [name for name in lines[3].split("\t")[2:] if name]
    rows = [line.split("\t") for line in lines[6:] if line]
    frames = np.array([int(r[0]) for r in rows])
    times = np.array([float(r[1]) for r in rows])
    values = np.array([[float(v) if v else np.nan for v in r[2:]] for r in rows]).reshape(
        len(rows), len(names), 3
    )
    return header, names, frames, times, values
