"""Workflow overhead: `snakemake --dry-run` for many videos, and a no-op re-run of a finished folder.

    python bench/bench_dag.py --dry-run-videos 1000 --noop-videos 100

The dry run uses placeholder files (a dry run reads no video). The no-op case first runs the
whole workflow for real (tiny 8-frame clips, 2D keypoints imported from COCO JSON files, a small
random VideoPose3D checkpoint, render at 64 px), then times a second run that must do nothing.
Times are wall-clock seconds of the whole `snakemake` process (start-up included), best of
``--repeat`` runs.
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

from posepipe.testing import coco_results, random_checkpoint, write_indexed_video  # noqa: E402


def snakemake(workdir: Path, *args: str) -> float:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def make_folder(workdir: Path, videos: int, *, placeholder: bool) -> dict:
    folder = workdir / "videos"
    folder.mkdir(parents=True)
    template = write_indexed_video(workdir / "template.mp4", width=64, height=48, frames=8, fps=25)
    keypoints = json.dumps(coco_results(8, width=64, height=48, seed=0))
    for i in range(videos):
        target = folder / f"clip_{i:05d}.mp4"
        if placeholder:
            target.write_bytes(b"placeholder")
        else:
            shutil.copy(template, target)
        (folder / f"clip_{i:05d}.coco.json").write_text(keypoints)

    checkpoint = random_checkpoint(workdir / "lifter.bin")
    config = {
        "input": {"directory": "videos"},
        "keypoints2d": {"source": "file", "file_pattern": "{directory}/{stem}.coco.json"},
        "lift3d": {"checkpoint": str(checkpoint)},
        "render": {"height": 64},
    }
    (workdir / "bench.yaml").write_text(json.dumps(config))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run-videos", type=int, default=1000)
    parser.add_argument("--noop-videos", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="posepipe-bench-dag-") as tmp:
        work = Path(tmp) / "dry"
        make_folder(work, args.dry_run_videos, placeholder=True)
        best = min(snakemake(work, "--configfile", str(work / "bench.yaml"), "--dry-run", "--quiet")
                   for _ in range(args.repeat))  # fmt: skip
        rows.append((f"dry run, {args.dry_run_videos} videos, nothing built", best))

        work = Path(tmp) / "noop"
        make_folder(work, args.noop_videos, placeholder=False)
        full = snakemake(
            work, "--configfile", str(work / "bench.yaml"), "--cores", str(args.cores), "--quiet"
        )
        rows.append((f"full run, {args.noop_videos} tiny videos (for reference)", full))
        best = min(snakemake(work, "--configfile", str(work / "bench.yaml"), "--cores", str(args.cores), "--quiet")
                   for _ in range(args.repeat))  # fmt: skip
        rows.append((f"no-op re-run, {args.noop_videos} videos, all up to date", best))

    width = max(len(name) for name, _ in rows)
    print(f"{'case':<{width}}  seconds")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:7.2f}")


if __name__ == "__main__":
    main()
