"""Damaged videos: the probe decodes past bad packets and records every loss; the frames stage judges it.

Damaged files are made at test time from small synthetic clips (and from the sample clip
when it is there): the first 30% of a file (a copy cut short), and random bytes written over
the middle of a file at several offsets. What the probe recovers is compared with what the
``ffmpeg`` program itself decodes from the same file.
"""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from posepipe.artefacts.timeline import load_timeline
from posepipe.decode import DecodeErrors, decoded_frames, iter_frames
from posepipe.errors import PosepipeError
from posepipe.video import FramesSettings, damage_warnings, run_frames, run_probe, scan_video
from tests.media import ffmpeg, ffmpeg_exe, write_test_video

FRAMES = 240  # the synthetic clip: 8 s at 30 fps


def truncated(src: Path, dst: Path, share: float = 0.3) -> Path:
    """The first ``share`` of the file's bytes, as a download or copy that broke off leaves it."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * share)])
    return dst


def scrambled(src: Path, dst: Path, offsets=(0.3, 0.5, 0.7), size: int = 1024, seed: int = 0) -> Path:
    """The file with ``size`` random bytes written at each offset (a share of the file's length)."""
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(seed)
    for share in offsets:
        at = int(len(data) * share)
        data[at : at + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def ffmpeg_frame_count(path: Path) -> int:
    """Frames the ffmpeg program decodes from the file's first video stream (errors and all)."""
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1",
         "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    counts = re.findall(r"^frame=(\d+)$", run.stdout, re.M)
    assert counts, run.stderr
    return int(counts[-1])


def probe_and_timeline(video: Path, out: Path, **options) -> tuple[dict, dict]:
    run_probe(video, out_json=out / "probe.json", out_pts=out / "probe_pts.npy")
    header = run_frames(
        out / "probe.json", out / "probe_pts.npy", video_id="v",
        out_json=out / "frames/timeline.json", out_csv=out / "frames/timeline.csv",
        settings=FramesSettings(**options),
    )  # fmt: skip
    return json.loads((out / "probe.json").read_text()), header


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """160x120 H.264, 240 frames, a key frame every second, the index at the front (so a file cut
    short still opens, as phone and web clips do)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return write_test_video(path, seconds=FRAMES / 30, extra=("-g", "30", "-movflags", "+faststart"))


# ---------------------------------------------------------------------------------------------
# clean videos: nothing lost, nothing to warn about


def clean_variants(tmp: Path) -> dict[str, Path]:
    base = write_test_video(tmp / "base.mp4", seconds=2, extra=("-g", "12"))
    cut = tmp / "cut.mp4"
    # A stream copy cut between key frames: its edit list hides the frames before the cut, which
    # the mp4's frame count still counts.
    ffmpeg("-ss", "0.5", "-i", str(base), "-c", "copy", str(cut))
    with_audio = tmp / "audio.mkv"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", "1", "-pix_fmt", "yuv420p", str(with_audio),
    )  # fmt: skip
    avi = write_test_video(tmp / "mpeg4.avi", rate="25", seconds=1, extra=("-c:v", "mpeg4"))
    return {"mp4": base, "cut": cut, "mkv+audio": with_audio, "avi": avi}


@pytest.mark.parametrize("case", ["mp4", "cut", "mkv+audio", "avi"])
def test_clean_video_loses_nothing_and_strict_mode_passes(tmp_path, case):
    video = clean_variants(tmp_path)[case]
    probe, header = probe_and_timeline(video, tmp_path / "out", max_lost_share=0.0, strict=True)
    n = probe["frame_count"]
    assert probe["frames_expected"] == probe["frames_decoded"] == n == ffmpeg_frame_count(video)
    assert probe["frames_lost"] == 0 and probe["decode_errors"] == 0 and probe["decode_warning"] is None
    assert probe["container_duration"] == pytest.approx(probe["duration"], abs=0.02)
    assert header["warnings"] == [] and header["frame_count"] == n and not header["resampled"]
    timeline = load_timeline(tmp_path / "out/frames/timeline.json")
    np.testing.assert_array_equal(timeline.source_frame, np.arange(n))


# ---------------------------------------------------------------------------------------------
# a file cut short


def test_truncated_file_is_reported_as_damaged_not_as_a_shorter_video(tmp_path, clip):
    video = truncated(clip, tmp_path / "short.mp4")
    probe, header = probe_and_timeline(video, tmp_path / "out")
    decoded = probe["frames_decoded"]
    assert probe["frames_expected"] == FRAMES
    assert decoded == probe["frame_count"] == ffmpeg_frame_count(video)
    assert 0 < decoded < 0.4 * FRAMES
    assert probe["frames_lost"] == FRAMES - decoded
    # The cut-off last packet is a decode error (frame threading would hide it, and lose a frame).
    assert probe["decode_errors"] == 1
    assert probe["container_duration"] == pytest.approx(FRAMES / 30)
    assert probe["duration"] < 0.4 * probe["container_duration"]
    assert f"decoded {decoded} of {FRAMES} frames the container promises" in probe["decode_warning"]

    lost = f"{100 * (FRAMES - decoded) / FRAMES:.0f}%"
    assert header["warnings"] == [
        f"{lost} of frames lost to damage ({decoded} of {FRAMES} decoded, 1 decode error)"
    ]
    # The rate stays the source's; every timeline frame can be read.
    assert header["fps_fraction"] == "30"
    timeline = load_timeline(tmp_path / "out/frames/timeline.json")
    assert sum(1 for _ in iter_frames(timeline)) == timeline.frame_count >= decoded


def test_strict_mode_fails_the_frames_stage_with_one_line(tmp_path, clip, main, capsys):
    video = truncated(clip, tmp_path / "short.mp4")
    out = tmp_path / "out"
    assert (
        main(["probe", str(video), "--out", str(out / "probe.json"), "--pts", str(out / "probe_pts.npy")])
        == 0
    )
    decoded = json.loads((out / "probe.json").read_text())["frames_decoded"]
    frames = [
        "frames",
        str(out / "probe.json"),
        "--video-id",
        "v",
        "--out",
        str(out / "t.json"),
        "--csv",
        str(out / "t.csv"),
    ]
    capsys.readouterr()

    assert main([*frames, "--strict"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    lost = f"{100 * (FRAMES - decoded) / FRAMES:.0f}%"
    assert lines == [
        f"posepipe frames: error: {video}: decoded {decoded} of {FRAMES} frames the container promises "
        f"({lost} lost, 1 decode error); frames.strict is on"
    ]
    assert not (out / "t.json").exists() and not (out / "t.csv").exists()

    assert main(frames) == 0  # the default: a warning in timeline.json
    header = json.loads((out / "t.json").read_text())
    assert len(header["warnings"]) == 1 and header["strict"] is False and header["max_lost_share"] == 0.01
    assert main([*frames, "--strict", "--max-lost-share", "1"]) == 0  # the user accepts any loss
    assert json.loads((out / "t.json").read_text())["warnings"] == []


# ---------------------------------------------------------------------------------------------
# random bytes in the middle


@pytest.mark.parametrize(
    ("offsets", "size", "seed"),
    [
        ((0.3, 0.5, 0.7), 1024, 0),  # three holes of a few frames each
        ((0.4,), 512, 1),  # one small hole: a little over the default 1% lost
        ((0.2, 0.8), 2048, 2),  # about 10% lost
        ((0.2, 0.8), 512, 3),  # the decoder conceals it: no frame lost, nothing to warn about
    ],
)
def test_damage_in_the_middle_is_skipped_and_counted(tmp_path, clip, offsets, size, seed):
    video = scrambled(clip, tmp_path / "damaged.mp4", offsets=offsets, size=size, seed=seed)
    probe, header = probe_and_timeline(video, tmp_path / "out")
    decoded, reference = probe["frames_decoded"], ffmpeg_frame_count(video)
    assert probe["frames_expected"] == FRAMES
    assert abs(decoded - reference) <= max(2, 0.01 * reference), (decoded, reference)
    assert probe["frames_lost"] == FRAMES - decoded
    if probe["frames_lost"]:
        assert probe["decode_errors"] >= 1
    # Decoding went on past the damage to the last frame.
    seconds = np.load(tmp_path / "out/probe_pts.npy") * float(Fraction(probe["time_base"]))
    assert seconds[-1] * 30 == pytest.approx(FRAMES - 1, abs=0.01)
    assert bool(header["warnings"]) == ((FRAMES - decoded) / FRAMES > 0.01)

    # The timeline keeps the source's rate: each lost frame's instant shows a neighbour.
    timeline = load_timeline(tmp_path / "out/frames/timeline.json")
    assert header["fps_fraction"] == "30" and timeline.frame_count == FRAMES
    full = dict(iter_frames(timeline))
    assert sorted(full) == list(range(FRAMES))
    # Readers that seek (shards) get the same frames. Pixels that the decoder's error concealment
    # made up depend on where decoding started; every frame that decoded intact is the same.
    probe_and_timeline(clip, tmp_path / "clean")
    intact = dict(iter_frames(load_timeline(tmp_path / "clean/frames/timeline.json")))
    original = np.round(timeline.source_time * 30).astype(int)  # the frame's number in the clean clip
    compared = 0
    for start, stop in [(5, 20), (100, 130), (200, 240)]:
        part = dict(iter_frames(timeline, start=start, stop=stop))
        assert sorted(part) == list(range(start, stop))
        for k, image in part.items():
            if np.array_equal(full[k], intact[original[k]]):
                np.testing.assert_array_equal(image, full[k])
                compared += 1
    assert compared >= 40


def test_reader_never_returns_fewer_frames_than_the_timeline(tmp_path, clip):
    video = tmp_path / "v.mp4"
    video.write_bytes(clip.read_bytes())
    probe_and_timeline(video, tmp_path / "out")
    timeline = load_timeline(tmp_path / "out/frames/timeline.json")
    scrambled(clip, video)  # the file is damaged after probing: some referenced frames are gone
    got = []
    with pytest.raises(
        PosepipeError, match=r"frame (\d+) of the timeline \(source frame \1, pts \d+\) did not decode"
    ) as err:
        for k, _ in iter_frames(timeline):
            got.append(k)
    assert str(video) in str(err.value)
    assert got == list(range(len(got))) and 0 < len(got) < FRAMES  # in order, none skipped

    truncated(clip, video)
    with pytest.raises(PosepipeError, match="the video ended first"):
        for _ in iter_frames(timeline, start=200):
            pass


# ---------------------------------------------------------------------------------------------
# the policy, and the decode loop's handling of a demuxer that fails


def test_damage_policy_numbers_and_wording():
    probe = {
        "path": "a.mp4",
        "frame_count": 228,
        "frames_expected": 525,
        "frames_decoded": 228,
        "decode_errors": 3,
    }
    assert damage_warnings(probe, max_lost_share=0.01, strict=False) == [
        "57% of frames lost to damage (228 of 525 decoded, 3 decode errors)"
    ]
    with pytest.raises(PosepipeError) as err:
        damage_warnings(probe, max_lost_share=0.01, strict=True)
    assert str(err.value) == (
        "a.mp4: decoded 228 of 525 frames the container promises (57% lost, 3 decode errors); frames.strict is on"
    )
    assert damage_warnings(probe, max_lost_share=0.6, strict=True) == []
    small = {**probe, "frame_count": 985, "frames_expected": 1000, "frames_decoded": 985, "decode_errors": 1}
    assert damage_warnings(small, max_lost_share=0.01, strict=False) == [
        "1.5% of frames lost to damage (985 of 1000 decoded, 1 decode error)"
    ]
    assert damage_warnings(small, max_lost_share=0.015, strict=True) == []  # at the limit is allowed
    unknown = {**probe, "frames_expected": None}
    assert damage_warnings(unknown, max_lost_share=0.01, strict=True) == [
        "3 decode errors (frame count the container promises unknown; 228 frames decoded)"
    ]
    assert damage_warnings({**unknown, "decode_errors": 0}, max_lost_share=0.0, strict=True) == []
    old = {"path": "a.mp4", "frame_count": 10}  # a probe.json from before damage was recorded
    assert damage_warnings(old, max_lost_share=0.0, strict=True) == []


def test_a_failing_demuxer_read_is_counted_and_reading_goes_on():
    import av

    class Codec:
        def decode(self, packet):
            if packet == "bad":
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            return [] if packet is None else [f"frame {packet}"]

    class Stream:
        codec_context = Codec()

    class Container:
        def __init__(self, reads):
            self.reads = iter(reads)

        def demux(self, stream):
            for packet in next(self.reads):
                if packet == "read error":
                    raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
                yield packet

    errors = DecodeErrors()
    container = Container([[1, "bad", 2, "read error"], [3, None]])  # None: the final flush packet
    assert list(decoded_frames(container, Stream(), errors)) == ["frame 1", "frame 2", "frame 3"]
    assert errors.count == 2 and errors.first == "Invalid data found when processing input"

    errors = DecodeErrors()
    endless = Container([["read error"]] * 100)
    assert list(decoded_frames(endless, Stream(), errors)) == []
    assert errors.count == 8  # gives up after MAX_FAILED_READS reads in a row fail


# ---------------------------------------------------------------------------------------------
# the real sample clip


def test_sample_clip_damage_recovers_what_ffmpeg_recovers(tmp_path, test_data):
    dance = test_data("media/dance.mp4")
    clean = scan_video(dance)[0]
    assert (clean["frames_expected"], clean["frames_decoded"], clean["frames_lost"], clean["decode_errors"]) == (
        525, 525, 0, 0,
    )  # fmt: skip
    short = scan_video(truncated(dance, tmp_path / "short.mp4"))[0]
    assert short["frames_expected"] == 525 and short["decode_errors"] >= 1
    assert short["frames_decoded"] == ffmpeg_frame_count(tmp_path / "short.mp4") < 0.35 * 525
    assert short["container_duration"] == pytest.approx(17.5175) and short["duration"] < 6
    damaged = scrambled(dance, tmp_path / "damaged.mp4", size=4096)
    probe = scan_video(damaged)[0]
    reference = ffmpeg_frame_count(damaged)
    assert probe["frames_expected"] == 525 and probe["decode_errors"] >= 1
    assert abs(probe["frames_decoded"] - reference) <= 5, (probe["frames_decoded"], reference)
    assert probe["frames_lost"] == 525 - probe["frames_decoded"]
