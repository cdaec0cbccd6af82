"""The rtmlib 2D source: RTMO and RTMPose + YOLOX through ONNX Runtime.

The published ONNX files cannot be downloaded here: the tests build small ONNX models with the
published inputs and outputs (posepipe.testing.rtmo_onnx / yolox_onnx / rtmpose_onnx, random
weights, outputs that depend on the image) and compare posepipe's keypoints with rtmlib's own
classes on the same decoded frames and the same files: equal to the bit (0 px).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")  # declared in the test extra (pyproject.toml)
pytest.importorskip("onnx")

from posepipe.artefacts.keypoints2d import from_frames, load_keypoints2d, save_keypoints2d
from posepipe.artefacts.timeline import load_timeline
from posepipe.decode import iter_frames
from posepipe.errors import PosepipeError
from posepipe.keypoints2d import rtmlib_backend as rb
from posepipe.testing import rtmo_onnx, rtmpose_onnx, write_timeline, yolox_onnx

W, H, T = 160, 120, 6


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "rtmo": rtmo_onnx(folder / "rtmo.onnx"),
        "yolox": yolox_onnx(folder / "yolox.onnx"),
        "rtmpose": rtmpose_onnx(folder / "rtmpose.onnx"),
    }


@pytest.fixture(scope="module")
def timeline(tmp_path_factory) -> Path:
    """A clip of coloured blocks on noise that move from frame to frame (the models' outputs follow)."""
    folder = tmp_path_factory.mktemp("clip")
    rng = np.random.default_rng(3)
    path = folder / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (W, H))
    for i in range(T):
        image = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
        for _ in range(4):
            x, y = rng.integers(0, W - 30), rng.integers(0, H - 40)
            image[y : y + 40, x : x + 30] = rng.integers(80, 255, 3)
        image[:, : 10 * i] = 255 - 30 * i
        writer.write(image)
    writer.release()
    return write_timeline(path, folder / "frames")


def decoded(timeline_json: Path) -> list[np.ndarray]:
    return [image for _, image in iter_frames(load_timeline(timeline_json))]


def rtmlib_quiet():
    """rtmlib's classes print a line when they load a model; import them only here."""
    return pytest.importorskip("rtmlib")


def test_rtmo_equals_rtmlib(models, timeline, capsys):
    rtmlib = rtmlib_quiet()
    kp = rb.detect_keypoints(
        timeline, model="rtmo-s", pose_onnx=models["rtmo"], score_threshold=0.5, batch_size=4
    )
    ref = rtmlib.RTMO(os.fspath(models["rtmo"]), model_input_size=(640, 640), score_thr=0.5, nms_thr=0.45)
    before_nms = 0
    for t, image in enumerate(decoded(timeline)):
        boxes, scores, points = kp.frame(t)
        keypoints, kscores = ref(image)
        if len(boxes) == 0:  # rtmlib gives one all-zero person when nobody passes
            assert not keypoints.any() and not kscores.any()
            continue
        np.testing.assert_array_equal(points[..., :2], keypoints)
        np.testing.assert_array_equal(points[..., 2], kscores)
        # The boxes are rtmlib's NMS survivors (it does not return them): recompute its NMS.
        letter, ratio = ref.preprocess(image)
        dets = ref.inference(letter)[0][0]
        before_nms += int((dets[:, 4] > 0.5).sum())
        from rtmlib.tools.object_detection.post_processings import multiclass_nms

        ref_dets, _ = multiclass_nms(dets[:, :4] / ratio, dets[:, 4:5], nms_thr=0.45, score_thr=0.5)
        np.testing.assert_array_equal(boxes, ref_dets[:, :4])
        np.testing.assert_array_equal(scores, ref_dets[:, 4])
    # Not a trivial comparison: people were found, and NMS removed some.
    assert kp.meta["persons"] >= T and before_nms > kp.meta["persons"]
    assert kp.meta["kind"] == "rtmo" and kp.meta["weights"]["pose"]["input_size"] == [640, 640]


def test_rtmpose_with_yolox_equals_rtmlib_body(models, timeline):
    rtmlib = rtmlib_quiet()
    kp = rb.detect_keypoints(
        timeline,
        model="rtmpose-m",
        pose_onnx=models["rtmpose"],
        det_onnx=models["yolox"],
        score_threshold=0.3,
    )
    # Body with explicit files runs YOLOX (score > 0.3 for end2end exports) then RTMPose per box.
    body = rtmlib.Body(
        det=os.fspath(models["yolox"]), det_input_size=(640, 640), pose=os.fspath(models["rtmpose"]),
        pose_input_size=(192, 256), backend="onnxruntime", device="cpu",
    )  # fmt: skip
    for t, image in enumerate(decoded(timeline)):
        boxes, _, points = kp.frame(t)
        np.testing.assert_array_equal(boxes, body.det_model(image))
        if len(boxes) == 0:
            continue
        keypoints, scores = body(image)
        np.testing.assert_array_equal(points[..., :2], keypoints.astype(np.float32))
        np.testing.assert_array_equal(points[..., 2], scores)
    assert kp.meta["persons"] >= T and len(np.unique(kp.keypoints[..., 0])) > 10
    assert kp.meta["kind"] == "rtmpose" and kp.meta["score_threshold"] == 0.3


def test_real_looking_rtmo_output_survives_threshold_nms_and_store(tmp_path):
    """Three people, a duplicate of each of two (NMS), a low-score one (threshold), on a 1280x720
    frame letterboxed to 640 (ratio 0.5): kept in score order, in frame pixels, through the file."""
    rng = np.random.default_rng(0)
    people = np.array([[100, 80, 180, 300, 0.92], [300, 60, 380, 310, 0.85], [500, 100, 560, 280, 0.74]])
    dupes = people[:2] + [[4, -3, 6, 2, 0]] - [[0, 0, 0, 0, 0.1]]  # IoU ~0.9 with the originals
    low = np.array([[20, 20, 60, 120, 0.4]])
    dets = np.concatenate([dupes[:1], people, low, dupes[1:]]).astype(np.float32)
    points = np.zeros((len(dets), 17, 3), np.float32)
    for i, (x1, y1, x2, y2, _) in enumerate(dets):
        points[i, :, 0] = rng.uniform(x1, x2, 17)
        points[i, :, 1] = rng.uniform(y1, y2, 17)
        points[i, :, 2] = rng.uniform(0.2, 1.0, 17)
    boxes, scores, kps = rb.rtmo_persons(dets, points, 0.5, score_threshold=0.7, nms_threshold=0.45)
    np.testing.assert_array_equal(scores, people[:, 4].astype(np.float32))
    np.testing.assert_array_equal(boxes, people[:, :4].astype(np.float32) / 0.5)
    np.testing.assert_array_equal(kps[..., :2], points[1:4, :, :2] / 0.5)
    np.testing.assert_array_equal(kps[..., 2], points[1:4, :, 2])
    kp = from_frames([(boxes, scores, kps), rb.rtmo_persons(dets[4:5], points[4:5], 0.5, score_threshold=0.7,
                                                            nms_threshold=0.45)], width=1280, height=720)  # fmt: skip
    save_keypoints2d(tmp_path / "k.npz", kp)
    back = load_keypoints2d(tmp_path / "k.npz")
    assert back.counts().tolist() == [3, 0]
    np.testing.assert_array_equal(back.keypoints, kps)


def test_dynamic_batch_runs_frames_together(models, timeline, tmp_path):
    """A model with a symbolic batch dimension runs several frames per call; the persons are those
    of one frame at a time (floating-point sums may differ in the last bits)."""
    dynamic = rtmo_onnx(tmp_path / "rtmo_dyn.onnx", batch="batch")
    one = rb.detect_keypoints(
        timeline, model="rtmo-s", pose_onnx=models["rtmo"], score_threshold=0.5, batch_size=1
    )
    many = rb.detect_keypoints(timeline, model="rtmo-s", pose_onnx=dynamic, score_threshold=0.5, batch_size=4)
    assert rb.open_network(dynamic, default_size=(640, 640)).dynamic_batch
    assert many.counts().tolist() == one.counts().tolist()
    np.testing.assert_allclose(many.keypoints, one.keypoints, atol=1e-3)


def test_bad_models_name_the_file(models, timeline, tmp_path):
    with pytest.raises(PosepipeError, match="ONNX model not found"):
        rb.detect_keypoints(timeline, model="rtmo-s", pose_onnx=tmp_path / "absent.onnx")
    with pytest.raises(PosepipeError, match=r"yolox.onnx: outputs .* not RTMO's published layout"):
        rb.detect_keypoints(timeline, model="rtmo-s", pose_onnx=models["yolox"])
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PosepipeError, match="junk.onnx: not a usable ONNX model"):
        rb.detect_keypoints(timeline, model="rtmo-s", pose_onnx=tmp_path / "junk.onnx")
    with pytest.raises(PosepipeError, match="CUDA execution provider"):
        rb.detect_keypoints(timeline, model="rtmo-s", pose_onnx=models["rtmo"], device="cuda")
    with pytest.raises(PosepipeError, match="unknown rtmlib model"):
        rb.detect_keypoints(timeline, model="rtmo-xl", pose_onnx=models["rtmo"])


def test_published_archive_is_downloaded_checked_and_extracted(models, tmp_path, monkeypatch):
    from posepipe import weights

    archive = tmp_path / "mirror" / weights.PUBLISHED["rtmlib_rtmo-s"].filename
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(models["rtmo"], "rtmo-s_export/end2end.onnx")
        zf.writestr("rtmo-s_export/pipeline.json", "{}")
    cache = tmp_path / "models"
    out = weights.fetch_member("rtmlib_rtmo-s", models_dir=cache, url=archive.as_uri())
    assert out == cache / "rtmo-s_8xb32-600e_body7-640x640-dac2bf74_20231211.onnx"
    assert out.read_bytes() == models["rtmo"].read_bytes()
    recorded = weights.read_sidecar(cache / archive.name)  # computed at the first download
    assert recorded == weights.sha256_file(archive)
    # Present: used without the network (the mirror is gone).
    archive.unlink()
    assert weights.fetch_member("rtmlib_rtmo-s", models_dir=cache, url=archive.as_uri()) == out
    # Offline: one message naming the URL, the archive and where the ONNX may go instead.
    with pytest.raises(PosepipeError) as err:
        weights.fetch_member("rtmlib_rtmo-m", models_dir=cache, url=(tmp_path / "nowhere.zip").as_uri())
    text = str(err.value)
    assert "could not download" in text and "nowhere.zip" in text
    assert "rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211.onnx" in text and "end2end.onnx" in text
    assert weights.PUBLISHED["rtmlib_rtmo-m"].hash_prefix == "39e78cc4"


def test_cli_writes_keypoints_that_tracks_and_dataset2d_read(models, timeline, tmp_path):
    from posepipe.dataset2d import run_dataset2d
    from posepipe.tracks import TrackParams, run_tracks

    out = tmp_path / "keypoints2d.npz"
    cmd = [sys.executable, "-m", "posepipe", "keypoints2d", os.fspath(timeline), "--out", os.fspath(out),
           "--source", "rtmlib", "--rtmlib-model", "rtmo-s", "--weights", os.fspath(models["rtmo"]),
           "--score-threshold", "0.5", "--threads", "1"]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(rb.__file__).parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    kp = load_keypoints2d(out)
    assert kp.num_frames == T and kp.meta["detector"] == "rtmlib rtmo-s" and kp.meta["persons"] > 0
    assert kp.meta["weights"]["pose"]["sha256"] and kp.meta["timings"]["network"] > 0
    run_tracks(out, tmp_path / "tracks.npz", fps=25.0, params=TrackParams(min_track_frames=1))
    persons = run_dataset2d(out, tmp_path / "dataset2d.npz", video_id="clip")
    assert persons and (tmp_path / "dataset2d.npz").is_file()
    # A missing model: one line naming it, status 1.
    cmd[cmd.index("--weights") + 1] = os.fspath(tmp_path / "absent.onnx")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 1 and "absent.onnx: ONNX model not found" in done.stderr
    assert json.loads(json.dumps(kp.meta))["timings"]["frames_per_second"] > 0


@pytest.mark.workflow
def test_workflow_with_rtmlib_source(tmp_path):
    """The workflow with ``keypoints2d.source: rtmlib`` and a local test ONNX runs to pose3d.npz;
    switching the source from file to rtmlib re-runs keypoints2d and what follows only."""
    from posepipe.artefacts.keypoints2d import load_keypoints2d as load
    from posepipe.testing import add_video, random_checkpoint
    from tests.snakemake_run import planned_jobs, snakemake

    add_video(tmp_path, "alpha", frames=8, width=96, height=64)
    random_checkpoint(tmp_path / "lifter.bin")
    rtmo_onnx(tmp_path / "rtmo.onnx", persons=6)
    target = "results/alpha/pose3d.npz"
    config = {
        "input": {"directory": "videos"},
        "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": "lifter.bin"},
    }
    snakemake(tmp_path, "--cores", "2", target, config=config)
    switched = {
        **config,
        "keypoints2d": {
            "source": "rtmlib",
            "score_threshold": 0.05,
            "rtmlib": {"model": "rtmo-s", "onnx": "rtmo.onnx"},
        },
    }
    planned = {rule for rule, _ in planned_jobs(tmp_path, target, config=switched)}
    assert planned == {"keypoints2d", "dataset2d", "lift3d"}
    snakemake(tmp_path, "--cores", "2", target, config=switched)
    kp = load(tmp_path / "results/alpha/keypoints2d.npz")
    assert kp.meta["detector"] == "rtmlib rtmo-s" and kp.num_frames == 8 and kp.meta["persons"] > 0
    assert (tmp_path / target).is_file()
    assert planned_jobs(tmp_path, target, config=switched) == set()
