"""The evaluate stage in the workflow: three videos, two with a reference recording (one found beside
the video as C3D, one named in the sample sheet as TRC with its offset), one without.

The references are made from the run's own 3D (known truth for a random lifter): turned into a lab
frame, in millimetres, at four times the video's rate, shifted in time."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from posepipe.artefacts.pose3d import load_pose3d
from posepipe.skeleton import H36M_JOINTS
from posepipe.testing import random_checkpoint
from tests.snakemake_run import planned_jobs, snakemake
from tests.test_evaluate import write_c3d, write_trc

pytestmark = pytest.mark.workflow

FRAMES = 90
CONFIG = {
    "input": {"directory": "videos", "samples": "samples.tsv"},
    "keypoints2d": {"source": "file"},
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"enabled": False},
    "exports": ["csv"],
    "evaluate": {"min_overlap_s": 1.0},
}


def reference_points(pose: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """(4 (T-1) + 1, 17, 3) mm: the pose turned into the lab and linearly filled in at 4x the rate."""
    lab = (pose - pose[:, :1]) @ turn.T * 1000 + [500.0, 200.0, 900.0]
    fine = np.arange(4 * (len(pose) - 1) + 1) / 4
    flat = lab.reshape(len(pose), -1)
    return np.stack(
        [np.interp(fine, np.arange(len(pose)), flat[:, i]) for i in range(flat.shape[1])], 1
    ).reshape(len(fine), 17, 3)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, test_data):
    from tests.media import ffmpeg

    workdir = tmp_path_factory.mktemp("evaluate")
    videos = workdir / "videos"
    videos.mkdir()
    ffmpeg("-i", str(test_data("media/dance.mp4")), "-frames:v", str(FRAMES), "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(videos / "a.mp4"))  # fmt: skip
    entries = [
        e for e in json.loads(test_data("media/dance.coco.json").read_text()) if e["image_id"] < FRAMES
    ]
    for name in "abc":
        if name != "a":
            shutil.copy(videos / "a.mp4", videos / f"{name}.mp4")
        (videos / f"{name}.coco.json").write_text(json.dumps(entries))
    (workdir / "samples.tsv").write_text(
        "path\treference\treference_offset_s\nvideos/b.mp4\tmocap/b.trc\t2.5\n"
    )
    random_checkpoint(workdir / "lifter.bin")
    snakemake(workdir, "--cores", "2", *[f"results/{v}/pose3d.npz" for v in "abc"], config=CONFIG)
    pose = load_pose3d(workdir / "results" / "a" / "pose3d.npz")
    rate = 4 / float(np.diff(pose.time).mean())
    turn = Rotation.from_euler("xyz", [90, 0, 30], degrees=True).as_matrix()
    points = reference_points(pose.positions[0].astype(np.float64), turn)
    # a: beside the video, C3D, starting 200 samples into the capture (offset 200 / rate)
    write_c3d(videos / "a.reference.c3d", H36M_JOINTS, points, rate=rate, first_frame=200)
    # b: named by the sample sheet, TRC, offset 2.5 s given there
    (workdir / "mocap").mkdir()
    write_trc(workdir / "mocap" / "b.trc", H36M_JOINTS, points, 2.5 + np.arange(len(points)) / rate)
    snakemake(workdir, "--cores", "2", config=CONFIG)
    return workdir, 200 / rate


def test_only_videos_with_a_reference_are_evaluated(evaluated):
    workdir, offset_a = evaluated
    results = workdir / "results"
    assert not (results / "c" / "evaluate").exists()
    a = json.loads((results / "a" / "evaluate" / "metrics.json").read_text())
    b = json.loads((results / "b" / "evaluate" / "metrics.json").read_text())
    assert (
        abs(a["time"]["offset_s"] - offset_a) < 1 / 30 and a["time"]["offset_source"] == "cross-correlation"
    )
    assert b["time"] == {**b["time"], "offset_s": 2.5, "offset_source": "given"}
    assert b["mpjpe_mm"] < 0.01 and b["p_mpjpe_mm"] < 0.01  # float32 rounding only
    assert a["reference"]["format"] == "c3d" and b["reference"]["format"] == "trc"
    # the world and angles stages ran: the root trajectory and angle errors are there
    assert a["world"]["frames"] == FRAMES and a["angles_source"]["frame"] == "world"
    assert a["angles"]["knee_flexion_l"]["frames"] > 0
    table = pd.read_csv(results / "evaluate_summary.csv")
    assert sorted(table["video"]) == ["a", "b"]
    intervals = pd.read_csv(results / "evaluate_intervals.csv")
    assert intervals.set_index("metric").loc["mpjpe_mm", "n"] == 2
    for name in ("evaluate.png", "evaluate.html", "per_joint.csv", "per_frame.csv"):
        assert (results / "a" / "evaluate" / name).exists()
    # The QC page shows the evaluation's figure for the evaluated videos only.
    assert 'src="../evaluate/evaluate.png"' in (results / "a" / "qc" / "qc.html").read_text()
    assert "evaluate.png" not in (results / "c" / "qc" / "qc.html").read_text()


def test_changing_the_joint_map_reruns_evaluate_alone(evaluated):
    workdir, _ = evaluated
    assert planned_jobs(workdir, config=CONFIG) == set()
    fewer = {name: name for name in H36M_JOINTS[:7]}
    changed = {**CONFIG, "evaluate": {**CONFIG["evaluate"], "joint_map": fewer}}
    assert planned_jobs(workdir, config=changed) == {
        ("evaluate", "a"),
        ("evaluate", "b"),
        ("evaluate_summary", ""),
    }
    timed = time.perf_counter()
    snakemake(workdir, "--cores", "1", config=changed)
    print(f"evaluate of two {FRAMES}-frame videos and the summary: {time.perf_counter() - timed:.1f} s")
    a = json.loads((workdir / "results" / "a" / "evaluate" / "metrics.json").read_text())
    assert a["reference"]["joints"] == list(H36M_JOINTS[:7]) and a["reference"]["joint_map"] == "inline"


def test_a_failed_evaluation_leaves_the_others_in_the_run_wide_table(evaluated):
    """b's offset now leaves 0.5 s of overlap: its job fails with one line, a's row stays."""
    workdir, _ = evaluated
    (workdir / "samples.tsv").write_text(
        "path\treference\treference_offset_s\nvideos/b.mp4\tmocap/b.trc\t5.0\n"
    )
    proc = snakemake(workdir, "--cores", "1", config=CONFIG, check=False)
    assert proc.returncode != 0
    log = (workdir / "results" / "b" / "logs" / "evaluate.log").read_text().strip().splitlines()
    assert log[-1].startswith("posepipe evaluate: error: ") and "overlaps the video for 0.50 s" in log[-1]
    table = pd.read_csv(workdir / "results" / "evaluate_summary.csv")
    assert list(table["video"]) == ["a"]
    assert "b: no current evaluation" in (workdir / "results" / "evaluate_summary.html").read_text()
