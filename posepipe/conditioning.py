"""2D conditioning before lifting: per-joint confidence, temporal filters, resampling in time.

All of it is off by default (upstream parity) and works on one continuous segment at a time:
frames where a person is absent split a sequence, and nothing is filtered or interpolated across
them.

- :func:`fill_low_confidence`: joints scoring below a threshold are treated as missing and filled
  per joint by linear interpolation from the same joint's confident frames (held at the edges).
- :func:`butterworth`: zero-phase low-pass (``scipy.signal.sosfiltfilt``), cut-off in Hz.
- :func:`savitzky_golay`: local polynomial smoothing (``scipy.signal.savgol_filter``).
- :func:`one_euro`: the 1€ filter (Casiez, Roussel, Vogel 2012), an adaptive low-pass whose
  cut-off rises with speed; causal, vectorised over joints and coordinates.
- :func:`resample`: linear interpolation of a sequence from one set of frame times to another
  (the lifter's own 50 fps and back).

Arrays are (T, ...) float; the filters act along axis 0 on every other element independently.
"""

from __future__ import annotations

import math

import numpy as np

FILTERS = ("none", "butterworth", "savgol", "one_euro")
# Each filter's options (the keyword of :func:`apply_filter`) and their keys in the config's
# ``dataset2d`` section: the one list the stage's CLI and the rules read.
FILTER_OPTIONS = {
    "none": {},
    "butterworth": {"cutoff_hz": "butterworth_cutoff_hz", "order": "butterworth_order"},
    "savgol": {"window": "savgol_window", "order": "savgol_order"},
    "one_euro": {
        "min_cutoff": "one_euro_min_cutoff",
        "beta": "one_euro_beta",
        "d_cutoff": "one_euro_d_cutoff",
    },
}
FILTER_KEYS = {name: tuple(keys.values()) for name, keys in FILTER_OPTIONS.items()}


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a bool (T,) array, as [start, stop) pairs."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, bool).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def fill_low_confidence(
    keypoints: np.ndarray, scores: np.ndarray, detected: np.ndarray, *, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Refill joints scoring below ``threshold`` from the same joint's confident frames.

    Args:
        keypoints: (T, J, 2) pixels of one continuous segment; scores: (T, J); detected: bool (T,)
            (frames that were not detected are already filled and take no part as sources).
    Returns:
        (keypoints with the unconfident joints refilled, bool (T, J) the joints that were refilled).
        A joint never confident in the segment keeps its values.
    """
    known = detected[:, None] & (scores >= threshold)
    out = keypoints.copy()
    filled = np.zeros(known.shape, bool)
    t = np.arange(len(keypoints))
    for j in range(keypoints.shape[1]):
        have = known[:, j]
        if have.all() or not have.any():
            continue
        for c in range(keypoints.shape[2]):
            out[~have, j, c] = np.interp(t[~have], t[have], keypoints[have, j, c])
        filled[~have, j] = True
    return out, filled


def butterworth(x: np.ndarray, *, fps: float, cutoff_hz: float, order: int) -> np.ndarray:
    """Zero-phase Butterworth low-pass of ``x`` (T, ...) sampled at ``fps``.

    The forward-backward pass doubles the order's attenuation and cancels the phase. Sequences too
    short for the filter's default padding are padded by T - 1 frames; a single frame is returned.
    """
    from scipy.signal import butter, sosfiltfilt

    if not 0 < cutoff_hz < fps / 2:
        raise ValueError(
            f"Butterworth cut-off {cutoff_hz} Hz must lie between 0 and half the frame rate ({fps / 2} Hz)"
        )
    if len(x) < 2:
        return x.copy()
    sos = butter(order, cutoff_hz, fs=fps, output="sos")
    default_pad = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    return sosfiltfilt(sos, x, axis=0, padlen=min(default_pad, len(x) - 1))


def savitzky_golay(x: np.ndarray, *, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoothing of ``x`` (T, ...) with an odd ``window`` (frames) and polynomial
    ``order``; a segment shorter than the window uses the largest odd window it holds (unchanged
    when that is not above the order)."""
    from scipy.signal import savgol_filter

    if window % 2 == 0 or window <= order:
        raise ValueError(f"Savitzky-Golay window {window} must be odd and larger than the order {order}")
    window = min(window, len(x) if len(x) % 2 else len(x) - 1)
    if window <= order:
        return x.copy()
    return savgol_filter(x, window, order, axis=0, mode="interp")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(x: np.ndarray, *, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """The 1€ filter over ``x`` (T, ...) sampled at ``fps``; every element filtered independently.

    Per step: the speed is low-passed at ``d_cutoff`` Hz; the signal is low-passed at
    ``min_cutoff + beta * |speed|`` Hz (speed in units of ``x`` per second), so slow motion is
    smoothed hard and fast motion follows with little lag.
    """
    dt = 1.0 / fps
    out = np.empty_like(x, dtype=np.float64)
    if len(x) == 0:
        return out
    prev = out[0] = x[0]
    speed = np.zeros_like(prev, dtype=np.float64)
    a_d = _alpha(d_cutoff, dt)
    for t in range(1, len(x)):
        speed = a_d * (x[t] - prev) / dt + (1 - a_d) * speed
        a = _alpha(min_cutoff + beta * np.abs(speed), dt)
        prev = out[t] = a * x[t] + (1 - a) * prev
    return out


def apply_filter(x: np.ndarray, *, name: str, fps: float, options: dict) -> np.ndarray:
    """Filter one segment ``x`` (T, ...) with filter ``name`` (one of :data:`FILTERS`) and its options
    (:data:`FILTER_OPTIONS`): butterworth: cutoff_hz, order; savgol: window, order; one_euro:
    min_cutoff, beta, d_cutoff."""
    if name == "none":
        return x.copy()
    if name == "butterworth":
        return butterworth(x, fps=fps, cutoff_hz=options["cutoff_hz"], order=options["order"])
    if name == "savgol":
        return savitzky_golay(x, window=options["window"], order=options["order"])
    if name == "one_euro":
        return one_euro(
            x, fps=fps, min_cutoff=options["min_cutoff"], beta=options["beta"], d_cutoff=options["d_cutoff"]
        )
    raise ValueError(f"unknown filter {name!r}; one of {', '.join(FILTERS)}")


def resample(values: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` (T, ...) at ``times`` (T,) to ``new_times`` (T',), per element;
    times outside the known range take the nearest end value."""
    flat = values.reshape(len(values), -1)
    out = np.empty((len(new_times), flat.shape[1]), dtype=np.float64)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(new_times, times, flat[:, j])
    return out.reshape((len(new_times), *values.shape[1:]))


def model_times(first: float, last: float, fps: float) -> np.ndarray:
    """Times from ``first`` at ``fps`` covering ``last``: first + k / fps, k = 0 .. ceil((last - first) fps)."""
    count = int(math.ceil((last - first) * fps - 1e-9)) + 1
    return first + np.arange(count) / fps
