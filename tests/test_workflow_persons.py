"""Several people through the real workflow: a two-person clip made from the sample dance.mp4 with
both persons' keypoints imported, ``person: all``, every export; then what a change re-runs."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from posepipe.artefacts.dataset2d import load_persons2d
from posepipe.artefacts.pose3d import load_pose3d
from posepipe.testing import random_checkpoint
from tests.snakemake_run import planned_jobs, snakemake
from tests.synthetic_people import two_dancers

pytestmark = pytest.mark.workflow

CONFIG = {
    "input": {"directory": "videos"},
    "keypoints2d": {"source": "file"},
    "person": "all",
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"height": 96, "audio": False, "preview": True},
    "exports": ["csv", "json", "trc", "c3d", "bvh"],
}


@pytest.fixture(scope="module")
def duet_run(tmp_path_factory, test_data):
    workdir = tmp_path_factory.mktemp("duet")
    video, keypoints, _ = two_dancers(test_data("media"), workdir / "made")
    (workdir / "videos").mkdir()
    shutil.copy(video, workdir / "videos" / "duet.mp4")
    shutil.copy(keypoints, workdir / "videos" / "duet.coco.json")
    random_checkpoint(workdir / "lifter.bin")
    snakemake(workdir, "--cores", "2", config=CONFIG)
    return workdir


def test_one_sequence_per_person_rendered_and_exported(duet_run):
    results = duet_run / "results" / "duet"
    people = load_persons2d(results / "dataset2d.npz")
    assert [p.track_id for p in people] == [0, 1]
    pose = load_pose3d(results / "pose3d.npz", frame_count=150)
    assert pose.positions.shape == (2, 150, 17, 3) and np.isfinite(pose.positions).all()
    # Side by side in the display copy: the left dancer stays left of the right one along the floor.
    assert (pose.display[0, :, 0, :2] != pose.display[1, :, 0, :2]).any(axis=1).all()
    import av

    with av.open(str(results / "render.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 150
    for fmt, ext in (("csv", "csv"), ("json", "json"), ("trc", "trc"), ("c3d", "c3d"), ("bvh", "bvh")):
        assert sorted(p.name for p in (results / "exports" / fmt).glob("duet*")) == [
            f"duet.p0.{ext}",
            f"duet.p1.{ext}",
        ]
    table = pd.read_csv(results / "pose3d.csv")
    assert sorted(table.person.unique()) == [0, 1]
    qc = json.loads((results / "qc" / "qc.json").read_text())
    assert qc["tracks"] == {"count": 2, "fragments_merged": 0, "frames_with_two_or_more": 150}
    assert [p["frames_present"] for p in qc["persons"]] == [150, 150]
    summary = pd.read_csv(duet_run / "results" / "summary.csv")
    row = summary.iloc[0]
    assert row.status == "complete" and row.tracks == 2 and row.frames_with_two_or_more == 150


def test_joint_angles_per_person_in_the_qc_page(duet_run):
    """The angles stage read world.npz (the world stage is in the workflow) for both dancers."""
    from posepipe.artefacts.angles import load_angles
    from posepipe.artefacts.world import load_world
    from posepipe.biomech.angles import compute_angles

    results = duet_run / "results" / "duet"
    angles = load_angles(results / "angles.npz")
    world = load_world(results / "world.npz")
    assert (
        angles.frame == "world" and list(angles.track_ids) == [0, 1] and angles.values.shape[:2] == (2, 150)
    )
    expected, _ = compute_angles(world.joints, up=(0, 0, 1))
    np.testing.assert_allclose(angles.values, expected, atol=1e-3, equal_nan=True)
    assert sorted(pd.read_csv(results / "angles.csv").person.unique()) == [0, 1]
    summary = pd.read_csv(results / "angles_summary.csv")
    assert len(summary) == 2 * len(angles.names) and set(summary.frame_of_reference) == {"world"}
    assert "<h3>Joint angles</h3>" in (results / "qc" / "qc.html").read_text()
    # summary.csv: the ranges of motion of knees and hips, the main person's (both are seen in all
    # 150 frames: the first, track 0) in columns, both in rom_by_person.
    ranges = summary.set_index(["person", "angle"])["range"]
    row = pd.read_csv(duet_run / "results" / "summary.csv").iloc[0]
    assert row.rom_person == 0
    for name in ("knee_flexion_l", "knee_flexion_r", "hip_flexion_l", "hip_flexion_r"):
        assert row[f"{name[:-2]}_rom_{name[-1]}"] == pytest.approx(ranges[(0, name)], abs=0.051)
    by_person = [
        [float(v) for v in re.findall(r"[LR] ([\d.]+)", part)] for part in row.rom_by_person.split("; ")
    ]
    assert row.rom_by_person.startswith("track 0: knee L ") and "; track 1: knee L " in row.rom_by_person
    for track, found in enumerate(by_person):
        expected = [
            ranges[(track, n)] for n in ("knee_flexion_l", "knee_flexion_r", "hip_flexion_l", "hip_flexion_r")
        ]
        assert found == pytest.approx(expected, abs=0.051)


def test_tracking_parameter_reruns_tracks_onward_only(duet_run, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(duet_run, workdir, symlinks=True)
    changed = {**CONFIG, "tracks": {"max_cost": 0.7}}
    planned = planned_jobs(workdir, config=changed)
    assert {rule for rule, _ in planned} == {
        "tracks", "dataset2d", "lift3d", "render", "preview", "qc", "export", "merge_dataset2d", "qc_summary",
        "world", "angles",
    }  # fmt: skip
    assert planned_jobs(workdir, config=CONFIG) == set()
