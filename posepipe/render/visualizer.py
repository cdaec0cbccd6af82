"""Drawing on output frames: the 2D skeleton over the video, the 3D skeleton over the view, captions.

:class:`FrameRenderer` draws one output frame into a reused buffer with OpenCV: the video frame
resized into its panel with the COCO skeleton on top (dashed, greyed and tagged "interpolated"
where no detector saw the pose; hollow joints below the score threshold), the Human3.6M skeleton
projected onto the 3D panel's pre-drawn background (floor shadow first, far bones first) and a
caption with the video id, frame number and time. Left limbs are blue, right limbs red.

Several people (labels given): each person has a colour of their own, the same in both panels
for the whole video (:data:`PERSON_COLOURS` by track id), left limbs in a lighter and right limbs
in a darker shade of it, and a label ("P3") above the head in both panels; "P3 interpolated"
when that person's pose in this frame was filled in rather than detected.

Input data is drawn as far as it can be: joints that are not finite (e.g. frames where a person
is absent) are skipped with their bones; finite points far off the panel are not visible, and
a bone towards one is clipped to the panel before it reaches OpenCV (whose coordinates are int32
at 1/16 pixel), so no finite value can make drawing fail. Points within :data:`MAX_PIXEL` of the
panel take the unclipped path, so ordinary frames cost one range check more.

cv2 is imported inside the drawing functions; importing this module needs numpy only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from posepipe.render.scene import Layout, View3D
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
# Largest |coordinate| (pixels) handed to OpenCV unclipped: far beyond any panel, far inside int32
# at 1/16 pixel (2**22) and inside what OpenCV's own fixed-point line code adds to it.
MAX_PIXEL = float(1 << 18)
# One colour per person (BGR), by track id modulo the count: apart from each other, from the
# blue/red of one-person renders and from the white 3D panel.
PERSON_COLOURS = (
    (40, 150, 255), (200, 90, 30), (60, 170, 60), (180, 60, 190), (30, 200, 220),
    (120, 110, 230), (170, 150, 40), (90, 90, 200), (150, 200, 60), (200, 120, 160),
)  # fmt: skip
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def person_palette(index: int) -> dict[str, tuple[int, int, int]]:
    """Colours of person ``index``: ``center`` its own colour, ``left`` lighter, ``right`` darker."""
    base = PERSON_COLOURS[index % len(PERSON_COLOURS)]
    return {"center": base, "left": _mix(base, WHITE, 0.45), "right": _mix(base, BLACK, 0.35)}


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


def clip_segment(
    p: np.ndarray, q: np.ndarray, box: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of segment p -> q (float (2,)) inside ``box`` (x0, y0, x1, y1), or None (Liang-Barsky)."""
    x0, y0, x1, y1 = box
    d = q - p
    lo, hi = 0.0, 1.0
    for step, near, far in ((d[0], x0 - p[0], x1 - p[0]), (d[1], y0 - p[1], y1 - p[1])):
        if step == 0:
            if near > 0 or far < 0:
                return None  # parallel to this side and outside
            continue
        a, b = near / step, far / step
        if a > b:
            a, b = b, a
        lo, hi = max(lo, a), min(hi, b)
        if lo > hi:
            return None
    return p + d * lo, p + d * hi


def _guard(points: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV coordinates of ``points`` (J, 2) float pixels whose ``ok`` (J,) is set.

    Returns ``fixed`` (J, 2) int32 and ``near``: None when every ok point is within
    :data:`MAX_PIXEL` (the usual case; then ``fixed`` is exact for all of them), else the (J,)
    mask of ok points within it (``fixed`` of the others is clamped and must not be drawn).
    """
    safe = np.where(ok[:, None], points, 0.0)
    if np.abs(safe).max(initial=0.0) <= MAX_PIXEL:
        return _fixed(safe), None
    near = ok & (np.abs(safe) <= MAX_PIXEL).all(axis=1)
    return _fixed(np.clip(safe, -MAX_PIXEL, MAX_PIXEL)), near


def _far_bone(panel: np.ndarray, points: np.ndarray, a: int, b: int, margin: float):
    """A bone with an end beyond :data:`MAX_PIXEL`: its part inside the panel (+ ``margin``) as float
    end points, or None when it misses the panel."""
    h, w = panel.shape[:2]
    return clip_segment(points[a], points[b], (-margin, -margin, w - 1 + margin, h - 1 + margin))


@dataclass
class FrameRenderer:
    """Draws output frames. Keeps no per-frame state, so concurrent parts share one (each with its own ``out``).

    Per person and frame: ``keypoints`` (P, T, 17, 2) timeline pixels, ``detected`` (P, T),
    ``scores`` (P, T, 17) or None, ``poses`` (P, T, 17, 3) display metres (NaN where a person is
    absent); ``time`` (T,) seconds; ``labels`` (P,) for several people, None for one per frame.
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
    labels: list[str] | None = None
    # World frame (render.frame: world): (P, T, 3) each person's root on the floor, drawn as a trail
    # of the frames so far under the skeletons; None: no trails.
    trails: np.ndarray | None = None
    _palettes: list = field(default_factory=list, repr=False)
    _bones2d: list = field(default_factory=list, repr=False)
    _bones3d: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.labels is None:
            self._palettes = [COLOURS] * len(self.keypoints)
        else:
            self._palettes = [person_palette(int(label.lstrip("P") or 0)) for label in self.labels]
        self._bones2d = [
            [(a, b, palette[bone_side((a, b), COCO_LEFT, COCO_RIGHT)]) for a, b in COCO_BONES]
            for palette in self._palettes
        ]
        self._bones3d = [
            [(a, b, palette[bone_side((a, b), H36M_LEFT, H36M_RIGHT)]) for a, b in H36M_BONES]
            for palette in self._palettes
        ]

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
            for p in range(len(self.keypoints)):
                self._draw_2d(panel, k, p)
        if lay.view_size:
            panel = out[:, lay.view_x : lay.view_x + lay.view_size]
            np.copyto(panel, self.view.background)
            if self.trails is not None:
                for p in range(len(self.trails)):
                    self._draw_trail(panel, k, p)
            if self.labels is None:
                self._draw_3d(panel, k)
            else:  # every shadow under every skeleton
                for p in range(len(self.poses)):
                    self._draw_3d(panel, k, p, shadow_only=True)
                for p in range(len(self.poses)):
                    self._draw_3d(panel, k, p)
        self._draw_caption(out, k)
        return out

    def _draw_trail(self, panel: np.ndarray, k: int, p: int) -> None:
        """The floor path of person ``p``'s root up to frame ``k`` (a polyline per run of frames
        seen), in the person's colour."""
        import cv2

        points = self.view.project(self.trails[p, : k + 1].astype(np.float64))
        ok = np.isfinite(points).all(axis=1) & (np.abs(points) < MAX_PIXEL).all(axis=1)
        edges = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            if b - a >= 2:
                cv2.polylines(panel, [_fixed(points[a:b])], False, self._palettes[p]["center"],
                              max(2, self.thickness // 2), cv2.LINE_AA, SHIFT)  # fmt: skip

    def _draw_2d(self, panel: np.ndarray, k: int, person: int = 0) -> None:
        import cv2

        t = self.thickness
        points = self.layout.video_point(self.keypoints[person, k]) - [self.layout.video_x, 0]
        ok = np.isfinite(points).all(axis=1)
        if not ok.any():
            return  # this person is not in this frame
        fixed, near = _guard(points, ok)
        interpolated = not self.detected[person, k]
        palette = self._palettes[person]
        for a, b, colour in self._bones2d[person]:
            if not (ok[a] and ok[b]):
                continue
            p, q = points[a], points[b]
            if near is not None and not (near[a] and near[b]):
                ends = _far_bone(panel, points, a, b, margin=4.0 * t)
                if ends is None:
                    continue
                p, q = ends
                pa, pb = (tuple(v) for v in _fixed(np.stack(ends)))
            else:
                pa, pb = tuple(fixed[a]), tuple(fixed[b])
            if interpolated:
                # Interpolated frames: dashed, greyed bones (no detector saw this pose).
                faded = _mix(colour, GREY, 0.45)
                for d0, d1 in _dashes(p, q, period=5.0 * t):
                    d0, d1 = _fixed(d0), _fixed(d1)
                    cv2.line(panel, tuple(d0), tuple(d1), OUTLINE, t + 2, cv2.LINE_AA, SHIFT)
                    cv2.line(panel, tuple(d0), tuple(d1), faded, t, cv2.LINE_AA, SHIFT)
            else:
                # A dark rim under every bone keeps it visible on light and dark backgrounds alike.
                cv2.line(panel, pa, pb, OUTLINE, t + 2, cv2.LINE_AA, SHIFT)
                cv2.line(panel, pa, pb, colour, t, cv2.LINE_AA, SHIFT)
        radius = (t + 1) << SHIFT
        for j in np.flatnonzero(ok if near is None else near):
            colour = palette[side_of(int(j), COCO_LEFT, COCO_RIGHT)]
            if interpolated:
                colour = _mix(colour, GREY, 0.45)
            centre = tuple(fixed[j])
            cv2.circle(panel, centre, radius + (1 << SHIFT), OUTLINE, -1, cv2.LINE_AA, SHIFT)
            low = self.scores is not None and self.scores[person, k, j] < self.score_threshold
            # Low-confidence joints are drawn hollow: the position is a guess.
            cv2.circle(panel, centre, radius, colour, max(1, t // 2) if low else -1, cv2.LINE_AA, SHIFT)
        if self.labels is not None:
            text = f"{self.labels[person]} interpolated" if interpolated else self.labels[person]
            self._label(panel, points[ok], text, palette["center"])
        elif interpolated:
            self._tag(panel, "interpolated")

    def _label(self, panel: np.ndarray, points: np.ndarray, text: str, colour) -> None:
        """``text`` on a box of the person's ``colour`` above their highest point (float (n, 2) pixels)."""
        import cv2

        scale = self.layout.height / 720 * 0.6
        weight = max(1, round(self.layout.height / 400))
        (w, h), base = cv2.getTextSize(text, FONT, scale, weight)
        pad = max(2, h // 4)
        h_panel, w_panel = panel.shape[:2]
        top = np.clip(points[np.argmin(points[:, 1])], [0, 0], [w_panel - 1, h_panel - 1])
        x0 = int(np.clip(top[0] - w / 2 - pad, 0, max(0, w_panel - w - 2 * pad)))
        y1 = int(np.clip(top[1] - 3 * self.thickness, h + base + 2 * pad, h_panel - 1))
        y0 = y1 - h - base - 2 * pad
        cv2.rectangle(panel, (x0, y0), (x0 + w + 2 * pad, y1), colour, -1)
        cv2.rectangle(panel, (x0, y0), (x0 + w + 2 * pad, y1), OUTLINE, 1)
        cv2.putText(panel, text, (x0 + pad, y1 - base - pad), FONT, scale, TEXT_COLOUR, weight, cv2.LINE_AA)

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

    def _draw_3d(self, panel: np.ndarray, k: int, p: int = 0, *, shadow_only: bool = False) -> None:
        """Person ``p`` in frame ``k``: the floor shadow, or (``shadow_only`` False) the skeleton. One
        person per frame draws both in one call; several draw every shadow before any skeleton."""
        import cv2

        t = self.thickness
        pose = self.poses[p, k].astype(np.float64)
        ok = np.isfinite(pose).all(axis=1)
        if not ok.any():
            return
        several = self.labels is not None
        pose = np.where(ok[:, None], pose, 0.0)
        view = self.view
        if several and not shadow_only:
            self._skeleton_3d(panel, pose, ok, p)
            return
        # Shadow on the floor first (orthographic drop to z = 0): shows stance and foot contact.
        ground = pose.copy()
        ground[:, 2] = view.limits[2][0]
        shadow_points = view.project(ground)
        shadow_ok = ok & np.isfinite(shadow_points).all(axis=1)
        shadow, near = _guard(shadow_points, shadow_ok)
        for a, b, _ in self._bones3d[p]:
            if shadow_ok[a] and shadow_ok[b]:
                if near is not None and not (near[a] and near[b]):
                    ends = _far_bone(panel, shadow_points, a, b, margin=2.0 * t)
                    if ends is None:
                        continue
                    pa, pb = (tuple(v) for v in _fixed(np.stack(ends)))
                else:
                    pa, pb = tuple(shadow[a]), tuple(shadow[b])
                cv2.line(panel, pa, pb, SHADOW, t, cv2.LINE_AA, SHIFT)
        if not several:
            self._skeleton_3d(panel, pose, ok, p)

    def _skeleton_3d(self, panel: np.ndarray, pose: np.ndarray, ok: np.ndarray, p: int) -> None:
        import cv2

        t = self.thickness
        view = self.view
        points = view.project(pose)
        ok &= np.isfinite(points).all(axis=1)
        pixels, near = _guard(points, ok)
        depth = view.depth(pose)
        # Far bones first, so nearer limbs cover them (a painter's algorithm on bone midpoints).
        order = sorted(self._bones3d[p], key=lambda bone: -(depth[bone[0]] + depth[bone[1]]))
        radius = max(2, t) << SHIFT
        for a, b, colour in order:
            if ok[a] and ok[b]:
                if near is not None and not (near[a] and near[b]):
                    ends = _far_bone(panel, points, a, b, margin=2.0 * t)
                    if ends is None:
                        continue
                    pa, pb = (tuple(v) for v in _fixed(np.stack(ends)))
                else:
                    pa, pb = tuple(pixels[a]), tuple(pixels[b])
                cv2.line(panel, pa, pb, colour, t + 1, cv2.LINE_AA, SHIFT)
        for j in np.flatnonzero(ok if near is None else near):
            colour = self._palettes[p][side_of(int(j), H36M_LEFT, H36M_RIGHT)]
            cv2.circle(panel, tuple(pixels[j]), radius, colour, -1, cv2.LINE_AA, SHIFT)
        if self.labels is not None and (ok if near is None else near).any():
            seen = ok if near is None else near
            self._label(panel, points[seen], self.labels[p], self._palettes[p]["center"])

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
