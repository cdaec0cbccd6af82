"""RTMO and RTMPose (with a YOLOX person detector) on every frame of a timeline, through ONNX Runtime.

The models are OpenMMLab's ONNX exports that ``rtmlib`` (Apache-2.0) runs; this module runs the
same files with the same pre- and post-processing, so its keypoints equal rtmlib's own classes'
(``rtmlib.RTMO``, ``rtmlib.YOLOX`` + ``rtmlib.RTMPose``, ``rtmlib.Body``) on the same frames
(tests/test_keypoints2d_rtmlib.py checks it to 0 px). It needs ``onnxruntime`` (or
``onnxruntime-gpu`` for ``--rtmlib-device cuda``) and OpenCV, not rtmlib, mmcv or torch.

ONNX interfaces (MMDeploy's end2end exports, as rtmlib 0.0.16 reads them):

- RTMO (one stage, multi-person): input ``input`` float32 (1, 3, 640, 640), BGR pixel values
  0..255 (no mean/std), the frame letterboxed: scaled by ``r = min(640 / h, 640 / w)``
  (``cv2.INTER_LINEAR``) into the top-left corner of a canvas of grey 114. Outputs ``dets``
  (1, N, 5): x1, y1, x2, y2, score in input pixels; ``keypoints`` (1, N, 17, 3): x, y, score.
  Post-processing: coordinates divided by ``r``; persons with score > threshold (strictly, as
  rtmlib) go through greedy NMS (IoU with the legacy "+1" pixel areas of py-faster-rcnn, kept
  while IoU <= ``nms_threshold``), in descending score order.
- YOLOX (person detector of the top-down models): input ``input`` float32 (1, 3, S, S) letterboxed
  as RTMO (S = 416 for yolox-tiny, 640 otherwise); outputs ``dets`` (1, N, 5) x1, y1, x2, y2, score
  after the network's own NMS, and ``labels`` (1, N) (one class, unused). Boxes are divided by
  ``r``; rtmlib keeps score > 0.3, here score > ``score_threshold`` (0.3 gives rtmlib's boxes).
- RTMPose (top-down, per box): input ``input`` float32 (1, 3, 256, 192) (rtmpose-x: 384, 288): the
  box centre ``c`` and size ``1.25 * (w, h)`` enlarged to the input's aspect ratio, the crop
  warped by the affine map of three point pairs (mmpose's ``get_warp_matrix``: centre, centre
  minus half the width upwards, and that vector turned 90 degrees; ``cv2.getAffineTransform``
  on float32 points, ``cv2.warpAffine`` bilinear, black border), then ``(pixel - mean) / std``
  with mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375) applied to the BGR channels
  in this order (as rtmlib does). Outputs ``simcc_x`` (1, 17, 2 * width), ``simcc_y``
  (1, 17, 2 * height): SimCC with split ratio 2. A joint is at the argmax of each axis / 2,
  mapped back through the box; its score is the mean of the two maxima (a joint with score <= 0
  gets location -1 before the mapping, as rtmlib).

Differences from rtmlib, on purpose: a frame where nobody passes the threshold has no person
(rtmlib's RTMO returns one all-zero person, and rtmlib's RTMPose without boxes takes the whole
frame as the box); the box and its score are kept (rtmlib returns keypoints only).

Keypoint scores: RTMO's keypoint score output; RTMPose's mean of the SimCC x and y maxima.
Neither is a calibrated probability (see ``KEYPOINT_SCORE``).

Batches: a network whose ONNX input has a symbolic batch dimension runs ``--batch-size`` frames
(RTMO) or all the boxes of up to that many frames (RTMPose) at once; a fixed batch of 1 runs one
at a time. Threads: ``--threads``, else the ``OMP_NUM_THREADS`` Snakemake sets to the rule's
threads, else ONNX Runtime's default. The intra-op threads do not spin-wait after a run
(``session.intra_op.allow_spinning`` 0, ONNX Runtime's "Thread management" page): between runs the
decoder and the pre-processing need the same cores, and measured here (``bench/bench_rtmlib.py``,
2 cores) spinning threads made decoding a 720p frame take 7.8 ms instead of 4.7 ms while the
network's own time stayed the same.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posepipe import __version__
from posepipe.artefacts.keypoints2d import NUM_COCO_JOINTS, Keypoints2D, from_frames, save_keypoints2d
from posepipe.errors import PosepipeError
from posepipe.progress import Progress
from posepipe.settings import schema_default
from posepipe.weights import MODELS_DIR, PUBLISHED, weights_record

if TYPE_CHECKING:
    from posepipe.keypoints2d.cli import Keypoints2DSettings, SourceInputs

log = logging.getLogger(__name__)

PAD_VALUE = 114  # grey of the letterbox canvas (YOLOX / RTMO convention)
BOX_PADDING = 1.25  # RTMPose's box enlargement (mmpose bbox_xyxy2cs(padding=1.25))
SIMCC_SPLIT_RATIO = 2.0
POSE_MEAN = (123.675, 116.28, 103.53)
POSE_STD = (58.395, 57.12, 57.375)
KEYPOINT_SCORE = {
    "rtmo": "RTMO keypoint score output (keypoints[..., 2] of the ONNX), not calibrated",
    "rtmpose": "mean of the SimCC x and y maxima (rtmlib get_simcc_maximum), not calibrated",
}


@dataclass(frozen=True)
class RtmModel:
    """A model as rtmlib names it: ``kind`` "rtmo" (one stage) or "rtmpose" (top-down, ``det`` the
    :data:`PUBLISHED` name of its YOLOX); input sizes (width, height) are the published ones, used
    when the ONNX file leaves them symbolic."""

    name: str
    kind: str
    pose: str
    pose_size: tuple[int, int]
    det: str | None = None
    det_size: tuple[int, int] | None = None


# rtmlib's Body modes (lightweight, balanced, performance) and RTMO_MODE, by model name.
MODELS: dict[str, RtmModel] = {
    m.name: m
    for m in (
        RtmModel("rtmo-s", "rtmo", "rtmlib_rtmo-s", (640, 640)),
        RtmModel("rtmo-m", "rtmo", "rtmlib_rtmo-m", (640, 640)),
        RtmModel("rtmo-l", "rtmo", "rtmlib_rtmo-l", (640, 640)),
        RtmModel("rtmpose-s", "rtmpose", "rtmlib_rtmpose-s", (192, 256), "rtmlib_yolox-tiny", (416, 416)),
        RtmModel("rtmpose-m", "rtmpose", "rtmlib_rtmpose-m", (192, 256), "rtmlib_yolox-m", (640, 640)),
        RtmModel("rtmpose-x", "rtmpose", "rtmlib_rtmpose-x", (288, 384), "rtmlib_yolox-x", (640, 640)),
    )
}

INSTALL_HINT = "pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA)"


# ---------------------------------------------------------------------------------------------
# ONNX Runtime


@dataclass
class Network:
    """An ONNX Runtime session with what the pre-processing needs to know of its input."""

    session: object
    path: Path
    input_name: str
    output_names: list[str]
    size: tuple[int, int]  # width, height
    dynamic_batch: bool
    provider: str


def _providers(device: str) -> list:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        raise PosepipeError(None, f"rtmlib device must be cpu or cuda[:N], got {device!r}")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise PosepipeError(
            None,
            f"rtmlib device {device!r} needs ONNX Runtime's CUDA execution provider, which this "
            f"install lacks (providers: {', '.join(ort.get_available_providers())}); "
            "pip install onnxruntime-gpu, or set keypoints2d.rtmlib.device: cpu",
        )
    _, _, index = device.partition(":")
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)})]


SPIN_KEY = "session.intra_op.allow_spinning"


def open_network(
    path: str | os.PathLike,
    *,
    default_size: tuple[int, int],
    device: str | None = None,
    threads: int | None = None,
) -> Network:
    """An ONNX Runtime session for ``path``; a missing or unreadable file raises PosepipeError."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise PosepipeError(None, f"onnxruntime is not installed ({exc}); {INSTALL_HINT}") from None
    path = Path(path)
    if not path.is_file():
        raise PosepipeError(path, "ONNX model not found")
    device = device or schema_default("keypoints2d.rtmlib.device")
    options = ort.SessionOptions()
    options.add_session_config_entry(SPIN_KEY, "0")
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=options, providers=_providers(device))
    except PosepipeError:
        raise
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise PosepipeError(path, f"not a usable ONNX model ({type(exc).__name__}: {exc})") from exc
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4:
        raise PosepipeError(path, f"input {inp.name!r} has shape {shape}, expected (batch, 3, height, width)")
    height = shape[2] if isinstance(shape[2], int) else default_size[1]
    width = shape[3] if isinstance(shape[3], int) else default_size[0]
    return Network(
        session=session, path=path, input_name=inp.name, output_names=[o.name for o in session.get_outputs()],
        size=(width, height), dynamic_batch=not isinstance(shape[0], int), provider=session.get_providers()[0],
    )  # fmt: skip


def run_network(net: Network, batch: np.ndarray) -> list[np.ndarray]:
    """Run ``batch`` float32 (B, 3, H, W); a network with a fixed batch of 1 runs B times."""
    if net.dynamic_batch or len(batch) == 1:
        return net.session.run(net.output_names, {net.input_name: batch})
    parts = [net.session.run(net.output_names, {net.input_name: batch[i : i + 1]}) for i in range(len(batch))]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(net.output_names))]


# ---------------------------------------------------------------------------------------------
# numerics: pre- and post-processing (no I/O)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """BGR uint8 (h, w, 3) -> (canvas uint8 (H, W, 3), ratio) for a network input of ``size``
    (width W, height H): scaled by ``min(H / h, W / w)`` into the top-left corner of grey 114;
    a frame of exactly the input size is used as it is (ratio 1)."""
    import cv2

    width, height = size
    if image.shape[:2] == (height, width):
        return image.copy(), 1.0
    ratio = min(height / image.shape[0], width / image.shape[1])
    new_w, new_h = int(image.shape[1] * ratio), int(image.shape[0] * ratio)
    canvas = np.full((height, width, 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, ratio


def to_input(images: list[np.ndarray]) -> np.ndarray:
    """(H, W, 3) images (uint8 or float64) -> float32 (B, 3, H, W)."""
    return np.ascontiguousarray(np.stack([im.transpose(2, 0, 1) for im in images]), dtype=np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, *, score_threshold: float, nms_threshold: float) -> np.ndarray:
    """Indices of the kept boxes, best first: scores > ``score_threshold``, then greedy NMS that
    drops a box whose IoU with a kept one exceeds ``nms_threshold``. Areas count the edge pixels
    ((x2 - x1 + 1) * (y2 - y1 + 1), the py-faster-rcnn convention rtmlib uses)."""
    candidates = np.flatnonzero(scores > score_threshold)
    b, s = boxes[candidates], scores[candidates]
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    order = s.argsort()[::-1]
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        iw = np.maximum(0.0, np.minimum(b[best, 2], b[rest, 2]) - np.maximum(b[best, 0], b[rest, 0]) + 1)
        ih = np.maximum(0.0, np.minimum(b[best, 3], b[rest, 3]) - np.maximum(b[best, 1], b[rest, 1]) + 1)
        overlap = iw * ih
        iou = overlap / (area[best] + area[rest] - overlap)
        order = rest[iou <= nms_threshold]
    return candidates[np.array(kept, dtype=np.int64)]


def rtmo_persons(
    dets: np.ndarray, keypoints: np.ndarray, ratio: float, *, score_threshold: float, nms_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's RTMO outputs (dets (N, 5), keypoints (N, 17, 3), input pixels) -> the kept
    persons' boxes (n, 4), scores (n,), keypoints (n, 17, 3) in frame pixels."""
    boxes = dets[:, :4] / ratio
    xy = keypoints[..., :2] / ratio
    keep = nms(boxes, dets[:, 4], score_threshold=score_threshold, nms_threshold=nms_threshold)
    points = np.concatenate([xy[keep], keypoints[keep][..., 2:3]], axis=-1)
    return boxes[keep], dets[keep, 4], points


def yolox_boxes(dets: np.ndarray, ratio: float, *, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One frame's YOLOX end2end ``dets`` (N, 5) -> boxes (n, 4) in frame pixels and scores (n,)
    of the boxes scoring more than ``score_threshold``, in the network's order."""
    keep = dets[:, 4] > score_threshold
    return dets[keep, :4] / ratio, dets[keep, 4]


def box_center_scale(box: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and size (2,) of the crop of ``box`` (x1, y1, x2, y2, float32): the box enlarged by
    :data:`BOX_PADDING` and widened or heightened to the input's aspect ratio ``size`` (w, h)."""
    box = np.asarray(box)
    center = np.array([box[0] + box[2], box[1] + box[3]]) * 0.5
    scale = np.array([box[2] - box[0], box[3] - box[1]]) * BOX_PADDING
    aspect = size[0] / size[1]
    if scale[0] > scale[1] * aspect:
        scale = np.array([scale[0], scale[0] / aspect])
    else:
        scale = np.array([scale[1] * aspect, scale[1]])
    return center, scale


def crop_matrix(center: np.ndarray, scale: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine map from the frame to the network input (mmpose get_warp_matrix, no rotation):
    three float32 point pairs, the third the first minus the second turned 90 degrees."""
    import cv2

    def triangle(first, second):
        pts = np.zeros((3, 2), np.float32)
        pts[0], pts[1] = first, second
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], np.float32)
        return pts

    width, height = size
    src = triangle(center, center + np.array([0.0, -0.5 * scale[0]]))
    dst = triangle([0.5 * width, 0.5 * height], np.array([0.5 * width, 0.5 * height]) + [0.0, -0.5 * width])
    return cv2.getAffineTransform(src, dst)


def pose_crop(image: np.ndarray, box: np.ndarray, size: tuple[int, int]):
    """(normalised float64 crop (h, w, 3), centre, scale) of one box for RTMPose."""
    import cv2

    center, scale = box_center_scale(box, size)
    crop = cv2.warpAffine(
        image, crop_matrix(center, scale, size), (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR
    )
    return (crop - np.array(POSE_MEAN)) / np.array(POSE_STD), center, scale


def simcc_decode(
    simcc_x: np.ndarray, simcc_y: np.ndarray, centers: np.ndarray, scales: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """SimCC (n, 17, Wx), (n, 17, Wy) -> keypoints (n, 17, 3) x, y, score in frame pixels.

    Location: argmax per axis / :data:`SIMCC_SPLIT_RATIO` (−1 where the score is <= 0), then
    ``loc / size * scale + centre - scale / 2``; score: the mean of the two maxima.
    """
    n, k, _ = simcc_x.shape
    flat_x, flat_y = simcc_x.reshape(n * k, -1), simcc_y.reshape(n * k, -1)
    locs = np.stack([flat_x.argmax(1), flat_y.argmax(1)], axis=-1).astype(np.float32)
    scores = 0.5 * (flat_x.max(1) + flat_y.max(1))
    locs[scores <= 0.0] = -1
    locs, scores = locs.reshape(n, k, 2), scores.reshape(n, k)
    xy = (
        locs / SIMCC_SPLIT_RATIO / np.asarray(size) * scales[:, None] + centers[:, None] - scales[:, None] / 2
    )
    return np.concatenate([xy, scores[..., None]], axis=-1)


# ---------------------------------------------------------------------------------------------
# models and a timeline


@dataclass
class Estimator:
    """The networks of one model, ready for frames."""

    model: RtmModel
    pose: Network
    det: Network | None
    score_threshold: float
    nms_threshold: float


def build_estimator(
    model: str | None = None,
    *,
    pose_onnx: str | os.PathLike,
    det_onnx: str | os.PathLike | None = None,
    device: str | None = None,
    threads: int | None = None,
    score_threshold: float | None = None,
    nms_threshold: float | None = None,
) -> Estimator:
    """Open the ONNX files of ``model`` (a name of :data:`MODELS`; None: the schema's default)."""
    model = model or schema_default("keypoints2d.rtmlib.model")
    if model not in MODELS:
        raise PosepipeError(None, f"unknown rtmlib model {model!r}; offered: {', '.join(MODELS)}")
    spec = MODELS[model]
    device = device or schema_default("keypoints2d.rtmlib.device")
    if threads is None and (env := os.environ.get("OMP_NUM_THREADS", "")).isdigit():
        threads = int(env)
    pose = open_network(pose_onnx, default_size=spec.pose_size, device=device, threads=threads)
    det = None
    if spec.kind == "rtmpose":
        if det_onnx is None:
            raise PosepipeError(
                pose_onnx, f"{model} is top-down: it needs its person detector's ONNX (--det-weights)"
            )
        det = open_network(det_onnx, default_size=spec.det_size, device=device, threads=threads)
    score = schema_default("keypoints2d.score_threshold") if score_threshold is None else score_threshold
    iou = schema_default("keypoints2d.rtmlib.nms_threshold") if nms_threshold is None else nms_threshold
    for what, value in (("score", score), ("NMS", iou)):
        if not 0.0 <= value <= 1.0:
            raise PosepipeError(None, f"{what} threshold must be in [0, 1], got {value}")
    return Estimator(spec, pose, det, float(score), float(iou))


def _outputs(
    net: Network, outputs: list[np.ndarray], *, want: tuple[tuple[int, ...], ...], what: str
) -> list:
    """Check the outputs' trailing shapes (``-1`` any) against the published interface."""
    ok = len(outputs) >= len(want) and all(
        o.ndim == len(w) and all(a in (-1, b) for a, b in zip(w, o.shape, strict=True))
        for o, w in zip(outputs, want, strict=False)
    )
    if not ok:
        got = ", ".join(f"{n} {tuple(o.shape)}" for n, o in zip(net.output_names, outputs, strict=True))
        raise PosepipeError(net.path, f"outputs {got} are not {what}'s published layout {want}")
    return outputs


def estimate(est: Estimator, images: list[np.ndarray], timings: dict | None = None) -> list:
    """Persons in each BGR uint8 frame of ``images``: per frame (boxes (n, 4) x1, y1, x2, y2,
    box scores (n,), keypoints (n, 17, 3) x, y, score) in frame pixels."""
    t = timings if timings is not None else {}

    def clock(key, start):
        t[key] = t.get(key, 0.0) + time.perf_counter() - start

    start = time.perf_counter()
    first = est.det if est.det is not None else est.pose
    boxed = [letterbox(image, first.size) for image in images]
    batch = to_input([b for b, _ in boxed])
    clock("preprocess", start)
    start = time.perf_counter()
    raw = run_network(first, batch)
    clock("network", start)
    start = time.perf_counter()
    if est.det is None:  # RTMO
        dets, keypoints = _outputs(
            est.pose, raw, want=((-1, -1, 5), (-1, -1, NUM_COCO_JOINTS, 3)), what="RTMO"
        )[:2]
        out = [
            rtmo_persons(dets[i], keypoints[i], ratio, score_threshold=est.score_threshold, nms_threshold=est.nms_threshold)
            for i, (_, ratio) in enumerate(boxed)
        ]  # fmt: skip
        clock("postprocess", start)
        return out
    dets = _outputs(est.det, raw, want=((-1, -1, 5),), what="YOLOX end2end")[0]
    found = [
        yolox_boxes(dets[i], ratio, score_threshold=est.score_threshold) for i, (_, ratio) in enumerate(boxed)
    ]
    crops, centers, scales = [], [], []
    for image, (boxes, _) in zip(images, found, strict=True):
        for box in boxes:
            crop, center, scale = pose_crop(image, box, est.pose.size)
            crops.append(crop)
            centers.append(center)
            scales.append(scale)
    clock("preprocess", start)
    if not crops:
        return [(b, s, np.zeros((0, NUM_COCO_JOINTS, 3), np.float32)) for b, s in found]
    start = time.perf_counter()
    simcc = run_network(est.pose, to_input(crops))
    clock("network", start)
    start = time.perf_counter()
    simcc_x, simcc_y = _outputs(
        est.pose, simcc, want=((-1, NUM_COCO_JOINTS, -1), (-1, NUM_COCO_JOINTS, -1)), what="RTMPose SimCC"
    )[:2]
    points = simcc_decode(simcc_x, simcc_y, np.array(centers), np.array(scales), est.pose.size)
    out, at = [], 0
    for boxes, scores in found:
        out.append((boxes, scores, points[at : at + len(boxes)]))
        at += len(boxes)
    clock("postprocess", start)
    return out


def run_on_timeline(
    est: Estimator, timeline, *, batch_size: int | None = None, frame_range=None, progress_every: float = 5.0
) -> tuple[list, dict]:
    """:func:`estimate` over the timeline's frames (or ``[first, stop)`` of ``frame_range``), decoded
    once by :func:`posepipe.decode.iter_frames`, ``batch_size`` frames per call.

    Returns:
        (per frame of the range (boxes, scores, keypoints), timings in seconds: decode,
        preprocess, network, postprocess, total, frames_per_second).
    """
    from posepipe.decode import iter_frames

    batch_size = batch_size or schema_default("keypoints2d.batch_size")
    if batch_size < 1:
        raise PosepipeError(None, f"batch size must be at least 1, got {batch_size}")
    span = range(*(frame_range or (0, timeline.frame_count)))
    timings: dict = {"decode": 0.0}
    frames: list = []
    progress = Progress(len(span), label=timeline.video_id, logger=log, every=progress_every)
    started = time.perf_counter()
    batch: list = []
    decoding = iter_frames(timeline, start=span.start, stop=span.stop)
    while True:
        t0 = time.perf_counter()
        item = next(decoding, None)
        timings["decode"] += time.perf_counter() - t0
        if item is not None:
            batch.append(item[1])
        if batch and (item is None or len(batch) == batch_size):
            frames += estimate(est, batch, timings)
            batch = []
            progress.update(len(frames))
        if item is None:
            break
    if len(frames) != len(span):
        raise PosepipeError(
            timeline.source, f"decoded {len(frames)} frames, the timeline range has {len(span)}"
        )
    total = time.perf_counter() - started
    timings = {k: round(v, 4) for k, v in timings.items()}
    timings["seconds"] = round(total, 3)
    timings["frames_per_second"] = round(len(span) / total, 3) if total > 0 else None
    return frames, timings


def published_onnx(name: str, *, models_dir: str | os.PathLike = MODELS_DIR) -> Path:
    """The extracted ONNX of the published archive ``name``, fetched if absent
    (:func:`posepipe.weights.fetch_member`; offline, the error names the URL and where to put it)."""
    from posepipe.weights import fetch_member

    return fetch_member(name, models_dir=models_dir)


def detect_keypoints(
    timeline_json: str | os.PathLike,
    *,
    model: str | None = None,
    pose_onnx: str | os.PathLike | None = None,
    det_onnx: str | os.PathLike | None = None,
    device: str | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    score_threshold: float | None = None,
    nms_threshold: float | None = None,
    frame_range: tuple[int, int] | None = None,
    progress_every: float = 5.0,
) -> Keypoints2D:
    """Every person of every frame of the timeline (or of the shard ``frame_range``), with the meta
    that traces the result. ONNX files not given are the published ones of ``model``."""
    import onnxruntime as ort

    from posepipe.artefacts.timeline import load_timeline

    timeline = load_timeline(timeline_json)
    model = model or schema_default("keypoints2d.rtmlib.model")
    spec = MODELS.get(model)
    if spec is None:
        raise PosepipeError(None, f"unknown rtmlib model {model!r}; offered: {', '.join(MODELS)}")
    pose_onnx = pose_onnx or published_onnx(spec.pose)
    if spec.kind == "rtmpose":
        det_onnx = det_onnx or published_onnx(spec.det)
    started = time.perf_counter()
    est = build_estimator(
        model, pose_onnx=pose_onnx, det_onnx=det_onnx, device=device, threads=threads,
        score_threshold=score_threshold, nms_threshold=nms_threshold,
    )  # fmt: skip
    load_seconds = time.perf_counter() - started
    if frame_range is not None:
        from posepipe.shards import check_range

        frame_range = check_range(frame_range, timeline.frame_count, path=timeline_json)
    frames, timings = run_on_timeline(
        est, timeline, batch_size=batch_size, frame_range=frame_range, progress_every=progress_every
    )
    nets = {"pose": est.pose} | ({"det": est.det} if est.det is not None else {})
    meta = {
        "detector": f"rtmlib {model}",
        "model": model,
        "kind": spec.kind,
        "weights": {k: {**weights_record(n.path), "input_size": list(n.size)} for k, n in nets.items()},
        "weights_sha256": weights_record(est.pose.path)["sha256"],
        "score_threshold": est.score_threshold,
        "nms_threshold": est.nms_threshold if spec.kind == "rtmo" else None,
        "keypoint_score": KEYPOINT_SCORE[spec.kind],
        "image_size": [timeline.width, timeline.height],
        "frame_count": timeline.frame_count,
        "timeline": os.fspath(timeline_json),
        "device": est.pose.provider,
        "batch_size": batch_size or schema_default("keypoints2d.batch_size"),
        "timings": {"model_load_seconds": round(load_seconds, 3), **timings},
        "versions": {"posepipe": __version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
        "persons": int(sum(len(b) for b, _, _ in frames)),
        "frames_with_person": int(sum(len(b) > 0 for b, _, _ in frames)),
    }
    if frame_range is not None:
        meta["frame_range"] = list(frame_range)
    return from_frames(frames, width=timeline.width, height=timeline.height, meta=meta)


def add_source_options(g) -> None:
    """Options of ``python -m posepipe keypoints2d --source rtmlib`` (``--weights``, ``--batch-size``
    and ``--score-threshold`` are shared with the other sources)."""
    from posepipe.settings import add_option

    add_option(
        g, "--rtmlib-model", key="keypoints2d.rtmlib.model", choices=tuple(MODELS), help="rtmlib model name"
    )
    g.add_argument(
        "--det-weights", help="local ONNX of the person detector (top-down models; default: published)"
    )
    add_option(
        g,
        "--rtmlib-device",
        key="keypoints2d.rtmlib.device",
        help="ONNX Runtime device: cpu, cuda, cuda:1, ...",
    )
    add_option(
        g, "--nms-threshold", key="keypoints2d.rtmlib.nms_threshold", type=float, help="RTMO's NMS IoU"
    )
    g.add_argument(
        "--threads", type=int, help="ONNX Runtime threads (default: $OMP_NUM_THREADS, else its own)"
    )


def run_source(settings: Keypoints2DSettings, inputs: SourceInputs) -> Keypoints2D:
    """``keypoints2d --source rtmlib``: the model ``settings.rtmlib.model`` on ``inputs.timeline``,
    written to ``inputs.out``; ``inputs.weights`` is the pose ONNX (None: the published one of the
    model, fetched into resources/models/), ``inputs.det_weights`` its person detector's."""
    kp = detect_keypoints(
        inputs.timeline, model=settings.rtmlib.model, pose_onnx=inputs.weights, det_onnx=inputs.det_weights,
        device=settings.rtmlib.device, threads=inputs.threads, batch_size=settings.batch_size,
        score_threshold=settings.score_threshold, nms_threshold=settings.rtmlib.nms_threshold,
        frame_range=inputs.frame_range, progress_every=inputs.progress_every,
    )  # fmt: skip
    save_keypoints2d(inputs.out, kp)
    log.info(
        "%s: %d persons in %d/%d frames",
        inputs.out,
        kp.meta["persons"],
        kp.meta["frames_with_person"],
        kp.num_frames,
    )
    return kp


__all__ = ["MODELS", "PUBLISHED", "detect_keypoints", "estimate", "build_estimator"]
