"""The QC artefact: ``results/{video}/qc/`` with ``qc.json``, ``qc_joints.csv``, ``qc.png``, ``qc.html``.

Written by the ``qc`` stage (:mod:`posepipe.qc`), read by the summary.

- ``qc.json``: ``stage`` ("qc"), ``stage_version``, ``video``, ``frames``, ``fps``, ``duration_s``,
  ``people_per_frame`` {max, mean}, ``tracks`` (person: main / all), ``persons``: per person its
  ``name``, ``frames_present``, ``detection_rate``, ``interpolated_frames``,
  ``longest_interpolated_run``, ``longest_gap``, ``mean_keypoint_score``, ``bone_cv`` {bone: cv},
  ``max_bone_cv``, ``mean_joint_speed``, ``p99_joint_speed`` (m/s); ``stage_seconds`` {stage: s}
  (from the benchmark files of the run), ``thresholds``, ``warnings`` (list of short strings);
  with the world stage a ``world`` section: ``intrinsics_source``, ``scale_source``,
  ``floor_source``, ``floor_residual_m``, ``lens``, ``reprojection_px`` {mean, p95} and
  ``persons`` (track, scale, reprojection_px, contact_share).
  Written last: its presence means the stage finished.
- ``qc_joints.csv``: columns ``person, skeleton, joint, mean_score, p10_score, mean_speed,
  p99_speed`` (floats with 5 significant digits).
- ``qc.png``: the figure; ``qc.html``: a page with the warnings and both tables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from posepipe.atomic import atomic_path, write_json
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS

STAGE = "qc"
VERSION = STAGE_VERSIONS[STAGE]
JOINT_COLUMNS = ["person", "skeleton", "joint", "mean_score", "p10_score", "mean_speed", "p99_speed"]


def save_qc_joints(path: str | os.PathLike, joints) -> None:
    """Write qc_joints.csv (atomic) from a pandas DataFrame with :data:`JOINT_COLUMNS`."""
    with atomic_path(path) as tmp:
        joints.to_csv(tmp, index=False, float_format="%.5g")


def save_qc(path: str | os.PathLike, report: dict) -> None:
    """Write qc.json (atomic) as given (the stage fills ``stage`` and ``stage_version``)."""
    write_json(path, report)


def load_qc(path: str | os.PathLike) -> dict:
    """Read qc.json; PosepipeError naming it if unreadable."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PosepipeError(path, f"cannot read QC file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(report, dict) or report.get("stage") != STAGE:
        raise PosepipeError(path, "not a qc.json")
    return report
