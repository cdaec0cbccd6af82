"""Error metrics of estimated 3D joints against a reference recording (pure numpy, no I/O).

Arrays are (T, J, 3) in one unit (the stage uses metres and reports millimetres); NaN marks a
missing joint, and a frame is used by a metric only where every joint it needs is finite in both
the estimate and the reference. Definitions, as in the literature they come from:

- **MPJPE** (mean per-joint position error), Human3.6M *Protocol #1* (Ionescu et al., TPAMI 2014;
  as used by Martinez et al. 2017 and Pavllo et al. 2019, VideoPose3D): the Euclidean distance
  between estimated and reference joints after both are made root-relative (the pelvis, Human3.6M
  joint 0, subtracted per frame), averaged over joints and frames. Human3.6M compares both in the
  same camera frame; a video and a motion-capture lab do not share one, so one rotation for the
  whole sequence (:func:`sequence_rotation`, Kabsch on every root-relative joint of every frame,
  no scale) first turns the estimate into the reference's axes.
- **P-MPJPE**, *Protocol #2* (Martinez et al. 2017; Pavllo et al. 2019): MPJPE after a similarity
  Procrustes alignment of each frame on its own (rotation, uniform scale, translation minimising
  the squared error: Umeyama 1991, "Least-squares estimation of transformation parameters between
  two point patterns", IEEE TPAMI 13(4)). Reflections are excluded: the rotation comes from the
  SVD with the determinant correction (Kabsch 1976/1978; Umeyama's S = diag(1, 1, det(U V^T))), so
  a mirrored estimate keeps its error instead of being reflected onto the reference.
- **N-MPJPE** (Rhodin et al., "Unsupervised geometry-aware representation for 3D human pose
  estimation", ECCV 2018): MPJPE after the estimate's root-relative joints are scaled by the one
  factor per frame that minimises the squared error, s = <p, g> / <p, p> (no rotation fitted per
  frame; the sequence rotation of MPJPE is applied first, for the same reason as there).
- **Root trajectory error** (world coordinates): the estimate's root path against the reference's
  after ONE rigid (optionally similarity) transform for the whole sequence, fitted by Umeyama on
  every joint of every frame (a walking path alone is nearly a line and leaves the rotation about
  it undetermined); reported as mean and RMS distance of the root, plus the whole-body error in
  the same alignment.
- **Acceleration error** (Kanazawa et al., "Learning 3D human dynamics from video", CVPR 2019):
  mean over joints and frames of |a_est - a_ref|, accelerations by second finite differences on
  the timeline's own times (non-uniform three-point formula), on the root-relative, sequence-
  rotated joints of MPJPE; in mm/s^2 when the joints are in mm and the times in seconds.
- **Angle errors**: per angle, RMSE over frames where both are defined, the mean difference
  (bias) and Pearson's correlation coefficient r.
"""

from __future__ import annotations

import numpy as np

ROOT = 0  # Human3.6M joint 0, the pelvis


def _finite_frames(*arrays: np.ndarray) -> np.ndarray:
    """(T,) bool: frames where every joint of every array is finite."""
    ok = np.ones(arrays[0].shape[0], bool)
    for a in arrays:
        ok &= np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
    return ok


def root_relative(joints: np.ndarray, root: int = ROOT) -> np.ndarray:
    """(T, J, 3) joints minus each frame's root joint."""
    return joints - joints[:, root : root + 1]


def kabsch(
    source: np.ndarray, target: np.ndarray, *, scale: bool = True
) -> tuple[np.ndarray, float, np.ndarray]:
    """(R, s, t) minimising sum |s R source_i + t - target_i|^2 over points (N, 3), R a proper
    rotation (det +1; Umeyama 1991, with the determinant correction that excludes reflections);
    ``scale=False`` fixes s = 1 (rigid)."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    cov = b.T @ a / len(a)  # target x source
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag(d) @ vt
    var_s = (a**2).sum() / len(a)
    s = float((sigma * d).sum() / var_s) if scale and var_s > 0 else 1.0
    return rot, s, mu_t - s * rot @ mu_s


def procrustes_frames(
    estimate: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame similarity alignment of (T, J, 3) ``estimate`` onto ``reference`` (frames with NaN
    stay NaN). Returns (aligned (T, J, 3), rotations (T, 3, 3), scales (T,)), batched Umeyama with
    reflections excluded."""
    T = estimate.shape[0]
    aligned = np.full_like(estimate, np.nan, dtype=np.float64)
    rots = np.full((T, 3, 3), np.nan)
    scales = np.full(T, np.nan)
    ok = _finite_frames(estimate, reference)
    if not ok.any():
        return aligned, rots, scales
    p, g = estimate[ok].astype(np.float64), reference[ok].astype(np.float64)
    mp, mg = p.mean(axis=1, keepdims=True), g.mean(axis=1, keepdims=True)
    a, b = p - mp, g - mg
    cov = np.einsum("fji,fjk->fik", b, a)  # (F, 3, 3) target x source
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones((len(a), 3))
    d[:, 2] = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    rot = u @ (d[:, :, None] * vt)
    var = (a**2).sum(axis=(1, 2))
    s = np.where(var > 0, (sigma * d).sum(axis=1) / np.where(var > 0, var, 1.0), 1.0)
    aligned[ok] = s[:, None, None] * np.einsum("fik,fjk->fji", rot, a) + mg
    rots[ok], scales[ok] = rot, s
    return aligned, rots, scales


def sequence_rotation(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The one rotation (3, 3) turning root-relative ``estimate`` into the reference's axes, fitted
    on every joint of every frame where both are whole (Kabsch, no scale, no reflection)."""
    ok = _finite_frames(estimate, reference)
    if not ok.any():
        raise ValueError("no frame where both the estimate and the reference have every joint")
    p, g = root_relative(estimate[ok]).reshape(-1, 3), root_relative(reference[ok]).reshape(-1, 3)
    cov = g.T @ p
    u, _, vt = np.linalg.svd(cov)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    return u @ d @ vt


def joint_errors(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, J) Euclidean distances; NaN where a frame is not whole in both."""
    err = np.linalg.norm(estimate - reference, axis=-1)
    err[~_finite_frames(estimate, reference)] = np.nan
    return err


def mpjpe_errors(
    estimate: np.ndarray, reference: np.ndarray, rotation: np.ndarray | None = None
) -> np.ndarray:
    """(T, J) Protocol #1 errors: root-relative, estimate turned by ``rotation`` (default: the
    :func:`sequence_rotation`; pass ``np.eye(3)`` when both share a frame)."""
    rot = sequence_rotation(estimate, reference) if rotation is None else rotation
    return joint_errors(root_relative(estimate) @ rot.T, root_relative(reference))


def p_mpjpe_errors(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, J) Protocol #2 errors: per-frame similarity Procrustes, reflections excluded."""
    aligned, _, _ = procrustes_frames(estimate, reference)
    return joint_errors(aligned, reference)


def n_mpjpe_errors(
    estimate: np.ndarray, reference: np.ndarray, rotation: np.ndarray | None = None
) -> np.ndarray:
    """(T, J) N-MPJPE errors (Rhodin et al. 2018): root-relative, sequence rotation, then per frame
    the least-squares scale s = <p, g> / <p, p>."""
    rot = sequence_rotation(estimate, reference) if rotation is None else rotation
    p, g = root_relative(estimate) @ rot.T, root_relative(reference)
    num = np.nansum(p * g, axis=(1, 2))
    den = np.nansum(p * p, axis=(1, 2))
    s = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return joint_errors(s[:, None, None] * p, g)


def summarise(errors: np.ndarray) -> dict:
    """{mean, per_joint (J,), per_frame (T,)} of (T, J) errors (NaN frames left out)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames / joints
        per_joint = np.nanmean(errors, axis=0)
        per_frame = np.nanmean(errors, axis=1)
    ok = np.isfinite(errors)
    mean = float(errors[ok].mean()) if ok.any() else float("nan")
    return {"mean": mean, "per_joint": per_joint, "per_frame": per_frame}


def second_derivative(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """d2 values / dt2 along axis 0 at the inner samples (T-2, ...): the three-point formula for
    uneven spacing, 2 [(x+ - x)/h+ - (x - x-)/h-] / (h+ + h-)."""
    h_minus = np.diff(times)[:-1]
    h_plus = np.diff(times)[1:]
    shape = (-1,) + (1,) * (values.ndim - 1)
    slope_plus = (values[2:] - values[1:-1]) / h_plus.reshape(shape)
    slope_minus = (values[1:-1] - values[:-2]) / h_minus.reshape(shape)
    return 2.0 * (slope_plus - slope_minus) / (h_plus + h_minus).reshape(shape)


def acceleration_errors(estimate: np.ndarray, reference: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T, J) |a_est - a_ref| (Kanazawa et al. 2019); the first and last frames, and frames whose
    neighbours are missing, are NaN. Pass joints already aligned (as for MPJPE)."""
    err = np.full(estimate.shape[:2], np.nan)
    if len(times) < 3:
        return err
    acc = second_derivative(estimate - reference, np.asarray(times, np.float64))
    err[1:-1] = np.linalg.norm(acc, axis=-1)
    ok = _finite_frames(estimate, reference)
    whole = np.zeros_like(ok)
    whole[1:-1] = ok[:-2] & ok[1:-1] & ok[2:]
    err[~whole] = np.nan
    return err


def trajectory_alignment(
    estimate: np.ndarray, reference: np.ndarray, *, similarity: bool = False
) -> tuple[np.ndarray, float, np.ndarray]:
    """(R, s, t) of one transform of the whole sequence, fitted on every joint of every whole frame."""
    ok = _finite_frames(estimate, reference)
    if not ok.any():
        raise ValueError("no frame where both the estimate and the reference have every joint")
    return kabsch(estimate[ok].reshape(-1, 3), reference[ok].reshape(-1, 3), scale=similarity)


def root_trajectory_errors(
    estimate: np.ndarray, reference: np.ndarray, *, similarity: bool = False, root: int = ROOT
) -> dict:
    """Root trajectory error after one rigid (``similarity``: similarity) alignment of the sequence:
    {root (T,) distances, joints (T, J) whole-body distances, rotation, scale, translation}."""
    rot, s, t = trajectory_alignment(estimate, reference, similarity=similarity)
    aligned = s * estimate @ rot.T + t
    errs = joint_errors(aligned, reference)
    return {"root": errs[:, root], "joints": errs, "rotation": rot, "scale": s, "translation": t}


def angle_errors(estimate: np.ndarray, reference: np.ndarray) -> dict:
    """Per angle (columns of (T, A) arrays in the same unit): {rmse, bias, r, frames} over the frames
    where both are finite (r is NaN with fewer than 3 frames or no variation)."""
    out = {"rmse": [], "bias": [], "r": [], "frames": []}
    for a in range(estimate.shape[1]):
        e, g = estimate[:, a], reference[:, a]
        ok = np.isfinite(e) & np.isfinite(g)
        n = int(ok.sum())
        out["frames"].append(n)
        if n == 0:
            out["rmse"].append(np.nan)
            out["bias"].append(np.nan)
            out["r"].append(np.nan)
            continue
        d = e[ok] - g[ok]
        out["rmse"].append(float(np.sqrt((d**2).mean())))
        out["bias"].append(float(d.mean()))
        out["r"].append(pearson(e[ok], g[ok]))
    return {k: np.asarray(v) for k, v in out.items()}


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two 1-D arrays (NaN with fewer than 3 values or a constant one)."""
    if len(x) < 3:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the Student-t confidence interval of the mean of ``values`` (NaN
    left out): mean +- t_{(1+c)/2, n-1} s / sqrt(n), s the sample standard deviation (ddof 1);
    low = high = NaN for fewer than two values."""
    from scipy import stats

    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(v.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n
