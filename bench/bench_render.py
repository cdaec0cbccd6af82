"""Render stage speed and memory: our streaming renderer vs the upstream way of drawing the same poses.

The baseline draws like VideoPose3D's ``render_animation``: the whole input video is decoded into
memory first, then a matplotlib figure (an ``imshow`` panel with the 2D skeleton beside a 3D axes
panel) is updated and redrawn for every frame by ``FuncAnimation`` and piped to ffmpeg by
``FFMpegWriter`` (libx264, 3000 kbit/s, upstream's default). Both write the same output size.
Ours is ``posepipe.render.run_render``, with our defaults and, separately, with the baseline's
encoder settings (so the ratio of the drawing approaches alone shows too).

Every run is a child process; the parent samples the resident memory of the child and all its
descendants (the ffmpeg encoders) every 50 ms with psutil when installed; the child also reports
its own peak (``getrusage(RUSAGE_SELF)``) and its largest ffmpeg's (``RUSAGE_CHILDREN``).

    python bench/bench_render.py                          # 30 s clip, baseline on 150 frames
    python bench/bench_render.py --seconds 10 --baseline-frames 60 --threads 1 2

Input: tests/data/media/dance.mp4 (800x480, 17.5 s) looped to ``--seconds`` with its real 2D
keypoints (dance.coco.json) when present, else a synthetic 640x360 clip; 3D poses are synthetic.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MEDIA = ROOT / "tests" / "data" / "media"
sys.path.insert(0, str(ROOT))

# A standing person in the display frame (metres, z up), Human3.6M joint order.
REST_POSE = [
    [0, 0, 0.95], [-0.13, 0, 0.93], [-0.14, 0.02, 0.5], [-0.15, 0, 0.08], [0.13, 0, 0.93], [0.14, 0.02, 0.5],
    [0.15, 0, 0.08], [0, 0, 1.2], [0, 0, 1.45], [0, -0.05, 1.55], [0, 0, 1.68], [0.18, 0, 1.42], [0.3, 0, 1.15],
    [0.35, -0.05, 0.9], [-0.18, 0, 1.42], [-0.3, 0, 1.15], [-0.35, -0.05, 0.9],
]  # fmt: skip


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True
    )


def synthetic_poses(count: int, fps: float):
    """(count, 17, 3) float32: arms raised and lowered, a step, a slow turn; lowest point at z = 0."""
    import numpy as np

    t = np.arange(count) / fps
    poses = np.repeat(np.asarray(REST_POSE, np.float64)[None], count, axis=0)
    lift = 0.35 * (1 + np.sin(2 * np.pi * t / 2))
    for wrist, elbow in ((13, 12), (16, 15)):
        poses[:, elbow, 2] += lift / 2
        poses[:, wrist, 2] += lift
    step = np.clip(np.sin(2 * np.pi * t), 0, 1)
    poses[:, 3, 1] -= 0.3 * step
    poses[:, 3, 2] += 0.2 * step
    turn = 0.6 * np.sin(2 * np.pi * t / 6)[:, None]
    x, y = poses[..., 0].copy(), poses[..., 1].copy()
    poses[..., 0], poses[..., 1] = np.cos(turn) * x - np.sin(turn) * y, np.sin(turn) * x + np.cos(turn) * y
    poses[..., 2] -= poses[..., 2].min()
    return poses.astype(np.float32)


def prepare(work: Path, *, seconds: float, name: str, small: bool = False) -> Path:
    """Write a clip + timeline.json + dataset2d.npz + pose3d.npz under ``work/name``; return the folder."""
    import numpy as np

    from posepipe.video import run_frames, run_probe

    folder = work / name
    if (folder / "pose3d.npz").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "clip.mp4"
    dance = SAMPLE_MEDIA / "dance.mp4"
    real = dance.exists() and not small
    if real:
        ffmpeg("-stream_loop", "-1", "-i", str(dance), "-t", str(seconds), "-an", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(clip))  # fmt: skip
    else:
        size = "320x240" if small else "640x360"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30", "-t", str(seconds), "-c:v", "libx264",
               "-preset", "veryfast", "-pix_fmt", "yuv420p", str(clip))  # fmt: skip
    probe = run_probe(clip, out_json=folder / "probe.json", out_pts=folder / "probe_pts.npy")
    header = run_frames(folder / "probe.json", folder / "probe_pts.npy", video_id=name,
                           out_json=folder / "timeline.json", out_csv=folder / "timeline.csv")  # fmt: skip
    count, width, height = header["frame_count"], probe["width"], probe["height"]
    if real:
        keypoints = np.zeros((525, 17, 2), np.float32)
        for row in json.loads((SAMPLE_MEDIA / "dance.coco.json").read_text()):
            keypoints[row["image_id"]] = np.asarray(row["keypoints"], np.float32).reshape(17, 3)[:, :2]
        keypoints = np.resize(keypoints, (count, 17, 2))
    else:
        base = np.asarray(REST_POSE, np.float32)[
            [10, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
        ]
        keypoints = np.empty((count, 17, 2), np.float32)
        keypoints[..., 0] = (
            width / 2 + (base[:, 0] * height * 0.5)[None] + 20 * np.sin(np.arange(count) / 20)[:, None]
        )
        keypoints[..., 1] = height * (0.95 - base[:, 2] * 0.5)[None]
    detected = np.ones(count, bool)
    detected[count // 3 : count // 3 + 15] = False
    np.savez(folder / "dataset2d.npz", positions_2d={name: {"custom": [keypoints]}},
             metadata={"layout_name": "coco", "num_joints": 17, "video_metadata": {name: {"w": width, "h": height}}},
             detected=detected, scores=np.ones((count, 17), np.float32))  # fmt: skip
    poses = synthetic_poses(count, header["fps"])
    np.savez(
        folder / "pose3d.npz",
        positions_3d=poses,
        positions_3d_display=poses,
        time=np.arange(count) / header["fps"],
    )
    return folder


# ---------------------------------------------------------------------------------------------
# children


def child_ours(spec: dict) -> dict:
    import dataclasses

    from posepipe.render import RenderSettings, run_render, stage

    if spec.get("max_parts"):
        stage.MAX_PARTS = spec["max_parts"]  # e.g. 1: one encoder using all the threads
    d = Path(spec["dir"])
    if spec.get("draw_only"):
        return _ours_draw_only(d, spec)
    # The options that are config render: keys go into the settings object, the rest are keywords.
    names = {f.name for f in dataclasses.fields(RenderSettings)}
    options = dict(spec["options"])
    settings = RenderSettings(**{name: options.pop(name) for name in names & set(options)})
    info = run_render(
        d / "timeline.json", d / "dataset2d.npz", d / "pose3d.npz", spec["out"], settings=settings, **options
    )
    return {
        "frames": info["frames"],
        "render_seconds": info["seconds"],
        "width": info["width"],
        "height": info["height"],
    }


def _ours_draw_only(d: Path, spec: dict) -> dict:
    """Decode + draw in one thread, no encoder: the part of our pipeline that replaces matplotlib."""
    from posepipe.decode import iter_frames
    from posepipe.render import FrameRenderer, build_view3d, default_thickness, load_inputs, plan_layout

    inputs = load_inputs(d / "timeline.json", d / "dataset2d.npz", d / "pose3d.npz")
    timeline = inputs.timeline
    lay = plan_layout(
        timeline.width, timeline.height, height=spec["options"]["height"], layout="side_by_side"
    )
    renderer = FrameRenderer(
        layout=lay, view=build_view3d(inputs.poses, size=lay.view_size), name=inputs.name,
        keypoints=inputs.keypoints, detected=inputs.detected, scores=inputs.scores, poses=inputs.poses,
        time=timeline.time, thickness=default_thickness(lay.height),
    )  # fmt: skip
    out = renderer.new_frame()
    started = time.perf_counter()
    for k, image in iter_frames(timeline, stop=spec["frames"]):
        renderer.render(k, image, out)
    seconds = time.perf_counter() - started
    return {"frames": spec["frames"], "render_seconds": seconds, "width": lay.width, "height": lay.height}


def child_baseline(spec: dict) -> dict:
    """Upstream-style: whole video in memory, matplotlib FuncAnimation redraw per frame, FFMpegWriter."""
    import imageio_ffmpeg
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.animation import FFMpegWriter, FuncAnimation

    from posepipe.artefacts.timeline import load_timeline
    from posepipe.decode import iter_frames
    from posepipe.render import plan_layout
    from posepipe.skeleton import COCO_BONES, H36M_PARENTS, H36M_RIGHT

    d = Path(spec["dir"])
    timeline = load_timeline(d / "timeline.json")
    data = np.load(d / "dataset2d.npz", allow_pickle=True)
    keypoints = next(iter(data["positions_2d"].item().values()))["custom"][0]
    poses = np.load(d / "pose3d.npz")["positions_3d_display"]
    started = time.perf_counter()
    frames = [
        image[..., ::-1].copy() for _, image in iter_frames(timeline)
    ]  # RGB, like upstream's read_video
    load_seconds = time.perf_counter() - started
    limit = min(spec["frames"], len(frames))
    lay = plan_layout(timeline.width, timeline.height, height=spec["height"], layout="side_by_side")

    plt.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    fig = plt.figure(figsize=(lay.width / 100, lay.height / 100), dpi=100)
    grid = fig.add_gridspec(1, 2, width_ratios=(lay.video_width, lay.view_size))
    ax_in = fig.add_subplot(grid[0])
    ax_in.set_axis_off()
    ax_in.set_title("Input")
    ax = fig.add_subplot(grid[1], projection="3d")
    ax.view_init(elev=15.0, azim=70.0)
    radius = 1.7
    ax.set_zlim3d([0, radius])
    ax.set_aspect("equal")
    image = ax_in.imshow(frames[0], aspect="equal")
    lines_2d = [ax_in.plot(*keypoints[0, [a, b]].T, color="pink")[0] for a, b in COCO_BONES]
    points = ax_in.scatter(*keypoints[0].T, 5, color="red", edgecolors="white", zorder=10)
    bones = [(j, p) for j, p in enumerate(H36M_PARENTS) if p >= 0]
    lines_3d = [
        ax.plot(*poses[0, [j, p]].T, zdir="z", c="red" if j in H36M_RIGHT else "black")[0] for j, p in bones
    ]

    def update(i: int) -> None:
        # Upstream re-centres the 3D box on the root every frame and redraws the whole figure.
        ax.set_xlim3d([-radius / 2 + poses[i, 0, 0], radius / 2 + poses[i, 0, 0]])
        ax.set_ylim3d([-radius / 2 + poses[i, 0, 1], radius / 2 + poses[i, 0, 1]])
        image.set_data(frames[i])
        for line, (a, b) in zip(lines_2d, COCO_BONES, strict=True):
            line.set_data(keypoints[i, [a, b], 0], keypoints[i, [a, b], 1])
        for line, (j, p) in zip(lines_3d, bones, strict=True):
            line.set_xdata(poses[i, [j, p], 0])
            line.set_ydata(poses[i, [j, p], 1])
            line.set_3d_properties(poses[i, [j, p], 2], zdir="z")
        points.set_offsets(keypoints[i])

    started, cpu = time.perf_counter(), os.times()
    if spec.get("draw_only"):
        # What FFMpegWriter.grab_frame does, minus the encoder: savefig of raw RGBA into a sink.
        import io

        for i in range(limit):
            update(i)
            fig.savefig(io.BytesIO(), format="rgba", dpi=100)
    else:
        anim = FuncAnimation(fig, update, frames=np.arange(limit), interval=1000 / timeline.fps, repeat=False)
        anim.save(spec["out"], writer=FFMpegWriter(fps=timeline.fps, bitrate=3000), dpi=100)
    seconds, end = time.perf_counter() - started, os.times()
    plt.close(fig)
    return {
        "frames": limit,
        "render_seconds": seconds,
        "load_seconds": load_seconds,
        "width": lay.width,
        "height": lay.height,
        # CPU of the rendering alone: loading all frames first would otherwise be charged to the
        # few frames rendered (it is spread over every frame in a full-length run).
        "cpu_ms": {
            "python": round((end.user + end.system - cpu.user - cpu.system) / limit * 1e3, 1),
            "ffmpeg": round(
                (end.children_user + end.children_system - cpu.children_user - cpu.children_system)
                / limit
                * 1e3,
                1,
            ),
        },
    }


def run_child(kind: str, spec: dict) -> dict:
    """Run one measurement in a child process; add wall time and peak memory."""
    try:
        import psutil
    except ImportError:
        psutil = None
    command = [sys.executable, __file__, "--child", kind, "--spec", json.dumps(spec)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        # Sum over the child and its descendants (the ffmpeg encoders): the job's real footprint.
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True) if psutil else None
    if sampler:
        sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    if sampler:
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        wall_seconds=round(wall, 2),
        fps=round(result["frames"] / result["render_seconds"], 2),
        tree_peak_mib=round(peak[0] / 2**20, 1) if psutil else None,
    )
    return result


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the benchmark clip")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--baseline-frames", type=int, default=150, help="frames the (slow) baseline renders")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["veryfast", "superfast", "ultrafast"],
        help="x264 presets of ours (the first, our default, at every --threads; the others at the most)",
    )
    parser.add_argument(
        "--flat", type=int, nargs=2, default=[300, 3000], help="frame counts of the memory check"
    )
    parser.add_argument(
        "--work", type=Path, help="keep inputs and outputs here (default: a temporary folder)"
    )
    parser.add_argument("--child", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.spec)
        result = child_ours(spec) if args.child == "ours" else child_baseline(spec)
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        # Linux reports KiB: this process's peak, and the largest of its finished children (ffmpeg;
        # for the baseline this includes the forked copy of the parent before it ran ffmpeg).
        result["python_peak_mib"] = round(me.ru_maxrss / 1024, 1)
        result["ffmpeg_peak_mib"] = round(kids.ru_maxrss / 1024, 1)
        # CPU time per frame does not depend on what else the machine runs, unlike frames/s.
        frames = result["frames"]
        result["python_cpu_ms"] = round((me.ru_utime + me.ru_stime) / frames * 1e3, 1)
        result["ffmpeg_cpu_ms"] = round((kids.ru_utime + kids.ru_stime) / frames * 1e3, 1)
        if "cpu_ms" in result:  # the baseline measures its rendering phase alone
            phase = result.pop("cpu_ms")
            result["python_cpu_ms"], result["ffmpeg_cpu_ms"] = phase["python"], phase["ffmpeg"]
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench_render.") as tmp:
        work = args.work or Path(tmp)
        clip = prepare(work, seconds=args.seconds, name="clip")
        rows = []

        def record(label: str, result: dict) -> None:
            rows.append((label, result))
            print(f"{label:<44} {json.dumps(result)}", flush=True)

        threads = max(args.threads)
        for i, preset in enumerate(args.presets):
            # The first (our default) preset at every thread count, the others at the most threads.
            for n in args.threads if i == 0 else [threads]:
                record(f"ours, {preset}, threads={n}", run_child("ours", {
                    "dir": str(clip), "out": str(work / f"ours_{preset}_{n}.mp4"),
                    "options": {"height": args.height, "threads": n, "preset": preset}}))  # fmt: skip
        if threads > 1:
            record(f"ours, {args.presets[0]}, threads={threads}, 1 part", run_child("ours", {
                "dir": str(clip), "out": str(work / "ours_one_part.mp4"), "max_parts": 1,
                "options": {"height": args.height, "threads": threads, "preset": args.presets[0]}}))  # fmt: skip
        record(f"ours, baseline encoder, threads={threads}", run_child("ours", {
            "dir": str(clip), "out": str(work / "ours_matched.mp4"),
            "options": {"height": args.height, "threads": threads, "bitrate": "3000k", "preset": "medium"}}))  # fmt: skip
        record("baseline (upstream way)", run_child("baseline", {
            "dir": str(clip), "out": str(work / "baseline.mp4"), "frames": args.baseline_frames,
            "height": args.height}))  # fmt: skip
        # Drawing alone (decode + draw, no encoder), one thread each: the part the redesign replaced.
        record("draw only: ours (decode + draw)", run_child("ours", {
            "dir": str(clip), "draw_only": True, "frames": 300, "options": {"height": args.height}}))  # fmt: skip
        record("draw only: baseline (matplotlib redraw)", run_child("baseline", {
            "dir": str(clip), "draw_only": True, "frames": 60, "height": args.height}))  # fmt: skip

        small = prepare(work, seconds=max(args.flat) / 30 + 0.5, name="small", small=True)
        for frames in args.flat:
            record(f"ours, flat-memory check, {frames} frames", run_child("ours", {
                "dir": str(small), "out": str(work / f"small{frames}.mp4"),
                "options": {"height": 240, "threads": 1, "max_frames": frames}}))  # fmt: skip

        base = next(r for label, r in rows if label.startswith("baseline"))
        draw = {label: r for label, r in rows if label.startswith("draw only")}
        base_cpu = base["python_cpu_ms"] + base["ffmpeg_cpu_ms"]
        print("\n| run | frames | size | frames/s | x baseline | CPU ms/frame: python + ffmpeg | x baseline "
              "| peak RSS: tree / python / ffmpeg (MiB) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for label, r in rows:
            same = (r["width"], r["height"]) == (base["width"], base["height"]) and not label.startswith(
                "draw only"
            )
            cpu = r["python_cpu_ms"] + r["ffmpeg_cpu_ms"]
            fps_ratio = f"{r['fps'] / base['fps']:.1f}" if same else "-"
            cpu_ratio = f"{base_cpu / cpu:.1f}" if same else "-"
            print(f"| {label} | {r['frames']} | {r['width']}x{r['height']} | {r['fps']} | {fps_ratio} | "
                  f"{r['python_cpu_ms']} + {r['ffmpeg_cpu_ms']} | {cpu_ratio} | "
                  f"{r['tree_peak_mib']} / {r['python_peak_mib']} / {r['ffmpeg_peak_mib']} |")  # fmt: skip
        ours_draw, base_draw = (
            draw["draw only: ours (decode + draw)"],
            draw["draw only: baseline (matplotlib redraw)"],
        )
        print(f"\ndrawing alone: ours {1e3 / ours_draw['fps']:.1f} ms/frame, baseline {1e3 / base_draw['fps']:.1f} "
              f"ms/frame: {ours_draw['fps'] / base_draw['fps']:.1f}x")  # fmt: skip
        sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(work.glob("*.mp4"))}
        print(f"\noutput sizes (MiB): {sizes}")
        print(f"cpus: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
