"""Many short clips: clips per hour and per-stage overhead, cold start vs warm start, side by side.

Makes N clips of 2 s (320x240, 30 fps, H.264) with imported COCO keypoints and a VideoPose3D
checkpoint of the published size (random weights), then runs the whole default workflow
(probe ... lift3d, qc, exports csv+json, render, preview) on them twice in fresh folders, once
with ``resources.warm_start: false`` and once with ``true``, with ``--cores`` as given. Reports
wall time, clips per hour, each stage's mean seconds per clip (Snakemake benchmark files) and
checks that the two runs' outputs are identical (every array of every .npz, pose3d.csv, and the
decoded frames of every render).

    python bench/bench_short_clips.py --clips 100 --cores 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posepipe.testing import coco_results, write_indexed_video  # noqa: E402

STAGES = (
    "probe",
    "frames",
    "keypoints2d",
    "dataset2d",
    "lift3d",
    "qc",
    "export_csv",
    "export_json",
    "render",
)


def make_clips(folder: Path, count: int) -> None:
    for i in range(count):
        video = write_indexed_video(folder / f"clip{i:04d}.mp4", width=320, height=240, frames=60, fps=30)
        (folder / f"{video.stem}.coco.json").write_text(
            json.dumps(coco_results(60, width=320, height=240, seed=i))
        )


def run(workdir: Path, *, videos: Path, checkpoint: Path, warm: bool, cores: int) -> float:
    workdir.mkdir(parents=True)
    config = {
        "input": {"directory": str(videos)},
        "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": str(checkpoint), "device": "cpu"},
        "resources": {"warm_start": warm},
    }
    (workdir / "config.yaml").write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), "-q", "progress"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed in {workdir}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def stage_seconds(results: Path) -> dict[str, float]:
    means = {}
    for stage in STAGES:
        values = [
            float(p.read_text().splitlines()[1].split("\t")[0])
            for p in results.glob(f"*/benchmarks/{stage}.tsv")
        ]
        means[stage] = sum(values) / len(values) if values else float("nan")
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    args = parser.parse_args()

    from posepipe.lift3d.checkpoint import save_checkpoint
    from posepipe.testing import random_model

    root = Path(tempfile.mkdtemp(prefix="bench-short-"))
    videos = root / "videos"
    make_clips(videos, args.clips)
    checkpoint = root / "lifter.bin"
    save_checkpoint(checkpoint, model_pos=random_model(widths=(3, 3, 3, 3, 3), channels=1024))
    walls, stages = {}, {}
    for name, warm in (("cold", False), ("warm", True)):
        walls[name] = run(root / name, videos=videos, checkpoint=checkpoint, warm=warm, cores=args.cores)
        stages[name] = stage_seconds(root / name / "results")
        print(f"{name}: {walls[name]:.1f} s for {args.clips} clips", flush=True)

    compare = subprocess.run([sys.executable, str(REPO / "bench" / "compare_results.py"),
                              str(root / "cold" / "results"), str(root / "warm" / "results")],
                             capture_output=True, text=True)  # fmt: skip
    differing = [line for line in compare.stdout.splitlines() if line.startswith(("DIFFERS", "MISSING"))]
    differing = [line for line in differing if "summary" not in line]  # run times differ by design
    print(f"\n{args.clips} clips of 2 s (320x240, 30 fps), --cores {args.cores}, published-size lifter")
    print(f"{'':14}{'cold':>10}{'warm':>10}")
    print(f"{'wall s':14}{walls['cold']:>10.1f}{walls['warm']:>10.1f}")
    for name in ("cold", "warm"):
        walls[name + "_cph"] = 3600 * args.clips / walls[name]
    print(f"{'clips/hour':14}{walls['cold_cph']:>10.0f}{walls['warm_cph']:>10.0f}")
    for stage in STAGES:
        print(f"{stage + ' s':14}{stages['cold'][stage]:>10.2f}{stages['warm'][stage]:>10.2f}")
    print(f"speed-up: {walls['cold'] / walls['warm']:.2f}x; outputs identical: {not differing}")
    for line in differing[:10]:
        print("  ", line)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print("kept", root)


if __name__ == "__main__":
    main()
