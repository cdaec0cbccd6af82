"""Run the whole workflow with two versions of the code on the same inputs, then compare results.

A refactor must leave every output as it was. This checks it end to end:

    .venv/bin/python bench/refactor_check.py OLD_COMMIT [NEW_COMMIT] [--opensim]

Each commit (NEW: the working tree's HEAD by default) is exported with ``git archive`` into a
folder of its own under ``--workdir`` (default: a temporary folder). Both get the same inputs:
``tests/data/media/dance.mp4`` with its COCO keypoints, and a two-person clip made from it
(``tests/synthetic_people.two_dancers``), plus one small random lifter checkpoint. Both run the
same settings: imported keypoints, ``person: all``, every export format, the render and its
preview with the 3D panel in the world frame, world and angles (and the opensim stage with
``--opensim``; with ``--before-world`` only what the code before those stages knew). Then ``bench/compare_results.py`` compares the two ``results/`` folders: every
array, table, JSON key and decoded frame. Exit status: compare_results' (1 when anything differs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "input": {"directory": "videos"},
    "keypoints2d": {"source": "file"},
    "person": "all",
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"height": 96, "audio": False, "preview": True, "frame": "world"},
    "exports": ["csv", "json", "trc", "c3d", "bvh"],
    "angles": {"enabled": True},
}
# --before-world: only the settings the code had before the world and angles stages (the reshape's
# own before/after, e.g. 6b5650a^1 against 6b5650a): the render's 3D panel in the camera frame.
SETTINGS_BEFORE_WORLD = {
    **{k: v for k, v in SETTINGS.items() if k != "angles"},
    "render": {k: v for k, v in SETTINGS["render"].items() if k != "frame"},
}


def export_tree(commit: str, dest: Path) -> Path:
    """The files of ``commit`` in ``dest`` (no .git: the code as that commit had it)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def make_inputs(folder: Path) -> Path:
    """videos/ (dance and a duet with their keypoints) and lifter.bin, made once for both runs."""
    from posepipe.testing import random_checkpoint
    from tests.synthetic_people import two_dancers

    media = ROOT / "tests" / "data" / "media"
    videos = folder / "videos"
    videos.mkdir(parents=True)
    shutil.copy(media / "dance.mp4", videos / "dance.mp4")
    shutil.copy(media / "dance.coco.json", videos / "dance.coco.json")
    video, keypoints, _ = two_dancers(media, folder / "made")
    shutil.copy(video, videos / "duet.mp4")
    shutil.copy(keypoints, videos / "duet.coco.json")
    random_checkpoint(folder / "lifter.bin")
    return folder


def run_workflow(tree: Path, inputs: Path, settings: dict, cores: int) -> float:
    """Snakemake in ``tree`` with ``tree``'s own package; returns the wall seconds."""
    shutil.copytree(inputs / "videos", tree / "videos")
    shutil.copy(inputs / "lifter.bin", tree / "lifter.bin")
    (tree / "settings.yaml").write_text(yaml.safe_dump(settings))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", "settings.yaml", "-q"],
        cwd=tree, env=env, check=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="the commit before the change")
    ap.add_argument("new", nargs="?", default="HEAD", help="the commit after it (default: HEAD)")
    ap.add_argument("--opensim", action="store_true", help="also run the opensim stage (needs opensim)")
    ap.add_argument("--before-world", action="store_true",
                    help="only the settings of the code before the world and angles stages")  # fmt: skip
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", type=Path, help="keep the two runs here (default: a temporary folder)")
    args = ap.parse_args()

    base = SETTINGS_BEFORE_WORLD if args.before_world else SETTINGS
    settings = dict(base, **({"opensim": {"enabled": True}} if args.opensim else {}))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="posepipe-refactor-"))
    inputs = make_inputs(work / "inputs")
    for name, commit in (("old", args.old), ("new", args.new)):
        tree = export_tree(commit, work / name)
        seconds = run_workflow(tree, inputs, settings, args.cores)
        print(f"{name} ({commit}): workflow ran in {seconds:.0f} s in {tree}", flush=True)
    compare = subprocess.run([sys.executable, str(ROOT / "bench" / "compare_results.py"),
                              str(work / "old" / "results"), str(work / "new" / "results")])  # fmt: skip
    return compare.returncode


if __name__ == "__main__":
    sys.exit(main())
