"""Importing OpenPose per-frame JSON folders (BODY_25, COCO-18) and MMPose prediction JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posepipe.artefacts.keypoints2d import load_keypoints2d
from posepipe.errors import PosepipeError
from posepipe.keypoints2d.importers import OPENPOSE_TO_COCO, detect_format, import_keypoints, run_import
from posepipe.testing import write_indexed_video, write_timeline

W, H, T = 64, 48, 5


def coco_person(rng, *, unseen: int | None = None) -> np.ndarray:
    """(17, 3) x, y, confidence inside the frame; joint ``unseen`` undetected (0, 0, 0)."""
    kp = np.concatenate(
        [rng.uniform([8, 6], [56, 42], (17, 2)), rng.uniform(0.3, 1.0, (17, 1))], axis=1
    ).round(3)
    if unseen is not None:
        kp[unseen] = 0
    return kp


def to_openpose(kp: np.ndarray, points: int, rng) -> list[float]:
    """Embed COCO-17 joints in an OpenPose layout of ``points`` points (the others random)."""
    full = np.concatenate(
        [rng.uniform([8, 6], [56, 42], (points, 2)), rng.uniform(0.3, 1.0, (points, 1))], axis=1
    )
    full[OPENPOSE_TO_COCO[points]] = kp
    return full.ravel().tolist()


def write_openpose(folder: Path, frames: dict[int, list[np.ndarray]], points: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for t, people in frames.items():
        body = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": to_openpose(p, points, rng),
                                            "face_keypoints_2d": []} for p in people]}  # fmt: skip
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(body))
    return folder


@pytest.fixture(scope="module")
def timeline(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    return write_timeline(
        write_indexed_video(folder / "clip.mp4", width=W, height=H, frames=T), folder / "frames"
    )


@pytest.mark.parametrize("points", [25, 18])
def test_openpose_folder_maps_to_coco17(tmp_path, points):
    rng = np.random.default_rng(points)
    truth = {
        0: [coco_person(rng), coco_person(rng, unseen=3)],
        1: [coco_person(rng)],
        2: [],
        4: [coco_person(rng)],
    }
    folder = write_openpose(tmp_path / "op", truth, points)  # frame 3 has no file
    assert detect_format(folder) == "openpose"
    kp = import_keypoints(folder, frame_count=T, width=W, height=H)
    assert kp.counts().tolist() == [2, 1, 0, 0, 1]
    assert kp.meta["format"] == "openpose" and kp.meta["layout"] == {25: "BODY_25", 18: "COCO-18"}[points]
    assert kp.meta["missing_frame_files"] == {"count": 1, "first": [3]}
    for t, people in truth.items():
        boxes, scores, keypoints = kp.frame(t)
        for p, person in enumerate(people):
            np.testing.assert_allclose(keypoints[p], person, atol=1e-5)
            seen = person[person[:, 2] > 0]
            np.testing.assert_allclose(boxes[p], [*seen[:, :2].min(0), *seen[:, :2].max(0)], atol=1e-4)
            np.testing.assert_allclose(scores[p], seen[:, 2].mean(), atol=1e-6)


def test_openpose_problems_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    folder = write_openpose(tmp_path / "op", {0: [coco_person(rng)], 1: []}, 25)
    (folder / "clip_000000000002_keypoints.json").write_text('{"people": [')
    with pytest.raises(
        PosepipeError, match=r"clip_000000000002_keypoints.json: not an OpenPose keypoints file"
    ):
        import_keypoints(folder, frame_count=T, width=W, height=H)
    (folder / "clip_000000000002_keypoints.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}]})
    )
    with pytest.raises(PosepipeError, match="person 0: pose_keypoints_2d has 3 numbers"):
        import_keypoints(folder, frame_count=T, width=W, height=H)
    (folder / "clip_000000000002_keypoints.json").unlink()
    write_openpose(folder, {T: []}, 25)
    with pytest.raises(
        PosepipeError, match=f"clip_{T:012d}_keypoints.json: is frame {T}; the timeline has {T} frames"
    ):
        import_keypoints(folder, frame_count=T, width=W, height=H)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PosepipeError, match="no OpenPose files"):
        import_keypoints(empty, frame_count=T, width=W, height=H)
    nan = write_openpose(tmp_path / "nan", {0: [coco_person(rng)]}, 18)
    body = json.loads((nan / "clip_000000000000_keypoints.json").read_text())
    body["people"][0]["pose_keypoints_2d"][0] = float("nan")
    (nan / "clip_000000000000_keypoints.json").write_text(json.dumps(body))
    with pytest.raises(PosepipeError, match="NaN or infinite"):
        import_keypoints(nan, frame_count=T, width=W, height=H)


def mmpose_instance(kp: np.ndarray, *, box=True, score=0.9) -> dict:
    inst = {"keypoints": kp[:, :2].tolist(), "keypoint_scores": kp[:, 2].tolist()}
    if box:
        inst["bbox"] = [[*(kp[:, :2].min(0) - 1), *(kp[:, :2].max(0) + 1)]]
        inst["bbox_score"] = score
    return inst


def test_mmpose_instance_info_and_predictions(tmp_path, timeline):
    rng = np.random.default_rng(5)
    people = [[coco_person(rng), coco_person(rng)], [], [coco_person(rng)], [coco_person(rng)], []]
    demo = {"meta_info": {"dataset_name": "coco"}, "instance_info": [
        {"frame_id": t + 1, "instances": [mmpose_instance(p, box=(t != 3)) for p in ps]} for t, ps in enumerate(people)
    ]}  # fmt: skip
    (tmp_path / "demo.json").write_text(json.dumps(demo))
    assert detect_format(tmp_path / "demo.json") == "mmpose"
    kp = import_keypoints(tmp_path / "demo.json", frame_count=T, width=W, height=H)
    assert kp.counts().tolist() == [2, 0, 1, 1, 0] and kp.meta["layout"] == "instance_info (frame_id from 1)"
    np.testing.assert_allclose(kp.frame(0)[2][1], people[0][1], atol=1e-5)
    np.testing.assert_allclose(
        kp.frame(2)[0][0], [*(people[2][0][:, :2].min(0) - 1), *(people[2][0][:, :2].max(0) + 1)], atol=1e-4
    )
    np.testing.assert_allclose(kp.frame(3)[1], [people[3][0][:, 2].mean()], atol=1e-6)  # no bbox_score: mean
    # The inferencer's results, one per frame, each a batch of one image.
    results = [{"predictions": [[mmpose_instance(p) for p in ps]]} for ps in people]
    (tmp_path / "inferencer.json").write_text(json.dumps(results))
    out = run_import(
        tmp_path / "inferencer.json", timeline_json=timeline, out=tmp_path / "k.npz", score_threshold=0.5
    )
    back = load_keypoints2d(tmp_path / "k.npz")
    assert back.counts().tolist() == [2, 0, 1, 1, 0] and out.meta["format"] == "mmpose"
    np.testing.assert_allclose(back.keypoints, np.stack([p for ps in people for p in ps]), atol=1e-5)


def test_mmpose_problems(tmp_path):
    rng = np.random.default_rng(6)
    (tmp_path / "short.json").write_text(
        json.dumps({"predictions": [[mmpose_instance(coco_person(rng))]] * (T - 1)})
    )
    with pytest.raises(PosepipeError, match=f"short.json: has {T - 1} frames, the timeline has {T}"):
        import_keypoints(tmp_path / "short.json", frame_count=T, width=W, height=H)
    bad = {"predictions": [[]] * T}
    bad["predictions"][2] = [{"keypoints": [[1, 2]] * 16, "keypoint_scores": [0.5] * 16}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(PosepipeError, match="bad.json: frame 2, instance 0: keypoints must be 17"):
        import_keypoints(tmp_path / "bad.json", frame_count=T, width=W, height=H)
    gaps = {"instance_info": [{"frame_id": t, "instances": []} for t in (0, 1, 3, 4, 5)]}
    (tmp_path / "gaps.json").write_text(json.dumps(gaps))
    with pytest.raises(PosepipeError, match="frame_ids must count"):
        import_keypoints(tmp_path / "gaps.json", frame_count=T, width=W, height=H)
    far = {"predictions": [[mmpose_instance(coco_person(rng) * [50, 50, 1])] for _ in range(T)]}
    (tmp_path / "far.json").write_text(json.dumps(far))
    with pytest.raises(PosepipeError, match="far.json: a point lies at"):
        import_keypoints(tmp_path / "far.json", frame_count=T, width=W, height=H)


def test_malformed_mmpose_file_is_one_line(tmp_path):
    (tmp_path / "broken.json").write_text('{"instance_info": [')
    with pytest.raises(PosepipeError, match=r"broken.json: cannot read as MMPose JSON \(JSONDecodeError"):
        import_keypoints(tmp_path / "broken.json", frame_count=T, width=W, height=H, fmt="mmpose")
    with pytest.raises(PosepipeError, match=r"broken.json: cannot read as COCO keypoints JSON"):
        import_keypoints(tmp_path / "broken.json", frame_count=T, width=W, height=H)  # auto: unknown JSON
