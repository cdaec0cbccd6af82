"""The render stage: inputs in, ``render.mp4`` out, parts rendered in parallel; its command line.

Inputs are read through their contract modules, each checked against the frame timeline:
``frames/timeline.json`` (:func:`posepipe.artefacts.timeline.load_timeline`), ``dataset2d.npz``
(:func:`posepipe.artefacts.dataset2d.load_dataset2d`; of a merged file, the video's own subject) and
``pose3d.npz`` (:func:`posepipe.artefacts.pose3d.load_pose3d`, its ``positions_3d_display``).

Frames stream: decoded (``posepipe.decode.iter_frames``), drawn into one reused buffer
(:class:`~posepipe.render.visualizer.FrameRenderer`) and piped to an ffmpeg/libx264 encoder as
raw BGR; nothing proportional to the video's length is held except the pose arrays. With
``threads = N > 1`` the output frames are split into up to N contiguous parts; each part decodes
its own range (one seek), draws it and feeds its own single-threaded encoder, writing an mp4
segment; the segments are then joined without re-encoding, which is also where the audio is added
and the index moved to the front (+faststart). Contiguous parts cost one seek each, where
interleaved chunks fed to one encoder would seek (decode from a key frame) per chunk or hold whole
parts in memory; and x264 is most efficient per core with one thread per encoder.

Output (written atomically: ``.render.mp4.*`` temporaries, the parts folder among them, are
removed by the next write if a job is killed): same frame count and exact rational frame rate
as the timeline (``every`` divides the rate, ``max_frames`` shortens), yuv420p BT.709, even
dimensions, playable in browsers. The container's ``comment`` tag holds JSON recording what made
it: ``{"stage": "render", "stage_version": <STAGE_VERSIONS["render"]>, "posepipe": <version>,
"options": {...}}`` (read it back with :func:`read_render_meta`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time as clock
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.atomic import atomic_path
from posepipe.errors import PosepipeError
from posepipe.progress import Progress
from posepipe.registry import STAGE_VERSIONS
from posepipe.render.encode import (
    Encoder,
    EncoderOptions,
    audio_args,
    join_segments,
    write_preview,
)
from posepipe.render.scene import LAYOUTS, build_view3d, plan_layout
from posepipe.render.visualizer import FrameRenderer, default_thickness
from posepipe.settings import schema_default, settings_from_args
from posepipe.shards import range_arg, render_frame_count

log = logging.getLogger(__name__)

STAGE = "render"
PROGRESS_SECONDS = 5.0
MAX_PARTS = 8  # more parallel parts than this gain little and cost memory (an encoder each)
# Fewer frames than this per part and a worker's start-up and seek cost more than they save.
MIN_PART_FRAMES = 48


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class RenderInputs:
    """Everything one frame needs, per person and timeline frame: ``keypoints`` (P, T, 17, 2)
    float32 pixels (NaN where a person is absent), ``detected`` bool (P, T), ``scores`` float32
    (P, T, 17) or None, ``poses`` (P, T, 17, 3) display metres; ``labels``: a label per person
    ("P<track>"), or None for one person per frame (upstream's choice)."""

    timeline: object  # posepipe.artefacts.timeline.Timeline
    name: str
    keypoints: np.ndarray
    detected: np.ndarray
    scores: np.ndarray | None
    poses: np.ndarray
    labels: list[str] | None = None
    trails: np.ndarray | None = None  # (P, T, 3) roots on the floor (world frame), or None


def load_inputs(
    timeline_json: str | os.PathLike,
    dataset2d_npz: str | os.PathLike,
    pose3d_npz: str | os.PathLike,
    world_npz: str | os.PathLike | None = None,
) -> RenderInputs:
    """Read and cross-check the three inputs; a frame count or image size that differs from the
    timeline's is an error (PosepipeError naming the file). With ``world_npz`` (``render.frame:
    world``) the 3D panel shows the world frame: every person where they are on the fitted floor
    (z = 0), with the trail of their root."""
    from posepipe.artefacts.dataset2d import load_persons2d, subject_name
    from posepipe.artefacts.pose3d import load_pose3d
    from posepipe.artefacts.timeline import load_timeline

    timeline = load_timeline(timeline_json)
    count = timeline.frame_count
    # One sequence, or one per person; of a merged file, this video's subject.
    people = load_persons2d(dataset2d_npz, prefer=subject_name(timeline.video_id))
    ds = people[0]
    if ds.num_frames != count:
        raise PosepipeError(
            dataset2d_npz,
            f"has {ds.num_frames} frames of keypoints but the timeline {timeline_json} has {count} frames",
        )
    if (ds.width, ds.height) != (timeline.width, timeline.height):
        raise PosepipeError(
            dataset2d_npz,
            f"keypoints are for a {ds.width}x{ds.height} image, the timeline {timeline_json} is "
            f"{timeline.width}x{timeline.height}",
        )
    pose = load_pose3d(pose3d_npz, frame_count=count)
    poses = pose.display
    if [p.track_id for p in people] != [int(t) for t in pose.track_ids]:
        raise PosepipeError(
            pose3d_npz,
            f"holds {len(poses)} persons, {dataset2d_npz} holds {len(people)} (made from other data?)",
        )
    trails = None
    if world_npz is not None:
        from posepipe.artefacts.world import load_world

        world = load_world(world_npz, frame_count=count)
        if world.track_ids.tolist() != [int(t) for t in pose.track_ids]:
            raise PosepipeError(
                world_npz, f"persons {world.track_ids.tolist()} are not those of {pose3d_npz}"
            )
        poses = world.joints
        trails = world.root.copy()
        trails[..., 2] = 0.0
    scores = None if ds.scores is None else np.stack([p.scores for p in people])
    return RenderInputs(
        timeline=timeline, name=timeline.video_id, keypoints=np.stack([p.keypoints for p in people]),
        detected=np.stack([p.detected for p in people]), scores=scores, poses=poses,
        labels=[f"P{p.track_id}" for p in people] if pose.tracked else None, trails=trails,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# parts


@dataclass(frozen=True)
class _Part:
    """Output frames ``first .. first + count - 1``; output frame ``i`` is timeline frame ``i * every``."""

    index: int
    first: int
    count: int
    every: int


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask a scheduler sets), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split(count: int, *, every: int, parts: int) -> list[_Part]:
    """``count`` output frames as up to ``parts`` contiguous parts of near-equal size."""
    n = max(1, min(parts, count // MIN_PART_FRAMES))
    bounds = np.linspace(0, count, n + 1).round().astype(int)
    return [
        _Part(index=i, first=int(a), count=int(b - a), every=every)
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def _frames_of(timeline, part: _Part, *, need_video: bool) -> Iterator[tuple[int, np.ndarray | None]]:
    """(timeline index, BGR frame or None) of each output frame of ``part``, decoding only the range."""
    from posepipe.decode import iter_frames

    start = part.first * part.every
    stop = (part.first + part.count - 1) * part.every + 1
    if not need_video:
        for k in range(start, stop, part.every):
            yield k, None
        return
    for k, image in iter_frames(timeline, start=start, stop=stop):
        if (k - start) % part.every == 0:
            yield k, image


class _Cancelled(Exception):
    """Another part failed; this one stops quietly."""


def _render_part(
    renderer: FrameRenderer, timeline, part: _Part, encoder: Encoder, done: list[int], stop
) -> None:
    """Draw and encode every frame of ``part``; ``done[part.index]`` counts frames, ``stop`` (an Event) cancels."""
    out = renderer.new_frame()  # one buffer per part, reused for every frame
    for k, image in _frames_of(timeline, part, need_video=renderer.layout.video_width > 0):
        if stop.is_set():
            raise _Cancelled
        encoder.write(renderer.render(k, image, out))
        done[part.index] += 1
    if done[part.index] != part.count:
        raise PosepipeError(
            timeline.source, f"decoded {done[part.index]} of {part.count} frames of the timeline range"
        )


def _render_parts(renderer, timeline, parts, tmp: Path, *, fps, options, extra, label) -> None:
    """Render ``parts`` concurrently into ``tmp``: one part is encoded straight into it, several are
    encoded as mp4 segments (in a ``{tmp.stem}.parts.*`` folder beside it) and joined.

    Each part runs in a thread with its own decoder and its own ffmpeg process. Threads suffice:
    decoding (PyAV), resizing and drawing (OpenCV) and pipe writes release the GIL, drawing holds
    it for ~1 ms a frame, and encoding, the bulk of the work, runs in the ffmpeg processes. Unlike
    worker processes, threads need no pickling, start instantly and pass exceptions back intact.
    """
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
    from threading import Event

    total = sum(p.count for p in parts)
    done = [0] * len(parts)
    stop = Event()
    lay = renderer.layout
    # Named after the temporary mp4 (``.render.mp4.*``): the next write removes it if a job is killed.
    segdir = Path(tempfile.mkdtemp(prefix=f"{tmp.stem}.parts.", dir=tmp.parent)) if len(parts) > 1 else None
    segments = [segdir / f"{p.index:03d}.mp4" for p in parts] if segdir else [tmp]

    def run(part: _Part, segment: Path) -> None:
        # A single part carries the final options (audio, faststart); segments get them when joined.
        with Encoder(segment, width=lay.width, height=lay.height, fps=fps, options=options,
                     extra=[] if segdir else extra) as encoder:  # fmt: skip
            _render_part(renderer, timeline, part, encoder, done, stop)

    meter = Progress(total, label=label, logger=log, every=PROGRESS_SECONDS)
    try:
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="posepipe-render") as pool:
            futures = [pool.submit(run, part, segment) for part, segment in zip(parts, segments, strict=True)]
            try:
                pending = futures
                while pending:
                    finished, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
                    meter.update(sum(done))
                    for future in finished:
                        future.result()  # raises the part's exception
            finally:
                stop.set()  # no-op when all finished; stops the other parts after a failure
        meter.update(total, force=True)
        if segdir is not None:
            join_segments(segments, tmp, extra=extra)
    finally:
        if segdir is not None:
            shutil.rmtree(segdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the stage


@dataclass(frozen=True)
class RenderSettings:
    """Settings of the render stage (config ``render:``); defaults are the workflow's.

    ``height``: output height in pixels (None: the timeline's); the width follows from ``layout``
    ('side_by_side': video + square 3D panel, '3d_only', '2d_only'), rounded to even.
    ``azimuth``, ``elevation``: camera of the 3D panel, degrees. ``max_frames``: write at most
    this many output frames (None: all); ``every``: keep every k-th frame (the frame rate is
    divided by k, so the clip keeps its duration). ``crf``, ``preset``: libx264 quality and speed.
    ``audio``: copy the source's audio, aligned to the timeline's first frame (skipped, with a log
    line, when the timeline is resampled or the source has none). The section's ``enabled``,
    ``preview`` and ``frame`` choose the workflow's targets and inputs (``frame: world`` passes
    world.npz, :func:`run_render`'s ``world_npz``).
    """

    height: int | None = schema_default("render.height")
    layout: str = schema_default("render.layout")
    azimuth: float = schema_default("render.azimuth")
    elevation: float = schema_default("render.elevation")
    max_frames: int | None = schema_default("render.max_frames")
    every: int = schema_default("render.every")
    crf: int = schema_default("render.crf")
    preset: str = schema_default("render.preset")
    audio: bool = schema_default("render.audio")


def render_meta(options: dict) -> dict:
    """What render.mp4 records about what made it (its ``comment`` tag, as JSON)."""
    return {
        "stage": STAGE,
        "stage_version": STAGE_VERSIONS[STAGE],
        "posepipe": __version__,
        "options": options,
    }


def read_render_meta(path: str | os.PathLike) -> dict:
    """The record :func:`run_render` wrote into ``path`` (an mp4): see :func:`render_meta`."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            comment = container.metadata.get("comment")
    except (OSError, av.FFmpegError) as exc:
        raise PosepipeError(path, f"cannot read the video's metadata ({exc})") from exc
    try:
        meta = json.loads(comment) if comment else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("stage") != STAGE:
        raise PosepipeError(path, "records no render stage (no posepipe JSON in its comment tag)")
    return meta


def run_render(
    timeline_json: str | os.PathLike,
    dataset2d_npz: str | os.PathLike,
    pose3d_npz: str | os.PathLike,
    out_mp4: str | os.PathLike,
    *,
    settings: RenderSettings | None = None,
    bitrate: str | None = None,
    threads: int | None = None,
    preview: str | os.PathLike | None = None,
    thickness: int | None = None,
    segment: tuple[int, int] | None = None,
    world_npz: str | os.PathLike | None = None,
) -> dict:
    """Render ``out_mp4``: timeline frames with the 2D skeleton beside the 3D skeleton.

    With ``segment`` ``(first, stop)`` (output frames), only that part is rendered, as a bare mp4
    segment (no audio, index at the end) whose comment records the segment: :func:`join_segments_to_render`
    joins the segments of a sharded render into the file an unsharded run writes.

    Args:
        settings: config ``render:`` (:class:`RenderSettings`; None: the schema's defaults).
        bitrate: libx264 bitrate, e.g. '3000k', overriding ``settings.crf``.
        threads: CPU threads to use (None: all this process may use); up to ``threads`` parts
            are rendered and encoded concurrently, the encoders share the threads.
        preview: also write a short small GIF (or .mp4) there.
        thickness: bone width in output pixels (default grows with ``height``).
        world_npz: the world stage's world.npz: the 3D panel in the world frame (``render.frame``).

    Returns:
        dict with frames, fps (str), width, height, layout, seconds, audio, meta (the record
        written into the file).
    """
    started = clock.perf_counter()
    settings = settings or RenderSettings()
    height, layout, every, max_frames = settings.height, settings.layout, settings.every, settings.max_frames
    azimuth, elevation, crf, preset = settings.azimuth, settings.elevation, settings.crf, settings.preset
    audio = settings.audio
    if every < 1:
        raise ValueError("every must be >= 1")
    if max_frames is not None and max_frames < 1:
        raise ValueError("max_frames must be >= 1")
    inputs = load_inputs(timeline_json, dataset2d_npz, pose3d_npz, world_npz)
    timeline = inputs.timeline
    count = render_frame_count(timeline.frame_count, every=every, max_frames=max_frames)
    fps = Fraction(timeline.fps_fraction) / every
    if segment is not None and not 0 <= segment[0] < segment[1] <= count:
        raise PosepipeError(
            timeline_json, f"segment {segment[0]}:{segment[1]} is not inside the 0:{count} output frames"
        )
    lay = plan_layout(timeline.width, timeline.height, height=height, layout=layout)
    view = (
        build_view3d(
            inputs.poses.reshape(-1, *inputs.poses.shape[2:]),
            size=lay.view_size,
            azimuth=azimuth,
            elevation=elevation,
        )  # fmt: skip
        if lay.view_size
        else None
    )
    renderer = FrameRenderer(
        layout=lay, view=view, name=inputs.name, keypoints=inputs.keypoints, detected=inputs.detected,
        scores=inputs.scores, poses=inputs.poses, time=timeline.time, labels=inputs.labels,
        thickness=thickness or default_thickness(lay.height), trails=inputs.trails,
    )  # fmt: skip
    duration = count / fps
    sound = (
        audio_args(timeline, first_time=float(timeline.source_time[0]), duration=float(duration))
        if audio and segment is None
        else []
    )
    # Recorded in the file, so a render can be traced to what made it.
    meta = render_meta({
        "layout": layout, "height": lay.height, "azimuth": azimuth, "elevation": elevation, "every": every,
        "max_frames": max_frames, "crf": crf, "bitrate": bitrate, "preset": preset, "audio": bool(sound),
        "thickness": renderer.thickness, **({"frame": "world"} if world_npz is not None else {}),
    })  # fmt: skip
    final = ["-movflags", "+faststart", "-metadata", f"comment={json.dumps(meta)}"]
    threads = threads or available_cpus()
    first, stop = segment or (0, count)
    parts = [
        _Part(index=p.index, first=first + p.first, count=p.count, every=every)
        for p in _split(stop - first, every=every, parts=min(threads, MAX_PARTS))
    ]
    if segment is not None:  # audio and the index at the front come when the segments are joined
        meta["segment"] = [first, stop]
        meta["frames"] = count
        meta["audio_requested"] = bool(audio)
        final = ["-metadata", f"comment={json.dumps(meta)}"]
    options = EncoderOptions(
        crf=crf, bitrate=bitrate, preset=preset, x264_threads=max(1, threads // len(parts))
    )
    log.info("render: %s -> %s, %d frames at %s fps, %dx%d (%s), %d part(s)",
             timeline.video_id, out_mp4, count, fps, lay.width, lay.height, layout, len(parts))  # fmt: skip

    out_mp4 = Path(out_mp4)
    with atomic_path(out_mp4) as tmp:
        _render_parts(renderer, timeline, parts, tmp, fps=fps, options=options, extra=[*sound, *final],
                      label=f"render {timeline.video_id}")  # fmt: skip
        if preview is not None:
            write_preview(tmp, preview)
    seconds = clock.perf_counter() - started
    log.info(
        "render: wrote %s (%d frames in %.1f s, %.1f frames/s)", out_mp4, count, seconds, count / seconds
    )
    return {
        "frames": stop - first, "fps": str(fps), "width": lay.width, "height": lay.height, "layout": layout,
        "seconds": round(seconds, 3), "audio": bool(sound), "meta": meta,
    }  # fmt: skip


def join_segments_to_render(
    segments: list[str | os.PathLike], out_mp4: str | os.PathLike, *, timeline_json: str | os.PathLike
) -> dict:
    """Join the segments of a sharded render (any order) into ``out_mp4`` without re-encoding:
    the segments must tile the output frames; the source's audio (when the segments were rendered
    with audio on) and the index at the front are added here, as :func:`run_render` does.

    Returns: the record written into the file (its comment).
    """
    from posepipe.artefacts.timeline import load_timeline

    metas = sorted(
        ((read_render_meta(s), Path(s)) for s in segments), key=lambda m: m[0].get("segment", [0])[0]
    )
    expected, count = 0, metas[0][0].get("frames")
    for meta, path in metas:
        first, stop = meta.get("segment", (None, None))
        if first != expected or meta.get("frames") != count or meta["options"] != metas[0][0]["options"]:
            raise PosepipeError(path, f"segments do not tile the render: expected one from frame {expected}")
        expected = stop
    if expected != count:
        raise PosepipeError(metas[-1][1], f"segments cover frames 0..{expected} of {count}")
    timeline = load_timeline(timeline_json)
    every = metas[0][0]["options"]["every"]
    fps = Fraction(timeline.fps_fraction) / every
    sound = (
        audio_args(timeline, first_time=float(timeline.source_time[0]), duration=float(count / fps))
        if metas[0][0]["audio_requested"]
        else []
    )
    meta = {k: v for k, v in metas[0][0].items() if k not in ("segment", "frames", "audio_requested")}
    meta["options"] = {**meta["options"], "audio": bool(sound)}
    meta["shards"] = len(metas)
    with atomic_path(out_mp4) as tmp:
        join_segments([path for _, path in metas], tmp,
                      extra=[*sound, "-movflags", "+faststart", "-metadata", f"comment={json.dumps(meta)}"])  # fmt: skip
    log.info("render: joined %d segments (%d frames) -> %s", len(metas), count, out_mp4)
    return meta


# ---------------------------------------------------------------------------------------------
# command line


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register_cli(sub) -> None:
    """``render`` and ``render-preview``. Settings of the workflow's ``render:`` section default to
    the config schema's values; an unset setting is an omitted option."""
    from posepipe.settings import add_option, schema_node

    p = sub.add_parser("render", help="draw the video beside its 3D skeleton (H.264 mp4)")
    p.add_argument("timeline", help="frames/timeline.json")
    p.add_argument("--dataset2d", required=True, help="dataset2d.npz (VideoPose3D 2D keypoints)")
    p.add_argument("--pose3d", required=True, help="pose3d.npz (positions_3d_display)")
    p.add_argument("--out", required=True, help="render.mp4")
    add_option(p, "--height", key="render.height", type=_positive, help="output height in pixels")
    add_option(
        p,
        "--layout",
        key="render.layout",
        choices=LAYOUTS,
        help="the video beside the 3D view, or one of them",
    )
    add_option(p, "--azimuth", key="render.azimuth", type=float, help="3D camera azimuth, degrees")
    add_option(p, "--elevation", key="render.elevation", type=float, help="3D camera elevation, degrees")
    add_option(p, "--max-frames", key="render.max_frames", type=_positive,
               help="render only the first N output frames; omit for all")  # fmt: skip
    add_option(
        p, "--every", key="render.every", type=_positive, help="keep every k-th frame (fps divided by k)"
    )
    add_option(p, "--crf", key="render.crf", type=int, help="x264 quality, lower is better")
    add_option(p, "--preset", key="render.preset", choices=schema_node("render.preset")["enum"],
               help="x264 preset")  # fmt: skip
    add_option(p, "--audio", key="render.audio", help="copy the source's audio track")
    p.add_argument("--bitrate", help="x264 bitrate, e.g. 3000k (overrides --crf)")
    p.add_argument("--threads", type=_positive, help="CPU threads to use (default: all this process may use)")
    p.add_argument("--preview", help="also write a short GIF (or .mp4) preview here")
    p.add_argument("--thickness", type=_positive, help="bone width in pixels (default: from the height)")
    p.add_argument("--segment", type=range_arg, default=None, metavar="FIRST:STOP",
                   help="render only output frames FIRST..STOP-1 as a segment of a sharded render")  # fmt: skip
    p.add_argument(
        "--world", default=None, help="world.npz: the 3D panel in the world frame (config render.frame)"
    )
    p.set_defaults(handler=_cli)

    p = sub.add_parser("render-join", help="join the segments of a sharded render into render.mp4")
    p.add_argument("segments", nargs="+", help="segment mp4 files (any order)")
    p.add_argument("--timeline", required=True, help="frames/timeline.json (frame rate, audio)")
    p.add_argument("--out", required=True, help="render.mp4")
    p.set_defaults(handler=lambda a: join_segments_to_render(a.segments, a.out, timeline_json=a.timeline))

    p = sub.add_parser("render-preview", help="a short small GIF (or mp4) from a rendered video")
    p.add_argument("video", help="render.mp4")
    p.add_argument("--out", required=True, help="preview.gif (or .mp4)")
    p.add_argument("--width", type=_positive, default=480)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=4.0, help="length, taken from the middle of the video")
    p.add_argument("--html", default=None, help="also a page showing it (for snakemake --report)")
    p.set_defaults(
        handler=lambda a: write_preview(
            a.video, a.out, width=a.width, fps=a.fps, seconds=a.seconds, html=a.html
        )
    )


def _cli(args) -> None:
    run_render(
        args.timeline, args.dataset2d, args.pose3d, args.out, settings=settings_from_args(RenderSettings, args),
        bitrate=args.bitrate, threads=args.threads, preview=args.preview, thickness=args.thickness,
        segment=args.segment, world_npz=args.world,
    )  # fmt: skip
