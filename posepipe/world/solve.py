"""Numerics of the world stage: root trajectory, metric scale, floor, world frame, foot contacts.

Functions on arrays, no I/O. Camera coordinates are OpenCV's (x right, y down, z forward, metres);
2D points are pixels of an ideal pinhole camera (already undistorted, :mod:`posepipe.camera`).

**Root translation** (:func:`solve_root`). A lifted joint X_j (root-relative, camera axes) seen at
normalised image point (u_j, v_j) = K^-1 (x_j, y_j, 1) satisfies (X_j + t)_x = u_j (X_j + t)_z and
(X_j + t)_y = v_j (X_j + t)_z, i.e. two equations linear in the root translation t:
t_x - u_j t_z = u_j Z_j - X_j and t_y - v_j t_z = v_j Z_j - Y_j. Weighted by the keypoint
confidence, the 3x3 normal equations give t in closed form for each frame. Optional refinement
(``robust``): iteratively reweighted least squares whose weights are confidence x 1/depth^2 (so the
residuals are those of pixels, divided by the focal length) x Huber weights of the pixel residuals
(threshold ``huber_px``). Then an optional zero-phase low-pass of the trajectory per segment
(``smooth_hz``, :func:`posepipe.conditioning.butterworth`). Frames without the person stay NaN;
each run of frames (segment) is smoothed on its own.

**Metric scale** (:func:`stature`, :func:`metric_scale`). The lifted skeleton's body length is the
sum of median bone lengths along ankle-knee-hip (mean of both legs) and pelvis-spine-thorax-
neck-head; its stature adds :data:`ANKLE_HEIGHT_M` (ankle joint to sole) and :data:`HEAD_TOP_M`
(Human3.6M's head joint to the top of the skull). The scale s makes s x body length + both
allowances equal the given height; the pose and its depth scale together (the root solve is
linear in the pose's size).

**Floor** (:func:`fit_floor`). Foot joints (Human3.6M's feet are the ankles) at contact candidates
- slower than ``contact_speed_mps`` and within ``contact_height_m`` of the lowest foot point of
the person's own "up" (the mean ankle-to-head direction) - from every person and frame, then a
trimmed least-squares plane (refitted on the points with the smallest residuals,
:data:`TRIM_SHARE`), moved down by the ankle height. Feet that stand in one place only (points
on a line) keep the skeletons' mean up direction as the normal and fit the offset only.

**World frame** (:func:`world_frame`): +Z along the floor normal (up), origin on the floor under the
main person's root in the first frame it is seen, +X along the camera's viewing direction
projected on the floor, +Y = Z x X (to the left as seen from the camera); right-handed, metres.

**Contacts** (:func:`foot_contacts`): a foot is on the floor when its ankle is within
``contact_height_m`` of its standing height above the floor (:data:`ANKLE_HEIGHT_M`) and slower than
``contact_speed_mps``.
"""

from __future__ import annotations

import math

import numpy as np

from posepipe.conditioning import butterworth, runs

# COCO keypoint -> Human3.6M joint it is matched with for reprojection (eyes and ears have no
# Human3.6M counterpart; COCO's nose is matched with Human3.6M's neck/nose joint).
COCO_TO_H36M = {0: 9, 5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 11: 4, 12: 1, 13: 5, 14: 2, 15: 6, 16: 3}
COCO_IDX = np.array(list(COCO_TO_H36M))
H36M_IDX = np.array(list(COCO_TO_H36M.values()))
FEET = (6, 3)  # Human3.6M left foot, right foot (the ankles)
HEAD = 10
ANKLE_HEIGHT_M = 0.08  # ankle joint above the sole, standing (adult average, metres)
HEAD_TOP_M = 0.10  # Human3.6M head joint to the top of the skull (metres)
TRIM_SHARE = 0.8  # share of contact points kept by the trimmed plane fit
MIN_CONTACT_POINTS = 10  # fewer foot points at contact: no floor from contacts
LINE_SPREAD_M = 0.2  # contact points spread less than this across: the normal is not fitted
MAX_FLOOR_RESIDUAL_M = 0.05  # RMS residual of the fitted floor above this: refused
IRLS_ITERATIONS = 10
SPEED_CUTOFF_HZ = 3.0  # foot positions are low-passed at this before their speed is taken


def solve_translation(
    rel: np.ndarray, uv: np.ndarray, weights: np.ndarray, *, robust: bool, huber_px: float, focal: float
) -> np.ndarray:
    """The root translation (3,) of one frame: ``rel`` (J, 3) root-relative joints, ``uv`` (J, 2)
    normalised image points, ``weights`` (J,) >= 0. NaN when fewer than 2 joints have weight."""
    ok = (weights > 0) & np.isfinite(uv).all(axis=1) & np.isfinite(rel).all(axis=1)
    if ok.sum() < 2:
        return np.full(3, np.nan)
    X, u, w0 = rel[ok], uv[ok], weights[ok]
    # Rows: [1, 0, -u] t = u Z - X ; [0, 1, -v] t = v Z - Y.
    A = np.zeros((2 * len(X), 3))
    A[0::2, 0], A[0::2, 2] = 1.0, -u[:, 0]
    A[1::2, 1], A[1::2, 2] = 1.0, -u[:, 1]
    b = np.empty(2 * len(X))
    b[0::2] = u[:, 0] * X[:, 2] - X[:, 0]
    b[1::2] = u[:, 1] * X[:, 2] - X[:, 1]

    def solve(w: np.ndarray) -> np.ndarray:
        ww = np.repeat(w, 2)
        AtA = A.T @ (A * ww[:, None])
        if not np.all(np.isfinite(AtA)) or np.linalg.cond(AtA) > 1e12:  # e.g. every joint on one ray
            return np.full(3, np.nan)
        return np.linalg.solve(AtA, A.T @ (ww * b))

    t = solve(w0)
    if not robust or not np.all(np.isfinite(t)):
        return t
    for _ in range(IRLS_ITERATIONS):
        depth = X[:, 2] + t[2]
        if np.any(depth <= 0):
            break
        res = (A @ t - b).reshape(-1, 2)
        px = focal * np.linalg.norm(res, axis=1) / depth  # pixel residual of each joint
        huber = np.where(px <= huber_px, 1.0, huber_px / np.maximum(px, 1e-12))
        new = solve(w0 * huber / depth**2)
        if not np.all(np.isfinite(new)):
            break
        if np.allclose(new, t, rtol=0, atol=1e-12):
            t = new
            break
        t = new
    return t


def solve_root(
    rel: np.ndarray,
    points: np.ndarray,
    scores: np.ndarray,
    K: np.ndarray,
    *,
    robust: bool,
    huber_px: float,
    smooth_hz: float | None,
    fps: float,
) -> np.ndarray:
    """Root trajectory (T, 3) in camera coordinates of one person.

    Args:
        rel: (T, 17, 3) root-relative Human3.6M joints (metric, NaN where absent).
        points: (T, 17, 2) COCO keypoints, undistorted pixels; scores: (T, 17) confidences.
    """
    Kinv = np.linalg.inv(K)
    T = len(rel)
    homog = np.concatenate([points[:, COCO_IDX], np.ones((T, len(COCO_IDX), 1))], axis=-1)
    uv = (homog @ Kinv.T)[..., :2]
    weights = np.nan_to_num(np.clip(scores[:, COCO_IDX], 0, None))
    focal = float(math.sqrt(K[0, 0] * K[1, 1]))
    root = np.full((T, 3), np.nan)
    present = np.isfinite(rel).all(axis=(1, 2)) & np.isfinite(points[:, COCO_IDX]).all(axis=(1, 2))
    for t in np.flatnonzero(present):
        root[t] = solve_translation(
            rel[t, H36M_IDX], uv[t], weights[t], robust=robust, huber_px=huber_px, focal=focal
        )
    if smooth_hz and smooth_hz < fps / 2:  # at or above Nyquist there is nothing to remove
        root = smooth_segments(root, fps=fps, cutoff_hz=smooth_hz)
    return root


def smooth_segments(x: np.ndarray, *, fps: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-pass (order 4) of (T, ...) ``x`` along time, each run of finite frames alone."""
    out = x.copy()
    good = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    for a, b in runs(good):
        out[a:b] = butterworth(x[a:b], fps=fps, cutoff_hz=min(cutoff_hz, 0.45 * fps), order=4)
    return out


def reprojection_px(
    joints_cam: np.ndarray, points: np.ndarray, scores: np.ndarray, K: np.ndarray
) -> np.ndarray:
    """Mean pixel distance (T,) between the matched joints projected with ``K`` (ideal pinhole) and
    the undistorted keypoints, over the joints with a positive score; NaN where absent."""
    X = joints_cam[:, H36M_IDX]
    proj = X @ K.T
    with np.errstate(invalid="ignore", divide="ignore"):
        proj = proj[..., :2] / proj[..., 2:3]
        dist = np.linalg.norm(proj - points[:, COCO_IDX], axis=-1)
    w = np.nan_to_num(scores[:, COCO_IDX]) > 0
    w &= np.isfinite(dist)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(w, dist, 0).sum(axis=1) / w.sum(axis=1)
    out[~np.isfinite(joints_cam).all(axis=(1, 2))] = np.nan
    return out


# ---- scale ---------------------------------------------------------------------------------------

LEG_CHAINS = (((6, 5), (5, 4)), ((3, 2), (2, 1)))  # left, right: ankle-knee, knee-hip
TRUNK_CHAIN = ((0, 7), (7, 8), (8, 9), (9, HEAD))


def body_length(joints: np.ndarray) -> float:
    """Ankle-to-head length (metres, the skeleton's own scale) of (T, 17, 3) joints: median bone
    lengths along the leg (mean of both) and the trunk; NaN if the person is never seen."""
    ok = np.isfinite(joints).all(axis=(1, 2))
    if not ok.any():
        return float("nan")
    j = joints[ok]

    def bone(a: int, b: int) -> float:
        return float(np.median(np.linalg.norm(j[:, a] - j[:, b], axis=-1)))

    leg = np.mean([sum(bone(a, b) for a, b in chain) for chain in LEG_CHAINS])
    return float(leg + sum(bone(a, b) for a, b in TRUNK_CHAIN))


def stature(joints: np.ndarray) -> float:
    """Standing height (metres) of (T, 17, 3) joints: :func:`body_length` plus the ankle and head
    allowances; NaN if the person is never seen."""
    return body_length(joints) + ANKLE_HEIGHT_M + HEAD_TOP_M


def metric_scale(joints: np.ndarray, height_m: float | None) -> float:
    """Factor s that gives the skeleton the stature ``height_m``: s x body length + allowances =
    height (1 without a height)."""
    if height_m is None or not math.isfinite(height_m):
        return 1.0
    return float((height_m - ANKLE_HEIGHT_M - HEAD_TOP_M) / body_length(joints))


# ---- floor ---------------------------------------------------------------------------------------


def up_estimate(joints_cam: np.ndarray) -> np.ndarray:
    """Unit 'up' (3,) in camera coordinates: the mean ankle-to-head direction over every person and
    frame (people stand, walk or run upright on average)."""
    J = joints_cam.reshape(-1, 17, 3)
    ok = np.isfinite(J).all(axis=(1, 2))
    if not ok.any():
        return np.array([0.0, -1.0, 0.0])
    J = J[ok]
    vec = J[:, HEAD] - 0.5 * (J[:, FEET[0]] + J[:, FEET[1]])
    length = np.linalg.norm(vec, axis=-1)
    if not np.any(length > 1e-9):
        return np.array([0.0, -1.0, 0.0])
    up = (vec[length > 1e-9] / length[length > 1e-9, None]).mean(axis=0)
    return up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-9 else np.array([0.0, -1.0, 0.0])


def foot_speed(joints_cam: np.ndarray, fps: float) -> np.ndarray:
    """Speed (P, T, 2) of the left and right foot in m/s: central differences of the foot
    positions low-passed at :data:`SPEED_CUTOFF_HZ` (the root's depth jitter is not the foot's
    motion), within segments; NaN where absent or in a one-frame segment."""
    feet = joints_cam[:, :, list(FEET)]
    P, T = feet.shape[:2]
    speed = np.full((P, T, 2), np.nan)
    for p in range(P):
        smooth = smooth_segments(feet[p], fps=fps, cutoff_hz=SPEED_CUTOFF_HZ)
        for a, b in runs(np.isfinite(smooth).all(axis=(1, 2))):
            if b - a >= 2:
                speed[p, a:b] = np.linalg.norm(np.gradient(smooth[a:b], axis=0), axis=-1) * fps
    return speed


def contact_candidates(
    joints_cam: np.ndarray, speed: np.ndarray, up: np.ndarray, *, height_m: float, speed_mps: float
) -> np.ndarray:
    """bool (P, T, 2): foot points slow enough and low enough to be on the floor. Low: the foot's
    height along ``up`` relative to the person's root (the lifted pose, free of the root's depth
    jitter) within ``height_m`` of the person's lowest (its 2nd percentile)."""
    feet = joints_cam[:, :, list(FEET)] - joints_cam[:, :, :1]
    h = feet @ up
    out = np.zeros(h.shape, bool)
    for p in range(len(h)):
        finite = np.isfinite(h[p]) & np.isfinite(speed[p])
        if not finite.any():
            continue
        low = np.percentile(h[p][finite], 2)
        with np.errstate(invalid="ignore"):
            out[p] = finite & (h[p] <= low + height_m) & (speed[p] < speed_mps)
    return out


def contact_episodes(joints_cam: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3), frames (N,)): the mean foot position of each run of contact frames of each
    foot of each person (a plant), and its length; averaging a plant removes most of the jitter."""
    points, weights = [], []
    for p in range(candidates.shape[0]):
        for f, joint in enumerate(FEET):
            for a, b in runs(candidates[p, :, f]):
                points.append(joints_cam[p, a:b, joint].mean(axis=0))
                weights.append(b - a)
    return np.reshape(points, (-1, 3)), np.asarray(weights, dtype=np.float64)


def fit_plane(
    points: np.ndarray, up: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """Trimmed weighted least-squares plane through (N, 3) points: (unit normal along ``up``, d,
    weighted RMS residual of the kept points); n . x + d = 0. Points on a line (or fewer than 3)
    keep ``up`` as the normal and fit the offset only."""
    w_all = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = np.ones(len(points), bool)
    n, d = up, -float(np.average(points @ up, weights=w_all))
    for _ in range(5):
        P, w = points[keep], w_all[keep]
        c = np.average(P, axis=0, weights=w)
        _, s, vt = np.linalg.svd((P - c) * np.sqrt(w / w.sum())[:, None], full_matrices=False)
        spread = s[1] if len(s) > 2 else 0.0
        n = vt[2] if len(P) >= 3 and spread * 2 > LINE_SPREAD_M else up
        n = n if n @ up >= 0 else -n
        d = -float(n @ c)
        res = np.abs(points @ n + d)
        new = res <= np.quantile(res, TRIM_SHARE) + 1e-12 if len(points) >= 5 else keep
        if np.array_equal(new, keep):
            break
        keep = new
    rms = float(np.sqrt(np.average((points[keep] @ n + d) ** 2, weights=w_all[keep])))
    return n, d, rms


def tilt_floor(
    tilt_deg: float, camera_height_m: float | None, lowest: float | None
) -> tuple[np.ndarray, float]:
    """The floor of a camera with no roll, pitched down by ``tilt_deg``: up in camera coordinates
    is (0, -cos, -sin)(tilt); the camera stands ``camera_height_m`` above it, or the floor passes
    ``lowest`` (a height along that up) when no camera height is given."""
    a = math.radians(tilt_deg)
    n = np.array([0.0, -math.cos(a), -math.sin(a)])
    d = float(camera_height_m) if camera_height_m is not None else -float(lowest)
    return n, d


def world_frame(
    floor_n: np.ndarray, floor_d: float, origin_above: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(R_world_camera, t_world_camera) of the world frame (module docstring): x_world = R x_cam + t.
    ``origin_above``: the camera-space point (the main root) whose foot on the floor is the origin."""
    z = floor_n / np.linalg.norm(floor_n)
    view = np.array([0.0, 0.0, 1.0])
    x = view - (view @ z) * z
    if np.linalg.norm(x) < 1e-9:  # looking straight down: image up (-y) on the floor instead
        x = np.array([0.0, -1.0, 0.0]) - (-z[1]) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    origin = origin_above - (z @ origin_above + floor_d) * z
    return R, -R @ origin


def foot_contacts(
    joints_world: np.ndarray, speed: np.ndarray, *, height_m: float, speed_mps: float
) -> np.ndarray:
    """bool (P, T, 2): each foot's ankle within ``height_m`` of its standing height above the floor
    (:data:`ANKLE_HEIGHT_M`) and slower than ``speed_mps``."""
    z = joints_world[:, :, list(FEET), 2]
    with np.errstate(invalid="ignore"):
        return np.isfinite(z) & (z - ANKLE_HEIGHT_M <= height_m) & (speed < speed_mps)
