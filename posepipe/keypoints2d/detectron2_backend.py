"""detectron2 Keypoint R-CNN on every frame of a timeline: the only module that imports detectron2.

Frames go through the model in batches (the model takes a list of images; ``DefaultPredictor``
takes one at a time), with exactly ``DefaultPredictor``'s preprocessing: BGR frames converted to
``cfg.INPUT.FORMAT``, resized by ``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)``. A
background thread decodes and resizes the next frames while the model runs (a bounded queue
caps the memory this takes).

Weights are loaded through a subclass of ``DetectionCheckpointer`` (:func:`checkpointer_class`).
detectron2 only *logs* parameters that are missing from the file (they stay random), unexpected
(ignored) or of another shape (random); here any such parameter is an error that names the
weights file and the parameters. Zoo ``.pkl`` files are pickles: they are read by the restricted
unpickler of ``posepipe.safeload``, so a weights file cannot run code.

Keypoint scores: not logits. detectron2 (0.6, ``heatmaps_to_keypoints`` + ``keypoint_rcnn_inference``)
returns for each joint a spatial-softmax probability of the heatmap peak: 1 / sum over the 56x56
heatmap of ``exp(logit - peak logit)``, the peak taken on the heatmap bicubically resized to the
box. It lies in (0, 1] (a very sharp peak can overshoot 1 slightly through the resize). Detectron1
files (and VideoPose3D's infer_video_d2 output) carry (x, y, logit, probability); detectron2
keeps only this probability. ``pred_keypoints`` is (N, 17, 3): x, y, score, in pixels of the input
frame (continuous coordinates: a pixel's centre is at +0.5).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posepipe import __version__
from posepipe.artefacts.keypoints2d import NUM_COCO_JOINTS, Keypoints2D, from_frames, save_keypoints2d
from posepipe.errors import PosepipeError
from posepipe.gpu import resolve_device
from posepipe.progress import Progress
from posepipe.settings import schema_default
from posepipe.weights import PUBLISHED, weights_record

if TYPE_CHECKING:
    from posepipe.keypoints2d.cli import Keypoints2DSettings, SourceInputs

log = logging.getLogger(__name__)

# The zoo configs whose weights posepipe.weights knows how to fetch; X_101 as in the original project.
ZOO_CONFIGS = tuple(entry.config for entry in PUBLISHED.values() if entry.config)
# Defaults of the Python API are the workflow's (posepipe.settings reads them from the config schema).
DEFAULT_CONFIG = schema_default("keypoints2d.model")
DEFAULT_SCORE_THRESHOLD = schema_default("keypoints2d.score_threshold")
DEFAULT_BATCH_SIZE = schema_default("keypoints2d.batch_size")
KEYPOINT_SCORE = (
    "spatial-softmax probability of the heatmap peak (detectron2 pred_keypoints[..., 2]), in (0, 1]"
)

INSTALL_HINT = (
    "detectron2 is not on PyPI. Install it into this environment after torch, either from its "
    "repository: pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git' "
    "(needs a C++ compiler, ninja, and setuptools<81 because detectron2 imports pkg_resources), or from "
    "conda-forge: conda install -c conda-forge detectron2. Alternatively import 2D keypoints made "
    "elsewhere with --source file"
)


def import_detectron2():
    """Import the detectron2 parts used here; a missing or broken install raises PosepipeError.

    Returns:
        A namespace with ``detectron2, get_cfg, model_zoo, build_model, DetectionCheckpointer, T``.
    """
    try:
        import detectron2
        import detectron2.data.transforms as T  # noqa: N812 (detectron2's own alias)
        from detectron2 import model_zoo
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model
    except ImportError as exc:
        if exc.name == "detectron2":  # the package itself is absent (or blocked in sys.modules)
            raise PosepipeError(None, f"detectron2 is not installed ({exc}). {INSTALL_HINT}") from None
        # Installed but unusable: a missing dependency (pkg_resources with setuptools>=81, fvcore)
        # or a C++ extension built for another torch.
        raise PosepipeError(
            None, f"detectron2 is installed but cannot be imported ({exc}). {INSTALL_HINT}"
        ) from None
    return _Detectron2(detectron2, get_cfg, model_zoo, build_model, DetectionCheckpointer, T)


@dataclass(frozen=True)
class _Detectron2:
    detectron2: object
    get_cfg: object
    model_zoo: object
    build_model: object
    DetectionCheckpointer: object
    T: object


# ---------------------------------------------------------------------------------------------
# configuration and model


def build_cfg(
    config: str = DEFAULT_CONFIG,
    *,
    weights: str | os.PathLike | None = None,
    device: str = schema_default("keypoints2d.device"),
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    detections_per_image: int | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
):
    """A detectron2 CfgNode for a COCO keypoint model.

    Args:
        config: a model-zoo name (one of :data:`ZOO_CONFIGS`, or any zoo path) or a local .yaml.
        weights: stored in ``MODEL.WEIGHTS`` (for ``DefaultPredictor``; this module loads itself).
        device: ``MODEL.DEVICE`` (auto: cuda if usable, else cpu; :func:`posepipe.gpu.resolve_device`).
        score_threshold: ``MODEL.ROI_HEADS.SCORE_THRESH_TEST``: persons below it are dropped.
        detections_per_image: ``TEST.DETECTIONS_PER_IMAGE`` (None keeps the config's, 100).
        min_size, max_size: ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST`` (None keeps 800 / 1333).
    """
    d2 = import_detectron2()
    cfg = d2.get_cfg()
    path = Path(config)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        source = os.fspath(path)
    else:
        try:
            source = d2.model_zoo.get_config_file(config)
        except RuntimeError:
            raise PosepipeError(
                config,
                "neither a local .yaml file nor a detectron2 model-zoo config; "
                f"offered: {', '.join(ZOO_CONFIGS)}",
            ) from None
    try:
        cfg.merge_from_file(source)
    except Exception as exc:  # yacs raises KeyError/AssertionError/yaml errors for a bad file
        raise PosepipeError(source, f"not a usable detectron2 config ({type(exc).__name__}: {exc})") from exc
    if not cfg.MODEL.KEYPOINT_ON or cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS != NUM_COCO_JOINTS:
        raise PosepipeError(source, "not a 17-joint COCO keypoint model (MODEL.KEYPOINT_ON / NUM_KEYPOINTS)")
    if not 0.0 <= score_threshold <= 1.0:
        raise PosepipeError(None, f"score threshold must be in [0, 1], got {score_threshold}")
    cfg.MODEL.WEIGHTS = "" if weights is None else os.fspath(weights)
    cfg.MODEL.DEVICE = resolve_device(device)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_threshold)
    if detections_per_image is not None:
        cfg.TEST.DETECTIONS_PER_IMAGE = int(detections_per_image)
    if min_size is not None:
        cfg.INPUT.MIN_SIZE_TEST = int(min_size)
    if max_size is not None:
        cfg.INPUT.MAX_SIZE_TEST = int(max_size)
    cfg.freeze()
    return cfg


def _suggest_download(config: str) -> str:
    names = [entry.name for entry in PUBLISHED.values() if entry.config == config]
    return (
        f"python -m posepipe download --name {names[0]}"
        if names
        else "python -m posepipe download --url URL --out PATH"
    )


def _list_keys(keys, limit: int = 8) -> str:
    keys = list(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(str(k) for k in keys[:limit]) + more


PIXEL_STATS = ("pixel_mean", "pixel_std")


def checkpointer_class(d2):
    """``DetectionCheckpointer`` subclassed to read files safely and keep what it finds.

    - ``.pkl`` (model zoo, Detectron1/Caffe2 layouts) is read by :func:`posepipe.safeload.load_pickle`,
      which builds arrays and containers only; torch files load with ``weights_only=True``.
    - ``_load_model`` keeps the incompatible keys (detectron2 only logs them) and the file's author.
    - ``pixel_mean`` / ``pixel_std`` in a file (detectron2 saved them from 2020-04 to 2021-02) are
      taken out of the unexpected keys, as detectron2 loads such files with the config's values;
      a warning says when the file's values differ from the config's.
    """

    class SafeDetectionCheckpointer(d2.DetectionCheckpointer):
        incompatible = None
        author = None

        def _load_file(self, filename):
            if not filename.endswith(".pkl"):
                return super()._load_file(filename)  # .pth/.pyth: through _torch_load below
            from posepipe.safeload import load_pickle

            data = load_pickle(filename, what="detectron2 weights (.pkl)", encoding="latin1")
            if not isinstance(data, dict):
                raise PosepipeError(filename, f"a .pkl of weights holds a dict, not {type(data).__name__}")
            if "model" in data and "__author__" in data:  # detectron2 model-zoo layout
                return data
            # Detectron1 / Caffe2 layout: blobs by Caffe2 names, converted by name matching.
            blobs = data.get("blobs", data)
            model = {k: v for k, v in blobs.items() if not k.endswith("_momentum")}
            return {"model": model, "__author__": "Caffe2", "matching_heuristics": True}

        def _torch_load(self, f):
            from posepipe.safeload import torch_load

            return torch_load(f, what="detectron2 weights")

        def _load_model(self, checkpoint):
            state = checkpoint.get("model", {})
            stats = {k: state[k] for k in PIXEL_STATS if k in state}
            self.author = checkpoint.get("__author__")
            incompatible = super()._load_model(checkpoint)
            for key, value in stats.items():
                if key in incompatible.unexpected_keys:
                    incompatible.unexpected_keys.remove(key)
                config_value = getattr(self.model, key, None)
                if config_value is not None and not np.allclose(
                    np.asarray(value, dtype=np.float64).ravel(),
                    config_value.detach().cpu().double().numpy().ravel(),
                ):
                    log.warning(
                        "weights file has %s %s, the config %s; using the config's (as detectron2 does)",
                        key, np.asarray(value).ravel().tolist(), config_value.cpu().ravel().tolist(),
                    )  # fmt: skip
            self.incompatible = incompatible
            return incompatible

    return SafeDetectionCheckpointer


def load_weights(model, weights: str | os.PathLike, *, config: str = "") -> dict:
    """Load ``weights`` into ``model`` with :func:`checkpointer_class`, refusing any mismatch.

    Returns:
        {'path', 'sha256', 'bytes', 'author'}: what the output records about the weights.

    Raises:
        PosepipeError: file missing, unreadable or refused for safety, or parameters missing
            from it, unexpected in it, or of another shape than the model's (names them).
    """
    d2 = import_detectron2()
    weights = Path(weights)
    if not weights.is_file():
        raise PosepipeError(
            weights, f"weights file not found (fetch the published file with: {_suggest_download(config)})"
        )
    checkpointer = checkpointer_class(d2)(model)
    try:
        checkpointer.load(os.fspath(weights))
    except PosepipeError:
        raise
    except Exception as exc:  # torch/zip errors of a corrupt or foreign file
        raise PosepipeError(
            weights, f"cannot load as detectron2 weights ({type(exc).__name__}: {exc})"
        ) from exc
    incompatible = checkpointer.incompatible
    if incompatible is None:
        raise PosepipeError(weights, "detectron2 did not load any model parameters from this file")
    problems = []
    # fvcore drops shape-mismatched parameters before loading, so they are "missing" too: name them once.
    wrong_shape = {k for k, _, _ in incompatible.incorrect_shapes}
    missing = [k for k in incompatible.missing_keys if k not in wrong_shape]
    if missing:
        problems.append(f"missing from the file, would be random ({len(missing)}): {_list_keys(missing)}")
    if incompatible.unexpected_keys:
        unexpected = incompatible.unexpected_keys
        problems.append(f"not in the model, would be ignored ({len(unexpected)}): {_list_keys(unexpected)}")
    if incompatible.incorrect_shapes:
        shapes = [f"{k} file {tuple(a)} vs model {tuple(b)}" for k, a, b in incompatible.incorrect_shapes]
        problems.append(f"shape mismatch, would be random ({len(shapes)}): {_list_keys(shapes)}")
    if problems:
        raise PosepipeError(
            weights,
            f"weights do not fit the model of {config or 'the config'}: {'; '.join(problems)}",
        )
    return {**weights_record(weights), "author": checkpointer.author}


@dataclass
class Detector:
    """A Keypoint R-CNN ready for batches: model in eval mode, its cfg, the test-time resize."""

    model: object
    cfg: object
    resize: object  # detectron2 ResizeShortestEdge
    device: str
    amp: bool
    config: str
    weights: dict


def build_detector(
    config: str = DEFAULT_CONFIG,
    *,
    weights: str | os.PathLike,
    device: str = "auto",
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    detections_per_image: int | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    amp: bool = False,
) -> Detector:
    """Build the model of ``config``, load ``weights`` (checked), set up the resize.

    ``amp`` (float16 autocast) applies on CUDA only; elsewhere it is ignored with a warning.
    """
    import torch

    d2 = import_detectron2()
    device = resolve_device(device)
    cfg = build_cfg(
        config, weights=weights, device=device, score_threshold=score_threshold,
        detections_per_image=detections_per_image, min_size=min_size, max_size=max_size,
    )  # fmt: skip
    model = d2.build_model(cfg)
    model.eval()
    record = load_weights(model, weights, config=config)
    if amp and torch.device(device).type != "cuda":
        log.warning("--amp needs a CUDA device; running in float32 on %s", device)
        amp = False
    if cfg.INPUT.FORMAT not in ("BGR", "RGB"):
        raise PosepipeError(config, f"INPUT.FORMAT {cfg.INPUT.FORMAT!r} is neither BGR nor RGB")
    resize = d2.T.ResizeShortestEdge(
        [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
    )
    return Detector(
        model=model, cfg=cfg, resize=resize, device=device, amp=amp, config=config, weights=record
    )


def preprocess(detector: Detector, image: np.ndarray) -> dict:
    """One BGR uint8 (H, W, 3) frame -> the model's input dict, as ``DefaultPredictor`` makes it.

    The image stays uint8 (C, H', W'): the model subtracts its float pixel mean on the device,
    which gives the same float32 values as DefaultPredictor's early cast and moves 4x fewer bytes.
    """
    import torch

    if detector.cfg.INPUT.FORMAT == "RGB":
        image = image[:, :, ::-1]
    height, width = image.shape[:2]
    resized = detector.resize.get_transform(image).apply_image(image)
    tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
    if detector.device.startswith("cuda"):
        tensor = tensor.pin_memory()  # lets the copy to the GPU overlap
    return {"image": tensor, "height": height, "width": width}


def predict(detector: Detector, inputs: list[dict]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run one batch of :func:`preprocess` outputs.

    Returns:
        Per image: boxes float32 (n, 4) x1, y1, x2, y2; scores float32 (n,); keypoints float32
        (n, 17, 3) x, y, score (see the module docstring), in pixels of the original frame.
    """
    import torch

    batch = [{**x, "image": x["image"].to(detector.device, non_blocking=True)} for x in inputs]
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=detector.amp):
        outputs = detector.model(batch)
    results = []
    for out in outputs:
        inst = out["instances"].to("cpu")
        results.append(
            (
                inst.pred_boxes.tensor.float().numpy(),
                inst.scores.float().numpy(),
                inst.pred_keypoints.float().numpy().reshape(-1, NUM_COCO_JOINTS, 3),
            )
        )
    return results


# ---------------------------------------------------------------------------------------------
# running over a timeline


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless told to stop; False if stopped (the consumer has gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decode(timeline, detector: Detector, q: queue.Queue, stop: threading.Event, frames: range) -> None:
    from posepipe.decode import iter_frames

    try:
        for t, image in iter_frames(timeline, start=frames.start, stop=frames.stop):
            if not _put(q, (t, preprocess(detector, image)), stop):
                return
        _put(q, _DONE, stop)
    except BaseException as exc:  # handed to the consumer, which raises it
        _put(q, _Failed(exc), stop)


def run_on_timeline(
    detector: Detector,
    timeline,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    queue_size: int | None = None,
    progress_every: float = 5.0,
    frame_range: tuple[int, int] | None = None,
) -> tuple[list, dict]:
    """Detect persons in every frame of ``timeline`` (a :class:`posepipe.artefacts.timeline.Timeline`), or in the
    frames ``[first, stop)`` of ``frame_range`` (decoding seeks there).

    Returns:
        (per frame of the range (boxes (n, 4), scores (n,), keypoints (n, 17, 3)), timings dict).
    """
    import torch

    if batch_size < 1:
        raise PosepipeError(None, f"batch size must be at least 1, got {batch_size}")
    span = range(*(frame_range or (0, timeline.frame_count)))
    total = len(span)
    q: queue.Queue = queue.Queue(maxsize=queue_size or 2 * batch_size)
    stop = threading.Event()
    worker = threading.Thread(
        target=_decode, args=(timeline, detector, q, stop, span), name="decode", daemon=True
    )
    frames: list = [None] * total
    done, waited, started = 0, 0.0, time.perf_counter()
    progress = Progress(total, label=timeline.video_id, logger=log, every=progress_every)
    if detector.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(detector.device)
    worker.start()
    try:
        batch: list = []
        finished = False
        while not finished:
            t0 = time.perf_counter()
            item = q.get()
            waited += time.perf_counter() - t0
            if isinstance(item, _Failed):
                raise item.exc
            if item is _DONE:
                finished = True
            else:
                batch.append(item)
            if batch and (finished or len(batch) == batch_size):
                for (t, _), result in zip(batch, predict(detector, [x for _, x in batch]), strict=True):
                    frames[t - span.start] = result
                done += len(batch)
                batch = []
                progress.update(done)
    finally:
        stop.set()
        worker.join(timeout=30)
    missing = [t for t, f in enumerate(frames) if f is None]
    if missing:
        raise PosepipeError(
            timeline.source,
            f"no detections for {len(missing)} frames, first {missing[0]} (decoding stopped?)",
        )
    seconds = time.perf_counter() - started
    timings = {
        "seconds": round(seconds, 3),
        "frames_per_second": round(total / seconds, 3) if seconds > 0 else None,
        "waiting_for_frames_seconds": round(waited, 3),
    }
    if detector.device.startswith("cuda"):
        timings["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated(detector.device))
    return frames, timings


def detect_keypoints(
    timeline_json: str | os.PathLike,
    *,
    config: str = DEFAULT_CONFIG,
    weights: str | os.PathLike,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "auto",
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    detections_per_image: int | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    amp: bool = False,
    progress_every: float = 5.0,
    frame_range: tuple[int, int] | None = None,
) -> Keypoints2D:
    """Every person in every frame of the timeline (or of the shard ``frame_range``), with the meta
    that traces the result.

    Args: as :func:`build_detector` and :func:`run_on_timeline`.

    Returns:
        Keypoints2D: boxes (N, 4) x1, y1, x2, y2; box_scores (N,); keypoints (N, 17, 3) x, y,
        score, in pixels of the timeline's frames; frames without a person have none.
    """
    import torch

    from posepipe.artefacts.timeline import load_timeline

    timeline = load_timeline(timeline_json)
    d2 = import_detectron2()
    started = time.perf_counter()
    detector = build_detector(
        config, weights=weights, device=device, score_threshold=score_threshold,
        detections_per_image=detections_per_image, min_size=min_size, max_size=max_size, amp=amp,
    )  # fmt: skip
    load_seconds = time.perf_counter() - started
    log.info(
        "%s: %s on %s, batch %d, input short side %d (max %d), score >= %.2f", timeline.video_id, config,
        detector.device, batch_size, detector.cfg.INPUT.MIN_SIZE_TEST, detector.cfg.INPUT.MAX_SIZE_TEST,
        score_threshold,
    )  # fmt: skip
    if frame_range is not None:
        from posepipe.shards import check_range

        frame_range = check_range(frame_range, timeline.frame_count, path=timeline_json)
    frames, timings = run_on_timeline(
        detector, timeline, batch_size=batch_size, progress_every=progress_every, frame_range=frame_range
    )
    cfg = detector.cfg
    meta = {
        "detector": "detectron2 Keypoint R-CNN",
        "config": config,
        "weights": detector.weights,
        "weights_sha256": detector.weights["sha256"],
        "score_threshold": cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
        "detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
        "min_size_test": cfg.INPUT.MIN_SIZE_TEST,
        "max_size_test": cfg.INPUT.MAX_SIZE_TEST,
        "input_format": cfg.INPUT.FORMAT,
        "keypoint_score": KEYPOINT_SCORE,
        "image_size": [timeline.width, timeline.height],
        "frame_count": timeline.frame_count,
        "timeline": os.fspath(timeline_json),
        "device": detector.device,
        "device_name": torch.cuda.get_device_name(detector.device)
        if detector.device.startswith("cuda")
        else "cpu",
        "batch_size": batch_size,
        "amp": detector.amp,
        "timings": {"model_load_seconds": round(load_seconds, 3), **timings},
        "versions": {
            "posepipe": __version__,
            "torch": torch.__version__,
            "detectron2": getattr(d2.detectron2, "__version__", None),
            "numpy": np.__version__,
        },
    }
    persons = sum(len(b) for b, _, _ in frames)
    meta["persons"] = int(persons)
    meta["frames_with_person"] = int(sum(len(b) > 0 for b, _, _ in frames))
    if frame_range is not None:
        meta["frame_range"] = list(frame_range)
    return from_frames(frames, width=timeline.width, height=timeline.height, meta=meta)


def run_detectron2(timeline_json: str | os.PathLike, *, out: str | os.PathLike, **kwargs) -> Keypoints2D:
    """:func:`detect_keypoints` and write ``out`` (keypoints2d.npz) atomically."""
    kp = detect_keypoints(timeline_json, **kwargs)
    save_keypoints2d(out, kp)
    log.info(
        "%s: %d persons in %d/%d frames",
        out,
        kp.meta["persons"],
        kp.meta["frames_with_person"],
        kp.num_frames,
    )
    return kp


def add_source_options(g) -> None:
    """Options of ``python -m posepipe keypoints2d --source detectron2``."""
    from posepipe.settings import add_option

    add_option(
        g, "--config", key="keypoints2d.model", dest="model",
        help=f"detectron2 model-zoo config ({', '.join(ZOO_CONFIGS)}) or a local .yaml",
    )  # fmt: skip
    g.add_argument("--weights", help="local weights file (.pkl or .pth) matching --config")
    add_option(g, "--batch-size", key="keypoints2d.batch_size", type=int, help="frames per forward pass")
    add_option(
        g, "--device", key="keypoints2d.device", help="auto (cuda if available), cpu, cuda, cuda:1, ..."
    )
    g.add_argument(
        "--detections-per-image", type=int, help="at most this many persons per frame (config default 100)"
    )
    add_option(g, "--amp", key="keypoints2d.amp", help="float16 autocast (CUDA only)")
    add_option(g, "--min-size", key="keypoints2d.min_size", type=int, help="test-time short side")
    add_option(g, "--max-size", key="keypoints2d.max_size", type=int, help="test-time longest side cap")
    g.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")


def run_source(settings: Keypoints2DSettings, inputs: SourceInputs) -> Keypoints2D:
    """``keypoints2d --source detectron2``: detect on ``inputs.timeline`` with the model
    ``settings.model`` and the weights file ``inputs.weights``, write ``inputs.out``."""
    if not inputs.weights:
        raise PosepipeError(
            inputs.timeline,
            "--source detectron2 needs --weights PATH (fetch it with: python -m posepipe download)",
        )
    return run_detectron2(
        inputs.timeline, out=inputs.out, config=settings.model, weights=inputs.weights,
        batch_size=settings.batch_size, device=settings.device, score_threshold=settings.score_threshold,
        detections_per_image=inputs.detections_per_image, min_size=settings.min_size,
        max_size=settings.max_size, amp=settings.amp, progress_every=inputs.progress_every,
        frame_range=inputs.frame_range,
    )  # fmt: skip
