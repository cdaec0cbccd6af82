"""Stage ``keypoints2d``: 2D keypoints for one timeline, from the configured 2D source.

    python -m posepipe keypoints2d frames/timeline.json --out keypoints2d.npz --source detectron2 \\
        --config COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml \\
        --weights resources/models/keypoint_rcnn_X_101_32x8d_FPN_3x.pkl
    python -m posepipe keypoints2d frames/timeline.json --out keypoints2d.npz \\
        --source file --input video.d2.npz

The sources are listed in :data:`posepipe.registry.SOURCES2D`; each source module provides
``add_source_options(group)`` (its own options, in a group named after it) and
``run_source(settings, inputs)`` (a :class:`Keypoints2DSettings` and a :class:`SourceInputs`:
write ``inputs.out`` for ``inputs.timeline``). Heavy modules (torch, detectron2) are imported by
``run_source``, so ``--help`` stays fast and the ``file`` source works without detectron2.
"""

from __future__ import annotations

import argparse
import importlib
import os
from dataclasses import dataclass, field

from posepipe.artefacts.keypoints2d import Keypoints2D, join_ranges, load_keypoints2d, save_keypoints2d
from posepipe.artefacts.timeline import load_timeline_header
from posepipe.errors import PosepipeError
from posepipe.registry import SOURCES2D
from posepipe.settings import add_option, schema_default, settings_from_args
from posepipe.shards import range_arg


@dataclass(frozen=True)
class RtmlibSettings:
    """Settings of the rtmlib source (config ``keypoints2d.rtmlib:``); defaults are the workflow's.

    ``model``: an rtmlib model name (:data:`posepipe.keypoints2d.rtmlib_backend.MODELS`);
    ``device``: ONNX Runtime's device, "cpu" or "cuda[:N]"; ``nms_threshold``: RTMO's NMS IoU in
    [0, 1]. The ONNX files (``onnx``, ``det_onnx``) are inputs, not settings: the workflow passes
    them as ``--weights`` / ``--det-weights`` (:class:`SourceInputs`).
    """

    model: str = schema_default("keypoints2d.rtmlib.model")
    device: str = schema_default("keypoints2d.rtmlib.device")
    nms_threshold: float = schema_default("keypoints2d.rtmlib.nms_threshold")


@dataclass(frozen=True)
class Keypoints2DSettings:
    """Settings of the keypoints2d stage (config ``keypoints2d:``); defaults are the workflow's.

    ``source``: a name of :data:`posepipe.registry.SOURCES2D`; ``score_threshold``: persons with a
    lower box score are dropped (every source); ``model`` (a detectron2 model-zoo config or a local
    .yaml), ``min_size`` / ``max_size`` (test-time short side / longest side cap, pixels) and
    ``amp`` (float16 autocast on CUDA): the detectron2 source; ``batch_size`` (frames per forward
    pass) and ``device`` ("auto", "cpu" or "cuda[:N]"): the batched sources (``device``: detectron2;
    the rtmlib source has ``rtmlib.device``); ``rtmlib``: the rtmlib source's sub-section. The
    model files (``weights``) and the keypoints file (``file_pattern``) are inputs
    (:class:`SourceInputs`), not settings.
    """

    source: str = schema_default("keypoints2d.source")
    model: str = schema_default("keypoints2d.model")
    batch_size: int = schema_default("keypoints2d.batch_size")
    score_threshold: float = schema_default("keypoints2d.score_threshold")
    min_size: int = schema_default("keypoints2d.min_size")
    max_size: int = schema_default("keypoints2d.max_size")
    device: str = schema_default("keypoints2d.device")
    amp: bool = schema_default("keypoints2d.amp")
    rtmlib: RtmlibSettings = field(default_factory=RtmlibSettings)


@dataclass(frozen=True)
class SourceInputs:
    """What one run of a 2D source reads and writes besides its settings (no config keys).

    ``timeline``: frames/timeline.json; ``out``: the keypoints2d.npz to write; ``weights``: the
    model file (detectron2: .pkl or .pth; rtmlib: the pose ONNX, None: the published one);
    ``det_weights``: rtmlib's person detector ONNX (top-down models; None: the published one);
    ``input_file`` and ``fmt``: the keypoints file of the ``file`` source and its format ("auto"
    or a name of :data:`posepipe.keypoints2d.importers.FORMATS`); ``frame_range``: (first, stop),
    only that shard of the timeline (None: all of it); ``detections_per_image``: detectron2's cap
    of persons per frame (None: the model config's); ``threads``: ONNX Runtime threads (None:
    $OMP_NUM_THREADS, else its own); ``progress_every``: seconds between progress lines.
    """

    timeline: str | os.PathLike
    out: str | os.PathLike
    weights: str | os.PathLike | None = None
    det_weights: str | os.PathLike | None = None
    input_file: str | os.PathLike | None = None
    fmt: str = "auto"
    frame_range: tuple[int, int] | None = None
    detections_per_image: int | None = None
    threads: int | None = None
    progress_every: float = 5.0


def run_keypoints2d(
    timeline: str | os.PathLike,
    out: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    det_weights: str | os.PathLike | None = None,
    input_file: str | os.PathLike | None = None,
    fmt: str = "auto",
    frame_range: tuple[int, int] | None = None,
    detections_per_image: int | None = None,
    threads: int | None = None,
    progress_every: float = 5.0,
    settings: Keypoints2DSettings | None = None,
) -> Keypoints2D:
    """The ``keypoints2d`` stage: the source named by ``settings.source`` writes ``out`` for the
    timeline ``timeline`` (``settings``: config ``keypoints2d:``, None: the defaults; the other
    arguments as :class:`SourceInputs`). Returns the keypoints written."""
    settings = settings or Keypoints2DSettings()
    if settings.source not in SOURCES2D:
        raise PosepipeError(
            None, f"unknown keypoints2d source {settings.source!r}; offered: {', '.join(SOURCES2D)}"
        )
    inputs = SourceInputs(
        timeline=timeline, out=out, weights=weights, det_weights=det_weights, input_file=input_file, fmt=fmt,
        frame_range=frame_range, detections_per_image=detections_per_image, threads=threads,
        progress_every=progress_every,
    )  # fmt: skip
    return importlib.import_module(SOURCES2D[settings.source].module).run_source(settings, inputs)


def settings_of_args(args: argparse.Namespace) -> Keypoints2DSettings:
    """The :class:`Keypoints2DSettings` of parsed ``keypoints2d`` options (the rtmlib sub-section's
    options are ``--rtmlib-model``, ``--rtmlib-device`` and ``--nms-threshold``)."""
    rtmlib = settings_from_args(RtmlibSettings, args, model=args.rtmlib_model, device=args.rtmlib_device)
    return settings_from_args(Keypoints2DSettings, args, rtmlib=rtmlib)


def _run(args: argparse.Namespace) -> None:
    run_keypoints2d(
        args.timeline, args.out, weights=args.weights, det_weights=args.det_weights, input_file=args.input,
        fmt=args.format, frame_range=args.frames, detections_per_image=args.detections_per_image,
        threads=args.threads, progress_every=args.progress_every, settings=settings_of_args(args),
    )  # fmt: skip


def run_keypoints2d_gather(shards, *, timeline_json, out) -> None:
    """Join a video's keypoints2d shards into its keypoints2d.npz (the arrays of an unsharded run)."""
    count = int(load_timeline_header(timeline_json)["frame_count"])
    kp = join_ranges([load_keypoints2d(p) for p in shards], frame_count=count, path=out)
    save_keypoints2d(out, kp)


def register_cli(sub) -> None:
    p = sub.add_parser("keypoints2d", help="every person's 17 COCO keypoints in every frame of a timeline")
    p.add_argument("timeline", help="frames/timeline.json")
    p.add_argument("--out", required=True, help="keypoints2d.npz")
    add_option(
        p, "--source", key="keypoints2d.source", choices=tuple(SOURCES2D), help="where keypoints come from"
    )
    add_option(
        p, "--score-threshold", key="keypoints2d.score_threshold", type=float,
        help="persons with a lower box score are dropped, detected or imported",
    )  # fmt: skip
    for name, source in SOURCES2D.items():
        importlib.import_module(source.module).add_source_options(p.add_argument_group(f"--source {name}"))
    p.add_argument(
        "--frames", type=range_arg, default=None, metavar="FIRST:STOP",
        help="only this shard of the timeline (frames FIRST..STOP-1); omit for all",
    )  # fmt: skip
    p.set_defaults(handler=_run)

    g = sub.add_parser("keypoints2d-gather", help="join keypoints2d shards into the video's keypoints2d.npz")
    g.add_argument("shards", nargs="+", help="keypoints2d shard files (any order)")
    g.add_argument("--timeline", required=True, help="frames/timeline.json")
    g.add_argument("--out", required=True, help="keypoints2d.npz")
    g.set_defaults(handler=lambda a: run_keypoints2d_gather(a.shards, timeline_json=a.timeline, out=a.out))
