"""Where the time of the rtmlib 2D source goes on this machine's CPU, per frame.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_rtmlib.py --frames 60 --width 1280 --height 720

Measured, on a synthetic clip (``--width`` x ``--height``, coloured blocks on noise):

1. The backend's own work around the network, per frame: decoding (posepipe.decode, the existing
   decoder), pre-processing (letterbox, or crop warps for RTMPose), post-processing (threshold,
   NMS, SimCC decoding) and writing keypoints2d.npz, for the RTMO layout and the RTMPose + YOLOX
   layout, with the test ONNX models of posepipe.testing (tiny networks with the published
   interfaces, so that the network's time is nearly nil and everything else is visible).
2. ONNX Runtime's time for networks of the published sizes: stand-ins with random weights, since
   the real files cannot be downloaded here; a stand-in's time is what a network of that input and
   cost takes on this CPU with this ONNX Runtime.
   - RTMPose-m: input 1 x 3 x 256 x 192, about 1.93 GMAC (MMPose RTMPose README: 1.93 GFLOPs
     counted as multiply-adds): 18 3x3 convolutions.
   - The 640 x 640 networks, as a pyramid of 3x3 convolutions (strides 2 to 32, channels doubling
     at each stride, like the CSPDarknet backbones) sized to the YOLOX README's FLOPs (counted
     there as 2 x multiply-adds): YOLOX-s, 26.8 GFLOPs = 13.4 GMAC, whose backbone RTMO-s uses
     (``rtmo-s_8xb32-600e_body7-640x640.py``: CSPDarknet, deepen 0.33, widen 0.5), so its time is a
     lower bound of RTMO-s's network (no FLOPs are published for RTMO); YOLOX-m, 73.8 GFLOPs =
     36.9 GMAC, the person detector of the ``rtmpose-m`` layout.
   From these the per-frame ratio of the backend's own work to the network time of each layout:
   RTMO (the YOLOX-s stand-in) and RTMPose-m + YOLOX-m (the detector plus one RTMPose-m run per
   person found). Goal: under 10 %.
3. rtmlib's own ``RTMO`` and the backend's ``estimate`` on the same decoded frames and test model,
   one frame per call each, after decoding them all (in 1. each frame is decoded between network
   runs, in the same thread).
4. detectron2 Keypoint R-CNN (R50-FPN and X101-FPN, random weights) at its default 800 px on the
   CPU, if detectron2 can be imported; else the script says it is absent.

The figures are printed as JSON (and written to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_clip(path: Path, *, frames: int, width: int, height: int) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
    for _ in range(frames):
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        for _ in range(6):
            x, y = rng.integers(0, width - width // 8), rng.integers(0, height - height // 3)
            image[y : y + height // 3, x : x + width // 8] = rng.integers(80, 255, 3)
        writer.write(image)
    writer.release()
    return path


def standin_onnx(path: Path, *, convs: int = 16, channels: int = 64, seed: int = 0) -> tuple[Path, float]:
    """A conv stack with RTMPose-m's input and about its published cost; returns (path, GMAC)."""
    from onnx import TensorProto, helper, numpy_helper

    from posepipe.testing import _save_onnx

    rng = np.random.default_rng(seed)
    nodes, inits, macs = [], [], 0.0
    size = (256, 192)
    x, cin, h, w = "input", 3, *size
    for i in range(convs + 2):
        stride = 2 if i < 2 else 1
        weight = rng.normal(0, np.sqrt(2 / (9 * cin)), (channels, cin, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes += [
            helper.make_node(
                "Conv", [x, f"w{i}"], [f"c{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride] * 2
            ),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        h, w = h // stride, w // stride
        macs += h * w * channels * cin * 9
        x, cin = f"r{i}", channels
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["features"], axis=1),
    ]
    outputs = []
    for axis, bins in (("x", 2 * size[1]), ("y", 2 * size[0])):
        inits += [
            numpy_helper.from_array(
                rng.normal(0, 0.1, (channels, 17 * bins)).astype(np.float32), f"{axis}_w"
            ),
            numpy_helper.from_array(np.array([0, 17, bins], np.int64), f"{axis}_shape"),
        ]
        nodes += [
            helper.make_node("MatMul", ["features", f"{axis}_w"], [f"{axis}_mm"]),
            helper.make_node("Reshape", [f"{axis}_mm", f"{axis}_shape"], [f"simcc_{axis}"]),
        ]
        outputs.append(helper.make_tensor_value_info(f"simcc_{axis}", TensorProto.FLOAT, [1, 17, bins]))
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, *size])
    return _save_onnx(path, nodes, inits, [inp], outputs), macs / 1e9


def pyramid_onnx(
    path: Path, *, gmac: float, size: int = 640, base: int = 32, seed: int = 0
) -> tuple[Path, float]:
    """A stand-in of a 640 x 640 detector's cost: a stem 3x3 convolution to ``base`` channels at
    stride 2, then four stages, each a stride-2 3x3 convolution doubling the channels and further
    3x3 convolutions, added one at a time (round-robin over the stages, every one costing the same
    at these shapes) until ``gmac`` multiply-adds are reached; ReLU after each. Returns (path, GMAC)."""
    from onnx import TensorProto, helper, numpy_helper

    from posepipe.testing import _save_onnx

    rng = np.random.default_rng(seed)
    plan = [(base, 2)] + [(base * 2**k, 2) for k in range(1, 5)]  # (out channels, stride) per stage head
    per_conv = [(size / 2 ** (k + 1)) ** 2 * c * c * 9 for k, (c, _) in enumerate(plan)]
    fixed = (size / 2) ** 2 * base * 3 * 9 + sum((size / 2 ** (k + 1)) ** 2 * c * c / 2 * 9 for k, (c, _) in
                                                  enumerate(plan) if k)  # fmt: skip
    extra, macs, k = [0] * 5, fixed, 1
    while macs + per_conv[k] <= gmac * 1e9:
        extra[k] += 1
        macs += per_conv[k]
        k = k % 4 + 1
    nodes, inits, x, cin, n = [], [], "input", 3, 0
    for stage, (cout, stride) in enumerate(plan):
        for j in range(1 + extra[stage]):
            s = stride if j == 0 else 1
            weight = rng.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, 3, 3)).astype(np.float32)
            inits.append(numpy_helper.from_array(weight, f"w{n}"))
            nodes += [
                helper.make_node(
                    "Conv", [x, f"w{n}"], [f"c{n}"], kernel_shape=[3, 3], pads=[1] * 4, strides=[s] * 2
                ),
                helper.make_node("Relu", [f"c{n}"], [f"r{n}"]),
            ]
            x, cin, n = f"r{n}", cout, n + 1
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["features"]))
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, cin, 1, 1])
    return _save_onnx(path, nodes, inits, [inp], [out]), macs / 1e9


def time_network(path: Path, shape: tuple[int, ...], *, runs: int, threads: int | None) -> float:
    """Median seconds of one ONNX Runtime run (after two warm-up runs)."""
    from posepipe.keypoints2d.rtmlib_backend import open_network

    net = open_network(path, default_size=(shape[3], shape[2]), device="cpu", threads=threads)
    x = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    for _ in range(2):
        net.session.run(net.output_names, {net.input_name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        net.session.run(net.output_names, {net.input_name: x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def backend_run(timeline: Path, out: Path, **kwargs) -> dict:
    """The backend over the whole clip; per-frame milliseconds of each part, and persons found."""
    from posepipe.artefacts.keypoints2d import save_keypoints2d
    from posepipe.keypoints2d import rtmlib_backend as rb

    kp = rb.detect_keypoints(timeline, progress_every=1e9, **kwargs)
    t0 = time.perf_counter()
    save_keypoints2d(out, kp)
    store = time.perf_counter() - t0
    timings, frames = kp.meta["timings"], kp.num_frames
    parts = {k: timings[k] for k in ("decode", "preprocess", "network", "postprocess")}
    parts["store"] = store
    per_frame = {k: round(1000 * v / frames, 3) for k, v in parts.items()}
    per_frame["own_work"] = round(sum(v for k, v in per_frame.items() if k != "network"), 3)
    per_frame["own_work_without_decode"] = round(per_frame["own_work"] - per_frame["decode"], 3)
    return {"ms_per_frame": per_frame, "persons_per_frame": round(kp.meta["persons"] / frames, 2)}


def rtmlib_run(timeline: Path, model: Path) -> dict:
    """rtmlib's RTMO and the backend's :func:`estimate` on the same decoded frames (decoded first,
    so no decoder competes for the cores), one frame per call each, after one warm-up frame:
    ms per frame of each (pre-processing, network, post-processing)."""
    import contextlib
    import io

    import rtmlib

    from posepipe.artefacts.timeline import load_timeline
    from posepipe.decode import iter_frames
    from posepipe.keypoints2d import rtmlib_backend as rb

    frames = [image for _, image in iter_frames(load_timeline(timeline))]
    with contextlib.redirect_stdout(io.StringIO()):
        ref = rtmlib.RTMO(os.fspath(model), model_input_size=(640, 640), score_thr=0.5)
    ours = rb.build_estimator("rtmo-s", pose_onnx=model, score_threshold=0.5)

    def per_frame(run) -> float:
        run(frames[0])
        t0 = time.perf_counter()
        for image in frames:
            run(image)
        return round(1000 * (time.perf_counter() - t0) / len(frames), 3)

    return {
        "rtmlib_rtmo": per_frame(ref),
        "posepipe_estimate": per_frame(lambda image: rb.estimate(ours, [image])),
    }


def detectron2_times(timeline: Path, *, frames: int, persons: int = 3) -> dict:
    """detectron2's CPU seconds per frame for the R50-FPN and X101-FPN Keypoint R-CNN at their
    default test size (800 px short side, the clip's frames), batch 1. The weights are random but
    made to detect ``persons`` persons per frame (posepipe.testing.make_random_weights), so the
    keypoint head does the work of a scene with that many people; the published weights give the
    same network cost (same architecture), only other boxes."""
    try:
        import detectron2  # noqa: F401
    except ImportError as exc:
        return {"absent": f"detectron2 is not importable here ({exc}); no baseline measured"}
    import torch

    from posepipe.artefacts.timeline import load_timeline
    from posepipe.decode import iter_frames
    from posepipe.keypoints2d import detectron2_backend as d2b
    from posepipe.testing import make_random_weights

    tl = load_timeline(timeline)
    images = [image for _, image in iter_frames(tl, start=0, stop=2)]
    out = {"threads": torch.get_num_threads(), "persons_per_frame": persons, "torch": torch.__version__}
    for name in ("R_50_FPN_3x", "X_101_32x8d_FPN_3x"):
        config = f"COCO-Keypoints/keypoint_rcnn_{name}.yaml"
        with tempfile.TemporaryDirectory() as tmp:
            cfg = d2b.build_cfg(config, device="cpu", detections_per_image=persons)
            weights = make_random_weights(cfg, images=images, out=Path(tmp) / "w.pkl")
            detector = d2b.build_detector(config, weights=weights, device="cpu", detections_per_image=persons)
            d2b.run_on_timeline(detector, tl, batch_size=1, frame_range=(0, 1), progress_every=1e9)  # warm-up
            t0 = time.perf_counter()
            results, _ = d2b.run_on_timeline(detector, tl, batch_size=1, frame_range=(1, 1 + frames),
                                             progress_every=1e9)  # fmt: skip
            out[name] = {
                "s_per_frame": round((time.perf_counter() - t0) / frames, 3),
                "persons_found": [int(len(r[0])) for r in results],
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: its own)")
    ap.add_argument("--runs", type=int, default=20, help="timed runs of the stand-in network")
    ap.add_argument("--d2-frames", type=int, default=2, help="frames for each detectron2 model")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()

    import onnxruntime as ort

    from posepipe.testing import rtmo_onnx, rtmpose_onnx, write_timeline, yolox_onnx

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = write_clip(tmp / "clip.mp4", frames=args.frames, width=args.width, height=args.height)
        timeline = write_timeline(clip, tmp / "frames")
        rtmo, yolox, rtmpose = (
            rtmo_onnx(tmp / "rtmo.onnx"),
            yolox_onnx(tmp / "yolox.onnx"),
            rtmpose_onnx(tmp / "p.onnx"),
        )
        standin, gmac = standin_onnx(tmp / "standin.onnx")
        common = {"threads": args.threads, "score_threshold": 0.5}
        report = {
            "machine": {
                "cpus": os.cpu_count(),
                "onnxruntime": ort.__version__,
                "python": sys.version.split()[0],
            },
            "clip": {"frames": args.frames, "width": args.width, "height": args.height},
            "rtmo_layout": backend_run(timeline, tmp / "a.npz", model="rtmo-s", pose_onnx=rtmo, **common),
            "rtmpose_layout": backend_run(
                timeline, tmp / "b.npz", model="rtmpose-m", pose_onnx=rtmpose, det_onnx=yolox, **common
            ),
            "same_decoded_frames_same_test_model_ms_per_frame": rtmlib_run(timeline, rtmo),
            "standin_rtmpose_m": {
                "gmac": round(gmac, 3),
                "ms_per_crop": round(
                    1000 * time_network(standin, (1, 3, 256, 192), runs=args.runs, threads=args.threads), 2
                ),
            },
            "detectron2_cpu": detectron2_times(timeline, frames=args.d2_frames),
        }
        for name, published in (("standin_yolox_s_640", 13.4), ("standin_yolox_m_640", 36.9)):
            path, got = pyramid_onnx(tmp / f"{name}.onnx", gmac=published)
            ms = 1000 * time_network(
                path, (1, 3, 640, 640), runs=max(3, args.runs // 4), threads=args.threads
            )
            report[name] = {"gmac": round(got, 2), "ms_per_image": round(ms, 2)}
        rtmo_net = report["standin_yolox_s_640"]["ms_per_image"]
        persons = report["rtmpose_layout"]["persons_per_frame"]
        top_down_net = (
            report["standin_yolox_m_640"]["ms_per_image"]
            + persons * report["standin_rtmpose_m"]["ms_per_crop"]
        )
        report["own_work_over_network_per_frame"] = {
            layout: {
                "network_ms": round(net, 2),
                "with_decode": round(report[key]["ms_per_frame"]["own_work"] / net, 4),
                "without_decode": round(report[key]["ms_per_frame"]["own_work_without_decode"] / net, 4),
            }
            for layout, key, net in (
                ("rtmo-s (YOLOX-s stand-in, a lower bound)", "rtmo_layout", rtmo_net),
                (f"rtmpose-m + yolox-m ({persons} persons per frame)", "rtmpose_layout", top_down_net),
            )
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
