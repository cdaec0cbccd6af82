"""Render stage: the timeline's frames with the 2D skeleton beside the lifted 3D skeleton (H.264 mp4).

Why it is fast and flat in memory:

- The 3D panel's static part (axes, ground grid, tick labels) is drawn ONCE with matplotlib; its
  projection matrix is kept, so a frame only projects 17 joints with numpy and draws the bones
  with OpenCV on a copy of that background (no per-frame matplotlib redraw, which costs ~100 ms).
- Frames stream: decoded (``video.iter_frames``), drawn into one reused buffer and piped to an
  ffmpeg/libx264 encoder as raw BGR. Nothing proportional to the video's length is held except
  the pose arrays.
- With ``threads = N > 1`` the output frames are split into up to N contiguous parts; each part
  decodes its own range (one seek), draws it and feeds its own single-threaded encoder, writing
  an mp4 segment; the segments are then joined without re-encoding (ffmpeg concat demuxer),
  which is also where the audio is added and the index moved to the front (+faststart).
  Contiguous parts cost one seek each, where interleaved chunks fed to one encoder would seek
  (decode from a key frame) per chunk or hold whole parts in memory; and x264 is most efficient
  per core with one thread per encoder. Parts run as threads (see :func:`_render_parts`).

Output: same frame count and exact rational frame rate as the timeline (``every`` divides the
rate, ``max_frames`` shortens), yuv420p BT.709, even dimensions, playable in browsers.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time as clock
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from posepipe import __version__
from posepipe.atomic import atomic_path
from posepipe.errors import PosepipeError
from posepipe.progress import Progress
from posepipe.skeleton import (
    COCO_BONES,
    COCO_LEFT,
    COCO_RIGHT,
    H36M_BONES,
    H36M_LEFT,
    H36M_RIGHT,
    bone_side,
    side_of,
)

log = logging.getLogger(__name__)

LAYOUTS = ("side_by_side", "3d_only", "2d_only")
DEFAULT_AZIMUTH = 70.0  # upstream's camera azimuth for custom videos (display only)
DEFAULT_ELEVATION = 15.0
MIN_VIEW_SIZE_M = 1.7  # upstream's 3D box: 1.7 m wide and tall, enough for a standing adult
PROGRESS_SECONDS = 5.0
DEFAULT_PRESET = "ultrafast"  # x264: encoding is ~80% of render CPU; same SSIM as veryfast, ~2.3x the bytes
MAX_PARTS = 8  # more parallel parts than this gain little and cost memory (an encoder each)

# Skeleton colours (BGR): saturated hues that stay apart from each other, from skin and from
# the white 3D panel; left/right follow the usual blue = left, red = right convention.
COLOURS = {"left": (235, 140, 20), "right": (40, 70, 235), "center": (60, 190, 40)}
OUTLINE = (30, 30, 30)
SHADOW = (175, 175, 175)
GREY = (150, 150, 150)
TAG_COLOUR = (0, 180, 255)  # amber box of the "interpolated" tag
TEXT_COLOUR = (255, 255, 255)
FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX; a literal so that importing this module does not import cv2
SHIFT = 4  # OpenCV sub-pixel bits: coordinates are drawn at 1/16 pixel


# ---------------------------------------------------------------------------------------------
# layout


@dataclass(frozen=True)
class Layout:
    """Where the panels sit in an output frame of ``height x width`` pixels.

    The video panel is the timeline frame scaled by ``video_scale_x/y`` (``video_width`` 0 when
    absent); the 3D panel is a ``view_size`` square (0 when absent). ``*_x`` are left edges.
    """

    name: str
    width: int
    height: int
    video_x: int
    video_width: int
    video_scale_x: float
    video_scale_y: float
    view_x: int
    view_size: int

    def video_point(self, points: np.ndarray) -> np.ndarray:
        """Output-pixel position of timeline-frame pixels: (..., 2) -> (..., 2) float."""
        points = np.asarray(points, dtype=np.float64)
        # Pixel centres: timeline pixel (x, y) covers [x, x+1), so scale the centre, not the corner.
        return np.stack(
            [self.video_x + (points[..., 0] + 0.5) * self.video_scale_x - 0.5,
             (points[..., 1] + 0.5) * self.video_scale_y - 0.5], axis=-1,
        )  # fmt: skip


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def plan_layout(source_width: int, source_height: int, *, height: int | None, layout: str) -> Layout:
    """Panel geometry for a ``source_width x source_height`` video at output ``height`` (None: the source's)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    out_h = _even(source_height if height is None else height)
    video_w = _even(source_width * out_h / source_height) if layout != "3d_only" else 0
    view = out_h if layout != "2d_only" else 0
    return Layout(
        name=layout, width=video_w + view, height=out_h, video_x=0, video_width=video_w,
        video_scale_x=video_w / source_width, video_scale_y=out_h / source_height,
        view_x=video_w, view_size=view,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 3D panel: static background drawn once, per-frame projection with numpy


@dataclass
class View3D:
    """The 3D panel: a ``size x size`` BGR background and the projection that matplotlib drew it with.

    ``proj`` (4, 4) maps homogeneous display-frame metres to matplotlib's projected plane,
    ``to_pixels`` (3, 3) is the axes' affine data-to-display transform (origin bottom-left),
    ``eye`` (3,) the unit vector from the scene towards the viewer (for depth ordering).
    """

    background: np.ndarray
    proj: np.ndarray
    to_pixels: np.ndarray
    eye: np.ndarray
    limits: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]

    @property
    def size(self) -> int:
        return self.background.shape[0]

    def project(self, points: np.ndarray) -> np.ndarray:
        """Panel pixel positions (x right, y down; pixel centres at integers) of (..., 3) metres -> (..., 2)."""
        points = np.asarray(points, dtype=np.float64)
        homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1) @ self.proj.T
        plane = homogeneous[..., :2] / homogeneous[..., 3:4]
        display = plane @ self.to_pixels[:2, :2].T + self.to_pixels[:2, 2]
        return np.stack([display[..., 0] - 0.5, self.size - display[..., 1] - 0.5], axis=-1)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along the viewing direction, larger = farther: (..., 3) -> (...)."""
        return -np.asarray(points, dtype=np.float64) @ self.eye


def view_limits(poses: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """Axis limits that hold every frame of ``poses`` (T, J, 3) display metres, fixed for the clip.

    Centred on the root's (joint 0) mean ground position; a cube of at least 1.7 m (upstream's
    size) and large enough for every joint of every frame, floor at z = 0.
    """
    finite = np.isfinite(poses).all(axis=-1)
    if not finite.any():
        centre, span = np.zeros(2), MIN_VIEW_SIZE_M
    else:
        root = poses[:, 0, :2][finite[:, 0]] if finite[:, 0].any() else poses[finite][:, :2]
        # Midrange rather than mean: a subject who walks keeps both ends of the path in view.
        centre = (root.min(axis=0) + root.max(axis=0)) / 2
        joints = poses[finite]
        reach = np.abs(joints[:, :2] - centre).max()
        span = max(MIN_VIEW_SIZE_M, 2 * reach * 1.05, joints[:, 2].max() * 1.05)
    span = math.ceil(span * 10) / 10  # round numbers for tick labels
    half = span / 2
    return (
        (float(centre[0] - half), float(centre[0] + half)),
        (float(centre[1] - half), float(centre[1] + half)),
        (0.0, float(span)),
    )


def _ticks(lo: float, hi: float, step: float) -> np.ndarray:
    return np.arange(math.ceil(lo / step - 1e-9) * step, hi + 1e-9, step)


def build_view3d(
    poses: np.ndarray, *, size: int, azimuth: float = DEFAULT_AZIMUTH, elevation: float = DEFAULT_ELEVATION
) -> View3D:
    """Draw the static 3D panel (axes, floor grid, ticks) for ``poses`` (T, 17, 3) display metres.

    Deterministic: the same poses, size and angles give the same background and projection.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the "3d" projection)

    limits = view_limits(poses)
    (x0, x1), (y0, y1), (z0, z1) = limits
    dpi = 100
    scale = size / 720  # fonts and lines designed at 720 px, scaled with the panel
    style = {
        "font.size": max(4.0, 10.5 * scale),
        "axes.labelsize": max(4.0, 11 * scale),
        "grid.color": "#d4d8de",
        "grid.linewidth": max(0.3, 0.8 * scale),
        "axes.edgecolor": "#9aa0a6",
        "xtick.color": "#3c4043",
        "ytick.color": "#3c4043",
        "axes.labelcolor": "#3c4043",
    }
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(size / dpi, size / dpi), dpi=dpi, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((-0.03, -0.01, 1.05, 1.05), projection="3d")
        ax.view_init(elev=elevation, azim=azimuth)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_zlim(z0, z1)
        ax.set_box_aspect((1, 1, 1), zoom=1.0)
        step = 0.5 if z1 <= 3 else 1.0 if z1 <= 6 else 2.0
        for axis, (lo, hi) in zip((ax.xaxis, ax.yaxis, ax.zaxis), limits, strict=True):
            axis.set_ticks(_ticks(lo, hi, step))
            axis.set_major_formatter(FormatStrFormatter("%.1f"))
            axis.set_pane_color((0.975, 0.978, 0.985, 1.0))
        ax.zaxis.set_pane_color((0.93, 0.945, 0.96, 1.0))  # the floor, a shade darker
        ax.tick_params(pad=max(0.0, 1.5 * scale))
        ax.set_xlabel("x (m)", labelpad=max(0.0, 6 * scale))
        ax.set_ylabel("y (m)", labelpad=max(0.0, 6 * scale))
        ax.set_zlabel("z (m)", labelpad=max(0.0, 4 * scale))
        # Floor grid every 25 cm on z = 0 (denser than the ticks): the eye judges steps and sway by it.
        fine = 0.25 if step <= 0.5 else step / 2
        for x in _ticks(x0, x1, fine):
            ax.plot([x, x], [y0, y1], [0, 0], color="#c3c9d1", linewidth=max(0.3, 0.7 * scale))
        for y in _ticks(y0, y1, fine):
            ax.plot([x0, x1], [y, y], [0, 0], color="#c3c9d1", linewidth=max(0.3, 0.7 * scale))
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        background = np.ascontiguousarray(rgba[..., 2::-1])  # RGBA -> BGR
        proj = np.asarray(ax.get_proj(), dtype=np.float64)
        to_pixels = np.asarray(ax.transData.get_affine().get_matrix(), dtype=np.float64)
    az, el = np.radians(azimuth), np.radians(elevation)
    eye = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return View3D(background=background, proj=proj, to_pixels=to_pixels, eye=eye, limits=limits)


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class RenderInputs:
    """Everything one frame needs, per timeline frame: ``keypoints`` (T, 17, 2) float32 pixels,
    ``detected`` bool (T,), ``scores`` float32 (T, 17) or None, ``poses`` (T, 17, 3) display metres."""

    timeline: object  # posepipe.video.Timeline
    name: str
    keypoints: np.ndarray
    detected: np.ndarray
    scores: np.ndarray | None
    poses: np.ndarray


def load_inputs(
    timeline_json: str | os.PathLike, dataset2d_npz: str | os.PathLike, pose3d_npz: str | os.PathLike
) -> RenderInputs:
    """Read and cross-check the three inputs; a frame count that differs from the timeline's is an error."""
    from posepipe.dataset2d import load_dataset2d, subject_name
    from posepipe.video import load_timeline

    timeline = load_timeline(timeline_json)
    count = timeline.frame_count
    try:
        ds = load_dataset2d(dataset2d_npz)
    except PosepipeError as exc:
        if "choose one" not in exc.reason:
            raise
        # A merged file of several videos: take this video's subject.
        ds = load_dataset2d(dataset2d_npz, subject=subject_name(timeline.video_id))
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
    try:
        # Plain arrays only: no pickles from a file of numbers.
        with np.load(pose3d_npz, allow_pickle=False) as data:
            if "positions_3d_display" not in data:
                raise PosepipeError(pose3d_npz, "has no 'positions_3d_display' array")
            poses = np.asarray(data["positions_3d_display"], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise PosepipeError(pose3d_npz, f"cannot read 3D poses ({exc})") from exc
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise PosepipeError(pose3d_npz, f"positions_3d_display has shape {poses.shape}, expected (T, 17, 3)")
    if len(poses) != count:
        raise PosepipeError(
            pose3d_npz,
            f"has {len(poses)} frames of 3D poses but the timeline {timeline_json} has {count} frames",
        )
    return RenderInputs(
        timeline=timeline, name=timeline.video_id, keypoints=ds.keypoints, detected=ds.detected,
        scores=ds.scores, poses=poses,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# drawing one frame


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates (..., 2) -> int32 at 1/16 pixel for OpenCV's ``shift``."""
    return np.round(np.asarray(points) * (1 << SHIFT)).astype(np.int32)


def _mix(colour: tuple[int, int, int], other: tuple[int, int, int], weight: float) -> tuple[int, int, int]:
    return tuple(int(round(a * (1 - weight) + b * weight)) for a, b in zip(colour, other, strict=True))


def _dashes(p: np.ndarray, q: np.ndarray, period: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Dash segments along p -> q (float (2,) pixels), dash and gap each half a ``period``."""
    length = float(np.hypot(*(q - p)))
    count = max(1, int(length // period))
    for i in range(count):
        a = i / count
        yield p + (q - p) * a, p + (q - p) * (a + 0.5 / count)


@dataclass
class FrameRenderer:
    """Draws output frames. Keeps no per-frame state, so concurrent parts share one (each with its own ``out``).

    ``keypoints`` (T, 17, 2) timeline pixels, ``detected`` (T,), ``scores`` (T, 17) or None,
    ``poses`` (T, 17, 3) display metres, ``time`` (T,) seconds.
    """

    layout: Layout
    view: View3D | None
    name: str
    keypoints: np.ndarray
    detected: np.ndarray
    scores: np.ndarray | None
    poses: np.ndarray
    time: np.ndarray
    thickness: int
    score_threshold: float = 0.3
    _bones2d: list = field(default_factory=list, repr=False)
    _bones3d: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self._bones2d = [(a, b, COLOURS[bone_side((a, b), COCO_LEFT, COCO_RIGHT)]) for a, b in COCO_BONES]
        self._bones3d = [(a, b, COLOURS[bone_side((a, b), H36M_LEFT, H36M_RIGHT)]) for a, b in H36M_BONES]

    def new_frame(self) -> np.ndarray:
        return np.zeros((self.layout.height, self.layout.width, 3), np.uint8)

    def render(self, k: int, image: np.ndarray | None, out: np.ndarray) -> np.ndarray:
        """Draw timeline frame ``k`` into ``out`` (height, width, 3) BGR; ``image`` is the (H, W, 3) frame."""
        import cv2

        lay = self.layout
        if lay.video_width:
            panel = out[:, lay.video_x : lay.video_x + lay.video_width]
            shrink = lay.video_scale_y < 1
            resized = cv2.resize(image, (lay.video_width, lay.height), dst=panel,
                                 interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)  # fmt: skip
            if not np.may_share_memory(resized, panel):  # OpenCV may not write into a strided view
                panel[...] = resized
            self._draw_2d(panel, k)
        if lay.view_size:
            panel = out[:, lay.view_x : lay.view_x + lay.view_size]
            np.copyto(panel, self.view.background)
            self._draw_3d(panel, k)
        self._draw_caption(out, k)
        return out

    def _draw_2d(self, panel: np.ndarray, k: int) -> None:
        import cv2

        t = self.thickness
        points = self.layout.video_point(self.keypoints[k]) - [self.layout.video_x, 0]
        ok = np.isfinite(points).all(axis=1)
        fixed = _fixed(np.where(ok[:, None], points, 0))
        interpolated = not self.detected[k]
        for a, b, colour in self._bones2d:
            if not (ok[a] and ok[b]):
                continue
            if interpolated:
                # Interpolated frames: dashed, greyed bones (no detector saw this pose).
                faded = _mix(colour, GREY, 0.45)
                for p, q in _dashes(points[a], points[b], period=5.0 * t):
                    p, q = _fixed(p), _fixed(q)
                    cv2.line(panel, tuple(p), tuple(q), OUTLINE, t + 2, cv2.LINE_AA, SHIFT)
                    cv2.line(panel, tuple(p), tuple(q), faded, t, cv2.LINE_AA, SHIFT)
            else:
                # A dark rim under every bone keeps it visible on light and dark backgrounds alike.
                cv2.line(panel, tuple(fixed[a]), tuple(fixed[b]), OUTLINE, t + 2, cv2.LINE_AA, SHIFT)
                cv2.line(panel, tuple(fixed[a]), tuple(fixed[b]), colour, t, cv2.LINE_AA, SHIFT)
        radius = (t + 1) << SHIFT
        for j in np.flatnonzero(ok):
            colour = COLOURS[side_of(int(j), COCO_LEFT, COCO_RIGHT)]
            if interpolated:
                colour = _mix(colour, GREY, 0.45)
            centre = tuple(fixed[j])
            cv2.circle(panel, centre, radius + (1 << SHIFT), OUTLINE, -1, cv2.LINE_AA, SHIFT)
            low = self.scores is not None and self.scores[k, j] < self.score_threshold
            # Low-confidence joints are drawn hollow: the position is a guess.
            cv2.circle(panel, centre, radius, colour, max(1, t // 2) if low else -1, cv2.LINE_AA, SHIFT)
        if interpolated:
            self._tag(panel, "interpolated")

    def _tag(self, panel: np.ndarray, text: str) -> None:
        import cv2

        scale = self.layout.height / 720 * 0.75
        weight = max(1, round(self.layout.height / 360))
        (w, h), base = cv2.getTextSize(text, FONT, scale, weight)
        pad = max(2, h // 3)
        x1 = panel.shape[1] - pad
        x0, y0, y1 = x1 - w - 2 * pad, pad, pad + h + base + 2 * pad
        cv2.rectangle(panel, (x0, y0), (x1, y1), TAG_COLOUR, -1)
        cv2.putText(panel, text, (x0 + pad, y0 + pad + h), FONT, scale, OUTLINE, weight, cv2.LINE_AA)

    def _draw_3d(self, panel: np.ndarray, k: int) -> None:
        import cv2

        t = self.thickness
        pose = self.poses[k].astype(np.float64)
        ok = np.isfinite(pose).all(axis=1)
        pose = np.where(ok[:, None], pose, 0.0)
        view = self.view
        # Shadow on the floor first (orthographic drop to z = 0): shows stance and foot contact.
        ground = pose.copy()
        ground[:, 2] = view.limits[2][0]
        shadow = _fixed(view.project(ground))
        for a, b, _ in self._bones3d:
            if ok[a] and ok[b]:
                cv2.line(panel, tuple(shadow[a]), tuple(shadow[b]), SHADOW, t, cv2.LINE_AA, SHIFT)
        pixels = _fixed(view.project(pose))
        depth = view.depth(pose)
        # Far bones first, so nearer limbs cover them (a painter's algorithm on bone midpoints).
        order = sorted(self._bones3d, key=lambda bone: -(depth[bone[0]] + depth[bone[1]]))
        radius = max(2, t) << SHIFT
        for a, b, colour in order:
            if ok[a] and ok[b]:
                cv2.line(panel, tuple(pixels[a]), tuple(pixels[b]), colour, t + 1, cv2.LINE_AA, SHIFT)
        for j in np.flatnonzero(ok):
            colour = COLOURS[side_of(int(j), H36M_LEFT, H36M_RIGHT)]
            cv2.circle(panel, tuple(pixels[j]), radius, colour, -1, cv2.LINE_AA, SHIFT)

    def _draw_caption(self, out: np.ndarray, k: int) -> None:
        import cv2

        text = f"{self.name}  frame {k}/{len(self.time)}  {self.time[k]:.2f} s"
        scale = self.layout.height / 720 * 0.7
        weight = max(1, round(self.layout.height / 400))
        (w, h), base = cv2.getTextSize(text, FONT, scale, weight)
        pad = max(2, h // 3)
        box = out[: h + base + 3 * pad, : min(out.shape[1], w + 3 * pad)]
        # Darken rather than cover, so the video under the caption stays visible.
        np.right_shift(box, 1, out=box)
        cv2.putText(
            out, text, (pad + pad // 2, pad + h + pad // 2), FONT, scale, TEXT_COLOUR, weight, cv2.LINE_AA
        )


def default_thickness(height: int) -> int:
    """Bone width in pixels for an output ``height``: 4 at 720 p, at least 2."""
    return max(2, round(height / 180))


# ---------------------------------------------------------------------------------------------
# encoding


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class EncoderOptions:
    """libx264 settings: ``crf`` (quality) unless ``bitrate`` (e.g. '3000k') is given."""

    crf: int = 18
    bitrate: str | None = None
    preset: str = DEFAULT_PRESET
    x264_threads: int | None = None

    def args(self) -> list[str]:
        rate = ["-b:v", self.bitrate] if self.bitrate else ["-crf", str(self.crf)]
        threads = ["-threads", str(self.x264_threads)] if self.x264_threads else []
        # BT.709 conversion and tags: browsers assume 709 for HD video; untagged 601 shifts hues.
        return [
            "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic", "-c:v", "libx264",
            "-preset", self.preset, *rate, *threads, "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        ]  # fmt: skip


def _run_ffmpeg(args: list[str], *, what: str, path) -> None:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        raise PosepipeError(path, f"ffmpeg failed to {what}: {result.stderr.strip()[-2000:]}")


class _Encoder:
    """An ffmpeg process reading raw BGR frames of ``width x height`` on stdin (a context manager)."""

    def __init__(
        self, out: Path, *, width: int, height: int, fps: Fraction, options: EncoderOptions, extra: list[str]
    ):
        self.out = out
        # stderr to a file, not a pipe: an ffmpeg that logs a lot must never block on a full pipe.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close())
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "-",
            *extra, *options.args(), str(out),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._log)
        self._stderr = ""

    def write(self, frame: np.ndarray) -> None:
        try:
            self.proc.stdin.write(memoryview(frame).cast("B"))
        except BrokenPipeError:
            self.close(ok=False)
            raise PosepipeError(self.out, f"the ffmpeg encoder stopped: {self._stderr}") from None

    def close(self, *, ok: bool) -> None:
        """Finish the stream (``ok``) or kill the encoder; raise if a finished stream failed to encode."""
        if self.proc.returncode is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                ok = False
            if not ok:
                self.proc.kill()
            self.proc.wait()
            self._log.seek(0)
            self._stderr = self._log.read().strip()[-2000:]
            self._log.close()
            if ok and self.proc.returncode != 0:
                raise PosepipeError(
                    self.out, f"ffmpeg encoder failed (exit {self.proc.returncode}): {self._stderr}"
                )

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)


# ---------------------------------------------------------------------------------------------
# rendering a part (in this process or in a worker)


@dataclass(frozen=True)
class _Part:
    """Output frames ``first .. first + count - 1``; output frame ``i`` is timeline frame ``i * every``."""

    index: int
    first: int
    count: int
    every: int


def _frames_of(timeline, part: _Part, *, need_video: bool) -> Iterator[tuple[int, np.ndarray | None]]:
    """(timeline index, BGR frame or None) of each output frame of ``part``, decoding only the range."""
    from posepipe.video import iter_frames

    start = part.first * part.every
    stop = (part.first + part.count - 1) * part.every + 1
    if not need_video:
        for k in range(start, stop, part.every):
            yield k, None
        return
    for k, image in iter_frames(timeline, start=start, stop=stop):
        if (k - start) % part.every == 0:
            yield k, image


def _render_part(
    renderer: FrameRenderer, timeline, part: _Part, encoder: _Encoder, done: list[int], stop
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


class _Cancelled(Exception):
    """Another part failed; this one stops quietly."""


# ---------------------------------------------------------------------------------------------
# audio, preview


def _audio_args(timeline, *, first_time: float, duration: float) -> list[str]:
    """ffmpeg input + mapping arguments that add the source's audio aligned to the output, or []."""
    header = timeline.header or {}
    if not header.get("has_audio"):
        log.info("render: %s has no audio track; writing video only", timeline.source)
        return []
    if header.get("resampled"):
        log.info("render: the timeline of %s is resampled, so its frames do not follow the audio; skipping audio",
                 timeline.source)  # fmt: skip
        return []
    # -seek_timestamp 1: -ss is the stream timestamp itself (source_time), not an offset from the
    # container's start; ffmpeg decodes audio from before it and trims to the exact sample.
    return [
        "-seek_timestamp", "1", "-ss", f"{first_time:.6f}", "-i", os.fspath(timeline.source),
        "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "160k",
        "-af", "aresample=async=1:first_pts=0", "-t", f"{duration:.6f}",
    ]  # fmt: skip


def write_preview(
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    width: int = 480,
    fps: float = 10.0,
    seconds: float = 4.0,
) -> None:
    """A short, small GIF (palette from the clip itself) or mp4 of the middle of ``video`` (atomic)."""
    import av

    with av.open(os.fspath(video)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        rate = float(stream.average_rate or fps)
        source_width = stream.codec_context.width
    start = max(0.0, (duration - seconds) / 2)
    fps = min(fps, rate)
    scale = f"fps={fps:g},scale={min(width, source_width)}:-2:flags=lanczos"
    out = Path(out)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".gif":
            graph = f"{scale},split[a][b];[a]palettegen=max_colors=128:stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=3:diff_mode=rectangle"
            args = ["-filter_complex", graph, "-loop", "0", "-f", "gif"]
        else:
            args = [
                "-vf",
                scale,
                "-an",
                "-c:v",
                "libx264",
                "-crf",
                "26",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
            ]
        _run_ffmpeg(["-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", os.fspath(video), *args, str(tmp)],
                    what="write the preview", path=out)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the stage


def render_video(
    timeline_json: str | os.PathLike,
    dataset2d_npz: str | os.PathLike,
    pose3d_npz: str | os.PathLike,
    out_mp4: str | os.PathLike,
    *,
    height: int | None = 720,
    layout: str = "side_by_side",
    azimuth: float = DEFAULT_AZIMUTH,
    elevation: float = DEFAULT_ELEVATION,
    max_frames: int | None = None,
    every: int = 1,
    crf: int = 18,
    bitrate: str | None = None,
    preset: str = DEFAULT_PRESET,
    audio: bool = False,
    threads: int | None = None,
    preview: str | os.PathLike | None = None,
    thickness: int | None = None,
) -> dict:
    """Render ``out_mp4``: timeline frames with the 2D skeleton beside the 3D skeleton.

    Args:
        height: output height in pixels (None: the timeline's); the width follows from ``layout``
            ('side_by_side': video + square 3D panel, '3d_only', '2d_only'), rounded to even.
        azimuth, elevation: camera of the 3D panel, degrees.
        max_frames: write at most this many output frames; ``every``: keep every k-th frame
            (the frame rate is divided by k, so the clip keeps its duration).
        crf / bitrate / preset: libx264 quality (bitrate, e.g. '3000k', overrides crf).
        audio: copy the source's audio, aligned to the timeline's first frame (skipped, with a
            log line, when the timeline is resampled or the source has none).
        threads: CPU threads to use (None: all this process may use); up to ``threads`` parts
            are rendered and encoded concurrently, the encoders share the threads.
        preview: also write a short small GIF (or .mp4) there.
        thickness: bone width in output pixels (default grows with ``height``).

    Returns:
        dict with frames, fps (str), width, height, layout, seconds, audio.
    """
    started = clock.perf_counter()
    if every < 1:
        raise ValueError("every must be >= 1")
    if max_frames is not None and max_frames < 1:
        raise ValueError("max_frames must be >= 1")
    inputs = load_inputs(timeline_json, dataset2d_npz, pose3d_npz)
    timeline = inputs.timeline
    count = len(range(0, timeline.frame_count, every))
    if max_frames is not None:
        count = min(count, max_frames)
    fps = Fraction(timeline.fps_fraction) / every
    lay = plan_layout(timeline.width, timeline.height, height=height, layout=layout)
    view = (
        build_view3d(inputs.poses, size=lay.view_size, azimuth=azimuth, elevation=elevation)
        if lay.view_size
        else None
    )
    renderer = FrameRenderer(
        layout=lay, view=view, name=inputs.name, keypoints=inputs.keypoints, detected=inputs.detected,
        scores=inputs.scores, poses=inputs.poses, time=timeline.time,
        thickness=thickness or default_thickness(lay.height),
    )  # fmt: skip
    duration = count / fps
    audio_args = (
        _audio_args(timeline, first_time=float(timeline.source_time[0]), duration=float(duration))
        if audio
        else []
    )
    # Recorded in the file, so a render can be traced to what made it.
    trace = (f"posepipe {__version__} render: layout={layout} height={lay.height} azimuth={azimuth} "
             f"elevation={elevation} every={every} max_frames={max_frames} crf={crf} bitrate={bitrate} "
             f"preset={preset} audio={bool(audio_args)}")  # fmt: skip
    final = ["-movflags", "+faststart", "-metadata", f"comment={trace}"]
    threads = threads or available_cpus()
    parts = _split(count, every=every, parts=min(threads, MAX_PARTS))
    options = EncoderOptions(
        crf=crf, bitrate=bitrate, preset=preset, x264_threads=max(1, threads // len(parts))
    )
    log.info("render: %s -> %s, %d frames at %s fps, %dx%d (%s), %d part(s)",
             timeline.video_id, out_mp4, count, fps, lay.width, lay.height, layout, len(parts))  # fmt: skip

    out_mp4 = Path(out_mp4)
    with atomic_path(out_mp4) as tmp:
        _render_parts(renderer, timeline, parts, tmp, fps=fps, options=options, extra=[*audio_args, *final],
                      label=f"render {timeline.video_id}")  # fmt: skip
        if preview is not None:
            write_preview(tmp, preview)
    seconds = clock.perf_counter() - started
    log.info(
        "render: wrote %s (%d frames in %.1f s, %.1f frames/s)", out_mp4, count, seconds, count / seconds
    )
    return {
        "frames": count, "fps": str(fps), "width": lay.width, "height": lay.height, "layout": layout,
        "seconds": round(seconds, 3), "audio": bool(audio_args),
    }  # fmt: skip


# Fewer frames than this per part and a worker's start-up and seek cost more than they save.
MIN_PART_FRAMES = 48


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


def _render_parts(renderer, timeline, parts, tmp: Path, *, fps, options, extra, label) -> None:
    """Render ``parts`` concurrently into ``tmp``: one part is encoded straight into it, several are
    encoded as mp4 segments and joined without re-encoding.

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
    segdir = Path(tempfile.mkdtemp(prefix=f"{tmp.stem}.parts.", dir=tmp.parent)) if len(parts) > 1 else None
    segments = [segdir / f"{p.index:03d}.mp4" for p in parts] if segdir else [tmp]

    def run(part: _Part, segment: Path) -> None:
        # A single part carries the final options (audio, faststart); segments get them when joined.
        with _Encoder(segment, width=lay.width, height=lay.height, fps=fps, options=options,
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
            listing = segdir / "segments.txt"
            listing.write_text("".join(f"file '{s.name}'\n" for s in segments))
            # Join without re-encoding; audio (if any) and +faststart are added in this same pass.
            _run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), *extra, "-c:v", "copy", str(tmp)],
                        what="join the rendered parts", path=tmp)  # fmt: skip
    finally:
        if segdir is not None:
            shutil.rmtree(segdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# command line


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register_cli(sub) -> None:
    p = sub.add_parser("render", help="draw the video beside its 3D skeleton (H.264 mp4)")
    p.add_argument("timeline", help="frames/timeline.json")
    p.add_argument("--dataset2d", required=True, help="dataset2d.npz (VideoPose3D 2D keypoints)")
    p.add_argument("--pose3d", required=True, help="pose3d.npz (positions_3d_display)")
    p.add_argument("--out", required=True, help="render.mp4")
    p.add_argument("--height", type=int, default=720, help="output height in pixels (0: the video's)")
    p.add_argument("--layout", choices=LAYOUTS, default="side_by_side")
    p.add_argument("--azimuth", type=float, default=DEFAULT_AZIMUTH, help="3D camera azimuth, degrees")
    p.add_argument("--elevation", type=float, default=DEFAULT_ELEVATION, help="3D camera elevation, degrees")
    p.add_argument("--max-frames", type=int, default=0, help="render only the first N output frames (0: all)")
    p.add_argument("--every", type=_positive, default=1, help="keep every k-th frame (fps divided by k)")
    p.add_argument("--crf", type=int, default=18, help="x264 quality, lower is better (default 18)")
    p.add_argument("--bitrate", help="x264 bitrate, e.g. 3000k (overrides --crf)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"x264 preset (default {DEFAULT_PRESET})")
    p.add_argument("--audio", action=argparse.BooleanOptionalAction, default=False,
                   help="copy the source's audio track (default: no)")  # fmt: skip
    p.add_argument("--threads", type=_positive, help="CPU threads to use (default: all this process may use)")
    p.add_argument("--preview", help="also write a short GIF (or .mp4) preview here")
    p.add_argument("--thickness", type=int, help="bone width in pixels (default: from the height)")
    p.set_defaults(handler=_cli)

    p = sub.add_parser("render-preview", help="a short small GIF (or mp4) from a rendered video")
    p.add_argument("video", help="render.mp4")
    p.add_argument("--out", required=True, help="preview.gif (or .mp4)")
    p.add_argument("--width", type=int, default=480)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=4.0, help="length, taken from the middle of the video")
    p.set_defaults(
        handler=lambda a: write_preview(a.video, a.out, width=a.width, fps=a.fps, seconds=a.seconds)
    )


def _cli(args) -> None:
    render_video(
        args.timeline, args.dataset2d, args.pose3d, args.out, height=args.height or None, layout=args.layout,
        azimuth=args.azimuth, elevation=args.elevation, max_frames=args.max_frames or None, every=args.every,
        crf=args.crf, bitrate=args.bitrate, preset=args.preset, audio=args.audio, threads=args.threads,
        preview=args.preview, thickness=args.thickness,
    )  # fmt: skip
