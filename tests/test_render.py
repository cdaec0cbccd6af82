"""render: frame count and rate, decodability, where the skeletons are drawn, layouts, parts, audio, preview."""

from __future__ import annotations

import argparse
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from posepipe import render
from posepipe.errors import PosepipeError
from posepipe.render import (
    COLOURS,
    DEFAULT_AZIMUTH,
    DEFAULT_ELEVATION,
    build_view3d,
    plan_layout,
    render_video,
    view_limits,
)
from posepipe.skeleton import COCO_BONES, COCO_LEFT, COCO_RIGHT, H36M_BONES, H36M_LEFT, H36M_RIGHT, bone_side
from posepipe.video import make_timeline, write_probe
from tests.media import ffmpeg

W, H, FRAMES, RATE = 160, 120, 72, "30000/1001"
OUT_H = 240  # 2x the video: the video panel is 320 wide, the 3D panel 240
INTERPOLATED = range(30, 41)

# A person facing the camera with arms spread (the person's left is the image's right), in
# 160x120 pixels; every bone is long enough that its midpoint lies clear of the joint dots.
KEYPOINTS = np.array([
    [80, 20], [90, 12], [70, 12], [102, 20], [58, 20],      # nose, eyes, ears
    [100, 40], [60, 40], [125, 45], [35, 45], [148, 40], [12, 40],  # shoulders, elbows, wrists
    [94, 75], [66, 75], [100, 95], [60, 95], [104, 114], [56, 114],  # hips, knees, ankles
], np.float32)  # fmt: skip

# A T-pose in the display frame (metres, z up), Human3.6M order; lowest point at z = 0.
T_POSE = np.array([
    [0, 0, 0.95], [-0.15, 0, 0.93], [-0.18, 0, 0.5], [-0.2, 0, 0.05], [0.15, 0, 0.93], [0.18, 0, 0.5],
    [0.2, 0, 0.05], [0, 0, 1.2], [0, 0, 1.45], [0, 0, 1.55], [0, 0, 1.7], [0.2, 0, 1.45], [0.45, 0, 1.45],
    [0.7, 0, 1.45], [-0.2, 0, 1.45], [-0.45, 0, 1.45], [-0.7, 0, 1.45],
]) - [0, 0, 0.05]  # fmt: skip


def write_inputs(
    folder: Path, *, frames: int = FRAMES, start: float | None = None, audio: bool = False
) -> Path:
    """Grey clip (+ optional audio click at 1.0 s), timeline, dataset2d.npz and pose3d.npz in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "clip.mp4"
    sound = (
        ["-f", "lavfi", "-i", "aevalsrc='if(between(t,1,1.05),0.8*sin(2*PI*1000*t),0)':s=48000"]
        if audio
        else []
    )
    ffmpeg("-f", "lavfi", "-i", f"color=c=0x808080:s={W}x{H}:r={RATE}", *sound, "-frames:v", str(frames),
           "-c:v", "libx264", "-pix_fmt", "yuv420p", *(["-c:a", "aac", "-shortest"] if audio else []), str(video))  # fmt: skip
    write_probe(video, out_json=folder / "probe.json", out_pts=folder / "probe_pts.npy")
    header = make_timeline(folder / "probe.json", folder / "probe_pts.npy", video_id="scene", start=start,
                           out_json=folder / "timeline.json", out_csv=folder / "timeline.csv")  # fmt: skip
    count = header["frame_count"]
    detected = np.ones(count, bool)
    detected[list(INTERPOLATED)] = False
    np.savez(folder / "dataset2d.npz", positions_2d={"scene": {"custom": [np.repeat(KEYPOINTS[None], count, 0)]}},
             metadata={"layout_name": "coco", "num_joints": 17, "video_metadata": {"scene": {"w": W, "h": H}}},
             detected=detected, scores=np.where(detected[:, None], 0.9, 0.0).astype(np.float32) * np.ones((1, 17)))  # fmt: skip
    poses = np.repeat(T_POSE[None], count, 0).astype(np.float32)
    poses[:, :, 0] += np.linspace(-0.1, 0.1, count)[:, None]  # a slow drift: the axes must not follow it
    np.savez(
        folder / "pose3d.npz", positions_3d=poses, positions_3d_display=poses, time=np.arange(count) / 30
    )
    return folder


def inputs(folder: Path) -> tuple[Path, Path, Path]:
    return folder / "timeline.json", folder / "dataset2d.npz", folder / "pose3d.npz"


def decode(path: Path) -> tuple[list[np.ndarray], list[int], argparse.Namespace]:
    """Every frame (BGR) and pts of an mp4, and its video stream's facts."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, pts = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="bgr24"))
            pts.append(frame.pts)
        facts = argparse.Namespace(
            average_rate=stream.average_rate, width=stream.width, height=stream.height,
            codec=stream.codec_context.name, pix_fmt=stream.codec_context.pix_fmt,
        )  # fmt: skip
    return frames, pts, facts


def side_of_colour(pixel: np.ndarray) -> str | None:
    """Which skeleton colour a decoded BGR pixel carries (None: grey, white, dark)."""
    b, g, r = (int(v) for v in pixel)
    if b - r > 60 and b - g > 30:
        return "left"
    if r - b > 60 and r - g > 60:
        return "right"
    if g - r > 40 and g - b > 40:
        return "center"
    return None


def assert_bone_colours(image: np.ndarray, midpoints: np.ndarray, sides: list[str], what: str) -> None:
    """The 3x3 pixels around each midpoint (x, y) show the bone's side colour and no other."""
    for (x, y), side in zip(midpoints, sides, strict=True):
        x, y = int(round(x)), int(round(y))
        found = {side_of_colour(p) for p in image[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)} - {None}
        assert found == {side}, f"{what} bone at ({x}, {y}) should be {side}, found {found}"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = write_inputs(tmp_path_factory.mktemp("render"))
    info = render_video(
        *inputs(folder), folder / "render.mp4", height=OUT_H, threads=1, preview=folder / "preview.gif"
    )
    return folder, info


def test_frame_count_rate_and_format(scene):
    folder, info = scene
    frames, pts, stream = decode(folder / "render.mp4")
    assert len(frames) == FRAMES == info["frames"]
    assert stream.average_rate == Fraction(RATE) and info["fps"] == RATE
    assert len(set(np.diff(pts))) == 1  # constant rate, no dropped or doubled frame
    assert stream.codec == "h264" and stream.pix_fmt == "yuv420p"
    assert (stream.width, stream.height) == (320 + 240, 240) == (info["width"], info["height"])
    assert stream.width % 2 == 0 and stream.height % 2 == 0
    data = (folder / "render.mp4").read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: a browser can play before the download ends
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left over


def test_skeletons_are_drawn_where_joints_project(scene):
    folder, _ = scene
    frames, _, _ = decode(folder / "render.mp4")
    layout = plan_layout(W, H, height=OUT_H, layout="side_by_side")
    poses = np.load(folder / "pose3d.npz")["positions_3d_display"]
    view = build_view3d(poses, size=layout.view_size, azimuth=DEFAULT_AZIMUTH, elevation=DEFAULT_ELEVATION)
    for k in (5, 60):
        image = frames[k]
        mid2d = layout.video_point(
            (KEYPOINTS[[a for a, _ in COCO_BONES]] + KEYPOINTS[[b for _, b in COCO_BONES]]) / 2
        )
        assert_bone_colours(image, mid2d, [bone_side(b, COCO_LEFT, COCO_RIGHT) for b in COCO_BONES], "2D")
        mid3d = view.project(
            (poses[k, [a for a, _ in H36M_BONES]] + poses[k, [b for _, b in H36M_BONES]]) / 2
        )
        mid3d[:, 0] += layout.view_x
        assert_bone_colours(image, mid3d, [bone_side(b, H36M_LEFT, H36M_RIGHT) for b in H36M_BONES], "3D")
    # The axes stay put while the body drifts: the 3D panel's corners are the same in every frame.
    corner = np.s_[-30:, layout.view_x : layout.view_x + 30]
    assert np.abs(frames[0][corner].astype(int) - frames[-1][corner].astype(int)).mean() < 1.5


def test_interpolated_frames_are_marked(scene):
    folder, _ = scene
    frames, _, _ = decode(folder / "render.mp4")
    layout = plan_layout(W, H, height=OUT_H, layout="side_by_side")
    tag = np.s_[2:14, layout.video_width - 50 : layout.video_width - 3]  # top right of the video panel

    def amber_fraction(image):
        b, g, r = (image[tag][..., c].astype(int) for c in range(3))
        return np.mean((r > 200) & (b < 90) & (g > 120) & (g < 230))

    assert amber_fraction(frames[35]) > 0.3
    assert amber_fraction(frames[5]) == 0
    # Interpolated bones are greyed: the right forearm keeps no fully saturated red pixel.
    x, y = layout.video_point((KEYPOINTS[8] + KEYPOINTS[10]) / 2).round().astype(int)
    patch = frames[35][y - 3 : y + 4, x - 3 : x + 4].astype(int)
    assert (patch[..., 2] - patch[..., 0]).max() < (COLOURS["right"][2] - COLOURS["right"][0]) - 40


def test_view_limits_are_fixed_and_hold_the_whole_sequence():
    poses = np.repeat(T_POSE[None], 10, 0)
    poses[:, :, 0] += np.linspace(0, 2, 10)[:, None]  # walks 2 m along x
    (x0, x1), (y0, y1), (z0, z1) = view_limits(poses)
    assert z0 == 0 and x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(z1 - z0)
    assert x0 <= poses[..., 0].min() and x1 >= poses[..., 0].max() and z1 >= poses[..., 2].max()
    assert (x0 + x1) / 2 == pytest.approx(1.0)  # centred on the root's path


def test_preview_gif(scene):
    import av

    folder, _ = scene
    with av.open(str(folder / "preview.gif")) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        assert stream.codec_context.width == 480 and count >= 10


def test_frame_count_mismatch_fails_and_writes_nothing(scene, tmp_path):
    folder, _ = scene
    timeline, dataset2d, pose3d = inputs(folder)
    short = tmp_path / "short_pose3d.npz"
    np.savez(short, positions_3d_display=np.load(pose3d)["positions_3d_display"][:-1])
    out = tmp_path / "bad.mp4"
    with pytest.raises(PosepipeError, match=rf"short_pose3d\.npz.*{FRAMES - 1}.*{FRAMES}") as err:
        render_video(timeline, dataset2d, short, out, height=OUT_H)
    assert err.value.path == str(short)
    data = dict(np.load(dataset2d, allow_pickle=True))
    data["positions_2d"] = {"scene": {"custom": [np.zeros((FRAMES + 3, 17, 2), np.float32)]}}
    data["detected"], data["scores"] = np.ones(FRAMES + 3, bool), np.ones((FRAMES + 3, 17), np.float32)
    np.savez(tmp_path / "long2d.npz", **data)
    with pytest.raises(PosepipeError, match=rf"long2d\.npz.*{FRAMES + 3}.*{FRAMES}"):
        render_video(timeline, tmp_path / "long2d.npz", pose3d, out, height=OUT_H)
    assert list(tmp_path.iterdir()) == [short, tmp_path / "long2d.npz"]


def test_layouts_every_and_cli(scene, tmp_path, caplog):
    folder, _ = scene
    parser = argparse.ArgumentParser()
    render.register_cli(parser.add_subparsers())
    expected = {"3d_only": 240, "2d_only": 320, "side_by_side": 560}
    for layout, width in expected.items():
        out = tmp_path / f"{layout}.mp4"
        args = parser.parse_args([
            "render", str(folder / "timeline.json"), "--dataset2d", str(folder / "dataset2d.npz"),
            "--pose3d", str(folder / "pose3d.npz"), "--out", str(out), "--height", str(OUT_H),
            "--layout", layout, "--max-frames", "4" if layout != "side_by_side" else "0", "--every", "2",
            "--no-audio", "--threads", "1",
        ])  # fmt: skip
        with caplog.at_level(logging.INFO, logger="posepipe.render"):
            args.handler(args)
        frames, _, stream = decode(out)
        assert (stream.width, stream.height) == (width, OUT_H)
        assert len(frames) == (4 if layout != "side_by_side" else FRAMES // 2)
        assert stream.average_rate == Fraction(RATE) / 2
    assert "frames/s" in caplog.text and "left" in caplog.text  # progress line


def test_parallel_parts_join_seamlessly(scene, tmp_path, monkeypatch):
    folder, _ = scene
    monkeypatch.setattr(render, "MIN_PART_FRAMES", 16)
    info = render_video(*inputs(folder), tmp_path / "parts.mp4", height=OUT_H, threads=3)
    frames, pts, stream = decode(tmp_path / "parts.mp4")
    single, _, _ = decode(folder / "render.mp4")
    assert len(frames) == info["frames"] == FRAMES and stream.average_rate == Fraction(RATE)
    assert len(set(np.diff(pts))) == 1 and pts[0] == 0
    for k in (0, 23, 24, 47, 48, 71):  # both sides of each part boundary (72 frames / 3 parts)
        assert np.abs(frames[k].astype(int) - single[k].astype(int)).mean() < 2.0


def test_audio_follows_the_trimmed_timeline(tmp_path):
    import av

    folder = write_inputs(tmp_path / "av", frames=60, start=0.5, audio=True)
    info = render_video(*inputs(folder), folder / "render.mp4", height=OUT_H, audio=True)
    assert info["audio"] and info["frames"] == 60 - 15
    with av.open(str(folder / "render.mp4")) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
        click = np.flatnonzero(np.abs(samples) > 0.2)[0] / stream.rate
    assert click == pytest.approx(0.5, abs=0.01)  # the source's click at 1.0 s, trimmed by 0.5 s


def test_projection_matches_what_matplotlib_drew():
    """Points on the floor grid's lines (drawn by matplotlib into the background) project onto them."""
    view = build_view3d(T_POSE[None], size=480, azimuth=DEFAULT_AZIMUTH, elevation=DEFAULT_ELEVATION)
    centres = np.arange(-0.625, 0.7, 0.25)  # halfway between grid lines (every 0.25 m, through 0)
    zeros = np.zeros_like(centres)
    on_lines = np.concatenate([np.stack([zeros, centres, zeros], 1), np.stack([centres, zeros, zeros], 1)])
    off_lines = np.stack([centres, centres[::-1], zeros], 1)
    red = view.background[..., 2].astype(int)

    def darkest(points):
        return np.array(
            [red[y - 1 : y + 2, x - 1 : x + 2].min() for x, y in view.project(points).round().astype(int)]
        )

    assert (darkest(on_lines) < 228).all()  # grid grey (~195) blended in
    assert (darkest(off_lines) > 230).all()  # bare floor (~237)
