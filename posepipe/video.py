"""Stages ``probe`` and ``frames``: a video's stream facts, then the frame timeline every later stage uses.

On-disk form (why not a re-encoded clip or image files): the timeline is a table that maps each
output frame ``k`` to a decoded frame of the source video, plus a JSON header. It costs a few
bytes per frame instead of gigabytes for an hour of JPEGs, loses no quality to a re-encode, and
changing the frame rate or trim re-runs in seconds (the probe already holds every frame's
timestamp). Stages read frames through :func:`posepipe.decode.iter_frames`.

Files: ``probe.json`` + ``probe_pts.npy`` (:mod:`posepipe.artefacts.probe`), written by
:func:`run_probe`; ``frames/timeline.json`` + ``.csv`` (:mod:`posepipe.artefacts.timeline`), written
by :func:`run_frames` from the probe alone (no decoding). The frames stage judges the probe's damage
record: more than ``max_lost_share`` of the promised frames lost is a warning in the timeline's
``warnings`` (with ``strict`` the stage fails instead). A constant-rate video with lost frames keeps
its rate: a lost frame's instant shows the nearest decoded frame.
"""

from __future__ import annotations

import logging
import os
import time as clock
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.artefacts.probe import Probe, load_probe, save_probe
from posepipe.artefacts.timeline import load_timeline, save_timeline
from posepipe.atomic import atomic_folder
from posepipe.decode import DecodeErrors, decoded_frames, iter_frames, open_video
from posepipe.errors import PosepipeError
from posepipe.progress import Progress
from posepipe.registry import STAGE_VERSIONS
from posepipe.settings import add_option, schema_default, settings_from_args

log = logging.getLogger(__name__)

VFR_TOLERANCE = 0.05  # a frame interval this far (relative) from the median marks a variable rate


@dataclass(frozen=True)
class FramesSettings:
    """Settings of the frames stage (config ``frames:``); defaults are the workflow's.

    ``fps``: output rate in frames per second (None: the source's own); ``start``, ``end``: trim,
    seconds from the first frame (``end`` exclusive; None: no trim); ``max_lost_share``: share in
    [0, 1] of the promised frames that may fail to decode without a warning; ``strict``: fail
    instead of warning above it; ``jpeg_quality``: JPEG quality 1-100 of ``frames-jpeg``
    (:func:`write_jpeg_frames`).
    """

    fps: float | None = schema_default("frames.fps")
    start: float | None = schema_default("frames.start")
    end: float | None = schema_default("frames.end")
    jpeg_quality: int = schema_default("frames.jpeg_quality")
    max_lost_share: float = schema_default("frames.max_lost_share")
    strict: bool = schema_default("frames.strict")


def _fraction(rate) -> Fraction | None:
    return None if rate is None or rate == 0 else Fraction(rate.numerator, rate.denominator)


# ---------------------------------------------------------------------------------------------
# probe


def _stated_duration(container, stream) -> float | None:
    """Seconds of video the container states: the stream's duration, else the Matroska track's
    DURATION tag, else the container's duration when the video is its only stream; None if none."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _promised_frames(container, stream) -> tuple[int | None, float | None]:
    """(frames the container promises, its stated duration in seconds); None where unknown.

    The stream's frame count, capped by stated duration x average rate when both are known: an
    mp4 cut without re-encoding counts the frames before its cut that its edit list never shows.
    """
    duration = _stated_duration(container, stream)
    rate = _fraction(stream.average_rate or stream.guessed_rate)
    by_duration = int(round(duration * float(rate))) if duration and rate else None
    stated = int(stream.frames) or None
    if stated and by_duration:
        return min(stated, by_duration), duration
    return stated or by_duration, duration


def scan_video(path: str | os.PathLike) -> tuple[dict, np.ndarray]:
    """Decode every frame once; return (probe facts, int64 (n,) presentation timestamps).

    The frame count is counted by decoding, never taken from the container (some files state
    none, some state a wrong one). A damaged packet is skipped and decoding goes on (see
    :func:`decoded_frames`); the probe records what the container promises, what decoded, and the
    errors, and leaves judging the loss to the frames stage.
    """
    started = clock.perf_counter()
    container, stream = open_video(path)
    pts: list[int | None] = []
    rotation, size = 0, None
    errors = DecodeErrors()
    try:
        expected, stated_duration = _promised_frames(container, stream)
        # The promised count is only an estimate for the progress lines (0 when unknown).
        progress = Progress(expected or 0, label=f"{path}: decoded", logger=log, every=10.0)
        for frame in decoded_frames(container, stream, errors):
            if size is None:
                rotation = int(round(frame.rotation or 0)) % 360
                size = (frame.width, frame.height)
            pts.append(frame.pts)
            if progress.total:
                progress.update(min(len(pts), progress.total - 1))
        info = {
            "format": container.format.name,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "time_base": str(stream.time_base),
            "container_frame_count": int(stream.frames) or None,
            "nominal_fps": _fraction(stream.guessed_rate or stream.base_rate),
            "has_audio": bool(container.streams.audio),
            "audio_codec": container.streams.audio[0].codec_context.name if container.streams.audio else None,
            "sample_aspect_ratio": str(stream.sample_aspect_ratio or "1/1"),
        }
    finally:
        container.close()
    n = len(pts)
    lost = None if expected is None else max(0, expected - n)
    decode_warning = None
    if errors.count or lost:
        promised = f"{expected}" if expected is not None else "an unknown number of"
        decode_warning = f"decoded {n} of {promised} frames the container promises"
        if errors.count:
            s = "" if errors.count == 1 else "s"
            decode_warning += f"; {errors.count} decode error{s} (first: {errors.first})"
        log.warning("%s: %s", path, decode_warning)
    if not pts:
        raise PosepipeError(
            path, "no decodable video frames" + (f" ({decode_warning})" if decode_warning else "")
        )

    time_base = Fraction(info["time_base"])
    reliable = all(p is not None for p in pts) and all(b > a for a, b in zip(pts, pts[1:], strict=False))
    if not reliable:
        # Some containers (raw AVI, broken muxers) give no or non-increasing timestamps: fall back
        # to the nominal rate, which is all such files carry.
        step = 1 / (info["nominal_fps"] or Fraction(25)) / time_base
        pts = [int(round(i * step)) for i in range(len(pts))]
    pts_arr = np.asarray(pts, dtype=np.int64)
    seconds = pts_arr * float(time_base)
    intervals = np.diff(seconds)
    if n > 1:
        average_fps = (n - 1) / (seconds[-1] - seconds[0])
        median = float(np.median(intervals))
        tick = float(time_base)
        variable = bool(np.max(np.abs(intervals - median)) > max(2 * tick, VFR_TOLERANCE * median))
        frame_duration = (seconds[-1] - seconds[0]) / (n - 1)
    else:
        average_fps = float(info["nominal_fps"] or 0) or None
        variable = False
        frame_duration = 1 / average_fps if average_fps else 0.0
    width, height = size
    if rotation in (90, 270):
        width, height = height, width
    nominal = info.pop("nominal_fps")
    probe = {
        "path": os.fspath(path),
        "size_bytes": Path(path).stat().st_size,
        "width": width,
        "height": height,
        "coded_width": size[0],
        "coded_height": size[1],
        "rotation": rotation,
        "nominal_fps": float(nominal) if nominal else None,
        "nominal_fps_fraction": str(nominal) if nominal else None,
        "average_fps": average_fps,
        "variable_frame_rate": variable,
        "frame_count": n,
        "start_time": float(seconds[0]),
        "duration": float(seconds[-1] - seconds[0] + frame_duration),
        "timestamps_reliable": reliable,
        "decode_warning": decode_warning,
        "frames_expected": expected,
        "frames_decoded": n,
        "frames_lost": lost,
        "decode_errors": errors.count,
        "container_duration": stated_duration,
        **info,
        "posepipe_version": __version__,
        "stage_version": STAGE_VERSIONS["probe"],
        "seconds": round(clock.perf_counter() - started, 3),
    }
    return probe, pts_arr


def probe_video(path: str | os.PathLike) -> dict:
    """Facts of a video's first video stream, as written to probe.json.

    Keys: width, height (as displayed, after rotation), rotation (degrees counter-clockwise, as
    ffmpeg reports it), codec, nominal_fps, average_fps, variable_frame_rate, frame_count
    (decoded), start_time, duration (seconds, decoded), has_audio, the damage record
    (frames_expected, frames_decoded, frames_lost, decode_errors, container_duration,
    decode_warning; see the module docstring), and a few more for tracing.
    """
    return scan_video(path)[0]


def run_probe(video: str | os.PathLike, *, out_json: str | os.PathLike, out_pts: str | os.PathLike) -> dict:
    """The ``probe`` stage: video -> probe.json + probe_pts.npy; returns probe.json's content."""
    probe, pts = scan_video(video)
    save_probe(out_json, out_pts, Probe(probe, pts))
    log.info(
        "%s: %d frames, %dx%d, %.3f fps%s", video, probe["frame_count"], probe["width"], probe["height"],
        probe["average_fps"] or 0, " (variable rate)" if probe["variable_frame_rate"] else "",
    )  # fmt: skip
    return probe


# ---------------------------------------------------------------------------------------------
# timeline


def _rate_fraction(rate: float | Fraction) -> Fraction:
    """A float rate as a small fraction (29.97002997 -> 30000/1001, 50.0 -> 50)."""
    return Fraction(rate).limit_denominator(1001) if not isinstance(rate, Fraction) else rate


def plan_timeline(
    seconds: np.ndarray,
    *,
    variable_frame_rate: bool,
    nominal_fps: float | None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[np.ndarray, Fraction, bool]:
    """Choose source frames for a constant-rate timeline.

    Args:
        seconds: float64 (n,) increasing presentation times of the decoded source frames.
        variable_frame_rate: resample to the average rate even when ``fps`` is not given.
        nominal_fps: the stream's stated rate, used when the measured rate agrees with it.
        fps: output rate; None keeps the source's (every frame, none invented or dropped).
        start, end: trim, seconds from the first video frame; ``end`` exclusive.

    Returns:
        (source index per output frame, int64 (T,); output rate; whether frames were resampled).
    """
    rel = seconds - seconds[0]
    eps = 1e-6
    lo = 0 if not start else int(np.searchsorted(rel, start - eps, side="left"))
    hi = len(rel) if end is None else int(np.searchsorted(rel, end - eps, side="left"))
    if hi <= lo:
        raise PosepipeError(
            path,
            f"trim start={start} end={end} s selects no frame (the video lasts {rel[-1]:.3f} s after its first frame)",
        )
    kept = np.arange(lo, hi)
    span = seconds[hi - 1] - seconds[lo]
    m = hi - lo
    measured = (m - 1) / span if m > 1 and span > 0 else (nominal_fps or 25.0)

    if fps is None and not variable_frame_rate:
        # Constant rate: keep every frame; prefer the exact nominal fraction (30000/1001).
        if nominal_fps and abs(nominal_fps - measured) <= 0.01 * measured:
            return kept, _rate_fraction(nominal_fps), False
        return kept, _rate_fraction(measured), False

    rate = _rate_fraction(fps if fps is not None else measured)
    frame_span = span + (span / (m - 1) if m > 1 else 1 / (nominal_fps or float(rate)))
    count = max(1, int(round(frame_span * float(rate))))
    targets = seconds[lo] + np.arange(count) / float(rate)
    # Nearest source frame to each output instant (ties go to the earlier frame).
    right = (
        np.clip(np.searchsorted(seconds[lo:hi], targets, side="left"), 1, m - 1)
        if m > 1
        else np.zeros(count, int)
    )
    if m > 1:
        left = right - 1
        choose_left = (targets - seconds[lo + left]) <= (seconds[lo + right] - targets) + 1e-9
        idx = np.where(choose_left, left, right)
    else:
        idx = right
    return kept[idx], rate, True


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.1f}%"


def damage_warnings(probe: dict, *, max_lost_share: float, strict: bool) -> list[str]:
    """The frames stage's verdict on the probe's damage record: a list of short warnings.

    Frames lost = frames the container promises minus frames decoded. A lost share above
    ``max_lost_share`` is a warning, or with ``strict`` a :class:`PosepipeError` naming the video
    and the numbers. Decode errors with an unknown promised count are a warning (no share to
    judge). A probe written before damage was recorded has no such keys and gets no warning.
    """
    expected, decoded = probe.get("frames_expected"), probe.get("frames_decoded", probe["frame_count"])
    errors = probe.get("decode_errors") or 0
    errs = f"{errors} decode error{'' if errors == 1 else 's'}"
    if not expected:
        return (
            [f"{errs} (frame count the container promises unknown; {decoded} frames decoded)"]
            if errors
            else []
        )
    lost = max(0, expected - decoded)
    share = lost / expected
    if share <= max_lost_share:
        return []
    if strict:
        raise PosepipeError(
            probe["path"],
            f"decoded {decoded} of {expected} frames the container promises ({_percent(share)} lost, {errs}); "
            "frames.strict is on",
        )
    return [f"{_percent(share)} of frames lost to damage ({decoded} of {expected} decoded, {errs})"]


def _holes_only(probe: dict, seconds: np.ndarray) -> bool:
    """Whether every frame interval is a whole number of nominal frame intervals (a constant
    rate with frames missing), rather than a variable rate."""
    if not probe.get("nominal_fps_fraction") or len(seconds) < 2:
        return False
    steps = np.diff(seconds) * float(Fraction(probe["nominal_fps_fraction"]))
    whole = np.round(steps)
    return bool(np.all(whole >= 1) and np.all(np.abs(steps - whole) <= VFR_TOLERANCE))


def run_frames(
    probe_json: str | os.PathLike,
    probe_pts: str | os.PathLike,
    *,
    video_id: str,
    out_json: str | os.PathLike,
    out_csv: str | os.PathLike,
    settings: FramesSettings | None = None,
) -> dict:
    """Write frames/timeline.json and frames/timeline.csv from the probe (no decoding).

    ``settings`` (config ``frames:``; None: the defaults): the output rate and trim, and
    ``max_lost_share`` and ``strict``, which judge the probe's damage record (see
    :func:`damage_warnings`). Returns the timeline header (:mod:`posepipe.artefacts.timeline`).
    """
    import pandas as pd

    settings = settings or FramesSettings()
    fps, start, end = settings.fps, settings.start, settings.end
    max_lost_share, strict = settings.max_lost_share, settings.strict
    probe = load_probe(probe_json).facts
    warnings = damage_warnings(probe, max_lost_share=max_lost_share, strict=strict)
    pts = load_probe(probe_json, probe_pts).pts
    seconds = pts * float(Fraction(probe["time_base"]))
    plan_fps = fps
    if (
        fps is None
        and probe["variable_frame_rate"]
        and probe.get("frames_lost")
        and _holes_only(probe, seconds)
    ):
        # A constant-rate video with frames lost to damage: keep its own rate, and let each lost
        # frame's instant show the nearest decoded frame (instead of resampling to a made-up rate).
        plan_fps = Fraction(probe["nominal_fps_fraction"])
    index, rate, resampled = plan_timeline(
        seconds,
        variable_frame_rate=probe["variable_frame_rate"],
        nominal_fps=probe["nominal_fps"],
        fps=plan_fps,
        start=start,
        end=end,
        path=probe["path"],
    )
    table = pd.DataFrame(
        {
            "frame": np.arange(len(index)),
            "time": np.arange(len(index)) / float(rate),
            "source_frame": index,
            "source_pts": pts[index],
            "source_time": seconds[index],
        }
    )
    header = {
        "video_id": video_id,
        "source": probe["path"],
        "width": probe["width"],
        "height": probe["height"],
        "rotation": probe["rotation"],
        "fps": float(rate),
        "fps_fraction": str(rate),
        "frame_count": len(index),
        "resampled": resampled,
        "trim": {"start": start, "end": end},
        "requested_fps": fps,
        "source_frame_count": probe["frame_count"],
        "source_average_fps": probe["average_fps"],
        "source_variable_frame_rate": probe["variable_frame_rate"],
        "source_start_time": probe["start_time"],
        "timestamps_reliable": probe["timestamps_reliable"],
        "has_audio": probe["has_audio"],
        "timeline_csv": Path(out_csv).name,
        "warnings": warnings,
        "max_lost_share": max_lost_share,
        "strict": strict,
        "posepipe_version": __version__,
        "stage_version": STAGE_VERSIONS["frames"],
    }
    save_timeline(out_json, out_csv, header, table)
    log.info("%s: timeline of %d frames at %s fps (%s)", video_id, len(index), rate,
             "resampled" if resampled else "every source frame")  # fmt: skip
    return header


def write_jpeg_frames(
    timeline_json: str | os.PathLike, *, out_dir: str | os.PathLike, settings: FramesSettings | None = None
) -> int:
    """Write every timeline frame as ``out_dir/000000.jpg`` ...; all or nothing (temp folder, rename).

    The JPEG quality is ``settings.jpeg_quality`` (None: the default). Returns the frame count.
    """
    import cv2

    quality = (settings or FramesSettings()).jpeg_quality
    timeline = load_timeline(timeline_json)
    with atomic_folder(out_dir) as tmp:
        for k, image in iter_frames(timeline):
            cv2.imwrite(str(tmp / f"{k:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return timeline.frame_count


# ---------------------------------------------------------------------------------------------
# command line


def optional_float(text: str) -> float:
    """argparse type of a setting that may be unset: a number (unset is spelled by leaving the
    option out, as for every posepipe option)."""
    return float(text)


def share(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    import argparse

    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def register_cli(sub) -> None:
    p = sub.add_parser("probe", help="count frames and read stream facts of one video")
    p.add_argument("video")
    p.add_argument("--out", required=True, help="probe.json")
    p.add_argument("--pts", required=True, help="probe_pts.npy: every frame's timestamp")
    p.set_defaults(handler=lambda a: run_probe(a.video, out_json=a.out, out_pts=a.pts))

    p = sub.add_parser("frames", help="build the constant-rate frame timeline from a probe")
    p.add_argument("probe", help="probe.json (probe_pts.npy beside it unless --pts)")
    p.add_argument("--pts")
    p.add_argument("--video-id", required=True)
    p.add_argument("--out", required=True, help="frames/timeline.json")
    p.add_argument("--csv", required=True, help="frames/timeline.csv")
    add_option(p, "--fps", key="frames.fps", type=optional_float, help="output rate, frames per second")
    add_option(
        p, "--start", key="frames.start", type=optional_float, help="trim start, seconds from the first frame"
    )
    add_option(
        p,
        "--end",
        key="frames.end",
        type=optional_float,
        help="trim end (exclusive), seconds from the first frame",
    )
    add_option(
        p, "--max-lost-share", key="frames.max_lost_share", type=share,
        help="share of the frames the container promises that may fail to decode without a warning",
    )  # fmt: skip
    add_option(p, "--strict", key="frames.strict", help="fail instead of warning when more frames are lost")
    p.set_defaults(
        handler=lambda a: run_frames(
            a.probe, a.pts or Path(a.probe).with_name("probe_pts.npy"), video_id=a.video_id,
            out_json=a.out, out_csv=a.csv,
            # the JPEG quality is frames-jpeg's option, not this command's
            settings=settings_from_args(FramesSettings, a, jpeg_quality=FramesSettings.jpeg_quality),
        )
    )  # fmt: skip

    p = sub.add_parser("frames-jpeg", help="write the timeline's frames as JPEG files")
    p.add_argument("timeline", help="frames/timeline.json")
    p.add_argument("--out", required=True, help="output folder")
    add_option(
        p,
        "--quality",
        key="frames.jpeg_quality",
        dest="jpeg_quality",
        metavar="QUALITY",
        type=int,
        help="JPEG quality, 1-100",
    )
    p.set_defaults(
        handler=lambda a: write_jpeg_frames(
            a.timeline, out_dir=a.out, settings=FramesSettings(jpeg_quality=a.jpeg_quality)
        )
    )
