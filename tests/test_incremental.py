"""Incremental re-runs of the whole DAG, asserted job by job from Snakemake's own dry-run plan.

Two tiny videos with 2D keypoints imported from COCO JSON (no detectron2 needed), a small random
VideoPose3D checkpoint, and 64 px renders keep one full run to a few seconds.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from posepipe.testing import add_video, random_checkpoint
from tests.snakemake_run import REPO, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

PER_VIDEO = (
    "probe",
    "frames",
    "keypoints2d",
    "dataset2d",
    "lift3d",
    "render",
    "preview",
    "qc",
    "export",
    "world",
)
AFTER_LIFT = ("lift3d", "render", "preview", "qc", "export", "world")  # everything made from pose3d.npz
PER_VIDEO, AFTER_LIFT = PER_VIDEO + ("angles",), AFTER_LIFT + ("angles",)  # angles reads pose3d.npz
GATHER = {("merge_dataset2d", ""), ("qc_summary", "")}


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
    assert planned_jobs(workdir, config=config) == jobs(PER_VIDEO, ["gamma"]) | GATHER


def test_lift3d_parameter_reruns_lift3d_and_what_is_made_from_it(finished):
    workdir, config = finished
    changed = {**config, "lift3d": {**config["lift3d"], "flip_augmentation": False}}
    assert planned_jobs(workdir, config=changed) == jobs(AFTER_LIFT, ["alpha", "beta"]) | {("qc_summary", "")}


def test_new_export_format_runs_only_its_exports(finished):
    workdir, config = finished
    changed = {**config, "exports": ["csv", "json", "trc"]}
    out = snakemake(workdir, "--dry-run", config=changed).stdout
    assert planned_jobs(workdir, config=changed) == jobs(("export",), ["alpha", "beta"])
    assert out.count("wildcards: video=") == 2 and "format=trc" in out and "format=csv" not in out


def test_export_settings_rerun_only_exports(finished):
    """export.bvh_start re-runs the export jobs and nothing else; at its default, and for
    tracks.duplicate_oks at its default (neither in the command then), nothing re-runs."""
    workdir, config = finished
    changed = {**config, "export": {"bvh_start": "video"}}
    assert planned_jobs(workdir, config=changed) == jobs(("export",), ["alpha", "beta"])
    same = {**config, "export": {"bvh_start": "person"}, "tracks": {"duplicate_oks": 0.95}}
    assert planned_jobs(workdir, config=same) == set()


def test_qc_threshold_reruns_qc_only(finished):
    workdir, config = finished
    changed = {**config, "qc": {"max_bone_cv": 0.5}}
    assert planned_jobs(workdir, config=changed) == jobs(("qc",), ["alpha", "beta"]) | {("qc_summary", "")}


def test_detector_parameter_reruns_keypoints2d_onward(finished):
    workdir, config = finished
    changed = {**config, "keypoints2d": {**config["keypoints2d"], "score_threshold": 0.3}}
    expected = jobs(("keypoints2d", "dataset2d", *AFTER_LIFT), ["alpha", "beta"])
    assert planned_jobs(workdir, config=changed) == expected | GATHER


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
    assert planned_jobs(workdir, config=config) == jobs(PER_VIDEO, ["alpha"]) | GATHER


def test_deleted_intermediate_is_recreated_and_its_dependents_rerun(finished):
    workdir, config = finished
    os.remove(workdir / "results/alpha/dataset2d.npz")
    # dataset2d.npz is a target of `rule all`, so it is rebuilt. The rebuilt file is newer than
    # pose3d.npz, render.mp4 and the merged dataset, and Snakemake cannot know its content is the
    # same, so under its mtime trigger everything made from it runs again too.
    expected = jobs(("dataset2d", *AFTER_LIFT), ["alpha"]) | GATHER
    assert planned_jobs(workdir, config=config) == expected


def test_stage_version_bump_reruns_that_stage_and_downstream(finished, tmp_path_factory):
    """The code-change policy: bumping a stage's number in posepipe/registry.py re-runs it."""
    workdir, config = finished
    copy = tmp_path_factory.mktemp("workflow")
    for item in ("Snakefile", "config.yaml", "workflow", "posepipe"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, copy / item)
    registry = copy / "posepipe/registry.py"
    text = registry.read_text()
    assert 'Stage("dataset2d", 1,' in text
    registry.write_text(text.replace('Stage("dataset2d", 1,', 'Stage("dataset2d", 2,'))
    expected = jobs(("dataset2d", *AFTER_LIFT), ["alpha", "beta"]) | GATHER
    assert planned_jobs(workdir, "-s", str(copy / "Snakefile"), config=config) == expected


def test_report_collects_the_renders(finished):
    workdir, config = finished
    snakemake(workdir, "--report", "report.html", config=config)
    report = (workdir / "report.html").read_text(errors="replace")
    assert "render.mp4" in report and "Renders" in report
    for category in ("Previews", "QC figures", "QC tables", "Summary"):
        assert category in report
    for page in ("alpha/qc/qc.html", "beta/qc/qc.html", "alpha/preview.html", "qc_summary.html"):
        assert page in report
