"""The world stage through the real workflow: a calibration named in the sample sheet, world.npz
and world-frame exports written; then changing only the calibration re-runs world and what reads
it (angles, qc, exports), not lift3d."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from posepipe.artefacts.world import load_world
from posepipe.exports.trc import read_trc
from posepipe.testing import add_video, random_checkpoint
from tests.snakemake_run import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

CONFIG = {
    "input": {"directory": None, "samples": "samples.tsv"},
    "keypoints2d": {"source": "file"},
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"enabled": False},
    "exports": ["csv", "trc"],
    "export": {"frame": "world"},
}


def write_calibration(path, fx):
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 64)
    fs.write("image_height", 48)
    fs.write("camera_matrix", np.array([[fx, 0, 31.5], [0, fx, 23.5], [0, 0, 1.0]]))
    fs.write("distortion_coefficients", np.array([[-0.1, 0.01, 0.0, 0.0, 0.0]]))
    fs.release()


def test_calibration_in_the_sample_sheet(tmp_path):
    add_video(tmp_path, "alpha", frames=12, seed=1)
    random_checkpoint(tmp_path / "lifter.bin")
    write_calibration(tmp_path / "alpha.yaml", 60.0)
    (tmp_path / "samples.tsv").write_text("path\tcalibration\theight_m\nvideos/alpha.mp4\talpha.yaml\t1.7\n")
    snakemake(tmp_path, "--cores", "2", config=CONFIG)
    results = tmp_path / "results" / "alpha"
    world = load_world(results / "world.npz", frame_count=12)
    assert world.meta["intrinsics_source"] == "calibration" and world.lens == "radtan"
    assert world.meta["scale_source"] == "height" and world.height_m[0] == pytest.approx(1.7)
    assert world.camera_matrix[0, 0] == pytest.approx(60.0)
    _, _, _, _, points = read_trc(results / "exports" / "trc" / "alpha.trc")
    np.testing.assert_allclose(points, world.joints[0][:, :, [0, 2, 1]] * [1, 1, -1] * 1000, atol=1e-2)
    assert (results / "world.csv").exists() and "world" in (results / "qc" / "qc.json").read_text()
    assert planned_jobs(tmp_path, config=CONFIG) == set()
    time.sleep(1.1)  # a new mtime that Snakemake's one-second comparisons can see
    write_calibration(tmp_path / "alpha.yaml", 70.0)
    planned = planned_jobs(tmp_path, config=CONFIG)
    assert {rule for rule, _ in planned} == {"world", "angles", "qc", "export", "qc_summary"}
