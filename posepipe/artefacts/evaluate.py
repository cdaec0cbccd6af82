"""The evaluate artefact: ``results/{video}/evaluate/`` (metrics.json, per_joint.csv, per_frame.csv).

Written by the ``evaluate`` stage (:mod:`posepipe.evaluate.stage`) for a video with a reference
recording; read by its run-wide summary. Errors are millimetres, accelerations mm/s^2, angles
degrees (definitions: :mod:`posepipe.evaluate.metrics`).

- ``metrics.json``: ``video``, ``stage``, ``stage_version``, ``reference`` {path, format, units,
  rate_hz, labels, up, joint_map, joints (evaluated), reference_missing_frames {joint: frames}},
  ``time`` {offset_s, offset_source ("given" | "cross-correlation"), offset_frames, peak,
  second_peak, confidence, overlap_s}, ``person`` (track id, -1 for one person per frame),
  ``frames`` {timeline, estimate, reference, used}, ``mpjpe_mm``, ``p_mpjpe_mm``, ``n_mpjpe_mm``,
  ``accel_error_mm_s2``, ``sequence_rotation`` (3x3, camera -> reference axes), ``world`` (null, or
  {alignment, root_mean_mm, root_rmse_mm, joints_mean_mm, scale, frames}), ``angles`` (null, or
  {name: {rmse_deg, bias_deg, r, frames}}, angles with frames only), ``angles_source`` (null, or
  {frame: "world" | "camera", reference: "reference file" | "computed from the reference joints"}),
  ``warnings`` (list of str).
- ``per_joint.csv``: ``joint, mpjpe_mm, p_mpjpe_mm, n_mpjpe_mm, accel_error_mm_s2,
  reference_missing_frames`` (evaluated joints only).
- ``per_frame.csv``: ``frame, time, reference_time, mpjpe_mm, p_mpjpe_mm, n_mpjpe_mm,
  accel_error_mm_s2, root_error_mm`` (timeline frames; empty where not evaluated).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from posepipe.atomic import atomic_path, write_json
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS

STAGE = "evaluate"
VERSION = STAGE_VERSIONS[STAGE]
JOINT_COLUMNS = [
    "joint",
    "mpjpe_mm",
    "p_mpjpe_mm",
    "n_mpjpe_mm",
    "accel_error_mm_s2",
    "reference_missing_frames",
]
FRAME_COLUMNS = ["frame", "time", "reference_time", "mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "accel_error_mm_s2",
                 "root_error_mm"]  # fmt: skip


@dataclass
class Evaluation:
    """One video's evaluation: ``metrics`` (metrics.json's content without stage and version),
    ``per_joint`` and ``per_frame`` (pandas DataFrames with the CSVs' columns)."""

    metrics: dict
    per_joint: object
    per_frame: object


def save_evaluate(out_dir: str | os.PathLike, evaluation: Evaluation) -> dict:
    """Write the three files into ``out_dir`` (each atomic; metrics.json last, its presence means
    the stage finished). Returns the metrics written (plain JSON values)."""
    out = Path(out_dir)
    with atomic_path(out / "per_joint.csv") as tmp:
        evaluation.per_joint.reindex(columns=JOINT_COLUMNS).to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(out / "per_frame.csv") as tmp:
        evaluation.per_frame.reindex(columns=FRAME_COLUMNS).to_csv(tmp, index=False, float_format="%.4f")
    metrics = _plain({"stage": STAGE, "stage_version": VERSION, **evaluation.metrics})
    write_json(out / "metrics.json", metrics)
    return metrics


def load_evaluate(path: str | os.PathLike) -> dict:
    """metrics.json's content (``path``: the file, or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(metrics, dict) or "mpjpe_mm" not in metrics:
            raise ValueError("no mpjpe_mm")
    except (OSError, ValueError) as exc:
        raise PosepipeError(path, f"not an evaluate metrics.json ({exc})") from None
    return metrics


def _plain(value):
    """JSON-ready: numpy numbers and arrays as Python ones, NaN and infinities as null."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
