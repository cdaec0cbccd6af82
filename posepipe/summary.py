"""results/summary.csv: one row per video, whatever state it is in.

Written at the end of every workflow run (also one where some videos failed), from the files
under ``results/{video}/``: frames, fps, detection rate, interpolated frames, mean keypoint
score, per-stage seconds (Snakemake benchmark files) and a status that names the stage that
failed and the reason its log gives.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posepipe.atomic import atomic_path
from posepipe.video import load_timeline_header

# Stage -> the output that proves it finished.
STAGE_OUTPUTS = (
    ("probe", "probe.json"),
    ("frames", "frames/timeline.json"),
    ("keypoints2d", "keypoints2d.npz"),
    ("dataset2d", "dataset2d.npz"),
    ("lift3d", "pose3d.npz"),
    ("render", "render.mp4"),
)


def _error_line(log: Path) -> str | None:
    """The last 'error' line a stage wrote to its log."""
    if not log.exists():
        return None
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if "error" in ln.lower()]
    return lines[-1] if lines else None


def video_row(results: Path, video: str, *, stages: tuple[str, ...]) -> dict:
    folder = results / video
    row: dict = {"video": video}
    done = [stage for stage, output in STAGE_OUTPUTS if stage in stages and (folder / output).exists()]
    missing = [stage for stage in stages if stage not in done]
    if not missing:
        row["status"] = "complete"
    else:
        stage = missing[0]
        error = _error_line(folder / "logs" / f"{stage}.log")
        row["status"] = f"failed at {stage}: {error}" if error else f"pending ({stage})"

    timeline = folder / "frames/timeline.json"
    if timeline.exists():
        header = load_timeline_header(timeline)
        row |= {"source": header["source"], "frames": header["frame_count"], "fps": round(header["fps"], 4)}
        row |= {"width": header["width"], "height": header["height"]}
    dataset = folder / "dataset2d.npz"
    if dataset.exists():
        with np.load(dataset, allow_pickle=False) as z:
            detected, scores = z["detected"], z["scores"]
        row["detection_rate"] = round(float(detected.mean()), 4)
        row["interpolated_frames"] = int((~detected).sum())
        row["mean_keypoint_score"] = round(float(scores[detected].mean()), 4) if detected.any() else None
    for stage, _ in STAGE_OUTPUTS:
        bench = folder / "benchmarks" / f"{stage}.tsv"
        if bench.exists():
            lines = bench.read_text().splitlines()
            if len(lines) >= 2:
                row[f"{stage}_s"] = round(float(lines[1].split("\t")[0]), 3)
    return row


def write_summary(
    videos: list[str],
    *,
    out: str | os.PathLike = "results/summary.csv",
    results: str | os.PathLike = "results",
    stages: tuple[str, ...] = tuple(stage for stage, _ in STAGE_OUTPUTS),
) -> list[dict]:
    """Write the summary table (atomically) and return its rows."""
    import pandas as pd

    rows = [video_row(Path(results), video, stages=stages) for video in videos]
    columns = ["video", "status", "source", "frames", "fps", "width", "height", "detection_rate",
               "interpolated_frames", "mean_keypoint_score"] + [f"{s}_s" for s, _ in STAGE_OUTPUTS]  # fmt: skip
    table = pd.DataFrame(rows).reindex(columns=columns)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return rows


def register_cli(sub) -> None:
    p = sub.add_parser("summary", help="write results/summary.csv for the given video ids")
    p.add_argument("videos", nargs="*", help="video ids (default: every folder under --results)")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="results/summary.csv")
    p.add_argument("--no-render", action="store_true", help="a video is complete without render.mp4")

    def run(args) -> None:
        videos = args.videos or sorted(
            p.name for p in Path(args.results).iterdir() if (p / "probe.json").exists()
        )
        stages = tuple(s for s, _ in STAGE_OUTPUTS if not (args.no_render and s == "render"))
        for row in write_summary(videos, out=args.out, results=args.results, stages=stages):
            print(f"{row['video']}: {row['status']}")

    p.set_defaults(handler=run)
