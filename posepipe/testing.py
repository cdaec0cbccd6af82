"""Small synthetic inputs for posepipe's tests and benchmarks; the workflow never uses this module.

Each builder is deterministic for its arguments and small enough for a CPU:

- :func:`write_indexed_video`: an H.264 mp4 whose frame ``i`` is flat grey ``level(i)``, so a
  decoded image tells which source frame it came from, even after lossy compression.
- :func:`write_timeline`: ``probe.json``, ``probe_pts.npy`` and ``timeline.json``/``.csv`` of a
  video, made by the functions the workflow's probe and frames rules call.
- :func:`coco_results`: COCO keypoint results (the JSON list other 2D tools write: ``image_id``,
  ``category_id`` 1, ``bbox`` x, y, w, h, ``score``, ``keypoints`` as 17 x (x, y, v)), one random
  person per frame inside the image.
- :func:`add_video`: ``<workdir>/videos/<name>.mp4`` and its ``<name>.coco.json``, ready for a
  workflow run with ``keypoints2d.source: file``.
- :func:`random_model` / :func:`random_checkpoint`: a small VideoPose3D temporal CNN with random
  weights and random batch-norm statistics, and a checkpoint of it in the published format
  (``{"epoch", "lr", "model_pos": state dict}``, old non-zip torch serialisation).
- :func:`rtmo_onnx`, :func:`yolox_onnx`, :func:`rtmpose_onnx`: small ONNX files with the published
  inputs and outputs of rtmlib's RTMO, YOLOX (end2end) and RTMPose models and random weights.
- :func:`make_random_weights`: a detectron2 model-zoo ``.pkl`` of a randomly initialised Keypoint
  R-CNN that still detects a fixed number of "persons" per frame.

torch, PyAV, onnx and detectron2 are imported inside the functions that need them: importing this
module needs none of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from fractions import Fraction
from pathlib import Path

import numpy as np


def level(i: int) -> int:
    """Grey level of frame ``i`` in videos made by :func:`write_indexed_video` (distinct for i < 24)."""
    return 16 + (i % 24) * 9


def write_indexed_video(
    path: str | os.PathLike,
    *,
    width: int = 64,
    height: int = 48,
    fps: Fraction | int = 30,
    frames: int = 30,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """H.264 mp4 whose frame i is flat grey ``level(i)``; ``pts`` (in ``time_base``) makes it VFR."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "bf": "0"}
        if time_base is not None:
            stream.codec_context.time_base = time_base
        for i in range(frames):
            image = np.full((height, width, 3), level(i), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_timeline(
    video: str | os.PathLike, folder: str | os.PathLike, *, video_id: str = "clip", **options
) -> Path:
    """Probe ``video`` and make its frame timeline in ``folder``; returns ``folder/timeline.json``.

    ``options`` are fields of :class:`posepipe.video.FramesSettings` (``fps``, ``start``, ``end``, ...)
    for :func:`posepipe.video.run_frames`.
    """
    from posepipe import video as video_stage

    folder = Path(folder)
    video_stage.run_probe(video, out_json=folder / "probe.json", out_pts=folder / "probe_pts.npy")
    video_stage.run_frames(
        folder / "probe.json", folder / "probe_pts.npy", video_id=video_id,
        out_json=folder / "timeline.json", out_csv=folder / "timeline.csv",
        settings=video_stage.FramesSettings(**options),
    )  # fmt: skip
    return folder / "timeline.json"


def coco_results(
    frames: int,
    *,
    width: int,
    height: int,
    seed: int,
    empty_frames: Collection[int] = (2,),
    score: float = 0.98,
) -> list[dict]:
    """One person per frame, except ``empty_frames`` (nobody there, so gap filling has work to do).

    Joints are uniform in the middle of the image (x in 30-70 % of ``width``, y in 10-90 % of
    ``height``) with visibility 0.9; the box is the joints' bounding box.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(frames):
        if i in empty_frames:
            continue
        xy = rng.uniform([0.3 * width, 0.1 * height], [0.7 * width, 0.9 * height], size=(17, 2))
        kps = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1)
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        out.append({"image_id": i, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score,
                    "keypoints": kps.ravel().round(2).tolist()})  # fmt: skip
    return out


def add_video(
    workdir: str | os.PathLike,
    name: str,
    *,
    frames: int = 10,
    seed: int = 0,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
) -> Path:
    """Write ``workdir/videos/<name>.mp4`` (:func:`write_indexed_video`) and its ``<name>.coco.json``
    (:func:`coco_results`); returns the video's path."""
    videos = Path(workdir) / "videos"
    video = write_indexed_video(videos / f"{name}.mp4", width=width, height=height, frames=frames, fps=fps)
    keypoints = coco_results(frames, width=width, height=height, seed=seed)
    (videos / f"{name}.coco.json").write_text(json.dumps(keypoints))
    return video


def random_model(*, widths=(3, 3), channels=32, joints_out=17, causal=False, dense=False, seed=0):
    """A ``TemporalCNN`` in eval mode whose batch norms are not the identity (so they are exercised)."""
    import torch

    from posepipe.lift3d.model import TemporalCNN

    torch.manual_seed(seed)
    model = TemporalCNN(
        num_joints_in=17,
        num_joints_out=joints_out,
        filter_widths=widths,
        channels=channels,
        causal=causal,
        dense=dense,
    )
    with torch.no_grad():
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(1000)
    return model.eval()


def random_checkpoint(path: str | os.PathLike, *, widths=(3, 3), channels: int = 16, seed: int = 0) -> Path:
    """A small :func:`random_model` saved at ``path`` in the published checkpoint format."""
    from posepipe.lift3d.checkpoint import save_checkpoint

    save_checkpoint(path, model_pos=random_model(widths=widths, channels=channels, seed=seed))
    return Path(path)


def make_random_weights(
    cfg, *, images: list[np.ndarray], out: str | os.PathLike, foreground_bias: float = 6.0
) -> Path:
    """Write a detectron2 .pkl of a randomly initialised model that still detects "persons".

    For tests and benchmarks without the published weights. Plain random weights detect nothing
    (activations grow through the ResNet until no proposal survives), so: set every frozen
    batch norm's statistics from one backbone pass over ``images`` (BGR uint8 frames), which
    keeps activations at unit scale, then add ``foreground_bias`` to the box classifier's person
    logit so that proposals pass the score threshold; ``TEST.DETECTIONS_PER_IMAGE`` then fixes
    how many persons each frame gets. ``cfg`` is a detectron2 config
    (:func:`posepipe.keypoints2d.detectron2_backend.build_cfg`).

    Returns:
        ``out``: pickle of {"model": {name: numpy array}, "__author__": ...}, the model-zoo format.
    """
    import pickle

    import torch

    from posepipe.atomic import atomic_path
    from posepipe.keypoints2d import detectron2_backend as backend

    d2 = backend.import_detectron2()
    from detectron2.layers import FrozenBatchNorm2d

    model = d2.build_model(cfg)
    model.eval()
    detector = backend.Detector(
        model=model, cfg=cfg, device=cfg.MODEL.DEVICE, amp=False, config="", weights={},
        resize=d2.T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST),
    )  # fmt: skip

    def calibrate(module, args):
        x = args[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))

    hooks = [
        m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)
    ]
    try:
        with torch.inference_mode():
            batch = model.preprocess_image([backend.preprocess(detector, image) for image in images])
            model.backbone(batch.tensor)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[0] += (
            foreground_bias  # index 0: person; last: background
        )
    state = {name: value.detach().cpu().numpy() for name, value in model.state_dict().items()}
    out = Path(out)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        pickle.dump({"model": state, "__author__": "posepipe random weights (tests/benchmarks)"}, fh)
    return out


# ---- world scenes (the world stage's known truth) ---------------------------------------------

# Human3.6M segment lengths (metres) of a 1.75 m adult; a person of height H is this skeleton
# scaled by (H - 0.18) / 1.57, so its ankle-to-head body length plus the world stage's ankle (0.08)
# and head-top (0.10) allowances is H.
SEGMENTS = {"hip": 0.13, "thigh": 0.44, "shank": 0.42, "spine": 0.23, "thorax": 0.25, "neck": 0.12,
            "head": 0.11, "shoulder": 0.17, "upper_arm": 0.28, "forearm": 0.26}  # fmt: skip
BODY_1_75 = 1.57


def gait(
    frames: int,
    fps: float,
    *,
    height_m: float = 1.75,
    start=(0.0, 0.0),
    heading_deg: float = 0.0,
    curvature: float = 0.15,
    speed: float = 1.2,
    step: float = 0.5,
    phase: float = 0.0,
) -> np.ndarray:
    """World joints (T, 17, 3) (Human3.6M order, metres, z up, floor z = 0) of a procedural walk
    along an arc of constant ``curvature`` (1/m) from ``start``, ``heading_deg`` from +x.

    Each foot is planted for 60 % of the gait cycle (ankle 0.08 m above the floor, not moving) and
    swings for 40 % (moving on at about 2.5 x ``speed``, lifted by up to 0.1 m); knees by two-bone
    inverse kinematics (bending forward), arms swinging against the legs, trunk upright, so every
    bone keeps its length.
    """
    s = (height_m - 0.18) / BODY_1_75
    L = {k: v * s for k, v in SEGMENTS.items()}
    leg = L["thigh"] + L["shank"]
    t = np.arange(frames) / fps + phase
    x0, y0, h0 = start[0], start[1], np.radians(heading_deg)

    def path(arc):  # position (N, 2) and heading (N,) at arc length
        arc = np.asarray(arc, dtype=np.float64)
        head = h0 + curvature * arc
        if abs(curvature) < 1e-9:
            xy = np.stack([x0 + arc * np.cos(h0), y0 + arc * np.sin(h0)], axis=-1)
        else:
            xy = np.stack(
                [x0 + (np.sin(head) - np.sin(h0)) / curvature, y0 - (np.cos(head) - np.cos(h0)) / curvature],
                axis=-1,
            )
        return xy, head

    arc = speed * t
    xy, heading = path(arc)
    fwd = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], axis=-1)
    left = np.stack([-np.sin(heading), np.cos(heading), np.zeros_like(heading)], axis=-1)
    up = np.array([0.0, 0.0, 1.0])
    root = np.concatenate([xy, np.full((frames, 1), 0.08 + 0.9 * leg)], axis=-1)
    J = np.zeros((frames, 17, 3))
    J[:, 0] = root
    J[:, 7] = root + L["spine"] * up
    J[:, 8] = J[:, 7] + L["thorax"] * up
    J[:, 9] = J[:, 8] + L["neck"] * up
    J[:, 10] = J[:, 9] + L["head"] * up
    cycle = 2 * step / speed
    for side, (hip, knee, ankle) in ((+1, (4, 5, 6)), (-1, (1, 2, 3))):
        J[:, hip] = root + side * L["hip"] * left
        offset = 0.0 if side > 0 else cycle / 2
        k = np.floor((t - offset) / cycle + 0.5)  # the plant whose stance centre is nearest
        centre = offset + k * cycle
        local = t - centre  # -0.5 .. 0.5 cycles
        planted = np.abs(local) <= 0.3 * cycle

        def plant(times, side=side):
            pxy, ph = path(speed * times)
            lat = np.stack([-np.sin(ph), np.cos(ph)], axis=-1) * side * L["hip"] * 0.8
            return np.concatenate([pxy + lat, np.full((len(pxy), 1), 0.08)], axis=-1)

        here, nxt, prv = plant(centre), plant(centre + cycle), plant(centre - cycle)
        swing_fwd = local > 0.3 * cycle  # after this plant, towards the next
        phase_f = np.where(swing_fwd, (local - 0.3 * cycle), (local + 0.7 * cycle)) / (0.4 * cycle)
        src = np.where(swing_fwd[:, None], here, prv)
        dst = np.where(swing_fwd[:, None], nxt, here)
        foot = src + (dst - src) * phase_f[:, None]
        foot[:, 2] = 0.08 + 0.1 * np.sin(np.pi * np.clip(phase_f, 0, 1))
        foot = np.where(planted[:, None], here, foot)
        J[:, ankle] = foot
        d_vec = foot - J[:, hip]
        d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
        u = d_vec / d
        cos_a = np.clip((L["thigh"] ** 2 + d**2 - L["shank"] ** 2) / (2 * L["thigh"] * d), -1, 1)
        perp = fwd - (fwd * u).sum(-1, keepdims=True) * u
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        J[:, knee] = J[:, hip] + L["thigh"] * (cos_a * u + np.sqrt(1 - cos_a**2) * perp)
        # The arm on this side swings with the other leg.
        swing = 0.35 * np.sin(2 * np.pi * (t - offset) / cycle + np.pi / 2)
        shoulder, elbow, wrist = (11, 12, 13) if side > 0 else (14, 15, 16)
        J[:, shoulder] = J[:, 8] + side * L["shoulder"] * left
        a1 = -swing[:, None]
        J[:, elbow] = J[:, shoulder] + L["upper_arm"] * (np.sin(a1) * fwd - np.cos(a1) * up)
        a2 = a1 + 0.3
        J[:, wrist] = J[:, elbow] + L["forearm"] * (np.sin(a2) * fwd - np.cos(a2) * up)
    return J


def look_at_camera(target, *, distance: float, tilt_deg: float, yaw_deg: float = 180.0):
    """(R, C): a camera (OpenCV axes, no roll) ``distance`` metres from ``target`` horizontally,
    pitched down by ``tilt_deg`` and looking at it; ``x_cam = R @ (x_world - C)``."""
    a, y = np.radians(tilt_deg), np.radians(yaw_deg)
    target = np.asarray(target, dtype=np.float64)
    back = np.array([np.cos(y), np.sin(y), 0.0])  # from the target towards the camera, horizontally
    C = target + distance * back + np.array([0.0, 0.0, distance * np.tan(a)])
    z = -back * np.cos(a) + np.array([0.0, 0.0, -np.sin(a)])
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, C


LENS_EXAMPLES = {
    "pinhole": np.zeros(0),
    "radtan": np.array([-0.28, 0.09, 0.0008, -0.0006, -0.012]),
    "fisheye": np.array([0.04, -0.012, 0.003, -0.0005]),
}


def world_scene(
    *,
    persons: int = 1,
    frames: int = 100,
    fps: float = 25.0,
    lens: str = "pinhole",
    tilt_deg: float = 20.0,
    distance: float = 6.0,
    focal: float = 1000.0,
    noise_px: float = 0.0,
    heights=(1.75, 1.62),
    seed: int = 0,
) -> dict:
    """A static camera (1920 x 1080, ``lens`` of :data:`LENS_EXAMPLES`) watching ``persons`` walkers
    (:func:`gait`) on curved paths ``distance`` m away; returns the truth and the stage's inputs:
    ``camera`` (:class:`posepipe.camera.Camera`), ``world`` (P, T, 17, 3) truth joints (z up),
    ``cam`` (P, T, 17, 3) in camera coordinates, ``rel`` root-relative camera joints (what a
    lifter gives), ``points`` (P, T, 17, 2) COCO keypoints through the lens plus Gaussian noise
    (``noise_px`` per coordinate), ``scores`` (P, T, 17) (0 for eyes and ears), ``floor`` (4,)
    in camera coordinates, ``R``, ``C``, ``heights`` (P,)."""
    starts = [((-1.2, 0.6), -20.0, 0.15), ((0.8, -1.0), 160.0, -0.2)]
    walkers = np.stack(
        [
            gait(
                frames,
                fps,
                height_m=heights[p],
                start=starts[p][0],
                heading_deg=starts[p][1],
                curvature=starts[p][2],
                phase=0.13 * p,
            )  # fmt: skip
            for p in range(persons)
        ]
    )
    scene = observe(walkers, fps=fps, lens=lens, tilt_deg=tilt_deg, distance=distance, focal=focal,
                    noise_px=noise_px, seed=seed)  # fmt: skip
    scene["heights"] = np.asarray(heights[:persons], float)
    return scene


def observe(
    walkers: np.ndarray,
    *,
    fps: float = 25.0,
    lens: str = "pinhole",
    tilt_deg: float = 20.0,
    distance: float = 6.0,
    focal: float = 1000.0,
    noise_px: float = 0.0,
    seed: int = 0,
) -> dict:
    """:func:`world_scene`'s camera and observations of world joints ``walkers`` (P, T, 17, 3)."""
    from posepipe.camera import Camera, project_points

    rng = np.random.default_rng(seed)
    frames = walkers.shape[1]
    centre = np.nanmean(walkers[:, :, 0].reshape(-1, 3), axis=0) * [1, 1, 0] + [0, 0, 1.0]
    R, C = look_at_camera(centre, distance=distance, tilt_deg=tilt_deg)
    cam = (walkers - C) @ R.T
    K = np.array([[focal, 0.0, 959.5], [0.0, focal, 539.5], [0.0, 0.0, 1.0]])
    camera = Camera(K, LENS_EXAMPLES[lens].copy(), lens, (1920, 1080), "calibration", "scene")
    coco_from_h36m = [9, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
    points = project_points(cam[:, :, coco_from_h36m], camera)
    if noise_px:
        points = points + rng.normal(0.0, noise_px, points.shape)
    scores = np.full(points.shape[:3], 0.9)
    scores[:, :, 1:5] = 0.0
    n = R @ np.array([0.0, 0.0, 1.0])
    floor = np.array([*n, -(n @ (R @ -C))])  # n . x_cam + d = 0 where the world's z = 0
    return {
        "camera": camera, "world": walkers, "cam": cam, "rel": cam - cam[:, :, :1], "points": points,
        "scores": scores, "floor": floor, "R": R, "C": C, "fps": fps, "time": np.arange(frames) / fps,
    }  # fmt: skip


# ---- small ONNX models with the published interfaces of rtmlib's RTMO / YOLOX / RTMPose ----------


def _onnx_features(nodes, inits, *, size: tuple[int, int], offset: float, unit: float) -> int:
    """Nodes that pool ``input`` (B, 3, H, W), minus ``offset`` times ``unit``, over squares of
    min(H, W) / 8 pixels into ``features`` (B, F); returns F."""
    from onnx import helper, numpy_helper

    width, height = size
    k = min(width, height) // 8
    nodes += [
        helper.make_node("Sub", ["input", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "unit"], ["scaled"]),
        helper.make_node("AveragePool", ["scaled"], ["pooled"], kernel_shape=[k, k], strides=[k, k]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
    ]
    inits += [
        numpy_helper.from_array(np.array(offset, np.float32), "offset"),
        numpy_helper.from_array(np.array(unit, np.float32), "unit"),
    ]
    return 3 * (height // k) * (width // k)


def _onnx_linear(
    nodes,
    inits,
    name: str,
    features: int,
    outputs: int,
    *,
    rng,
    gain: float,
    bias: float = 0.0,
    twins: int = 0,
):
    from onnx import helper, numpy_helper

    w = rng.normal(0, gain / np.sqrt(features), (features, outputs))
    b = bias + rng.normal(0, 0.5, outputs)
    if twins:  # odd outputs groups repeat the even ones closely: overlapping detections for NMS
        w = w.reshape(features, -1, twins)
        w[:, 1::2] = w[:, 0::2] + rng.normal(0, 0.02 * gain / np.sqrt(features), w[:, 0::2].shape)
        b = b.reshape(-1, twins)
        b[1::2] = b[0::2] + rng.normal(0, 0.05, b[0::2].shape)
    w, b = w.reshape(features, outputs).astype(np.float32), b.reshape(outputs).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
    nodes += [
        helper.make_node("MatMul", ["features", f"{name}_w"], [f"{name}_mm"]),
        helper.make_node("Add", [f"{name}_mm", f"{name}_b"], [f"{name}_lin"]),
    ]
    return f"{name}_lin"


def _onnx_dets(nodes, inits, features: int, *, persons: int, size: tuple[int, int], rng, out: str = "dets"):
    """(B, persons, 5) x1, y1, x2, y2, score: boxes of 10-45 % of the input inside it, scores in (0, 1)."""
    from onnx import helper, numpy_helper

    width, height = size
    lin = _onnx_linear(nodes, inits, "det", features, persons * 5, rng=rng, gain=3.0, twins=5)
    scale = np.array([0.55 * width, 0.55 * height, 0.35 * width, 0.35 * height, 1.0], np.float32)
    shift = np.array([0, 0, 0.1 * width, 0.1 * height, 0], np.float32)
    corners = np.eye(5, dtype=np.float32)
    corners[0, 2] = corners[1, 3] = 1.0  # x2 = x1 + w, y2 = y1 + h
    inits += [
        numpy_helper.from_array(np.array([0, persons, 5], np.int64), "det_shape"),
        numpy_helper.from_array(scale, "det_scale"),
        numpy_helper.from_array(shift, "det_shift"),
        numpy_helper.from_array(corners, "det_corners"),
    ]
    nodes += [
        helper.make_node("Sigmoid", [lin], ["det_sig"]),
        helper.make_node("Reshape", ["det_sig", "det_shape"], ["det_unit"]),
        helper.make_node("Mul", ["det_unit", "det_scale"], ["det_scaled"]),
        helper.make_node("Add", ["det_scaled", "det_shift"], ["det_xywh"]),
        helper.make_node("MatMul", ["det_xywh", "det_corners"], [out]),
    ]


def _save_onnx(path, nodes, inits, inputs, outputs) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "posepipe_test", inputs, outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="posepipe.testing"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, os.fspath(path))
    return path


def _onnx_input(size: tuple[int, int], batch):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size[1], size[0]])


def rtmo_onnx(
    path: str | os.PathLike, *, persons: int = 20, size: tuple[int, int] = (640, 640), batch=1, seed: int = 0
) -> Path:
    """An ONNX file with RTMO's published interface and random weights: ``input`` float32
    (batch, 3, 640, 640) BGR 0..255 -> ``dets`` (batch, persons, 5), ``keypoints`` (batch, persons,
    17, 3) x, y, score in input pixels, all depending on the image. ``batch`` "batch": symbolic."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    features = _onnx_features(nodes, inits, size=size, offset=128.0, unit=1 / 64)
    _onnx_dets(nodes, inits, features, persons=persons, size=size, rng=rng)
    lin = _onnx_linear(nodes, inits, "kp", features, persons * 17 * 3, rng=rng, gain=3.0)
    inits += [
        numpy_helper.from_array(np.array([0, persons, 17, 3], np.int64), "kp_shape"),
        numpy_helper.from_array(np.array([size[0], size[1], 1.0], np.float32), "kp_scale"),
    ]
    nodes += [
        helper.make_node("Sigmoid", [lin], ["kp_sig"]),
        helper.make_node("Reshape", ["kp_sig", "kp_shape"], ["kp_unit"]),
        helper.make_node("Mul", ["kp_unit", "kp_scale"], ["keypoints"]),
    ]
    outputs = [
        helper.make_tensor_value_info("dets", TensorProto.FLOAT, [batch, persons, 5]),
        helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [batch, persons, 17, 3]),
    ]
    return _save_onnx(path, nodes, inits, [_onnx_input(size, batch)], outputs)


def yolox_onnx(
    path: str | os.PathLike, *, persons: int = 8, size: tuple[int, int] = (640, 640), batch=1, seed: int = 1
) -> Path:
    """An ONNX file with the interface of rtmlib's YOLOX end2end exports (NMS inside): ``input``
    float32 (batch, 3, S, S) BGR 0..255 -> ``dets`` (batch, persons, 5) x1, y1, x2, y2, score,
    ``labels`` int64 (batch, persons) (all 0, person), random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    features = _onnx_features(nodes, inits, size=size, offset=128.0, unit=1 / 64)
    _onnx_dets(nodes, inits, features, persons=persons, size=size, rng=rng)
    inits += [
        numpy_helper.from_array(np.array([2], np.int64), "lab_axes"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes += [
        helper.make_node("ReduceSum", ["dets", "lab_axes"], ["lab_sum"], keepdims=0),
        helper.make_node("Mul", ["lab_sum", "zero"], ["lab_zero"]),
        helper.make_node("Cast", ["lab_zero"], ["labels"], to=TensorProto.INT64),
    ]
    outputs = [
        helper.make_tensor_value_info("dets", TensorProto.FLOAT, [batch, persons, 5]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, [batch, persons]),
    ]
    return _save_onnx(path, nodes, inits, [_onnx_input(size, batch)], outputs)


def rtmpose_onnx(
    path: str | os.PathLike, *, size: tuple[int, int] = (192, 256), batch=1, seed: int = 2
) -> Path:
    """An ONNX file with RTMPose's published interface: ``input`` float32 (batch, 3, 256, 192)
    normalised crop -> ``simcc_x`` (batch, 17, 2 * 192), ``simcc_y`` (batch, 17, 2 * 256), random
    weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    features = _onnx_features(nodes, inits, size=size, offset=0.0, unit=1.0)
    outputs = []
    for axis, bins in (("x", 2 * size[0]), ("y", 2 * size[1])):
        lin = _onnx_linear(nodes, inits, f"simcc_{axis}", features, 17 * bins, rng=rng, gain=2.0, bias=-1.5)
        inits.append(numpy_helper.from_array(np.array([0, 17, bins], np.int64), f"simcc_{axis}_shape"))
        nodes.append(helper.make_node("Reshape", [lin, f"simcc_{axis}_shape"], [f"simcc_{axis}"]))
        outputs.append(helper.make_tensor_value_info(f"simcc_{axis}", TensorProto.FLOAT, [batch, 17, bins]))
    return _save_onnx(path, nodes, inits, [_onnx_input(size, batch)], outputs)
