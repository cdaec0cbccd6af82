"""The frame timeline artefact: ``results/{video}/frames/timeline.json`` + ``timeline.csv``.

Written by the ``frames`` stage (:mod:`posepipe.video`); every later stage reads frames through
it (:func:`posepipe.decode.iter_frames`).

- ``frames/timeline.json``: header: ``video_id``, ``source`` (the video file), ``width``,
  ``height`` (after rotation), ``rotation``, ``fps`` (float), ``fps_fraction`` (str, e.g.
  "30000/1001"), ``frame_count``, ``resampled``, ``trim`` {start, end}, ``requested_fps``,
  ``source_frame_count``, ``source_average_fps``, ``source_variable_frame_rate``,
  ``source_start_time``, ``timestamps_reliable``, ``has_audio``, ``timeline_csv`` (the table's
  file name), ``warnings`` (list of short strings, empty for a clean video, e.g. "57% of frames
  lost to damage (228 of 525 decoded, 3 decode errors)"), ``max_lost_share``, ``strict``,
  ``posepipe_version``, ``stage_version``.
- ``frames/timeline.csv``: columns ``frame, time, source_frame, source_pts, source_time``
  (floats with 6 decimals); ``time`` is seconds on the constant-rate output timeline
  (``frame / fps``), ``source_time`` the source frame's presentation time in seconds (it does not
  start at 0 when the video stream starts late in its container).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.atomic import atomic_path, write_json
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS

STAGE = "frames"
VERSION = STAGE_VERSIONS[STAGE]


@dataclass
class Timeline:
    """The frame timeline of one video.

    Frames are ``height x width`` BGR after rotation. Arrays are (T,): ``time`` float64 seconds
    on the output timeline, ``source_frame`` int64 decoded index in the source,
    ``source_pts`` int64 source timestamp (stream time base), ``source_time`` float64 seconds.
    """

    video_id: str
    source: str
    width: int
    height: int
    rotation: int
    fps: float
    fps_fraction: str
    time: np.ndarray
    source_frame: np.ndarray
    source_pts: np.ndarray
    source_time: np.ndarray
    timestamps_reliable: bool = True
    header: dict | None = None

    @property
    def frame_count(self) -> int:
        return len(self.time)


def load_timeline_header(path: str | os.PathLike) -> dict:
    """The JSON header of frames/timeline.json (fps, frame_count, size, ...), without the table."""
    try:
        header = json.loads(Path(path).read_text())
        fps, count = float(header["fps"]), int(header["frame_count"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PosepipeError(path, f"cannot read the frame timeline ({exc})") from exc
    if not fps > 0 or count < 0:
        raise PosepipeError(path, f"invalid timeline: fps={fps}, frame_count={count}")
    return header


def load_timeline(path: str | os.PathLike) -> Timeline:
    """Read frames/timeline.json and the CSV beside it."""
    import pandas as pd

    path = Path(path)
    header = load_timeline_header(path)
    try:
        table = pd.read_csv(path.parent / header["timeline_csv"])
    except (OSError, ValueError, KeyError) as exc:
        raise PosepipeError(path, f"cannot read the frame timeline ({exc})") from exc
    if len(table) != header["frame_count"]:
        raise PosepipeError(
            path, f"timeline table has {len(table)} rows, header says {header['frame_count']}"
        )
    return Timeline(
        video_id=header["video_id"],
        source=header["source"],
        width=header["width"],
        height=header["height"],
        rotation=header["rotation"],
        fps=header["fps"],
        fps_fraction=header["fps_fraction"],
        time=table["time"].to_numpy(np.float64),
        source_frame=table["source_frame"].to_numpy(np.int64),
        source_pts=table["source_pts"].to_numpy(np.int64),
        source_time=table["source_time"].to_numpy(np.float64),
        timestamps_reliable=header.get("timestamps_reliable", True),
        header=header,
    )


def save_timeline(out_json: str | os.PathLike, out_csv: str | os.PathLike, header: dict, table) -> None:
    """Write the table (pandas DataFrame with the CSV's columns) and then the header (atomic each);
    ``header`` is written as given (the stage fills ``stage_version``)."""
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    write_json(out_json, header)
