"""Stage ``evaluate``: posepipe's 3D of one video against its reference recording.

Reads pose3d.npz (camera-space joints), the frame timeline, the reference (C3D, TRC or .npz, see
:mod:`posepipe.evaluate.reference`), and, when given, world.npz (:mod:`posepipe.artefacts.world`:
world joints, metres, Z up) and angles.npz (:mod:`posepipe.artefacts.angles`). Angles are
compared with the reference file's own (.npz ``angles``, ``angle_names``), else with
:func:`posepipe.biomech.angles.compute_angles` on the reference's joints brought into the frame the
angles were computed in (world: the inverse of the one world alignment; camera: root-relative,
the inverse of the MPJPE sequence rotation), with that frame's vertical. Steps: joint map -> time offset (given, or by speed cross-correlation) -> the
reference resampled to the timeline -> metrics (:mod:`posepipe.evaluate.metrics`) on the joints
the map gives, over the frames where both are whole.

Person: the one of pose3d.npz present in the most frames (a reference records one subject).
Outputs (``results/{video}/evaluate/``): the evaluate artefact (:mod:`posepipe.artefacts.evaluate`)
plus ``evaluate.png`` (error over time; per-joint bars; reference and estimate of one joint) and
``evaluate.html`` (the page the report shows). The run-wide ``evaluate-summary`` sub-command
writes ``results/evaluate_summary.csv`` (one row per video), ``evaluate_intervals.csv`` (per metric
across videos: n, mean, standard deviation and the two-sided 95% Student-t interval of the mean,
mean +- t(0.975, n-1) sd / sqrt(n)) and ``evaluate_summary.html``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.artefacts.angles import load_angles
from posepipe.artefacts.evaluate import Evaluation, load_evaluate, save_evaluate
from posepipe.artefacts.pose3d import load_pose3d
from posepipe.artefacts.timeline import load_timeline_header
from posepipe.artefacts.world import load_world
from posepipe.atomic import atomic_path
from posepipe.biomech.angles import CAMERA_UP, WORLD_UP, compute_angles
from posepipe.errors import PosepipeError
from posepipe.evaluate import metrics as M
from posepipe.evaluate import reference as R
from posepipe.settings import add_option, schema_default, schema_node, settings_from_args
from posepipe.skeleton import H36M_JOINTS

log = logging.getLogger(__name__)
MM = 1000.0
# A found offset whose peak is less than this many times the next peak is reported as uncertain
# (quasi-periodic motion such as steady walking gives 1.1-1.15 on synthetic data; a distinct
# movement, e.g. a jump at the start of the trial, gives more).
OFFSET_CONFIDENCE_WARNING = 1.05


@dataclass(frozen=True)
class EvaluateSettings:
    """The ``evaluate`` config section (None: the schema's default)."""

    joint_map: str | dict | None = None
    min_overlap_s: float | None = None
    max_offset_s: float | None = None
    trajectory: str | None = None
    figure_joint: str | None = None

    def __post_init__(self) -> None:
        for name in ("joint_map", "min_overlap_s", "trajectory", "figure_joint"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, schema_default(f"evaluate.{name}"))


def choose_person(positions: np.ndarray) -> int:
    """Index of the person present (every joint finite) in the most frames."""
    present = np.isfinite(positions).all(axis=(2, 3)).sum(axis=1)
    return int(np.argmax(present))


def _world_joints(path, track: int, frames: int) -> np.ndarray:
    """(T, 17, 3) world joints of ``track`` (else the first person) from world.npz."""
    world = load_world(path, frame_count=frames)
    hits = np.flatnonzero(np.asarray(world.track_ids) == track)
    return np.asarray(world.joints[hits[0] if len(hits) else 0], np.float64)


def _angles(path, track: int, frames: int) -> tuple[np.ndarray, list[str], str]:
    """((T, A) degrees, names, frame "world" | "camera") of ``track`` from angles.npz."""
    angles = load_angles(path)
    if len(angles.time) != frames:
        raise PosepipeError(path, f"has {len(angles.time)} frames of angles, the timeline has {frames}")
    hits = np.flatnonzero(np.asarray(angles.track_ids) == track)
    values = np.asarray(angles.values[hits[0] if len(hits) else 0], np.float64)
    return values, list(angles.names), angles.frame


def _reference_angles(reference, ref_times: np.ndarray, video_times: np.ndarray, offset_s: float):
    """((T, A) degrees on the timeline, names) that the reference file gives (.npz ``angles`` (N, A)
    and ``angle_names``), or None."""
    if Path(reference).suffix.lower() != ".npz":
        return None
    with np.load(reference, allow_pickle=False) as z:
        if "angles" not in z.files or "angle_names" not in z.files:
            return None
        values, names = np.asarray(z["angles"], np.float64), [str(n) for n in z["angle_names"]]
    if values.shape != (len(ref_times), len(names)):
        raise PosepipeError(reference, f"angles {values.shape}: expected ({len(ref_times)}, {len(names)})")
    return R.resample(ref_times, values, video_times + offset_s), names


def evaluate_arrays(
    estimate: np.ndarray, reference: np.ndarray, times: np.ndarray, mapped: np.ndarray
) -> tuple[dict, dict]:
    """Metrics of (T, 17, 3) metres over the ``mapped`` joints: ({mpjpe_mm, ...}, {name: (T, J')
    errors in mm}) with the sequence rotation."""
    cols = np.flatnonzero(mapped)
    est, ref = estimate[:, cols], reference[:, cols]
    try:
        rot = M.sequence_rotation(est, ref)
    except ValueError:
        raise PosepipeError(
            None, "no frame where the estimate and the reference both have every mapped joint"
        ) from None
    errors = {
        "mpjpe": M.mpjpe_errors(est, ref, rotation=rot) * MM,
        "p_mpjpe": M.p_mpjpe_errors(est, ref) * MM,
        "n_mpjpe": M.n_mpjpe_errors(est, ref, rotation=rot) * MM,
        "accel": M.acceleration_errors(M.root_relative(est) @ rot.T, M.root_relative(ref), times) * MM,
    }
    values = {
        "mpjpe_mm": M.summarise(errors["mpjpe"])["mean"],
        "p_mpjpe_mm": M.summarise(errors["p_mpjpe"])["mean"],
        "n_mpjpe_mm": M.summarise(errors["n_mpjpe"])["mean"],
        "accel_error_mm_s2": M.summarise(errors["accel"])["mean"],
        "sequence_rotation": rot,
    }
    return values, errors


def run_evaluate(
    *, pose3d_npz, timeline_json, reference, out_dir, settings: EvaluateSettings | None = None,
    world_npz=None, angles_npz=None, offset_s: float | None = None, video: str | None = None,
) -> dict:  # fmt: skip
    """The ``evaluate`` stage for one video (module docstring); returns metrics.json's content."""
    import pandas as pd

    settings = settings or EvaluateSettings()
    header = load_timeline_header(timeline_json)
    pose = load_pose3d(pose3d_npz, frame_count=int(header["frame_count"]))
    times = pose.time
    person = choose_person(pose.positions)
    estimate = pose.positions[person].astype(np.float64)
    track = int(pose.track_ids[person])
    rec = R.read_reference(reference)
    mapping = R.load_joint_map(settings.joint_map)
    ref_joints, mapped, missing = R.apply_joint_map(rec, mapping)
    cols = np.flatnonzero(mapped)
    warnings = [f"reference {joint} missing in {n} of {len(rec.time)} frames" for joint, n in missing.items()]
    if offset_s is None:
        try:
            offset = R.find_offset(
                estimate[:, cols], times, ref_joints[:, cols], rec.time,
                min_overlap_s=settings.min_overlap_s, max_offset_s=settings.max_offset_s,
            )  # fmt: skip
        except PosepipeError as exc:
            raise PosepipeError(reference, exc.reason) from None
        if offset.confidence < OFFSET_CONFIDENCE_WARNING:
            warnings.append(
                f"time offset {offset.seconds:+.3f} s is uncertain (peak {offset.peak:.2f}, next peak "
                f"{offset.second_peak:.2f}): give reference_offset_s in the sample sheet"
            )
    else:
        offset = R.Offset(seconds=float(offset_s), source="given")
    on_video, overlap = R.align_in_time(
        ref_joints, rec.time, times, offset.seconds, min_overlap_s=settings.min_overlap_s, source=reference
    )
    try:
        values, errors = evaluate_arrays(estimate, on_video, times, mapped)
    except PosepipeError as exc:
        raise PosepipeError(reference, exc.reason) from None
    used = np.isfinite(errors["mpjpe"]).all(axis=1)
    names = [H36M_JOINTS[j] for j in cols]
    per_joint = pd.DataFrame({
        "joint": names,
        **{f"{k}_mm": M.summarise(errors[k])["per_joint"] for k in ("mpjpe", "p_mpjpe", "n_mpjpe")},
        "accel_error_mm_s2": M.summarise(errors["accel"])["per_joint"],
        "reference_missing_frames": [missing.get(n, 0) for n in names],
    })  # fmt: skip
    per_frame = pd.DataFrame({
        "frame": np.arange(len(times)), "time": times, "reference_time": times + offset.seconds,
        **{f"{k}_mm": M.summarise(errors[k])["per_frame"] for k in ("mpjpe", "p_mpjpe", "n_mpjpe")},
        "accel_error_mm_s2": M.summarise(errors["accel"])["per_frame"],
        "root_error_mm": np.nan,
    })  # fmt: skip
    world, angles_source = None, None
    if world_npz is not None:
        joints_w = _world_joints(world_npz, track, len(times))
        try:
            traj = M.root_trajectory_errors(
                joints_w[:, cols], on_video[:, cols], similarity=settings.trajectory == "similarity"
            )
        except ValueError:
            raise PosepipeError(
                world_npz, "no frame where world joints and reference both have every mapped joint"
            ) from None
        root = traj["root"] * MM
        per_frame["root_error_mm"] = root
        world = {
            "alignment": settings.trajectory, "root_mean_mm": float(np.nanmean(root)),
            "root_rmse_mm": float(np.sqrt(np.nanmean(root**2))),
            "joints_mean_mm": M.summarise(traj["joints"] * MM)["mean"], "scale": traj["scale"],
            "frames": int(np.isfinite(root).sum()),
        }  # fmt: skip
    angles = None
    if angles_npz is not None:
        est_angles, est_names, frame = _angles(angles_npz, track, len(times))
        ref_angles = _reference_angles(reference, rec.time, times, offset.seconds)
        source = "reference file"
        if ref_angles is None:
            # The reference's joints in the estimate's own frame, then the same angle definitions
            # (posepipe.biomech.angles) with the same vertical: world (the one world alignment) or
            # camera (the sequence rotation of MPJPE, root-relative).
            if frame == "world" and world is None:
                warnings.append(
                    "angles not compared: angles.npz is in the world frame and no world.npz was given"
                )
            else:
                if frame == "world":
                    ref_in = (on_video - traj["translation"]) @ traj["rotation"] / traj["scale"]
                else:
                    ref_in = M.root_relative(on_video) @ values["sequence_rotation"]
                computed, names_c = compute_angles(ref_in, up=WORLD_UP if frame == "world" else CAMERA_UP)
                ref_angles, source = (computed, list(names_c)), "computed from the reference joints"
        if ref_angles is not None:
            common = [n for n in est_names if n in ref_angles[1]]
            out = M.angle_errors(
                est_angles[:, [est_names.index(n) for n in common]],
                ref_angles[0][:, [ref_angles[1].index(n) for n in common]],
            )
            angles = {
                n: {"rmse_deg": out["rmse"][i], "bias_deg": out["bias"][i], "r": out["r"][i],
                    "frames": int(out["frames"][i])}
                for i, n in enumerate(common)
                if out["frames"][i] > 0
            }  # fmt: skip
            angles_source = {"frame": frame, "reference": source}
    metrics = {
        "video": video or header.get("video_id"),
        "reference": {
            "path": os.fspath(reference), "format": Path(reference).suffix.lower().lstrip("."),
            "units": rec.units, "rate_hz": rec.rate, "labels": len(rec.labels), "up": rec.up,
            "joint_map": settings.joint_map if isinstance(settings.joint_map, str) else "inline",
            "joints": names, "reference_missing_frames": missing,
        },
        "time": {
            "offset_s": offset.seconds, "offset_source": offset.source, "offset_frames": offset.frames,
            "peak": offset.peak, "second_peak": offset.second_peak, "confidence": offset.confidence,
            "overlap_s": overlap,
        },
        "person": track,
        "frames": {
            "timeline": len(times), "estimate": int(np.isfinite(estimate[:, cols]).all(axis=(1, 2)).sum()),
            "reference": int(np.isfinite(on_video[:, cols]).all(axis=(1, 2)).sum()), "used": int(used.sum()),
        },
        **values,
        "world": world,
        "angles": angles,
        "angles_source": angles_source,
        "warnings": warnings,
    }  # fmt: skip
    out_dir = Path(out_dir)
    draw_figure(out_dir / "evaluate.png", per_frame, per_joint, estimate, on_video, values["sequence_rotation"],
                times, settings.figure_joint, mapped, title=f"{metrics['video']}: against {Path(reference).name}")  # fmt: skip
    evaluation = Evaluation(metrics=metrics, per_joint=per_joint, per_frame=per_frame)
    write_page(out_dir / "evaluate.html", metrics, per_joint, out_dir / "evaluate.png")
    written = save_evaluate(out_dir, evaluation)
    log.info(
        "%s: MPJPE %.1f mm, P-MPJPE %.1f mm over %d frames (offset %+.3f s, %s)", metrics["video"],
        values["mpjpe_mm"], values["p_mpjpe_mm"], int(used.sum()), offset.seconds, offset.source,
    )  # fmt: skip
    return written


def draw_figure(
    path, per_frame, per_joint, estimate, reference, rotation, times, joint, mapped, *, title
) -> None:
    """evaluate.png: errors over time, per-joint bars, reference and estimate of ``joint``
    (root-relative, in the reference's axes, mm)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    a, b, c = fig.subplots(3, 1)
    fig.suptitle(title)
    for key, label in (("mpjpe_mm", "MPJPE"), ("p_mpjpe_mm", "P-MPJPE"), ("n_mpjpe_mm", "N-MPJPE")):
        a.plot(per_frame["time"], per_frame[key], lw=0.8, label=label)
    a.set(ylabel="mm", xlabel="video time (s)", title="error over time")
    a.legend(fontsize="small")
    x = np.arange(len(per_joint))
    b.bar(x - 0.2, per_joint["mpjpe_mm"], 0.4, label="MPJPE")
    b.bar(x + 0.2, per_joint["p_mpjpe_mm"], 0.4, label="P-MPJPE")
    b.set_xticks(x, per_joint["joint"], rotation=30, fontsize="small")
    b.set(ylabel="mm", title="per joint")
    b.legend(fontsize="small")
    j = H36M_JOINTS.index(joint) if joint in H36M_JOINTS else -1
    if j < 0 or not mapped[j]:
        j = int(np.flatnonzero(mapped)[-1])
    est = (estimate[:, j] - estimate[:, 0]) @ rotation.T * MM
    ref = (reference[:, j] - reference[:, 0]) * MM
    for k, axis in enumerate("xyz"):
        line = c.plot(times, ref[:, k], lw=1.2, label=f"reference {axis}")[0]
        c.plot(times, est[:, k], lw=0.9, ls="--", color=line.get_color(), label=f"estimate {axis}")
    c.set(
        ylabel="mm (root-relative)",
        xlabel="video time (s)",
        title=f"{H36M_JOINTS[j]}: reference and estimate",
    )
    c.legend(fontsize="x-small", ncol=3)
    for axis in (a, b, c):
        axis.grid(alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_page(path, metrics: dict, per_joint, figure) -> None:
    import pandas as pd

    from posepipe.report import image_tag, table, warnings_list, write_page

    t = metrics["time"]
    numbers = {
        "MPJPE mm": metrics["mpjpe_mm"], "P-MPJPE mm": metrics["p_mpjpe_mm"], "N-MPJPE mm": metrics["n_mpjpe_mm"],
        "accel. error mm/s2": metrics["accel_error_mm_s2"], "frames used": metrics["frames"]["used"],
        "offset s": t["offset_s"], "offset from": t["offset_source"], "confidence": t["confidence"],
        "overlap s": t["overlap_s"],
    }  # fmt: skip
    if metrics["world"]:
        numbers["root error mm (world)"] = metrics["world"]["root_mean_mm"]
    parts = [warnings_list(metrics["warnings"]), image_tag(figure, alt="evaluation figure"),
             "<h3>Summary</h3>", table(pd.DataFrame([numbers])), "<h3>Per joint</h3>", table(per_joint)]  # fmt: skip
    if metrics["angles"]:
        rows = [{"angle": k, **v} for k, v in metrics["angles"].items()]
        parts += ["<h3>Angles</h3>", table(pd.DataFrame(rows))]
    write_page(
        path, f"Evaluation of {metrics['video']} against {Path(metrics['reference']['path']).name}", parts
    )


# ---- run-wide -------------------------------------------------------------------------------------

SUMMARY_METRICS = ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "accel_error_mm_s2", "root_mean_mm")


def summary_row(metrics: dict) -> dict:
    row = {
        "video": metrics["video"], "reference": metrics["reference"]["path"],
        "frames_used": metrics["frames"]["used"], "overlap_s": metrics["time"]["overlap_s"],
        "offset_s": metrics["time"]["offset_s"], "offset_source": metrics["time"]["offset_source"],
        "offset_confidence": metrics["time"]["confidence"],
        **{k: metrics[k] for k in SUMMARY_METRICS[:4]},
        "root_mean_mm": (metrics.get("world") or {}).get("root_mean_mm"),
    }  # fmt: skip
    for name, angle in (metrics.get("angles") or {}).items():
        row[f"{name}_rmse_deg"] = angle["rmse_deg"]
        row[f"{name}_r"] = angle["r"]
    return row


def write_evaluate_summary(
    metrics_files, *, out, intervals, html, left_out=()
) -> tuple[list[dict], list[dict]]:
    """results/evaluate_summary.csv (a row per video), evaluate_intervals.csv (per metric: n, mean,
    sd, 95% t-interval) and the HTML page; returns (rows, intervals). ``left_out``: notes on videos
    with a reference that have no current evaluation (after a failed run), shown on the page."""
    import pandas as pd

    from posepipe.report import table, warnings_list, write_page

    rows = [summary_row(load_evaluate(path)) for path in metrics_files]
    frame = pd.DataFrame(rows)
    stats = []
    for column in frame.columns:
        if column in SUMMARY_METRICS or column.endswith(("_rmse_deg", "_r")):
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
            mean, low, high, n = M.t_interval(values)
            sd = float(np.nanstd(values, ddof=1)) if n > 1 else float("nan")
            stats.append(
                {"metric": column, "n": n, "mean": mean, "sd": sd, "ci95_low": low, "ci95_high": high}
            )
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(intervals) as tmp:
        pd.DataFrame(stats, columns=["metric", "n", "mean", "sd", "ci95_low", "ci95_high"]).to_csv(
            tmp, index=False, float_format="%.4f"
        )
    note = ("<p>Means across videos with two-sided 95% Student-t intervals: mean &plusmn; t(0.975, n&minus;1) "
            "sd / &radic;n (n videos; no interval for one).</p>")  # fmt: skip
    parts = [warnings_list(list(left_out))] if left_out else []
    write_page(html, f"Evaluation against motion capture: {len(rows)} videos",
               [*parts, "<h3>Across videos</h3>", note, table(pd.DataFrame(stats)), "<h3>Per video</h3>", table(frame)])  # fmt: skip
    return rows, stats


def _joint_map_arg(text: str):
    """--joint-map: a shipped name, a YAML file, or an inline JSON mapping."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a JSON mapping: {exc}") from None
    return text


def register_cli(sub) -> None:
    p = sub.add_parser("evaluate", help="compare one video's 3D with its reference motion capture")
    p.add_argument("pose3d", type=Path, metavar="POSE3D_NPZ")
    p.add_argument("--timeline", type=Path, required=True, help="frames/timeline.json")
    p.add_argument("--reference", type=Path, required=True, help="the reference recording (.c3d, .trc, .npz)")
    p.add_argument("--out-dir", type=Path, required=True, help="results/{video}/evaluate")
    p.add_argument("--world", type=Path, default=None, help="world.npz (root trajectory error)")
    p.add_argument("--angles", type=Path, default=None, help="angles.npz (angle errors)")
    p.add_argument("--video-id", default=None)
    p.add_argument(
        "--offset-s", type=float, default=None,
        help="reference time = video time + this (sample sheet reference_offset_s); unset: found",
    )  # fmt: skip
    add_option(p, "--joint-map", key="evaluate.joint_map", type=_joint_map_arg,
               help=f"a shipped map ({', '.join(R.JOINT_MAPS)}), a YAML file or a JSON mapping")  # fmt: skip
    add_option(
        p, "--min-overlap-s", key="evaluate.min_overlap_s", type=float, help="shortest overlap accepted"
    )
    add_option(p, "--max-offset-s", key="evaluate.max_offset_s", type=float, help="largest offset searched")
    add_option(p, "--trajectory", key="evaluate.trajectory", choices=schema_node("evaluate.trajectory")["enum"],
               help="alignment of the world root trajectory")  # fmt: skip
    add_option(
        p,
        "--figure-joint",
        key="evaluate.figure_joint",
        choices=H36M_JOINTS,
        help="joint drawn in the figure",
    )

    def run(args: argparse.Namespace) -> None:
        run_evaluate(
            pose3d_npz=args.pose3d, timeline_json=args.timeline, reference=args.reference, out_dir=args.out_dir,
            settings=settings_from_args(EvaluateSettings, args), world_npz=args.world, angles_npz=args.angles,
            offset_s=args.offset_s, video=args.video_id,
        )  # fmt: skip

    p.set_defaults(handler=run)

    s = sub.add_parser("evaluate-summary", help="run-wide table of the evaluate stage's metrics")
    s.add_argument("metrics", nargs="+", type=Path, metavar="METRICS_JSON")
    s.add_argument("--out", type=Path, required=True, help="results/evaluate_summary.csv")
    s.add_argument("--intervals", type=Path, required=True, help="results/evaluate_intervals.csv")
    s.add_argument("--html", type=Path, required=True, help="results/evaluate_summary.html")
    s.set_defaults(
        handler=lambda args: write_evaluate_summary(
            args.metrics, out=args.out, intervals=args.intervals, html=args.html
        )
    )
