"""The probe artefact: ``results/{video}/probe.json`` and ``probe_pts.npy``.

Written by the ``probe`` stage (:mod:`posepipe.video`), read by the ``frames`` stage and the summary.

- ``probe.json``: stream facts of the video's first video stream: ``path``, ``width``, ``height``
  (as displayed, after rotation), ``rotation`` (degrees counter-clockwise, as ffmpeg reports it),
  ``codec``, ``time_base`` (str fraction), ``nominal_fps`` / ``nominal_fps_fraction``,
  ``average_fps``, ``variable_frame_rate``, ``frame_count`` (decoded), ``start_time``,
  ``duration`` (seconds, decoded), ``timestamps_reliable``, ``has_audio``, and the damage record
  (facts, no verdict): ``frames_expected`` (what the container promises: the stream's frame count,
  capped by its stated duration x average rate; null if it states neither), ``frames_decoded``
  (= ``frame_count``), ``frames_lost`` (max(0, expected - decoded); null if unknown),
  ``decode_errors`` (packets that failed to decode or to be read), ``container_duration``
  (seconds the container states) and ``decode_warning`` (one line, null for a clean video).
- ``probe_pts.npy``: int64 (n,): the presentation timestamp of every decodable frame, in units
  of ``probe.json["time_base"]``.
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

STAGE = "probe"
VERSION = STAGE_VERSIONS[STAGE]


@dataclass
class Probe:
    """probe.json's facts (dict, keys as in the module docstring) and the (n,) int64 timestamps."""

    facts: dict
    pts: np.ndarray


def save_probe(out_json: str | os.PathLike, out_pts: str | os.PathLike, probe: Probe) -> None:
    """Write probe_pts.npy, then probe.json (atomic each)."""
    with atomic_path(out_pts) as tmp, open(tmp, "wb") as fh:
        np.save(fh, probe.pts)
    write_json(out_json, probe.facts)


def load_probe(probe_json: str | os.PathLike, probe_pts: str | os.PathLike | None = None) -> Probe:
    """Read probe.json (and probe_pts.npy when given; else ``pts`` is an empty array)."""
    try:
        facts = json.loads(Path(probe_json).read_text())
    except (OSError, ValueError) as exc:
        raise PosepipeError(probe_json, f"cannot read the probe ({type(exc).__name__}: {exc})") from exc
    if probe_pts is None:
        return Probe(facts, np.zeros(0, np.int64))
    try:
        pts = np.load(probe_pts, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PosepipeError(probe_pts, f"cannot read frame timestamps ({type(exc).__name__}: {exc})") from exc
    return Probe(facts, pts)
