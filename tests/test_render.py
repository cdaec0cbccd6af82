"""render: frame count and rate, decodability, where the skeletons are drawn, layouts, parts, audio, preview,
the version record in the file, leftovers of killed jobs, and drawing wild data (1e30 px, NaN)."""

from __future__ import annotations

import argparse
import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import posepipe
import posepipe.registry
from posepipe import render
from posepipe.errors import PosepipeError
from posepipe.render import (
    COLOURS,
    DEFAULT_AZIMUTH,
    DEFAULT_ELEVATION,
    RenderSettings,
    build_view3d,
    load_inputs,
    plan_layout,
    read_render_meta,
    run_render,
    view_limits,
)
from posepipe.render import stage as render_stage
from posepipe.render.scene import MAX_COORD_M, tick_step
from posepipe.render.visualizer import clip_segment
from posepipe.settings import schema_default
from posepipe.skeleton import COCO_BONES, COCO_LEFT, COCO_RIGHT, H36M_BONES, H36M_LEFT, H36M_RIGHT, bone_side
from posepipe.video import FramesSettings, run_frames, run_probe
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
    run_probe(video, out_json=folder / "probe.json", out_pts=folder / "probe_pts.npy")
    header = run_frames(folder / "probe.json", folder / "probe_pts.npy", video_id="scene",
                        out_json=folder / "timeline.json", out_csv=folder / "timeline.csv",
                        settings=FramesSettings(start=start))  # fmt: skip
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
    info = run_render(
        *inputs(folder),
        folder / "render.mp4",
        settings=RenderSettings(height=OUT_H),
        threads=1,
        preview=folder / "preview.gif",
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
    np.savez(short, **{key: value[:-1] for key, value in np.load(pose3d).items()})
    out = tmp_path / "bad.mp4"
    with pytest.raises(PosepipeError, match=rf"short_pose3d\.npz.*{FRAMES - 1}.*{FRAMES}") as err:
        run_render(timeline, dataset2d, short, out, settings=RenderSettings(height=OUT_H))
    assert err.value.path == str(short)
    data = dict(np.load(dataset2d, allow_pickle=True))
    data["positions_2d"] = {"scene": {"custom": [np.zeros((FRAMES + 3, 17, 2), np.float32)]}}
    data["detected"], data["scores"] = np.ones(FRAMES + 3, bool), np.ones((FRAMES + 3, 17), np.float32)
    np.savez(tmp_path / "long2d.npz", **data)
    with pytest.raises(PosepipeError, match=rf"long2d\.npz.*{FRAMES + 3}.*{FRAMES}"):
        run_render(timeline, tmp_path / "long2d.npz", pose3d, out, settings=RenderSettings(height=OUT_H))
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
            "--layout", layout, *(["--max-frames", "4"] if layout != "side_by_side" else []), "--every", "2",
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
    monkeypatch.setattr(render_stage, "MIN_PART_FRAMES", 16)
    info = run_render(
        *inputs(folder), tmp_path / "parts.mp4", settings=RenderSettings(height=OUT_H), threads=3
    )
    assert read_render_meta(tmp_path / "parts.mp4") == info["meta"]  # the join keeps the record
    frames, pts, stream = decode(tmp_path / "parts.mp4")
    single, _, _ = decode(folder / "render.mp4")
    assert len(frames) == info["frames"] == FRAMES and stream.average_rate == Fraction(RATE)
    assert len(set(np.diff(pts))) == 1 and pts[0] == 0
    for k in (0, 23, 24, 47, 48, 71):  # both sides of each part boundary (72 frames / 3 parts)
        assert np.abs(frames[k].astype(int) - single[k].astype(int)).mean() < 2.0


def test_audio_follows_the_trimmed_timeline(tmp_path):
    import av

    folder = write_inputs(tmp_path / "av", frames=60, start=0.5, audio=True)
    info = run_render(
        *inputs(folder), folder / "render.mp4", settings=RenderSettings(height=OUT_H, audio=True)
    )
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


def test_the_file_records_its_stage_version(scene):
    folder, info = scene
    expected = {
        "stage": "render", "stage_version": posepipe.registry.STAGE_VERSIONS["render"],
        "posepipe": posepipe.__version__,
        "options": {"layout": "side_by_side", "height": OUT_H, "azimuth": DEFAULT_AZIMUTH,
                    "elevation": DEFAULT_ELEVATION, "every": 1, "max_frames": None, "crf": 18, "bitrate": None,
                    "preset": "ultrafast", "audio": False, "thickness": 2},
    }  # fmt: skip
    import av

    with av.open(str(folder / "render.mp4")) as container:  # the container's own tag, as any tool reads it
        assert json.loads(container.metadata["comment"]) == expected
    assert read_render_meta(folder / "render.mp4") == info["meta"] == expected
    with pytest.raises(PosepipeError, match="records no render stage"):
        read_render_meta(folder / "clip.mp4")


def test_cli_defaults_are_the_workflow_defaults_and_unset_is_omitted():
    parser = argparse.ArgumentParser()
    render.register_cli(parser.add_subparsers())
    args = parser.parse_args(
        ["render", "t.json", "--dataset2d", "d.npz", "--pose3d", "p.npz", "--out", "o.mp4"]
    )
    for key in ("height", "layout", "azimuth", "elevation", "max_frames", "every", "crf", "preset", "audio"):
        assert getattr(args, key) == schema_default(f"render.{key}"), key
    assert args.audio is True and args.max_frames is None  # omitted = the workflow's default / unset
    for wrong in (["--max-frames", "0"], ["--height", "0"], ["--every", "0"], ["--preset", "quick"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["render", "t", "--dataset2d", "d", "--pose3d", "p", "--out", "o", *wrong])


def test_leftovers_of_killed_renders_are_removed(scene, tmp_path, monkeypatch):
    """A job killed with SIGKILL leaves its temporary mp4 and parts folder; the next render removes them."""
    folder, _ = scene
    out = tmp_path / "render.mp4"
    (tmp_path / ".render.mp4.k1ll3d.mp4").write_bytes(b"half an mp4")
    stale_parts = tmp_path / ".render.mp4.k1ll3d.parts.x7y8"
    stale_parts.mkdir()
    (stale_parts / "000.mp4").write_bytes(b"a segment")
    (tmp_path / ".preview.gif.k1ll3d.gif").write_bytes(b"half a gif")
    (tmp_path / "render.mp4.notes").write_text("the user's own file")
    monkeypatch.setattr(render_stage, "MIN_PART_FRAMES", 16)
    seen = []
    join = render_stage.join_segments
    monkeypatch.setattr(render_stage, "join_segments", lambda segments, out, **kw: (
        seen.append(segments[0].parent.name), join(segments, out, **kw)))  # fmt: skip
    run_render(
        *inputs(folder),
        out,
        settings=RenderSettings(height=OUT_H),
        threads=2,
        preview=tmp_path / "preview.gif",
    )
    # This render's own parts folder has the name a later render would remove.
    assert len(seen) == 1 and seen[0].startswith(".render.mp4.") and ".parts." in seen[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.gif", "render.mp4", "render.mp4.notes"]


def test_merged_dataset2d_gives_the_videos_own_subject(scene, tmp_path):
    folder, _ = scene
    timeline, _, pose3d = inputs(folder)
    merged = tmp_path / "dataset2d_custom.npz"
    np.savez(merged, positions_2d={"other.mp4": {"custom": [np.zeros((FRAMES, 17, 2), np.float32)]},
                                   "scene.mp4": {"custom": [np.repeat(KEYPOINTS[None], FRAMES, 0)]}},
             metadata={"layout_name": "coco", "num_joints": 17,
                       "video_metadata": {"other.mp4": {"w": W, "h": H}, "scene.mp4": {"w": W, "h": H}}})  # fmt: skip
    got = load_inputs(timeline, merged, pose3d)
    assert np.array_equal(got.keypoints, np.repeat(KEYPOINTS[None], FRAMES, 0)[None])  # one person
    assert got.labels is None


def test_view_limits_and_ticks_ignore_wild_values():
    poses = np.repeat(T_POSE[None], 10, 0)
    expected = view_limits(poses)
    wild = poses.copy()
    wild[2, 13] = 1e30  # a failed lift of a 1e30 px keypoint
    wild[3, 5] = [np.nan, 0, 0]
    wild[4] = np.nan  # nobody in this frame
    wild[5, 0, 2] = -3e38
    assert view_limits(wild) == expected
    assert view_limits(np.full((3, 17, 3), np.nan))[2] == (0.0, 1.7)
    big = poses * 40  # a 68 m tall "person" keeps round ticks, not hundreds of them
    (_, _), (_, _), (_, z1) = view_limits(big)
    assert z1 > 50 and tick_step(z1) == 2.0
    assert z1 / tick_step(z1 * 10) * 10 <= 50 and tick_step(2 * MAX_COORD_M) == 500
    assert [tick_step(s) for s in (1.7, 3.0, 5.0, 100.0)] == [0.5, 0.5, 1.0, 2.0]  # unchanged below 100 m


def test_clip_segment():
    box = (0.0, 0.0, 10.0, 10.0)
    p, q = clip_segment(np.array([5.0, 5.0]), np.array([1e30, 5.0]), box)
    assert p.tolist() == [5.0, 5.0] and q.tolist() == [10.0, 5.0]
    assert clip_segment(np.array([-5.0, -5.0]), np.array([-1.0, 20.0]), box) is None
    p, q = clip_segment(np.array([-10.0, 0.0]), np.array([20.0, 15.0]), box)
    assert p.tolist() == [0.0, 5.0] and q.tolist() == [10.0, 10.0]


def test_wild_but_finite_data_renders(scene, tmp_path):
    """A keypoint at 1e30 px, 3D joints at 1e30 m, frames of NaN: drawn as far as they can be, no failure."""
    folder, _ = scene
    timeline, dataset2d, pose3d = inputs(folder)
    data = dict(np.load(dataset2d, allow_pickle=True))
    keypoints = np.repeat(KEYPOINTS[None], FRAMES, 0)
    keypoints[[5, 35], 9] = [1e30, KEYPOINTS[7, 1]]  # left wrist far right, level with the elbow
    keypoints[50] = np.nan  # nobody detected (and not interpolated)
    keypoints[60, 3] = [-1e30, 1e30]
    data["positions_2d"] = {"scene": {"custom": [keypoints]}}
    np.savez(tmp_path / "dataset2d.npz", **data)
    poses3d = dict(np.load(pose3d))
    display = poses3d["positions_3d_display"]
    display[3, 13] = 1e30  # left wrist
    display[4] = np.nan
    display[6, 16] = [-3e38, 3e38, 3e38]
    np.savez(tmp_path / "pose3d.npz", **poses3d)
    info = run_render(timeline, tmp_path / "dataset2d.npz", tmp_path / "pose3d.npz", tmp_path / "wild.mp4",
                        settings=RenderSettings(height=OUT_H), threads=1)  # fmt: skip
    frames, _, _ = decode(tmp_path / "wild.mp4")
    assert len(frames) == info["frames"] == FRAMES
    layout = plan_layout(W, H, height=OUT_H, layout="side_by_side")
    for k in (5, 35):  # detected and interpolated: the forearm leaves the panel to the right
        x, y = layout.video_point([(KEYPOINTS[7, 0] + W) / 2, KEYPOINTS[7, 1]]).round().astype(int)
        found = {side_of_colour(p) for p in frames[k][y - 1 : y + 2, x - 2 : x + 3].reshape(-1, 3)}
        assert "left" in found, (k, found)
    # The other bones are where they always are.
    bones = [b for b in COCO_BONES if 9 not in b]
    mid2d = layout.video_point((KEYPOINTS[[a for a, _ in bones]] + KEYPOINTS[[b for _, b in bones]]) / 2)
    assert_bone_colours(frames[5], mid2d, [bone_side(b, COCO_LEFT, COCO_RIGHT) for b in bones], "2D")
    # No skeleton where nobody is: the video panel of frame 50 shows no limb colour.
    panel = frames[50][20:, : layout.video_width].reshape(-1, 3)
    assert not {side_of_colour(p) for p in panel[::7]} - {None}
    # The axes ignore the wild 3D joints; the NaN frame's 3D panel is the bare background.
    view = build_view3d(display, size=layout.view_size)
    assert view.limits == view_limits(np.load(pose3d)["positions_3d_display"])
    bare = frames[4][40:, layout.view_x :].astype(int) - view.background[40:].astype(int)
    assert np.abs(bare).mean() < 2.0
    mid3d = view.project((display[3, [a for a, b in H36M_BONES if 13 not in (a, b)]]
                          + display[3, [b for a, b in H36M_BONES if 13 not in (a, b)]]) / 2)  # fmt: skip
    mid3d[:, 0] += layout.view_x
    sides = [bone_side(b, H36M_LEFT, H36M_RIGHT) for b in H36M_BONES if 13 not in b]
    for (x, y), side in zip(mid3d.round().astype(int), sides, strict=True):
        # The forearm to the far wrist may cross other bones on its way off the panel.
        assert side in {side_of_colour(p) for p in frames[3][y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)}
