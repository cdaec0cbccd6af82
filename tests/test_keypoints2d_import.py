"""Importing other tools' 2D keypoints (infer_video_d2 .npz, COCO results JSON) into keypoints2d.npz.

Also the ``keypoints2d`` command line, including its message when detectron2 is absent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posepipe import video
from posepipe.artefacts.keypoints2d import load_keypoints2d
from posepipe.errors import PosepipeError
from posepipe.keypoints2d.importers import detect_format, import_keypoints
from posepipe.testing import write_timeline

W, H, T = 64, 48, 5  # the small timeline of most tests


def _timeline(tmp: Path, *, frames: int = T, width: int = W, height: int = H) -> Path:
    """A tiny mp4 and its frames/timeline.json."""
    path = tmp / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for i in range(frames):
        writer.write(np.full((height, width, 3), 40 * i, np.uint8))
    writer.release()
    video.run_probe(path, out_json=tmp / "probe.json", out_pts=tmp / "probe_pts.npy")
    video.run_frames(
        tmp / "probe.json", tmp / "probe_pts.npy", video_id="clip",
        out_json=tmp / "frames" / "timeline.json", out_csv=tmp / "frames" / "timeline.csv",
    )  # fmt: skip
    return tmp / "frames" / "timeline.json"


def _person(rng, n: int, *, width: int = W, height: int = H):
    """n persons inside a width x height frame: boxes (n, 5) and d2 keypoints (n, 4, 17)."""
    kp = np.zeros((n, 4, 17))
    kp[:, 0] = rng.uniform(0.2 * width, 0.8 * width, (n, 17))
    kp[:, 1] = rng.uniform(0.2 * height, 0.8 * height, (n, 17))
    kp[:, 3] = rng.uniform(0.1, 1.0, (n, 17))
    boxes = np.concatenate([kp[:, 0].min(1, keepdims=True), kp[:, 1].min(1, keepdims=True),
                            kp[:, 0].max(1, keepdims=True), kp[:, 1].max(1, keepdims=True),
                            rng.uniform(0.5, 1.0, (n, 1))], axis=1)  # fmt: skip
    return boxes, kp


def _write_d2npz(path: Path, counts, *, width: int = W, height: int = H, seed: int = 0) -> Path:
    """Write the infer_video_d2 layout with ``counts[t]`` persons in frame t."""
    rng = np.random.default_rng(seed)
    boxes, keypoints = [], []
    for n in counts:
        b, k = _person(rng, n, width=width, height=height) if n else ([], [])
        boxes.append([[], b])
        keypoints.append([[], k])

    def objects(items):
        out = np.empty(len(items), dtype=object)  # what np.savez makes of ragged per-frame lists
        out[:] = items
        return out

    np.savez_compressed(
        path, boxes=objects(boxes), keypoints=objects(keypoints), segments=objects([None] * len(counts)),
        metadata={"w": width, "h": height},
    )  # fmt: skip
    return path


def _coco_entries(counts, *, width: int = W, height: int = H, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    entries = []
    for t, n in enumerate(counts):
        if not n:
            continue
        b, k = _person(rng, n, width=width, height=height)
        for i in range(n):
            kp = np.stack([k[i, 0], k[i, 1], k[i, 3]], axis=1)
            entries.append({
                "image_id": t, "category_id": 1, "score": float(b[i, 4]),
                "bbox": [b[i, 0], b[i, 1], b[i, 2] - b[i, 0], b[i, 3] - b[i, 1]],
                "keypoints": kp.ravel().tolist(),
            })  # fmt: skip
    return entries


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------------------------
# the real sample video (tests/data/media)


@pytest.fixture(scope="module")
def dance_timeline(tmp_path_factory, test_data):
    return write_timeline(test_data("media/dance.mp4"), tmp_path_factory.mktemp("dance"), video_id="dance")


def test_sample_d2npz_and_coco_agree(dance_timeline, tmp_path, main, test_data):
    d2npz, coco = test_data("media/dance.d2.npz"), test_data("media/dance.coco.json")
    out_npz, out_json = tmp_path / "from_npz.npz", tmp_path / "from_json.npz"
    base = ["keypoints2d", str(dance_timeline), "--source", "file"]
    assert main([*base, "--out", str(out_npz), "--input", str(d2npz)]) == 0
    assert main([*base, "--out", str(out_json), "--input", str(coco)]) == 0
    a, b = load_keypoints2d(out_npz), load_keypoints2d(out_json)
    assert a.num_frames == b.num_frames == 525
    assert (a.width, a.height) == (800, 480)
    assert np.all(a.counts() == 1)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    np.testing.assert_allclose(a.box_scores, b.box_scores, atol=1e-6)
    assert a.meta["format"] == "d2npz" and b.meta["format"] == "coco"
    assert len(a.meta["source_sha256"]) == 64 and a.meta["source_metadata"] == {"w": 800, "h": 480}
    # Scores are the file's probabilities, not the all-zero logit row.
    assert a.keypoints[..., 2].max() > 0.5


# ---------------------------------------------------------------------------------------------
# small files


def test_frames_without_a_person(tmp_path):
    counts = [1, 0, 2, 0, 1]
    kp = import_keypoints(_write_d2npz(tmp_path / "k.npz", counts), frame_count=T, width=W, height=H)
    assert kp.counts().tolist() == counts
    assert kp.meta["frames_with_person"] == 3 and kp.meta["persons"] == 4
    boxes, scores, keypoints = kp.frame(2)
    assert boxes.shape == (2, 4) and scores.shape == (2,) and keypoints.shape == (2, 17, 3)

    coco = import_keypoints(
        _write_json(tmp_path / "k.json", _coco_entries(counts)), frame_count=T, width=W, height=H
    )
    assert coco.counts().tolist() == counts
    np.testing.assert_allclose(coco.keypoints, kp.keypoints, atol=1e-5)
    np.testing.assert_allclose(coco.boxes, kp.boxes, atol=1e-5)


def test_d2npz_with_nobody_at_all(tmp_path):
    # With every frame empty, np.savez turns the per-frame lists into a float array (T, 2, 0).
    path = tmp_path / "empty.npz"
    np.savez_compressed(
        path, boxes=[[[], []]] * T, keypoints=[[[], []]] * T, segments=[None] * T, metadata={"w": W, "h": H}
    )
    kp = import_keypoints(path, frame_count=T, width=W, height=H)
    assert kp.counts().tolist() == [0] * T and kp.keypoints.shape == (0, 17, 3)


def test_coco_without_bbox_and_other_categories(tmp_path):
    entries = _coco_entries([1, 1, 0, 0, 0])
    del entries[0]["bbox"]
    entries.append({**entries[1], "category_id": 2})
    kp = import_keypoints(_write_json(tmp_path / "k.json", entries), frame_count=T, width=W, height=H)
    assert kp.counts().tolist() == [1, 1, 0, 0, 0]
    assert kp.meta["skipped_other_categories"] == 1
    xy = kp.keypoints[0, :, :2]
    np.testing.assert_allclose(kp.boxes[0], [*xy.min(0), *xy.max(0)], atol=1e-4)


def test_only_other_categories_is_named_as_the_cause(tmp_path):
    """A file whose detections are all of another category: the dataset2d error says so, not the
    score threshold (held-out corpus, issue 19)."""
    from posepipe.artefacts.keypoints2d import save_keypoints2d
    from posepipe.dataset2d import run_dataset2d

    entries = [{**e, "category_id": 2} for e in _coco_entries([1, 2, 1, 0, 1])]
    kp = import_keypoints(
        _write_json(tmp_path / "k.json", entries), frame_count=T, width=W, height=H, score_threshold=0.7
    )
    assert kp.meta["skipped_other_categories"] == 5 and kp.meta["persons"] == 0
    save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
    with pytest.raises(PosepipeError) as err:
        run_dataset2d(tmp_path / "keypoints2d.npz", tmp_path / "dataset2d.npz", video_id="cats")
    assert err.value.reason == (
        f"no person detected in any of the {T} frames (all 5 detections in the keypoints file are of "
        "categories other than person: only COCO category_id 1 is read)"
    )


def test_coco_dataset_dict_checks_image_size(tmp_path):
    annotations = [{k: v for k, v in e.items() if k != "score"} for e in _coco_entries([1] * T)]
    images = [{"id": t, "width": W, "height": H} for t in range(T)]
    path = _write_json(tmp_path / "gt.json", {"images": images, "annotations": annotations})
    kp = import_keypoints(path, frame_count=T, width=W, height=H)
    assert np.all(kp.box_scores == 1.0) and set(np.unique(kp.keypoints[..., 2])) <= {0.0, 1.0}
    with pytest.raises(PosepipeError, match=f"made on {W}x{H} frames, the timeline's frames are {W * 2}x{H}"):
        import_keypoints(path, frame_count=T, width=W * 2, height=H)


def test_wrong_frame_count(tmp_path):
    path = _write_d2npz(tmp_path / "k.npz", [1] * (T + 1))
    with pytest.raises(PosepipeError, match=f"k.npz: has {T + 1} frames, the timeline has {T}"):
        import_keypoints(path, frame_count=T, width=W, height=H)

    entries = _coco_entries([1] * T)
    for e in entries:
        e["image_id"] += 1  # 1-based ids
    with pytest.raises(PosepipeError, match=r"k.json: entry 4: image_id 5 is not a frame .*1-based"):
        import_keypoints(_write_json(tmp_path / "k.json", entries), frame_count=T, width=W, height=H)


def test_wrong_image_size(tmp_path):
    path = _write_d2npz(tmp_path / "k.npz", [1] * T, width=2 * W, height=2 * H)
    with pytest.raises(
        PosepipeError, match=f"made on {2 * W}x{2 * H} frames, the timeline's frames are {W}x{H}"
    ):
        import_keypoints(path, frame_count=T, width=W, height=H)

    # COCO results state no size: keypoints far outside the frames give it away.
    entries = _coco_entries([1] * T, width=4 * W, height=4 * H)
    with pytest.raises(PosepipeError, match=f"outside the timeline's {W}x{H} frames"):
        import_keypoints(_write_json(tmp_path / "k.json", entries), frame_count=T, width=W, height=H)


def test_bad_shapes(tmp_path):
    rng = np.random.default_rng(0)
    b, k = _person(rng, 1)
    obj = np.empty(T, dtype=object)
    obj[:] = [[[], k[:, :3]]] * T  # (1, 3, 17) instead of (1, 4, 17)
    boxes = np.empty(T, dtype=object)
    boxes[:] = [[[], b]] * T
    path = tmp_path / "k.npz"
    np.savez(path, boxes=boxes, keypoints=obj, metadata={"w": W, "h": H})
    with pytest.raises(PosepipeError, match=r"frame 0: keypoints must be \(1, 4, 17\)"):
        import_keypoints(path, frame_count=T, width=W, height=H)

    entries = _coco_entries([1] * T)
    entries[2]["keypoints"] = entries[2]["keypoints"][:34]
    with pytest.raises(PosepipeError, match="entry 2 .*must be 51 numbers, got 34"):
        import_keypoints(_write_json(tmp_path / "k.json", entries), frame_count=T, width=W, height=H)

    entries = _coco_entries([1] * T)
    del entries[0]["score"]
    with pytest.raises(PosepipeError, match="entry 0 .*has no 'score'"):
        import_keypoints(_write_json(tmp_path / "k.json", entries), frame_count=T, width=W, height=H)

    np.savez(tmp_path / "other.npz", positions_2d=np.zeros(3))
    with pytest.raises(PosepipeError, match="no boxes, keypoints array"):
        import_keypoints(tmp_path / "other.npz", frame_count=T, width=W, height=H)


def test_corrupt_and_unknown_files(tmp_path):
    good = _write_d2npz(tmp_path / "good.npz", [1] * T).read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(PosepipeError, match="cut.npz: cannot read as infer_video_d2 .npz"):
        import_keypoints(tmp_path / "cut.npz", frame_count=T, width=W, height=H)

    (tmp_path / "cut.json").write_text('[{"image_id": 0, "keypoints": [1, 2')
    with pytest.raises(PosepipeError, match="cut.json: cannot read as COCO keypoints JSON"):
        import_keypoints(tmp_path / "cut.json", frame_count=T, width=W, height=H)

    (tmp_path / "noise.dat").write_bytes(b"\x00\x01garbage")
    with pytest.raises(PosepipeError, match="cannot tell the format"):
        import_keypoints(tmp_path / "noise.dat", frame_count=T, width=W, height=H)

    with pytest.raises(PosepipeError, match="missing.json: keypoints file not found"):
        import_keypoints(tmp_path / "missing.json", frame_count=T, width=W, height=H)

    with pytest.raises(PosepipeError, match="cannot read as COCO keypoints JSON"):
        import_keypoints(tmp_path / "good.npz", frame_count=T, width=W, height=H, fmt="coco")


def test_format_detection_by_content(tmp_path):
    npz = _write_d2npz(tmp_path / "k.npz", [1] * T)
    npz.rename(tmp_path / "k_npz")
    _write_json(tmp_path / "k_json", _coco_entries([1] * T))
    assert detect_format(tmp_path / "k_npz") == "d2npz"
    assert detect_format(tmp_path / "k_json") == "coco"
    kp = import_keypoints(tmp_path / "k_npz", frame_count=T, width=W, height=H)
    assert kp.meta["format"] == "d2npz"


def test_cli_file_source_checks_the_timeline(tmp_path, main, capsys):
    timeline = _timeline(tmp_path)
    out = tmp_path / "keypoints2d.npz"
    good = _write_d2npz(tmp_path / "k.npz", [1, 0, 1, 1, 0])
    # Every flag the workflow's rule passes, whatever the source.
    detector_flags = [
        "--config", "COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml", "--score-threshold", "0.0",
        "--min-size", "800", "--max-size", "1333", "--no-amp", "--batch-size", "4", "--device", "auto",
    ]  # fmt: skip
    args = ["keypoints2d", str(timeline), "--out", str(out), "--source", "file", "--input", str(good)]
    assert main([*args, *detector_flags]) == 0
    kp = load_keypoints2d(out)
    assert kp.counts().tolist() == [1, 0, 1, 1, 0] and kp.meta["timeline"] == str(timeline)

    bad = _write_d2npz(tmp_path / "bad.npz", [1] * (T + 2))
    out.unlink()
    rc = main(["keypoints2d", str(timeline), "--out", str(out), "--source", "file", "--input", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1] == f"posepipe keypoints2d: error: {bad}: has {T + 2} frames, the timeline has {T}"
    assert not out.exists()


def test_missing_detectron2_gives_an_install_message(tmp_path, main, capsys, monkeypatch):
    # None in sys.modules makes "import detectron2" fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "detectron2", None)
    timeline = _timeline(tmp_path, frames=2)
    weights = tmp_path / "w.pkl"
    weights.write_bytes(b"unused")
    rc = main(["keypoints2d", str(timeline), "--out", str(tmp_path / "k.npz"), "--weights", str(weights)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("posepipe keypoints2d: error: detectron2 is not installed")
    assert (
        "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'" in err[0]
    )
    assert "conda-forge" in err[0] and "--source file" in err[0]


def test_score_threshold_drops_low_scoring_imported_persons(tmp_path):
    from posepipe.keypoints2d.importers import import_keypoints

    frames = []
    for i in range(4):
        xy = np.full((17, 2), 10.0 + i)
        kps = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1).ravel().tolist()
        frames += [
            {"image_id": i, "category_id": 1, "bbox": [5, 5, 20, 20], "score": 0.9, "keypoints": kps},
            {"image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.3, "keypoints": kps},
        ]
    path = tmp_path / "two.coco.json"
    path.write_text(json.dumps(frames))
    everyone = import_keypoints(path, frame_count=4, width=64, height=48)
    assert everyone.counts().tolist() == [2, 2, 2, 2]
    confident = import_keypoints(path, frame_count=4, width=64, height=48, score_threshold=0.5)
    assert confident.counts().tolist() == [1, 1, 1, 1]
    assert np.all(confident.box_scores >= 0.5)
    assert confident.meta["score_threshold"] == 0.5
