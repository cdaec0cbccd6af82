"""``python -m posepipe keypoints2d``: 2D keypoints for one timeline, from detectron2 or a file.

    python -m posepipe keypoints2d frames/timeline.json --out keypoints2d.npz --source detectron2 \\
        --config COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml \\
        --weights resources/models/keypoint_rcnn_X_101_32x8d_FPN_3x.pkl
    python -m posepipe keypoints2d frames/timeline.json --out keypoints2d.npz \\
        --source file --input video.d2.npz

Heavy modules (torch, detectron2) are imported by the handler, so ``--help`` stays fast and the
``file`` source works without detectron2.
"""

from __future__ import annotations

from posepipe.errors import PosepipeError
from posepipe.keypoints2d.detectron2_backend import ZOO_CONFIGS  # imports no detectron2 yet
from posepipe.settings import add_option
from posepipe.shards import range_arg


def _run(args) -> None:
    if args.source == "file":
        if not args.input:
            raise PosepipeError(
                args.timeline, "--source file needs --input FILE (a .npz from infer_video_d2 or COCO JSON)"
            )
        from posepipe.keypoints2d.importers import import_to_store

        import_to_store(
            args.input, timeline_json=args.timeline, out=args.out, fmt=args.format,
            score_threshold=args.score_threshold, frame_range=args.frames,
        )  # fmt: skip
        return
    if not args.weights:
        raise PosepipeError(
            args.timeline,
            "--source detectron2 needs --weights PATH (fetch it with: python -m posepipe download)",
        )
    from posepipe.keypoints2d.detectron2_backend import detect_to_store

    detect_to_store(
        args.timeline,
        out=args.out,
        config=args.config,
        weights=args.weights,
        batch_size=args.batch_size,
        device=args.device,
        score_threshold=args.score_threshold,
        detections_per_image=args.detections_per_image,
        min_size=args.min_size,
        max_size=args.max_size,
        amp=args.amp,
        progress_every=args.progress_every,
        frame_range=args.frames,
    )


def _gather(args) -> None:
    from posepipe.keypoints2d.store import join_ranges, load_keypoints2d, save_keypoints2d
    from posepipe.video import load_timeline_header

    count = int(load_timeline_header(args.timeline)["frame_count"])
    kp = join_ranges([load_keypoints2d(p) for p in args.shards], frame_count=count, path=args.out)
    save_keypoints2d(args.out, kp)


def register_cli(sub) -> None:
    p = sub.add_parser("keypoints2d", help="every person's 17 COCO keypoints in every frame of a timeline")
    p.add_argument("timeline", help="frames/timeline.json")
    p.add_argument("--out", required=True, help="keypoints2d.npz")
    add_option(
        p,
        "--source",
        key="keypoints2d.source",
        choices=("detectron2", "file"),
        help="where keypoints come from",
    )
    add_option(
        p, "--score-threshold", key="keypoints2d.score_threshold", type=float,
        help="persons with a lower box score are dropped, detected or imported",
    )  # fmt: skip

    g = p.add_argument_group("--source detectron2")
    add_option(
        g, "--config", key="keypoints2d.model",
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

    g = p.add_argument_group("--source file")
    g.add_argument(
        "--input", help="keypoints made by another tool: infer_video_d2 .npz or COCO results .json"
    )
    g.add_argument("--format", choices=("auto", "d2npz", "coco"), default="auto")
    p.add_argument(
        "--frames", type=range_arg, default=None, metavar="FIRST:STOP",
        help="only this shard of the timeline (frames FIRST..STOP-1); omit for all",
    )  # fmt: skip
    p.set_defaults(handler=_run)

    g = sub.add_parser("keypoints2d-gather", help="join keypoints2d shards into the video's keypoints2d.npz")
    g.add_argument("shards", nargs="+", help="keypoints2d shard files (any order)")
    g.add_argument("--timeline", required=True, help="frames/timeline.json")
    g.add_argument("--out", required=True, help="keypoints2d.npz")
    g.set_defaults(handler=_gather)
