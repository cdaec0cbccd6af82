"""The workstation profile, used as a user would: the whole workflow, one bad video among good ones."""

from __future__ import annotations

import re

import pytest

from posepipe.testing import add_video, random_checkpoint
from tests.snakemake_run import REPO, snakemake

pytestmark = pytest.mark.workflow


def test_workstation_profile_runs_everything_and_keeps_going(tmp_path):
    add_video(tmp_path, "good", seed=4)
    (tmp_path / "videos/broken.mp4").write_text("not a video\n")
    (tmp_path / "videos/broken.coco.json").write_text("[]")
    random_checkpoint(tmp_path / "lifter.bin")
    config = {
        "input": {"directory": "videos"},
        "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": "lifter.bin"},
        "render": {"height": 64},
    }
    proc = snakemake(tmp_path, "--profile", str(REPO / "profiles/workstation"), config=config, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0  # the broken video fails ...
    assert re.search(
        r"Provided resources: gpu=(Resource\(\"gpu\", )?1\b", output
    )  # ... GPU jobs capped at one ...
    for name in ("pose3d.npz", "pose3d.csv", "render.mp4"):  # ... and keep-going finishes the good one
        assert (tmp_path / "results/good" / name).exists()
    # show-failed-logs: the reason is printed, naming the file.
    assert "videos/broken.mp4: not a readable video" in output
    summary = (tmp_path / "results/summary.csv").read_text()
    assert "good,complete" in summary
    assert "broken,failed at probe" in summary
