"""Workflow overhead: `snakemake --dry-run` for many videos, and a no-op re-run of a finished
folder, each beside the same case for the floor Snakefile (bench/floor/Snakefile: posepipe's
shape, every job a `touch`), and the dry run of one long video in shards.

    python bench/bench_dag.py --dry-run-videos 1000 --noop-videos 100

The dry run uses placeholder files (a dry run reads no video). The no-op case first runs the
whole workflow for real (tiny 8-frame clips, 2D keypoints imported from COCO JSON files, a small
random VideoPose3D checkpoint, render at 64 px), then times a second run that must do nothing;
the floor is run the same way on as many placeholder videos. The sharded case: one 2-hour video
at 30 fps (216,000 frames, a placeholder with a finished timeline, so the plan is known) with
9000-frame shards. Times are wall-clock seconds of the whole `snakemake` process (start-up
included), best of ``--repeat`` runs, the two Snakefiles alternating.
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

FLOOR = REPO / "bench" / "floor" / "Snakefile"


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir), *args]
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
        work, floor = Path(tmp) / "dry", Path(tmp) / "dry-floor"
        make_folder(work, args.dry_run_videos, placeholder=True)
        shutil.copytree(work / "videos", floor / "videos")
        shutil.copy(work / "lifter.bin", floor / "lifter.bin")
        ours, base = best_pair(args.repeat, lambda: snakemake(work, "--configfile", str(work / "bench.yaml"),
                                                              "--dry-run", "--quiet"),
                               lambda: snakemake(floor, "--dry-run", "--quiet", snakefile=FLOOR))  # fmt: skip
        rows.append((f"dry run, {args.dry_run_videos} videos, nothing built", ours, base))

        work, floor = Path(tmp) / "noop", Path(tmp) / "noop-floor"
        make_folder(work, args.noop_videos, placeholder=False)
        shutil.copytree(work / "videos", floor / "videos")
        shutil.copy(work / "lifter.bin", floor / "lifter.bin")
        full = snakemake(
            work, "--configfile", str(work / "bench.yaml"), "--cores", str(args.cores), "--quiet"
        )
        snakemake(floor, "--cores", str(args.cores), "--quiet", snakefile=FLOOR)
        rows.append((f"full run, {args.noop_videos} tiny videos (for reference)", full, None))
        ours, base = best_pair(args.repeat, lambda: snakemake(work, "--configfile", str(work / "bench.yaml"),
                                                              "--cores", str(args.cores), "--quiet"),
                               lambda: snakemake(floor, "--cores", str(args.cores), "--quiet", snakefile=FLOOR))  # fmt: skip
        rows.append((f"no-op re-run, {args.noop_videos} videos, all up to date", ours, base))

        work = Path(tmp) / "long"
        make_long_video(work, frames=216_000)
        ours = min(snakemake(work, "--configfile", str(work / "bench.yaml"), "--dry-run", "--quiet")
                   for _ in range(args.repeat))  # fmt: skip
        rows.append(("dry run, one 2-hour video at 30 fps in 9000-frame shards", ours, None))

    width = max(len(name) for name, *_ in rows)
    print(f"{'case':<{width}}  {'posepipe':>9}  {'floor':>7}  ratio")
    for name, seconds, base in rows:
        extra = f"  {base:7.2f}  {seconds / base:5.2f}x" if base else ""
        print(f"{name:<{width}}  {seconds:9.2f}{extra}")


def best_pair(repeat: int, ours, floor) -> tuple[float, float]:
    """Best of ``repeat`` for each, alternating, so both see the same machine state."""
    a, b = [], []
    for _ in range(repeat):
        a.append(ours())
        b.append(floor())
    return min(a), min(b)


def make_long_video(workdir: Path, *, frames: int) -> None:
    """A placeholder video whose timeline (and probe) already exist: a dry run plans its shards."""
    make_folder(workdir, 1, placeholder=True)
    config = json.loads((workdir / "bench.yaml").read_text())
    (workdir / "bench.yaml").write_text(json.dumps({**config, "shard_frames": 9000}))
    results = workdir / "results" / "clip_00000"
    (results / "frames").mkdir(parents=True)
    header = {"video_id": "clip_00000", "frame_count": frames, "fps": 30.0, "width": 64, "height": 48}
    for name in ("probe.json", "probe_pts.npy", "frames/timeline.json", "frames/timeline.csv"):
        (results / name).write_text(json.dumps(header))
    time.sleep(0.01)
    snakemake(workdir, "results/clip_00000/shards.json", "--configfile", str(workdir / "bench.yaml"), "--cores", "1",
              "--allowed-rules", "shards", "--quiet", "all")  # fmt: skip


if __name__ == "__main__":
    main()
