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


def test_sessions_use_the_given_threads_and_do_not_spin(models):
    """The decoder and the pre-processing share the cores with the network between runs: the
    session's intra-op threads must not spin-wait (and --threads sets their number)."""
    net = rb.open_network(models["rtmo"], default_size=(640, 640), threads=1)
    options = net.session.get_session_options()
    assert options.get_session_config_entry(rb.SPIN_KEY) == "0"
    assert options.intra_op_num_threads == 1


def test_gpu_only_for_a_cuda_device():
    from posepipe.registry import SOURCES2D, source_uses_gpu

    rtm = SOURCES2D["rtmlib"]
    assert not source_uses_gpu(rtm, {"rtmlib": {"device": "cpu"}})
    assert source_uses_gpu(rtm, {"rtmlib": {"device": "cuda"}}) and source_uses_gpu(
        rtm, {"rtmlib": {"device": "cuda:1"}}
    )
    assert source_uses_gpu(SOURCES2D["detectron2"], {}) and not source_uses_gpu(SOURCES2D["file"], {})


def test_published_archive_is_downloaded_checked_and_extracted(models, tmp_path, main):
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
    # The command line the download rule runs: the archive into --models-dir, the ONNX to --out.
    archive.parent.joinpath("again.zip").write_bytes((cache / archive.name).read_bytes())
    out = tmp_path / "rule" / "rtmo-s.onnx"
    assert main(["download", "--name", "rtmlib_rtmo-s", "--url", archive.parent.joinpath("again.zip").as_uri(),
                 "--models-dir", str(tmp_path / "rule"), "--out", str(out)]) in (0, None)  # fmt: skip
    assert out.read_bytes() == models["rtmo"].read_bytes()


def test_cli_writes_keypoints_that_tracks_and_dataset2d_read(models, timeline, tmp_path):
    from posepipe.dataset2d import run_dataset2d
    from posepipe.tracks import TracksSettings, run_tracks

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
    from posepipe.qc import keypoints2d_record  # what qc.json records of the 2D model
    from posepipe.weights import sha256_file

    assert keypoints2d_record(kp.meta) == {
        "detector": "rtmlib rtmo-s",
        "model": "rtmo-s",
        "sha256": sha256_file(models["rtmo"]),
    }
    run_tracks(out, tmp_path / "tracks.npz", fps=25.0, settings=TracksSettings(min_track_frames=1))
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
    # keypoints2d.rtmlib.device: cuda makes the job ask for a GPU and run under with-gpu (CPU: none).
    cuda = {**switched, "keypoints2d": {**switched["keypoints2d"], "rtmlib": {"model": "rtmo-s", "onnx": "rtmo.onnx",
                                                                              "device": "cuda"}}}  # fmt: skip
    plan = snakemake(tmp_path, "--dry-run", "--printshellcmds", target, config=cuda).stdout
    job = plan.split("rule keypoints2d:", 1)[1].split("\nrule ", 1)[0]
    assert "gpu=1" in job and "with-gpu" in job and "--rtmlib-device cuda" in job


@pytest.mark.parametrize("shape", [(640, 640), (720, 1280), (640, 480), (101, 333)])
def test_letterbox_and_crop_equal_rtmlib(models, shape):
    """The pre-processing alone, on frame sizes the clip does not have (square at the input size:
    no resize; landscape; portrait; odd)."""
    rtmlib = rtmlib_quiet()
    from rtmlib.tools.pose_estimation.pre_processings import bbox_xyxy2cs, top_down_affine

    image = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ref = rtmlib.RTMO(os.fspath(models["rtmo"]), model_input_size=(640, 640))
    ours, ratio = rb.letterbox(image, (640, 640))
    theirs, their_ratio = ref.preprocess(image)
    assert ratio == their_ratio
    np.testing.assert_array_equal(ours, theirs)
    box = np.array([0.1 * shape[1], 0.2 * shape[0], 0.7 * shape[1], 0.9 * shape[0]], np.float32)
    crop, center, scale = rb.pose_crop(image, box, (192, 256))
    c, s = bbox_xyxy2cs(box, padding=1.25)
    warped, s = top_down_affine((192, 256), s, c, image)
    np.testing.assert_array_equal(center, c)
    np.testing.assert_array_equal(scale, s)
    np.testing.assert_array_equal(crop, (warped - np.array(rb.POSE_MEAN)) / np.array(rb.POSE_STD))


def test_simcc_decoding_equals_rtmlib_including_weak_joints():
    """Joints whose two maxima average <= 0 get location -1 before the mapping back (rtmlib)."""
    rtmlib = rtmlib_quiet()
    from rtmlib.tools.pose_estimation.post_processings import get_simcc_maximum

    rng = np.random.default_rng(1)
    simcc_x = rng.normal(-0.5, 1.0, (3, 17, 384)).astype(np.float32)
    simcc_y = rng.normal(-0.5, 1.0, (3, 17, 512)).astype(np.float32)
    simcc_x[0, :5] -= 10  # weak joints: maxima below zero
    simcc_y[0, :5] -= 10
    centers = np.array([[50.5, 80.25], [300.0, 200.0], [10.0, 10.0]], np.float32)
    scales = np.array([[120.0, 160.0], [60.0, 80.0], [30.0, 40.0]], np.float32)
    ours = rb.simcc_decode(simcc_x, simcc_y, centers, scales, (192, 256))
    model = rtmlib.RTMPose.__new__(rtmlib.RTMPose)
    model.model_input_size = (192, 256)
    for i in range(3):
        points, scores = model.postprocess([simcc_x[i : i + 1], simcc_y[i : i + 1]], centers[i], scales[i])
        np.testing.assert_array_equal(ours[i, :, :2], points[0])
        np.testing.assert_array_equal(ours[i, :, 2], scores[0])
    locs, vals = get_simcc_maximum(simcc_x[:1], simcc_y[:1])
    assert (vals[0, :5] <= 0).all() and (locs[0, :5] == -1).all()


def test_shard_equals_its_frames_of_the_whole_run_and_empty_frames(models, timeline):
    whole = rb.detect_keypoints(timeline, model="rtmo-s", pose_onnx=models["rtmo"], score_threshold=0.5)
    shard = rb.detect_keypoints(
        timeline, model="rtmo-s", pose_onnx=models["rtmo"], score_threshold=0.5, frame_range=(2, 5)
    )
    assert shard.meta["frame_range"] == [2, 5] and shard.num_frames == 3
    for t in range(3):
        for a, b in zip(shard.frame(t), whole.frame(t + 2), strict=True):
            np.testing.assert_array_equal(a, b)
    # Nobody passes: empty frames, no crop, nothing invented (rtmlib would take the whole frame).
    none = rb.detect_keypoints(
        timeline,
        model="rtmpose-m",
        pose_onnx=models["rtmpose"],
        det_onnx=models["yolox"],
        score_threshold=1.0,
    )
    assert none.counts().tolist() == [0] * T and none.keypoints.shape == (0, 17, 3)
