"""Probe and frame timeline on real encoded files: exact counts, rotation, VFR, offsets, trims."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from posepipe.artefacts.timeline import load_timeline
from posepipe.decode import iter_frames
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.testing import level, write_indexed_video
from posepipe.video import FramesSettings, plan_timeline, probe_video, run_frames, run_probe
from tests.media import ffmpeg, write_test_video


def timeline_for(video, tmp_path, **options):
    """Run probe + frames like the workflow does; return the loaded Timeline."""
    out = tmp_path / "out"
    run_probe(video, out_json=out / "probe.json", out_pts=out / "probe_pts.npy")
    run_frames(
        out / "probe.json", out / "probe_pts.npy", video_id="v",
        out_json=out / "frames/timeline.json", out_csv=out / "frames/timeline.csv",
        settings=FramesSettings(**options),
    )  # fmt: skip
    return load_timeline(out / "frames/timeline.json")


@pytest.mark.parametrize(
    ("size", "rate", "seconds", "frames", "fraction"),
    [
        ("160x120", "30", 1, 30, "30"),
        ("320x180", "30000/1001", 2, 60, "30000/1001"),
        ("176x144", "25", 1.2, 30, "25"),
        ("64x64", "60", 0.5, 30, "60"),
    ],
)
def test_probe_counts_frames_and_rates(tmp_path, size, rate, seconds, frames, fraction):
    video = write_test_video(tmp_path / "v.mp4", size=size, rate=rate, seconds=seconds)
    probe = probe_video(video)
    width, height = map(int, size.split("x"))
    assert (probe["width"], probe["height"], probe["rotation"]) == (width, height, 0)
    assert probe["frame_count"] == frames
    assert probe["nominal_fps_fraction"] == fraction
    assert probe["average_fps"] == pytest.approx(float(Fraction(rate)), rel=1e-3)
    assert not probe["variable_frame_rate"]
    assert probe["duration"] == pytest.approx(frames / float(Fraction(rate)), rel=1e-3)
    assert probe["codec"] == "h264" and probe["has_audio"] is False

    timeline = timeline_for(video, tmp_path)
    assert timeline.frame_count == frames
    assert timeline.fps_fraction == fraction
    np.testing.assert_array_equal(timeline.source_frame, np.arange(frames))
    np.testing.assert_allclose(timeline.time, np.arange(frames) / float(Fraction(rate)), atol=1e-6)


def test_rotation_metadata_is_applied(tmp_path):
    plain = write_test_video(tmp_path / "plain.mp4", size="160x96", seconds=0.4)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    probe = probe_video(rotated)
    assert (probe["width"], probe["height"], probe["rotation"]) == (96, 160, 90)
    assert (probe["coded_width"], probe["coded_height"]) == (160, 96)

    timeline = timeline_for(rotated, tmp_path)
    assert (timeline.width, timeline.height) == (96, 160)
    _, image = next(iter_frames(timeline))
    assert image.shape == (160, 96, 3)
    # Same pixels as ffmpeg's own auto-rotation.
    reference = tmp_path / "ref.raw"
    ffmpeg("-i", str(rotated), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", str(reference))
    expected = np.fromfile(reference, np.uint8).reshape(160, 96, 3)
    np.testing.assert_array_equal(image, expected)


def test_variable_frame_rate_is_resampled_to_its_average_rate(tmp_path):
    # 20 frames at irregular instants (ms): bursts of 20 ms and gaps of 60 ms.
    steps = [20, 60, 20, 20, 60, 40, 20, 60, 20, 20, 60, 40, 20, 60, 20, 20, 60, 40, 20]
    pts = np.concatenate([[0], np.cumsum(steps)]).tolist()
    video = write_indexed_video(tmp_path / "vfr.mp4", frames=20, pts=pts, time_base=Fraction(1, 1000))
    probe = probe_video(video)
    assert probe["variable_frame_rate"]
    assert probe["frame_count"] == 20
    assert probe["average_fps"] == pytest.approx(19 / (pts[-1] / 1000))

    timeline = timeline_for(video, tmp_path)
    assert timeline.header["resampled"]
    assert timeline.frame_count == 20  # the average rate keeps the count: nothing invented or dropped
    assert timeline.fps == pytest.approx(probe["average_fps"], rel=1e-3)
    # Each output instant shows the source frame nearest to it.
    source_seconds = np.asarray(pts) / 1000
    for k, src in enumerate(timeline.source_frame):
        nearest = np.min(np.abs(source_seconds - k / timeline.fps))
        assert abs(source_seconds[src] - k / timeline.fps) == pytest.approx(nearest, abs=1e-6)
    # And the decoded pixels are those of that source frame.
    for k, image in iter_frames(timeline):
        assert image.mean() == pytest.approx(level(timeline.source_frame[k]), abs=3)


def test_audio_does_not_change_the_frames(tmp_path):
    video = tmp_path / "with audio.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", "1", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video),
    )  # fmt: skip
    probe = probe_video(video)
    assert probe["has_audio"] and probe["audio_codec"] == "aac"
    assert probe["frame_count"] == 25


def test_video_stream_starting_late_gets_no_invented_frames(tmp_path):
    plain = write_indexed_video(tmp_path / "plain.mp4", frames=24, fps=24)
    late = tmp_path / "late.mp4"
    # Video starts 2 s into the file, audio at 0 (as phone and web clips do).
    ffmpeg(
        "-itsoffset", "2", "-i", str(plain), "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(late),
    )  # fmt: skip
    probe = probe_video(late)
    assert probe["frame_count"] == 24
    assert probe["start_time"] == pytest.approx(2.0, abs=0.05)
    timeline = timeline_for(late, tmp_path)
    assert timeline.frame_count == 24
    assert timeline.time[0] == 0.0
    assert timeline.source_time[0] == pytest.approx(2.0, abs=0.05)
    levels = [image.mean() for _, image in iter_frames(timeline)]
    np.testing.assert_allclose(levels, [level(i) for i in range(24)], atol=3)


@pytest.mark.parametrize(("fps", "expected"), [(15, 15), (60, 60), (50, 50)])
def test_requested_fps_resamples(tmp_path, fps, expected):
    video = write_indexed_video(tmp_path / "v.mp4", frames=30, fps=30)
    timeline = timeline_for(video, tmp_path, fps=fps)
    assert timeline.frame_count == expected
    assert timeline.fps == fps
    assert timeline.header["resampled"]
    got = [image.mean() for _, image in iter_frames(timeline)]
    np.testing.assert_allclose(got, [level(i) for i in timeline.source_frame], atol=3)


def test_trim_selects_seconds_from_the_first_frame(tmp_path):
    video = write_indexed_video(tmp_path / "v.mp4", frames=30, fps=10)
    timeline = timeline_for(video, tmp_path, start=0.5, end=2.0)
    np.testing.assert_array_equal(timeline.source_frame, np.arange(5, 20))
    assert timeline.time[0] == 0.0
    with pytest.raises(PosepipeError, match="selects no frame"):
        timeline_for(video, tmp_path, start=5.0)


def test_seeking_reader_matches_a_full_scan(tmp_path):
    video = write_test_video(tmp_path / "v.mp4", size="96x64", rate="25", seconds=4, extra=("-g", "12"))
    timeline = timeline_for(video, tmp_path)
    full = {k: image for k, image in iter_frames(timeline)}
    assert len(full) == 100
    for start, stop in [(0, 5), (37, 41), (50, 100), (99, 200)]:
        part = dict(iter_frames(timeline, start=start, stop=stop))
        assert sorted(part) == list(range(start, min(stop, 100)))
        for k, image in part.items():
            np.testing.assert_array_equal(image, full[k])


def test_timeline_files_record_the_mapping(tmp_path):
    video = write_indexed_video(tmp_path / "v.mp4", frames=10, fps=5)
    timeline_for(video, tmp_path, fps=10)
    header = json.loads((tmp_path / "out/frames/timeline.json").read_text())
    assert header["frame_count"] == 20 and header["fps_fraction"] == "10"
    assert header["stage_version"] == STAGE_VERSIONS["frames"] and header["posepipe_version"]
    probe = json.loads((tmp_path / "out/probe.json").read_text())
    assert probe["stage_version"] == STAGE_VERSIONS["probe"]
    table = (tmp_path / "out/frames/timeline.csv").read_text().splitlines()
    assert table[0] == "frame,time,source_frame,source_pts,source_time"
    assert len(table) == 21


def test_plan_timeline_single_frame():
    index, rate, resampled = plan_timeline(np.array([0.0]), variable_frame_rate=False, nominal_fps=30.0)
    assert index.tolist() == [0] and rate == 30 and not resampled
    index, rate, _ = plan_timeline(np.array([0.0]), variable_frame_rate=False, nominal_fps=30.0, fps=60)
    assert index.tolist() == [0, 0]


def test_real_clip_without_container_frame_count(test_data):
    video = test_data("media/dance.mp4")
    probe = probe_video(video)
    assert probe["container_frame_count"] is None
    assert probe["frame_count"] == 525
    assert (probe["width"], probe["height"], probe["nominal_fps_fraction"]) == (800, 480, "30000/1001")


def bad_inputs(tmp_path):
    good = write_test_video(tmp_path / "good.mp4", seconds=1)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    return {
        "empty": (empty, "empty"),
        "truncated": (truncated, "not a readable video"),
        "text": (text, "not a readable video"),
    }


@pytest.mark.parametrize("case", ["empty", "truncated", "text"])
def test_bad_input_names_the_file_and_writes_nothing(tmp_path, case):
    path, reason = bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    with pytest.raises(PosepipeError, match=reason) as err:
        run_probe(path, out_json=out / "probe.json", out_pts=out / "probe_pts.npy")
    assert str(path) in str(err.value)
    assert not out.exists() or not any(out.iterdir())


def test_jpeg_frames_option_writes_every_timeline_frame(tmp_path):
    import cv2

    from posepipe.video import write_jpeg_frames

    video = write_indexed_video(tmp_path / "v.mp4", frames=6, fps=6)
    timeline_for(video, tmp_path, fps=12)
    out = tmp_path / "out/frames/jpeg"
    assert write_jpeg_frames(tmp_path / "out/frames/timeline.json", out_dir=out) == 12
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{k:06d}.jpg" for k in range(12)]
    # Frame k shows source frame k // 2 (12 fps from 6 fps).
    for k in (0, 5, 11):
        assert cv2.imread(str(out / f"{k:06d}.jpg")).mean() == pytest.approx(level(k // 2), abs=3)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
