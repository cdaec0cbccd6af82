"""Exports read back: CSV/JSON equal pose3d, TRC and C3D equal it in mm and their axes, BVH forward
kinematics (read with bvhio) reproduces the joints."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from posepipe.artefacts.pose3d import Pose3D, save_pose3d
from posepipe.exports.motion import y_up
from posepipe.exports.stage import ExportSettings, run_export
from posepipe.exports.trc import read_trc
from posepipe.skeleton import H36M_JOINTS
from tests.test_qc import rigid_skeleton

FPS = 30000 / 1001
T = 40


@pytest.fixture
def single(tmp_path):
    camera = rigid_skeleton(T, seed=1)
    display = rigid_skeleton(T, seed=2) + [0, 0, 1.0]
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(positions=camera, display=display, time=np.arange(T) / FPS,
                                                meta={"fps": FPS}))  # fmt: skip
    return tmp_path / "pose3d.npz", camera, display


@pytest.fixture
def two(tmp_path):
    camera = np.stack([rigid_skeleton(T, seed=3), rigid_skeleton(T, seed=4)])
    display = np.stack([rigid_skeleton(T, seed=5), rigid_skeleton(T, seed=6)]) + [0, 0, 1.0]
    camera[1, :10] = display[1, :10] = np.nan  # person 1 arrives at frame 10
    camera[1, 20:25] = display[1, 20:25] = np.nan  # and is away for 5 frames
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(positions=camera, display=display, time=np.arange(T) / FPS,
                                                meta={"fps": FPS}, track_ids=np.array([0, 3])))  # fmt: skip
    return tmp_path / "pose3d.npz", camera, display


def test_csv_and_json_equal_camera_space(single, tmp_path):
    pose3d, camera, _ = single
    (csv,) = run_export(pose3d, fmt="csv", out_dir=tmp_path / "csv", video_id="v")
    table = pd.read_csv(csv)
    assert (
        csv.name == "v.csv"
        and len(table) == T
        and list(table.columns[:5]) == ["frame", "time", "hip_x", "hip_y", "hip_z"]
    )
    np.testing.assert_allclose(table[[f"{j}_{a}" for j in H36M_JOINTS for a in "xyz"]].to_numpy().reshape(T, 17, 3),
                               camera, atol=1e-6)  # fmt: skip
    (doc,) = run_export(pose3d, fmt="json", out_dir=tmp_path / "json", video_id="v")
    data = json.loads(doc.read_text())
    assert (
        data["fps"] == pytest.approx(FPS) and data["joints"] == list(H36M_JOINTS) and len(data["frames"]) == T
    )
    frame = data["frames"][7]
    assert frame["frame"] == 7 and frame["time"] == pytest.approx(7 / FPS, abs=1e-6)
    np.testing.assert_allclose([frame["joints"][j] for j in H36M_JOINTS], camera[7], atol=1e-6)


def test_trc_in_mm_y_up_with_missing_frames(two, tmp_path):
    pose3d, _, display = two
    files = run_export(pose3d, fmt="trc", out_dir=tmp_path / "trc", video_id="v")
    assert [f.name for f in files] == ["v.p0.trc", "v.p3.trc"]
    header, names, frames, times, points = read_trc(files[1])
    assert (
        names == list(H36M_JOINTS)
        and header["Units"] == "mm"
        and float(header["DataRate"]) == pytest.approx(FPS)
    )
    assert frames[0] == 11 and frames[-1] == T and int(header["NumFrames"]) == T - 10
    expected = y_up(display[1, 10:]) * 1000
    np.testing.assert_allclose(points, expected, atol=1e-3, equal_nan=True)
    assert np.isnan(points[10:15]).all()  # frames 20..24: absent, empty fields
    np.testing.assert_allclose(times, np.arange(10, T) / FPS, atol=1e-6)
    # Y up: the floor (display z = 0) is y = 0 in OpenSim's frame.
    assert np.nanmin(points[..., 1]) == pytest.approx(np.nanmin(display[1, 10:, :, 2]) * 1000, abs=1e-3)


def test_c3d_read_back_with_ezc3d(two, tmp_path):
    ezc3d = pytest.importorskip("ezc3d")
    pose3d, _, display = two
    files = run_export(pose3d, fmt="c3d", out_dir=tmp_path / "c3d", video_id="v")
    c3d = ezc3d.c3d(str(files[1]))
    assert c3d["parameters"]["POINT"]["LABELS"]["value"] == list(H36M_JOINTS)
    assert c3d["parameters"]["POINT"]["UNITS"]["value"] == ["mm"]
    assert c3d["parameters"]["POINT"]["RATE"]["value"][0] == pytest.approx(FPS, rel=1e-6)
    assert c3d["header"]["points"]["first_frame"] == 10
    points = c3d["data"]["points"][:3].transpose(2, 1, 0)
    np.testing.assert_allclose(points, display[1, 10:] * 1000, atol=1e-3, equal_nan=True)


def test_bvh_forward_kinematics_reproduces_the_joints(two, tmp_path):
    bvhio = pytest.importorskip("bvhio")
    pose3d, _, display = two
    files = run_export(pose3d, fmt="bvh", out_dir=tmp_path / "bvh", video_id="v")
    for path, person, start in zip(files, (0, 1), (0, 10), strict=True):
        expected = y_up(display[person, start:]) * 100  # cm, Y up
        held = np.flatnonzero(np.isfinite(expected).all(axis=(1, 2)))
        root = bvhio.readAsHierarchy(str(path))
        worst = 0.0
        for k in range(len(expected)):
            source = held[held <= k][-1]  # absent frames hold the last pose
            root.loadPose(k)
            for joint, _, _ in root.layout():
                if joint.Name in H36M_JOINTS:
                    error = np.abs(
                        np.array(joint.PositionWorld) - expected[source, H36M_JOINTS.index(joint.Name)]
                    )
                    worst = max(worst, float(error.max()))
        assert worst < 0.1, f"{path.name}: forward kinematics off by {worst * 10:.3f} mm"  # 1 mm


def test_bvh_error_follows_bone_length_changes(single, tmp_path):
    from posepipe.exports.bvh import bvh_text

    bvhio = pytest.importorskip("bvhio")
    points = rigid_skeleton(T) * 100
    points[:, 13] += (points[:, 13] - points[:, 12]) * 0.02 * np.sin(np.arange(T))[:, None]  # forearm +-2%
    (tmp_path / "s.bvh").write_text(bvh_text(points, fps=FPS))
    root = bvhio.readAsHierarchy(str(tmp_path / "s.bvh"))
    errors = []
    for k in range(T):
        root.loadPose(k)
        world = {j.Name: np.array(j.PositionWorld) for j, _, _ in root.layout()}
        errors.append([np.linalg.norm(world[name] - points[k, i]) for i, name in enumerate(H36M_JOINTS)])
    errors = np.array(errors)
    assert errors[:, [i for i in range(17) if i != 13]].max() < 1e-3  # every other joint exact
    length = np.linalg.norm(points[:, 13] - points[:, 12], axis=1)
    np.testing.assert_allclose(errors[:, 13], np.abs(length - np.median(length)), atol=1e-3)


def test_unknown_format_and_person_never_present(single, tmp_path):
    from posepipe.errors import PosepipeError

    pose3d, _, _ = single
    with pytest.raises(PosepipeError, match="unknown export format 'fbx'"):
        run_export(pose3d, fmt="fbx", out_dir=tmp_path / "fbx", video_id="v")
    assert not (tmp_path / "fbx").exists()


def test_every_export_states_its_time_and_bvh_can_start_with_the_video(two, tmp_path):
    """A person entering at frame 10 (issue 19, item 15): timing.csv in every export folder gives
    each file's first timeline frame and time; BVH, which has no start time, starts at the
    person's first frame by default, or with bvh_start 'video' at the video's first frame, holding
    the first pose until they enter, the person's own frames unchanged."""
    pose3d, _, _ = two
    expected = {  # per format: the timeline frames of v.p3 (absent 0-9 and 20-24)
        "csv": (10, T - 1, T - 15), "json": (10, T - 1, T - 15), "trc": (10, T - 1, T - 10),
        "c3d": (10, T - 1, T - 10), "bvh": (10, T - 1, T - 10),
    }  # fmt: skip
    for fmt, (first, last, count) in expected.items():
        run_export(pose3d, fmt=fmt, out_dir=tmp_path / fmt, video_id="v")
        timing = pd.read_csv(tmp_path / fmt / "timing.csv").set_index("file")
        assert list(timing.index) == [f"v.p0.{fmt}", f"v.p3.{fmt}"]
        row = timing.loc[f"v.p3.{fmt}"]
        assert (row.first_frame, row.last_frame, row.frames) == (first, last, count), fmt
        assert row.start_time_s == pytest.approx(10 / FPS, abs=1e-6) and row.fps == pytest.approx(FPS)
        assert row.end_time_s == pytest.approx((T - 1) / FPS, abs=1e-6)
        assert timing.loc[f"v.p0.{fmt}"].first_frame == 0
    late = (tmp_path / "bvh" / "v.p3.bvh").read_text()
    (padded,) = [f for f in run_export(pose3d, fmt="bvh", out_dir=tmp_path / "bvh_video", video_id="v",
                                   settings=ExportSettings(bvh_start="video")) if f.name == "v.p3.bvh"]  # fmt: skip
    timing = pd.read_csv(tmp_path / "bvh_video" / "timing.csv").set_index("file")
    assert (timing.loc["v.p3.bvh"].first_frame, timing.loc["v.p3.bvh"].frames) == (0, T)
    assert timing.loc["v.p3.bvh"].start_time_s == 0
    hierarchy, motion = late.split("MOTION\n")
    padded_hierarchy, padded_motion = padded.read_text().split("MOTION\n")
    assert padded_hierarchy == hierarchy  # the same skeleton: padding takes no part in the rest pose
    rows, padded_rows = motion.splitlines(), padded_motion.splitlines()
    assert rows[0] == "Frames: 30" and padded_rows[0] == f"Frames: {T}" and padded_rows[1] == rows[1]
    assert padded_rows[2 + 10 :] == rows[2:]  # frame k of the file is frame k of the video
    assert padded_rows[2:12] == [rows[2]] * 10  # before entering: the first pose, held
    # The person present from frame 0 gets the same file either way.
    assert (tmp_path / "bvh_video" / "v.p0.bvh").read_text() == (tmp_path / "bvh" / "v.p0.bvh").read_text()
