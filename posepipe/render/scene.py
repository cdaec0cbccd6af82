"""Scene geometry of a rendered frame: where the panels sit, and the 3D panel's fixed view.

- :func:`plan_layout` -> :class:`Layout`: output size and the video panel's place and scale.
- :func:`build_view3d` -> :class:`View3D`: the 3D panel's static part (axes, ground grid, tick
  labels) drawn ONCE with matplotlib, with the projection matplotlib drew it with; a frame then
  only projects 17 joints with numpy (:meth:`View3D.project`), with no per-frame matplotlib redraw
  (~100 ms a frame).
- :func:`view_limits`: axis limits fixed for the whole clip.

Units: display-frame metres (z up, lowest point of the clip at z = 0, as in ``pose3d.npz``'s
``positions_3d_display``) in, output pixels (x right, y down, pixel centres at integers) out.
Imports numpy only; matplotlib is imported inside :func:`build_view3d`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LAYOUTS = ("side_by_side", "3d_only", "2d_only")
DEFAULT_AZIMUTH = 70.0  # upstream's camera azimuth for custom videos (display only)
DEFAULT_ELEVATION = 15.0
MIN_VIEW_SIZE_M = 1.7  # upstream's 3D box: 1.7 m wide and tall, enough for a standing adult
# Coordinates farther than this from the origin are no human pose (a failed lift of a wild 2D
# point): they do not widen the axes, and their joints land off the panel.
MAX_COORD_M = 1e4
MAX_TICKS = 50  # per axis; a wider view gets a coarser tick step


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
        """Panel pixel positions (x right, y down; pixel centres at integers) of (..., 3) metres -> (..., 2).

        Points the projection cannot place (e.g. at infinity) come out non-finite.
        """
        points = np.asarray(points, dtype=np.float64)
        homogeneous = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1) @ self.proj.T
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            plane = homogeneous[..., :2] / homogeneous[..., 3:4]
        display = plane @ self.to_pixels[:2, :2].T + self.to_pixels[:2, 2]
        return np.stack([display[..., 0] - 0.5, self.size - display[..., 1] - 0.5], axis=-1)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along the viewing direction, larger = farther: (..., 3) -> (...)."""
        return -np.asarray(points, dtype=np.float64) @ self.eye


def view_limits(poses: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """Axis limits that hold every frame of ``poses`` (T, J, 3) display metres, fixed for the clip.

    Centred on the root's (joint 0) mean ground position; a cube of at least 1.7 m (upstream's
    size) and large enough for every joint of every frame, floor at z = 0. Joints that are not
    finite or lie beyond :data:`MAX_COORD_M` are left out.
    """
    poses = np.asarray(poses)
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(poses).all(axis=-1) & (np.abs(poses) <= MAX_COORD_M).all(axis=-1)
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


def tick_step(span: float) -> float:
    """Tick spacing in metres for axes ``span`` metres long: 0.5, 1 or 2 m, coarser (1, 2, 5 x 10^k)
    where 2 m would give more than :data:`MAX_TICKS` ticks."""
    step = 0.5 if span <= 3 else 1.0 if span <= 6 else 2.0
    if span / step > MAX_TICKS:
        magnitude = 10.0 ** math.floor(math.log10(span / MAX_TICKS))
        step = next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= MAX_TICKS)
    return step


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
        step = tick_step(z1)
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
