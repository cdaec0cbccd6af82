"""detectron2 backend: batched inference equals DefaultPredictor; weights that do not fit are refused.

Runs where detectron2 is installed (``pytest -m detectron2``). No published weights are needed:
a Keypoint R-CNN from the R_50 zoo config gets random weights that still detect a fixed number of
"persons" (see ``posepipe.testing.make_random_weights``), saved in detectron2's .pkl format and loaded through the
backend's own loading path. Input sizes are small to keep CPU time low.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("detectron2")

from posepipe import decode  # noqa: E402 (after the skip: nothing below runs without detectron2)
from posepipe.artefacts.keypoints2d import load_keypoints2d  # noqa: E402
from posepipe.artefacts.timeline import load_timeline  # noqa: E402
from posepipe.errors import PosepipeError  # noqa: E402
from posepipe.keypoints2d import detectron2_backend as backend  # noqa: E402
from posepipe.testing import make_random_weights, write_timeline  # noqa: E402
from posepipe.weights import sha256_file  # noqa: E402

pytestmark = [
    pytest.mark.detectron2,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"),
]

CONFIG = "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"
SIZES = {"min_size": 128, "max_size": 224}
DETECTIONS = 3
W, H, FRAMES = 224, 160, 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict:
    """A 6-frame synthetic video, its timeline, and random weights that detect 3 boxes per frame."""
    tmp = tmp_path_factory.mktemp("d2")
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (7, 7), 0)
    writer = cv2.VideoWriter(str(tmp / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (W, H))
    for i in range(FRAMES):
        frame = background.copy()
        cv2.rectangle(frame, (20 + 10 * i, 30), (80 + 10 * i, 140), (30, 200, 60), -1)
        cv2.circle(frame, (150, 60 + 5 * i), 20, (220, 40, 40), -1)
        writer.write(frame)
    writer.release()
    timeline = load_timeline(write_timeline(tmp / "clip.mp4", tmp, video_id="clip"))
    images = [image for _, image in decode.iter_frames(timeline)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = backend.build_cfg(CONFIG, device="cpu", detections_per_image=DETECTIONS, **SIZES)
        weights = make_random_weights(cfg, images=images[:3], out=tmp / "random.pkl")
    return {"tmp": tmp, "timeline": tmp / "timeline.json", "images": images, "weights": weights}


def test_batched_cli_output_equals_default_predictor(clip, main, tmp_path, caplog):
    from detectron2.engine import DefaultPredictor

    caplog.set_level(logging.INFO, logger="posepipe.keypoints2d.detectron2_backend")

    out = tmp_path / "keypoints2d.npz"
    args = [
        "keypoints2d", str(clip["timeline"]), "--out", str(out), "--source", "detectron2", "--config", CONFIG,
        "--weights", str(clip["weights"]), "--batch-size", "4", "--device", "cpu", "--score-threshold", "0.5",
        "--detections-per-image", str(DETECTIONS), "--min-size", str(SIZES["min_size"]),
        "--max-size", str(SIZES["max_size"]), "--no-amp",
    ]  # fmt: skip
    assert main(args) == 0  # 6 frames in batches of 4 and 2
    kp = load_keypoints2d(out)
    assert kp.num_frames == FRAMES and (kp.width, kp.height) == (W, H)
    assert kp.counts().tolist() == [DETECTIONS] * FRAMES
    assert f"clip: {FRAMES}/{FRAMES} frames (100%)" in caplog.text and "frames/s" in caplog.text

    cfg = backend.build_cfg(
        CONFIG, weights=clip["weights"], device="cpu", detections_per_image=DETECTIONS, **SIZES
    )
    predictor = DefaultPredictor(cfg)
    for t, image in enumerate(clip["images"]):
        expected = predictor(image)["instances"]
        boxes, scores, keypoints = kp.frame(t)
        np.testing.assert_allclose(boxes, expected.pred_boxes.tensor.numpy(), atol=1e-2)
        np.testing.assert_allclose(scores, expected.scores.numpy(), atol=1e-4)
        np.testing.assert_allclose(keypoints[..., :2], expected.pred_keypoints.numpy()[..., :2], atol=1e-2)
        np.testing.assert_allclose(keypoints[..., 2], expected.pred_keypoints.numpy()[..., 2], atol=1e-4)
    assert np.all((kp.keypoints[..., 2] > 0) & (kp.keypoints[..., 2] <= 1.0 + 1e-6))

    meta = kp.meta
    assert meta["weights_sha256"] == meta["weights"]["sha256"] == sha256_file(clip["weights"])
    assert meta["weights"]["path"] == str(clip["weights"])
    assert meta["config"] == CONFIG and meta["device"] == "cpu" and meta["batch_size"] == 4
    assert meta["score_threshold"] == 0.5 and meta["min_size_test"] == SIZES["min_size"]
    assert meta["image_size"] == [W, H] and meta["frame_count"] == FRAMES
    assert meta["timings"]["frames_per_second"] > 0 and meta["versions"]["detectron2"]


def test_shards_of_the_timeline_join_to_the_unsharded_arrays(clip):
    """keypoints2d per frame range (decoding seeks to each) joins to exactly the whole-timeline run
    when the ranges start at multiples of the batch size (posepipe.shards: align)."""
    from posepipe.artefacts.keypoints2d import join_ranges
    from posepipe.shards import plan_ranges

    options = dict(config=CONFIG, weights=clip["weights"], batch_size=2, device="cpu",
                   detections_per_image=DETECTIONS, **SIZES)  # fmt: skip
    whole = backend.detect_keypoints(clip["timeline"], **options)
    ranges = plan_ranges(FRAMES, 3, align=2)  # 3 frames a shard, rounded up to the batch of 2
    assert ranges == [(0, 4), (4, 6)]
    parts = [backend.detect_keypoints(clip["timeline"], frame_range=r, **options) for r in ranges]
    joined = join_ranges(parts[::-1], frame_count=FRAMES)
    for name in ("frame_offsets", "boxes", "box_scores", "keypoints"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))


def test_frames_without_person_are_empty(clip):
    # The random model's person scores are about 0.997: a stricter threshold leaves every frame empty.
    kp = backend.detect_keypoints(
        clip["timeline"], config=CONFIG, weights=clip["weights"], batch_size=3, device="cpu",
        score_threshold=0.9999, detections_per_image=DETECTIONS, **SIZES,
    )  # fmt: skip
    assert kp.num_frames == FRAMES and kp.counts().tolist() == [0] * FRAMES
    assert kp.keypoints.shape == (0, 17, 3) and kp.meta["frames_with_person"] == 0


def test_decoding_error_in_the_reader_thread_reaches_the_caller(clip, monkeypatch):
    real_iter_frames = decode.iter_frames  # the decoder the backend's reader thread calls

    def failing(timeline, **kwargs):
        for t, image in real_iter_frames(timeline, **kwargs):
            if t == 3:
                raise PosepipeError(timeline.source, "decoding failed at timeline frame 3: simulated")
            yield t, image

    monkeypatch.setattr(decode, "iter_frames", failing)
    with pytest.raises(PosepipeError, match="clip.mp4: decoding failed at timeline frame 3: simulated"):
        backend.detect_keypoints(
            clip["timeline"], config=CONFIG, weights=clip["weights"], batch_size=2, device="cpu",
            detections_per_image=DETECTIONS, **SIZES,
        )  # fmt: skip


def _tampered(clip, name: str, change) -> Path:
    with open(clip["weights"], "rb") as fh:
        data = pickle.load(fh)
    change(data["model"])
    path = clip["tmp"] / name
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    return path


def test_weights_that_do_not_fit_are_refused(clip):
    def break_it(state):
        del state["roi_heads.keypoint_head.score_lowres.weight"]
        state["roi_heads.box_predictor.cls_score.weight"] = np.zeros((81, 1024), np.float32)
        state["roi_heads.mask_head.predictor.weight"] = np.zeros((80, 256, 1, 1), np.float32)

    path = _tampered(clip, "broken.pkl", break_it)
    with pytest.raises(PosepipeError) as info:
        backend.build_detector(CONFIG, weights=path, device="cpu", **SIZES)
    message = str(info.value)
    assert message.startswith(f"{path}: weights do not fit the model of {CONFIG}")
    assert (
        "missing from the file, would be random (1): roi_heads.keypoint_head.score_lowres.weight" in message
    )
    assert "not in the model, would be ignored (1): roi_heads.mask_head.predictor.weight" in message
    assert "roi_heads.box_predictor.cls_score.weight file (81, 1024) vs model (2, 1024)" in message


def test_unreadable_or_missing_weights(clip):
    bad = clip["tmp"] / "corrupt.pkl"
    bad.write_bytes(clip["weights"].read_bytes()[:1000])
    with pytest.raises(PosepipeError, match="corrupt.pkl: cannot read as detectron2 weights"):
        backend.build_detector(CONFIG, weights=bad, device="cpu")
    with pytest.raises(PosepipeError, match="download --name keypoint_rcnn_R_50_FPN_3x"):
        backend.build_detector(CONFIG, weights=clip["tmp"] / "absent.pkl", device="cpu")


def test_bad_config_and_device():
    with pytest.raises(PosepipeError, match="neither a local .yaml file nor a detectron2 model-zoo config"):
        backend.build_cfg("COCO-Keypoints/nope.yaml")
    with pytest.raises(PosepipeError, match="not a 17-joint COCO keypoint model"):
        backend.build_cfg("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
    with pytest.raises(PosepipeError, match="unknown device"):
        backend.resolve_device("tpu:banana")
