"""Incremental re-runs of the whole DAG, asserted job by job from Snakemake's own dry-run plan.

Two tiny videos with 2D keypoints imported from COCO JSON (no detectron2 needed), a small random
VideoPose3D checkpoint, and 64 px renders keep one full run to a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

from tests.media import write_indexed_video
from tests.snakemake_run import REPO, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

PER_VIDEO = ("probe", "frames", "keypoints2d", "dataset2d", "lift3d", "render")


def coco_results(frames: int, *, width: int, height: int, seed: int) -> list[dict]:
    """One person per frame, except frame 2 (nobody): the shape other tools' files have."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(frames):
        if i == 2:
            continue
        xy = rng.uniform([0.3 * width, 0.1 * height], [0.7 * width, 0.9 * height], size=(17, 2))
        kps = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1)
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        out.append({"image_id": i, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": 0.98,
                    "keypoints": kps.ravel().round(2).tolist()})  # fmt: skip
    return out


def add_video(workdir, name: str, *, frames: int = 10, seed: int = 0):
    video = write_indexed_video(
        workdir / "videos" / f"{name}.mp4", width=64, height=48, frames=frames, fps=25
    )
    keypoints = coco_results(frames, width=64, height=48, seed=seed)
    (workdir / "videos" / f"{name}.coco.json").write_text(json.dumps(keypoints))
    return video


def random_checkpoint(path):
    """A small lifter in the published checkpoint format."""
    from posepipe.lift3d.checkpoint import save_checkpoint
    from tests.lift3d_models import random_model

    save_checkpoint(path, model_pos=random_model(widths=(3, 3), channels=16))
    return path


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory):
    """One complete run, shared by the tests of this module (each works on its own copy)."""
    workdir = tmp_path_factory.mktemp("finished")
    add_video(workdir, "alpha", seed=1)
    add_video(workdir, "beta", seed=2)
    random_checkpoint(workdir / "lifter.bin")
    config = {
        "input": {"directory": "videos"},
        "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": "lifter.bin"},
        "render": {"height": 64, "audio": False},
    }
    snakemake(workdir, "--cores", "2", config=config)
    return workdir, config


@pytest.fixture
def finished(finished_once, tmp_path):
    """A private copy of the finished folder (copy2 keeps modification times, .snakemake included)."""
    workdir, config = finished_once
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, config


def jobs(rules, videos):
    return {(rule, video) for rule in rules for video in videos}


def test_complete_run_then_nothing_to_do(finished):
    workdir, config = finished
    for video in ("alpha", "beta"):
        for output in ("pose3d.npz", "pose3d.csv", "render.mp4", "dataset2d.npz", "keypoints2d.npz"):
            assert (workdir / "results" / video / output).exists()
    summary = (workdir / "results/summary.csv").read_text()
    assert summary.count("complete") == 2
    assert planned_jobs(workdir, config=config) == set()


def test_new_video_runs_only_its_jobs(finished):
    workdir, config = finished
    add_video(workdir, "gamma", seed=3)
    # The merged dataset gathers every video, so it is rebuilt too.
    assert planned_jobs(workdir, config=config) == jobs(PER_VIDEO, ["gamma"]) | {("merge_dataset2d", "")}


def test_lift3d_parameter_reruns_lift3d_and_render_only(finished):
    workdir, config = finished
    changed = {**config, "lift3d": {**config["lift3d"], "flip_augmentation": False}}
    assert planned_jobs(workdir, config=changed) == jobs(("lift3d", "render"), ["alpha", "beta"])


def test_detector_parameter_reruns_keypoints2d_onward(finished):
    workdir, config = finished
    changed = {**config, "keypoints2d": {**config["keypoints2d"], "score_threshold": 0.3}}
    expected = jobs(("keypoints2d", "dataset2d", "lift3d", "render"), ["alpha", "beta"])
    assert planned_jobs(workdir, config=changed) == expected | {("merge_dataset2d", "")}


def test_speed_settings_rerun_nothing(finished):
    workdir, config = finished
    changed = {
        **config,
        "keypoints2d": {**config["keypoints2d"], "batch_size": 16, "device": "cpu"},
        "lift3d": {**config["lift3d"], "window": 64, "device": "cpu"},
        "resources": {"gpu_ids": [1, 2]},
    }
    assert planned_jobs(workdir, config=changed) == set()


def test_replaced_video_reruns_that_video_only(finished):
    workdir, config = finished
    time.sleep(1.1)  # a new mtime that Snakemake's one-second comparisons can see
    add_video(workdir, "alpha", frames=12, seed=1)
    assert planned_jobs(workdir, config=config) == jobs(PER_VIDEO, ["alpha"]) | {("merge_dataset2d", "")}


def test_deleted_intermediate_is_recreated_and_its_dependents_rerun(finished):
    workdir, config = finished
    os.remove(workdir / "results/alpha/dataset2d.npz")
    # dataset2d.npz is a target of `rule all`, so it is rebuilt. The rebuilt file is newer than
    # pose3d.npz, render.mp4 and the merged dataset, and Snakemake cannot know its content is the
    # same, so under its mtime trigger everything made from it runs again too.
    expected = jobs(("dataset2d", "lift3d", "render"), ["alpha"]) | {("merge_dataset2d", "")}
    assert planned_jobs(workdir, config=config) == expected


def test_stage_version_bump_reruns_that_stage_and_downstream(finished, tmp_path_factory):
    """The code-change policy: bumping a stage's number in posepipe/stages.py re-runs it."""
    workdir, config = finished
    copy = tmp_path_factory.mktemp("workflow")
    for item in ("Snakefile", "config.yaml", "workflow", "posepipe"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, copy / item)
    stages = copy / "posepipe/stages.py"
    stages.write_text(stages.read_text().replace('"dataset2d": 1', '"dataset2d": 2'))
    expected = jobs(("dataset2d", "lift3d", "render"), ["alpha", "beta"]) | {("merge_dataset2d", "")}
    assert planned_jobs(workdir, "-s", str(copy / "Snakefile"), config=config) == expected


def test_report_collects_the_renders(finished):
    workdir, config = finished
    snakemake(workdir, "--report", "report.html", config=config)
    report = (workdir / "report.html").read_text(errors="replace")
    assert "render.mp4" in report and "Renders" in report
