"""Frames/s and peak memory of the batched detectron2 backend vs DefaultPredictor, frame by frame.

Both modes read the same frames of the same video through the frame timeline (decoding is part
of the time: the batched backend overlaps it with inference in a thread, the DefaultPredictor
loop does not), with the same config, weights and test-time size. Each mode runs in its own
process so that its peak RSS is its own. Model building and one warm-up forward pass are not
timed.

    /work/d2venv/bin/python bench/bench_keypoints2d.py --frames 30 --min-size 320 --max-size 533

Without --weights, a randomly initialised model is used (``posepipe.testing.make_random_weights``:
calibrated so that it detects ``--detections-per-image`` boxes per frame, 2 by default, about what
real weights give on a one-person clip); speed does not depend on the values of the weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_VIDEO = Path(__file__).resolve().parents[1] / "tests" / "data" / "media" / "dance.mp4"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _measure(args) -> dict:
    """One mode in this process: build, warm up, time every frame of the timeline."""
    import torch

    from posepipe import video
    from posepipe.keypoints2d import detectron2_backend as backend

    timeline = video.load_timeline(args.timeline)
    device = backend.resolve_device(args.device)
    options = {
        "device": device, "score_threshold": args.score_threshold, "min_size": args.min_size,
        "max_size": args.max_size, "detections_per_image": args.detections_per_image,
    }  # fmt: skip
    first = next(video.iter_frames(timeline, stop=1))[1]
    cuda = device.startswith("cuda")
    if args.mode == "batched":
        detector = backend.build_detector(args.config, weights=args.weights, amp=args.amp, **options)
        backend.predict(detector, [backend.preprocess(detector, first)] * args.batch_size)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        frames, _ = backend.run_on_timeline(
            detector, timeline, batch_size=args.batch_size, progress_every=1e9
        )
    else:
        from detectron2.engine import DefaultPredictor

        predictor = DefaultPredictor(backend.build_cfg(args.config, weights=args.weights, **options))
        predictor(first)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        frames = []
        for _, image in video.iter_frames(timeline):
            inst = predictor(image)["instances"].to("cpu")
            frames.append((inst.pred_boxes.tensor.numpy(), inst.scores.numpy(), inst.pred_keypoints.numpy()))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "mode": args.mode,
        "batch_size": args.batch_size if args.mode == "batched" else 1,
        "frames": len(frames),
        "persons": int(sum(len(b) for b, _, _ in frames)),
        "seconds": round(seconds, 3),
        "frames_per_second": round(len(frames) / seconds, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cuda_max_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }


def _prepare(args, tmp: Path) -> tuple[Path, Path]:
    """Timeline of the first --frames frames; random weights if none given."""
    from posepipe import video

    probe = video.run_probe(args.video, out_json=tmp / "probe.json", out_pts=tmp / "probe_pts.npy")
    end = (args.frames - 0.5) / probe["average_fps"] if args.frames else None
    video.run_frames(
        tmp / "probe.json", tmp / "probe_pts.npy", video_id="bench",
        out_json=tmp / "timeline.json", out_csv=tmp / "timeline.csv", settings=video.FramesSettings(end=end),
    )  # fmt: skip
    if args.weights:
        return tmp / "timeline.json", Path(args.weights)
    from posepipe.keypoints2d import detectron2_backend as backend
    from posepipe.testing import make_random_weights

    timeline = video.load_timeline(tmp / "timeline.json")
    images = [image for _, image in video.iter_frames(timeline, stop=3)]
    cfg = backend.build_cfg(
        args.config, device="cpu", score_threshold=args.score_threshold,
        detections_per_image=args.detections_per_image, min_size=args.min_size, max_size=args.max_size,
    )  # fmt: skip
    return tmp / "timeline.json", make_random_weights(cfg, images=images, out=tmp / "random.pkl")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(SAMPLE_VIDEO))
    p.add_argument("--config", default="COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml")
    p.add_argument("--weights", help="detectron2 weights file (default: random weights)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--min-size", type=int, default=800)
    p.add_argument("--max-size", type=int, default=1333)
    p.add_argument("--frames", type=int, default=30, help="first N frames of the video (0: all)")
    p.add_argument("--score-threshold", type=float, default=0.5)
    p.add_argument(
        "--detections-per-image", type=int, help="default: the config's 100; 2 with random weights"
    )
    p.add_argument("--amp", action="store_true", help="float16 autocast for the batched mode (CUDA only)")
    p.add_argument("--modes", default="predictor,batched", help="comma-separated: predictor, batched")
    p.add_argument("--json", help="also write the results here")
    # internal: one measurement in a child process
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--timeline", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.mode:
        Path(args.result).write_text(json.dumps(_measure(args)))
        return

    if args.detections_per_image is None and not args.weights:
        args.detections_per_image = 2
    with tempfile.TemporaryDirectory(prefix="bench_kp2d_") as tmp:
        tmp = Path(tmp)
        timeline, weights = _prepare(args, tmp)
        results = []
        for mode in args.modes.split(","):
            child = [
                sys.executable, __file__, "--mode", mode, "--timeline", str(timeline),
                "--result", str(tmp / "r.json"),
                "--config", args.config, "--weights", str(weights), "--device", args.device,
                "--batch-size", str(args.batch_size), "--min-size", str(args.min_size),
                "--max-size", str(args.max_size), "--score-threshold", str(args.score_threshold),
                *(["--detections-per-image", str(args.detections_per_image)]
                  if args.detections_per_image else []),
                *(["--amp"] if args.amp else []),
            ]  # fmt: skip
            subprocess.run(child, check=True)
            results.append(json.loads((tmp / "r.json").read_text()))

    print(f"video {args.video}, {results[0]['frames']} frames, {args.config},")
    print(
        f"weights {args.weights or 'random'}, detections per image {args.detections_per_image or 'config'},"
    )
    print(f"input short side {args.min_size} (max {args.max_size}), device {results[0]['device']}, "
          f"torch threads {results[0]['torch_threads']}")  # fmt: skip
    widths = {
        "mode": -10,
        "batch": 5,
        "frames/s": 9,
        "seconds": 8,
        "persons": 8,
        "peak RSS MB": 12,
        "CUDA MB": 8,
    }
    print(" ".join(f"{name:<{-w}}" if w < 0 else f"{name:>{w}}" for name, w in widths.items()))
    for r in results:
        cuda = "-" if r["cuda_max_allocated_mb"] is None else f"{r['cuda_max_allocated_mb']:.0f}"
        print(
            f"{r['mode']:<10} {r['batch_size']:>5} {r['frames_per_second']:>9.2f} {r['seconds']:>8.2f} "
            f"{r['persons']:>8} {r['peak_rss_mb']:>12.0f} {cuda:>8}"
        )
    fps = {r["mode"]: r["frames_per_second"] for r in results}
    if {"batched", "predictor"} <= fps.keys():
        print(f"speed-up batched / predictor: {fps['batched'] / fps['predictor']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
