"""dataset2d: person selection, gap filling, the VideoPose3D custom format, merging, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from posepipe import dataset2d
from posepipe.artefacts.dataset2d import load_dataset2d, subject_name
from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
from posepipe.dataset2d import (
    build_dataset2d,
    interpolate_missing,
    merge_dataset2d,
    run_dataset2d,
    select_person,
)
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS

W, H = 640, 360


def person(x: float, *, score: float = 0.9, size: float = 50.0, kp_score: float = 0.8):
    """(box (4,), box score, keypoints (17, 3)) of a person whose joints all sit at x + joint index."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0] = x + np.arange(17)
    kp[:, 1] = 2 * x + np.arange(17)
    kp[:, 2] = kp_score
    return np.array([x, x, x + size, x + 2 * size], np.float32), score, kp


def frame(*persons):
    if not persons:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3))
    boxes, scores, kps = zip(*persons, strict=True)
    return np.stack(boxes), np.array(scores), np.stack(kps)


def test_selection_highest_score_and_largest_box():
    kp = from_frames(
        [
            frame(person(10, score=0.5, size=90), person(100, score=0.9, size=20)),
            frame(),
            frame(person(30, score=0.7, size=10)),
            frame(person(40, score=0.8), person(50, score=0.8)),  # tie: first row wins
        ],
        width=W,
        height=H,
    )
    assert select_person(kp, selection="highest_score").tolist() == [1, -1, 2, 3]
    assert select_person(kp, selection="largest_box").tolist() == [0, -1, 2, 3]
    with pytest.raises(ValueError, match="selection"):
        select_person(kp, selection="nearest")


def test_interpolation_and_held_edges():
    kp = from_frames(
        [frame(), frame(), frame(person(10)), frame(), frame(), frame(person(40)), frame(), frame()],
        width=W,
        height=H,
    )
    ds = build_dataset2d(kp, name="v.mp4")
    x = ds.keypoints[:, 0, 0]
    np.testing.assert_allclose(x, [10, 10, 10, 20, 30, 40, 40, 40])
    np.testing.assert_allclose(ds.keypoints[:, 16, 1], 2 * x + 16)
    assert ds.keypoints.dtype == np.float32 and ds.keypoints.shape == (8, 17, 2)
    assert ds.detected.tolist() == [False, False, True, False, False, True, False, False]
    np.testing.assert_array_equal(ds.scores[~ds.detected], 0)
    np.testing.assert_allclose(ds.scores[ds.detected], 0.8)
    assert ds.box_scores.tolist() == pytest.approx([0, 0, 0.9, 0, 0, 0.9, 0, 0])
    np.testing.assert_allclose(ds.boxes[3], [20, 20, 70, 120])
    assert ds.meta["detected_frames"] == 2 and ds.meta["interpolated_frames"] == 6


def test_interpolate_missing_keeps_known_rows():
    values = np.array([[1.0], [np.nan], [3.0], [np.nan]], np.float32)
    out = interpolate_missing(values, np.array([True, False, True, False]))
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3, 3])


def test_no_detection_raises_naming_the_file(tmp_path):
    path = tmp_path / "keypoints2d.npz"
    save_keypoints2d(path, from_frames([frame(), frame(), frame()], width=W, height=H))
    with pytest.raises(PosepipeError, match="no person detected") as err:
        run_dataset2d(path, tmp_path / "dataset2d.npz", video_id="empty")
    assert err.value.path == str(path) and str(path) in str(err.value)
    assert not (tmp_path / "dataset2d.npz").exists()


def _make(tmp_path, video_id: str, n: int = 6):
    src = tmp_path / f"{video_id}.keypoints2d.npz"
    frames = [frame(person(10 + t)) if t % 3 else frame() for t in range(n)]
    save_keypoints2d(src, from_frames(frames, width=W, height=H, meta={"detector": "test"}))
    out = tmp_path / video_id / "dataset2d.npz"
    (ds,) = run_dataset2d(src, out, video_id=video_id)
    return ds, out


def test_file_has_upstream_structure(tmp_path):
    ds, out = _make(tmp_path, "walk")
    assert subject_name("walk") == ds.name == "walk.mp4"
    # What upstream run.py / CustomDataset read, done their way:
    data = np.load(out, allow_pickle=True)
    metadata = data["metadata"].item()
    assert metadata == {
        "layout_name": "coco",
        "num_joints": 17,
        "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
        "video_metadata": {"walk.mp4": {"w": W, "h": H}},
    }
    kps_left, kps_right = list(metadata["keypoints_symmetry"][0]), list(metadata["keypoints_symmetry"][1])
    assert len(kps_left) == len(kps_right) == 8
    positions = data["positions_2d"].item()
    assert list(positions) == list(metadata["video_metadata"]) == ["walk.mp4"]
    for video_name, res in metadata["video_metadata"].items():
        assert isinstance(res["w"], int) and isinstance(res["h"], int)
        for action in positions[video_name]:
            assert action == "custom"
            for cam_idx, kps in enumerate(positions[video_name][action]):
                assert cam_idx == 0 and kps.dtype == np.float32 and kps.shape == (6, 17, 2)
                kps[..., :2] = kps[..., :2] / res["w"] * 2 - [
                    1,
                    res["h"] / res["w"],
                ]  # upstream normalises in place
    # Our extras beside them.
    assert data["detected"].dtype == bool and data["detected"].tolist() == [
        False,
        True,
        True,
        False,
        True,
        True,
    ]
    assert data["scores"].shape == (6, 17) and data["scores"].dtype == np.float32
    assert data["box_scores"].shape == (6,) and data["boxes"].shape == (6, 4)
    meta = json.loads(str(data["meta"]))
    assert meta["selection"] == "highest_score" and meta["video_id"] == "walk"
    assert meta["stage"] == "dataset2d" and meta["stage_version"] == STAGE_VERSIONS["dataset2d"]
    assert meta["source"].endswith("walk.keypoints2d.npz") and meta["keypoints2d_meta"] == {
        "detector": "test",
        "stage": "keypoints2d",
        "stage_version": STAGE_VERSIONS["keypoints2d"],
    }

    back = load_dataset2d(out)
    np.testing.assert_array_equal(back.keypoints, ds.keypoints)
    np.testing.assert_array_equal(back.detected, ds.detected)
    assert (back.width, back.height, back.name) == (W, H, "walk.mp4")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # atomic write left nothing


def test_merge(tmp_path):
    a, a_path = _make(tmp_path, "a", n=5)
    b, b_path = _make(tmp_path, "b", n=7)
    merged = tmp_path / "dataset2d_custom.npz"
    assert merge_dataset2d([a_path, b_path], merged) == ["a.mp4", "b.mp4"]
    data = np.load(merged, allow_pickle=True)
    positions, metadata = data["positions_2d"].item(), data["metadata"].item()
    assert sorted(positions) == sorted(metadata["video_metadata"]) == ["a.mp4", "b.mp4"]
    assert metadata["video_metadata"]["b.mp4"] == {"w": W, "h": H}
    assert positions["b.mp4"]["custom"][0].shape == (7, 17, 2)
    np.testing.assert_array_equal(load_dataset2d(merged, subject="a.mp4").keypoints, a.keypoints)
    with pytest.raises(PosepipeError, match="2 subjects"):
        load_dataset2d(merged)
    with pytest.raises(PosepipeError, match="already comes from"):
        merge_dataset2d([a_path, a_path], tmp_path / "dup.npz")


def test_cli(tmp_path):
    src = tmp_path / "keypoints2d.npz"
    save_keypoints2d(src, from_frames([frame(person(1), person(5, score=0.95, size=1))], width=W, height=H))
    parser = argparse.ArgumentParser()
    dataset2d.register_cli(parser.add_subparsers())
    out = tmp_path / "v1" / "dataset2d.npz"
    args = parser.parse_args(
        ["dataset2d", str(src), "--out", str(out), "--video-id", "v1", "--selection", "largest_box"]
    )
    args.handler(args)
    ds = load_dataset2d(out)
    assert ds.keypoints[0, 0, 0] == 1 and ds.meta["selection"] == "largest_box"
    merged = tmp_path / "dataset2d_custom.npz"
    args = parser.parse_args(["merge-dataset2d", str(out), "--out", str(merged)])
    args.handler(args)
    assert load_dataset2d(merged).name == "v1.mp4"


def test_unreadable_file(tmp_path):
    bad = tmp_path / "dataset2d.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PosepipeError) as err:
        load_dataset2d(bad)
    assert str(bad) in str(err.value)


def test_a_joint_score_threshold_above_most_scores_is_warned_about(tmp_path, caplog):
    """dataset2d.joint_score_threshold removing more than half of the detected joints: a warning
    in the stage's log and in the file's meta, which summary.csv shows (issue 19, item 5)."""
    from posepipe.dataset2d import MAX_BELOW_THRESHOLD_SHARE, Dataset2DSettings
    from posepipe.summary import collect_warnings

    assert MAX_BELOW_THRESHOLD_SHARE == 0.5
    src = tmp_path / "keypoints2d.npz"
    frames = [frame(person(10 + t, kp_score=0.8)) for t in range(6)]
    frames[2][2][0, :5, 2] = 0.95  # joints 0-4 confident in frame 2 only: refillable in the others
    save_keypoints2d(src, from_frames(frames, width=W, height=H))
    folder = tmp_path / "v"
    (ds,) = run_dataset2d(
        src, folder / "dataset2d.npz", video_id="v", settings=Dataset2DSettings(joint_score_threshold=0.9)
    )
    report = ds.meta["conditioning"]
    assert (report["joints_detected"], report["joints_below_threshold"]) == (6 * 17, 6 * 17 - 5)
    assert (report["joints_refilled"], report["joints_never_confident"]) == (5 * 5, 12 * 6)
    expected = (
        "dataset2d.joint_score_threshold 0.9 is above the score of 95% of the detected joints (97 of 102; "
        "more than 50%): 25 refilled by interpolation, 72 never confident in their segment kept as detected"
    )
    assert load_dataset2d(folder / "dataset2d.npz").meta["warnings"] == [expected]
    assert expected in caplog.text
    assert collect_warnings(folder) == ([expected], [])
    # At half or less: no warning, and no "warnings" key (as without a threshold).
    (ds,) = run_dataset2d(
        src, folder / "dataset2d.npz", video_id="v", settings=Dataset2DSettings(joint_score_threshold=0.5)
    )
    assert ds.meta["conditioning"]["joints_below_threshold"] == 0 and "warnings" not in ds.meta
    assert collect_warnings(folder) == ([], [])
