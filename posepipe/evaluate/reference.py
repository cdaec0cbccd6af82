"""Reference recordings (motion capture) for the ``evaluate`` stage: reading, joint maps, timing.

**Files** (:func:`read_reference`, by extension; every reader returns a :class:`Recording` in
metres with its own time axis):

- ``.c3d`` (ezc3d): ``POINT:LABELS`` (+ ``LABELS2``...), ``POINT:RATE``, ``POINT:UNITS`` ("mm",
  "cm" or "m"; C3D's default, mm, when absent), the header's first frame (time = (first_frame +
  i) / rate, so a trimmed C3D keeps its place in the capture); points with a negative residual
  (invalid) are missing.
- ``.trc`` (OpenSim marker file): the ``DataRate ... Units ...`` header, marker names on the fourth
  line, ``Frame#``/``Time`` columns, an empty field for a missing marker (the layout posepipe's own
  TRC export writes, and OpenSim's).
- ``.npz``: ``joints`` (T, 17, 3) in Human3.6M order (:data:`posepipe.skeleton.H36M_JOINTS`),
  ``time`` (T,) seconds or ``rate`` (Hz), ``units`` ("m", "cm" or "mm"; required) and optionally
  ``up`` ("x", "y" or "z"); the joint names are the labels.

Units come from the file. A file whose units disagree with its numbers (a body more than
:data:`MAX_BODY_M` or less than :data:`MIN_BODY_M` across in the median frame once converted) is
refused: that is almost always mm read as m or the reverse.

**Joint maps** (:func:`load_joint_map`): {Human3.6M joint: entry}; an entry is a label, a list of
labels (their mean; a frame where one of them is missing leaves the joint missing, and the count
is reported), ``{harrington: left|right, markers: [LASI, RASI, LPSI, RPSI]}`` (hip joint centre by
the regression of Harrington et al. 2007, J Biomech 40(3):595-602, from pelvic width PW = |RASI -
LASI| and pelvic depth PD = |mid-ASIS - mid-PSIS|, in mm in the pelvis frame with origin at
mid-ASIS, x anterior, y superior, z to the right: x = -0.24 PD - 9.9, y = -0.30 PW - 10.9,
z = +-(0.33 PW + 7.3), + for the right hip), or ``{joints: [left_hip, right_hip]}`` (the mean of
joints the map already makes; Human3.6M's pelvis is the mid-point of its two hips). Joints left out
of the map are not evaluated; the pelvis (``hip``) must be in it (every protocol is root-relative).
Shipped maps: :data:`JOINT_MAPS` (``h36m``: labels equal to the joint names, as posepipe's TRC and
C3D exports and most joint-centre exports write them; ``plugin_gait``: Vicon Plug-in Gait full
body). A map may also be a YAML file of the same form.

**Time** (:func:`find_offset`, :func:`resample`): the reference's time at video time t is
t + offset. Without a given offset, it is found by cross-correlating the mean root-relative joint
speed (over a :data:`SPEED_BASELINE_S` baseline, so an estimate's frame-to-frame jitter does not
swamp the motion) of estimate and reference (invariant to the two coordinate frames and to scale): for each
shift by one timeline frame, Pearson's r over the overlap times the overlap's share of the shorter
signal (the biased cross-correlation estimate, so a short overlap cannot win by a chance match),
the best shift refined by a parabola through the peak and its neighbours; the confidence is the
peak's score over the highest other local peak at least :data:`PEAK_EXCLUSION_S` away. The reference is then linearly interpolated at the
timeline's times (no low-pass: motion capture at 100+ Hz is smooth next to a 30 fps timeline).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posepipe.errors import PosepipeError
from posepipe.skeleton import H36M_JOINTS

UNIT_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
MAX_BODY_M = 4.0
MIN_BODY_M = 0.05
PEAK_EXCLUSION_S = 0.25
SPEED_BASELINE_S = 0.1
EXTENSIONS = (".c3d", ".trc", ".npz")

# Shipped joint maps. Plug-in Gait (Vicon, "Plug-in Gait Reference Guide": LFHD/RFHD/LBHD/RBHD
# head, C7/T10/CLAV/STRN trunk, LSHO/RSHO acromio-clavicular, LELB lateral epicondyle, LWRA/LWRB
# wrist bar, LASI/RASI/LPSI/RPSI pelvis, LKNE lateral knee, LANK lateral malleolus): the
# shoulder, elbow, knee and ankle are lateral markers, about a marker radius plus a joint's
# half-width from the centre (add medial markers, e.g. [LKNE, LKNM], when the set has them).
# Human3.6M's "neck_nose" has no Plug-in Gait marker and is not evaluated.
PLUGIN_GAIT = {
    "right_hip": {"harrington": "right", "markers": ["LASI", "RASI", "LPSI", "RPSI"]},
    "left_hip": {"harrington": "left", "markers": ["LASI", "RASI", "LPSI", "RPSI"]},
    "hip": {"joints": ["left_hip", "right_hip"]},
    "right_knee": "RKNE",
    "right_foot": "RANK",
    "left_knee": "LKNE",
    "left_foot": "LANK",
    "spine": ["T10", "STRN"],
    "thorax": ["C7", "CLAV"],
    "head": ["LFHD", "RFHD", "LBHD", "RBHD"],
    "left_shoulder": "LSHO",
    "left_elbow": "LELB",
    "left_wrist": ["LWRA", "LWRB"],
    "right_shoulder": "RSHO",
    "right_elbow": "RELB",
    "right_wrist": ["RWRA", "RWRB"],
}
JOINT_MAPS = {"h36m": {name: name for name in H36M_JOINTS}, "plugin_gait": PLUGIN_GAIT}


@dataclass
class Recording:
    """A reference recording: ``points`` (N, M, 3) metres with NaN where missing, ``labels`` (M),
    ``time`` (N,) seconds; ``units`` as the file gave them; ``up``: its vertical axis (from the
    file, else the format's custom: C3D "z", TRC "y"), ``source`` the file."""

    labels: list[str]
    points: np.ndarray
    time: np.ndarray
    units: str
    up: str
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return float(1.0 / np.median(np.diff(self.time))) if len(self.time) > 1 else float("nan")


def _unit_scale(path, units: str) -> float:
    key = str(units).strip().lower().replace("millimeters", "mm").replace("meters", "m")
    if key not in UNIT_SCALE:
        raise PosepipeError(path, f"unknown units {units!r} (expected one of {', '.join(UNIT_SCALE)})")
    return UNIT_SCALE[key]


def check_units(path, points_m: np.ndarray, units: str) -> None:
    """Refuse numbers that disagree with the file's units (see the module docstring)."""
    finite = np.isfinite(points_m).all(axis=-1)
    frames = finite.sum(axis=1) >= 2
    if not frames.any():
        return
    spans = []
    for k in np.flatnonzero(frames)[:: max(1, int(frames.sum() // 200))]:
        p = points_m[k][finite[k]]
        spans.append(float((p.max(axis=0) - p.min(axis=0)).max()))
    size = float(np.median(spans))
    if not MIN_BODY_M <= size <= MAX_BODY_M:
        raise PosepipeError(
            path,
            f"the units say {units} but the points span {size:.3g} m across in a typical frame (a body is "
            f"{MIN_BODY_M}-{MAX_BODY_M} m): the units do not match the numbers",
        )


def read_c3d(path) -> Recording:
    try:
        import ezc3d

        c3d = ezc3d.c3d(os.fspath(path))
        params = c3d["parameters"]["POINT"]
        labels = list(params["LABELS"]["value"])
        for extra in ("LABELS2", "LABELS3", "LABELS4"):
            if extra in params:
                labels += list(params[extra]["value"])
        rate = float(params["RATE"]["value"][0])
        units = params["UNITS"]["value"][0] if "UNITS" in params and params["UNITS"]["value"] else "mm"
        data = np.asarray(c3d["data"]["points"], dtype=np.float64)
        first = int(c3d["header"]["points"]["first_frame"])
        residuals = c3d["data"]["meta_points"]["residuals"] if "meta_points" in c3d["data"] else None
    except Exception as exc:  # ezc3d raises plain Exceptions/RuntimeErrors for bad files
        raise PosepipeError(path, f"cannot read the C3D file ({type(exc).__name__}: {exc})") from None
    if not rate > 0:
        raise PosepipeError(path, f"POINT:RATE is {rate}, not a frame rate")
    points = data[:3].transpose(2, 1, 0)  # (N, M, 3)
    labels = [str(label).strip() for label in labels[: points.shape[1]]]
    if residuals is not None:
        bad = np.asarray(residuals)[0].T < 0  # (N, M)
        points[bad] = np.nan
    scale = _unit_scale(path, units)
    points = points * scale
    check_units(path, points, units)
    time = (first + np.arange(points.shape[0])) / rate
    return Recording(labels, points, time, str(units), "z", os.fspath(path))


def read_trc(path) -> Recording:
    """An OpenSim .trc file (see the module docstring)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        keys, values = lines[1].split("\t"), lines[2].split("\t")
        header = {k.strip(): v.strip() for k, v in zip(keys, values, strict=False)}
        units = header["Units"]
        names = [name.strip() for name in lines[3].split("\t")[2:] if name.strip()]
        rows = [line.split("\t") for line in lines[5:] if line.strip() and line.split("\t")[0].strip()]
        rows = [r for r in rows if r[0].strip().lstrip("-").replace(".", "", 1).isdigit()]
        n = len(names)
        time = np.array([float(r[1]) for r in rows])
        points = np.full((len(rows), n, 3), np.nan)
        for i, r in enumerate(rows):
            cells = (r[2 : 2 + 3 * n] + [""] * (3 * n))[: 3 * n]
            points[i] = np.array([float(c) if c.strip() else np.nan for c in cells]).reshape(n, 3)
    except (OSError, UnicodeDecodeError, IndexError, KeyError, ValueError) as exc:
        raise PosepipeError(path, f"cannot read the TRC file ({type(exc).__name__}: {exc})") from None
    if not rows or n == 0:
        raise PosepipeError(path, "the TRC file has no markers or no frames")
    scale = _unit_scale(path, units)
    points *= scale
    check_units(path, points, units)
    return Recording(names, points, time, units, "y", os.fspath(path))


def read_npz(path) -> Recording:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "joints" not in z.files or "units" not in z.files:
                raise PosepipeError(
                    path, "a reference .npz needs 'joints' (T, 17, 3) and 'units' ('m' or 'mm')"
                )
            joints = np.asarray(z["joints"], dtype=np.float64)
            units = str(z["units"])
            if "time" in z.files:
                time = np.asarray(z["time"], dtype=np.float64)
            elif "rate" in z.files:
                time = np.arange(len(joints)) / float(z["rate"])
            else:
                raise PosepipeError(path, "a reference .npz needs 'time' (seconds) or 'rate' (Hz)")
            up = str(z["up"]) if "up" in z.files else "z"
    except PosepipeError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise PosepipeError(path, f"cannot read the reference ({type(exc).__name__}: {exc})") from None
    if joints.ndim != 3 or joints.shape[1:] != (len(H36M_JOINTS), 3) or time.shape != (len(joints),):
        raise PosepipeError(
            path, f"joints {joints.shape} and time {time.shape}: expected (T, 17, 3) and (T,)"
        )
    if up not in ("x", "y", "z"):
        raise PosepipeError(path, f"up is {up!r}, expected x, y or z")
    points = joints * _unit_scale(path, units)
    check_units(path, points, units)
    return Recording(list(H36M_JOINTS), points, time, units, up, os.fspath(path))


def read_reference(path) -> Recording:
    """The recording in ``path`` (.c3d, .trc or .npz), checked: times increasing, not empty."""
    suffix = Path(path).suffix.lower()
    readers = {".c3d": read_c3d, ".trc": read_trc, ".npz": read_npz}
    if suffix not in readers:
        raise PosepipeError(
            path, f"a reference must be {', '.join(EXTENSIONS)}, not {suffix or 'no extension'}"
        )
    if not Path(path).is_file():
        raise PosepipeError(path, "the reference file does not exist")
    rec = readers[suffix](path)
    if len(rec.time) < 2 or not (np.diff(rec.time) > 0).all():
        raise PosepipeError(path, f"{len(rec.time)} frames with times that do not increase")
    return rec


# ---- joint maps -----------------------------------------------------------------------------------


def load_joint_map(spec) -> dict:
    """A joint map: a shipped name (:data:`JOINT_MAPS`), a YAML file's path, or a mapping; checked."""
    if isinstance(spec, dict):
        mapping, where = spec, "joint map"
    elif str(spec) in JOINT_MAPS:
        mapping, where = JOINT_MAPS[str(spec)], f"joint map {spec}"
    else:
        import yaml

        try:
            mapping = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PosepipeError(
                spec,
                f"not a shipped joint map ({', '.join(JOINT_MAPS)}) and not a readable YAML file ({exc})",
            ) from None
        where = os.fspath(spec)
    if not isinstance(mapping, dict) or not mapping:
        raise PosepipeError(where, "a joint map is a mapping {Human3.6M joint: label(s)}")
    unknown = sorted(set(map(str, mapping)) - set(H36M_JOINTS))
    if unknown:
        raise PosepipeError(where, f"not Human3.6M joints: {unknown} (joints: {', '.join(H36M_JOINTS)})")
    if "hip" not in mapping:
        raise PosepipeError(where, "the map must give 'hip' (the pelvis): every protocol is root-relative")
    for joint, entry in mapping.items():
        ok = isinstance(entry, str) or (
            isinstance(entry, list) and entry and all(isinstance(e, str) for e in entry)
        )
        if isinstance(entry, dict):
            harrington = set(entry) == {"harrington", "markers"} and entry["harrington"] in ("left", "right")
            harrington = harrington and isinstance(entry["markers"], list) and len(entry["markers"]) == 4
            of_joints = (
                set(entry) == {"joints"} and isinstance(entry["joints"], list) and bool(entry["joints"])
            )
            of_joints = of_joints and all(j in mapping and j != joint for j in entry["joints"])
            ok = harrington or of_joints
        if not ok:
            raise PosepipeError(
                where,
                f"{joint}: {entry!r} is not a label, a list of labels, {{harrington: left|right, markers: "
                "[LASI, RASI, LPSI, RPSI]}} or {joints: [...]} of joints in the map",
            )
    return {str(k): v for k, v in mapping.items()}


def harrington_hjc(
    lasi: np.ndarray, rasi: np.ndarray, lpsi: np.ndarray, rpsi: np.ndarray, side: str
) -> np.ndarray:
    """(N, 3) hip joint centre in metres by Harrington et al. (2007) from (N, 3) marker positions in
    metres (module docstring); NaN where a marker is missing."""
    mid_asis, mid_psis = (lasi + rasi) / 2, (lpsi + rpsi) / 2
    z = rasi - lasi
    pw = np.linalg.norm(z, axis=-1, keepdims=True)
    z = z / pw
    v = mid_asis - mid_psis
    pd = np.linalg.norm(v, axis=-1, keepdims=True)
    x = v - (v * z).sum(axis=-1, keepdims=True) * z
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    pw_mm, pd_mm = pw * 1000.0, pd * 1000.0
    sign = 1.0 if side == "right" else -1.0
    offset_mm = x * (-0.24 * pd_mm - 9.9) + y * (-0.30 * pw_mm - 10.9) + z * sign * (0.33 * pw_mm + 7.3)
    return mid_asis + offset_mm / 1000.0


def apply_joint_map(rec: Recording, mapping: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """((N, 17, 3) joints in metres, NaN for joints not in the map or missing in a frame; (17,) bool
    mapped; {joint: frames missing} for mapped joints that miss frames)."""
    index = {label: i for i, label in enumerate(rec.labels)}

    def marker(label: str) -> np.ndarray:
        if label not in index:
            shown = ", ".join(rec.labels[:30]) + (" ..." if len(rec.labels) > 30 else "")
            raise PosepipeError(
                rec.source, f"the joint map names {label!r}, which the file does not have (it has {shown})"
            )
        return rec.points[:, index[label]]

    joints = np.full((len(rec.time), len(H36M_JOINTS), 3), np.nan)
    done: dict[str, np.ndarray] = {}
    pending = dict(mapping)
    while pending:
        progressed = False
        for joint, entry in list(pending.items()):
            if isinstance(entry, dict) and "joints" in entry:
                if not all(j in done for j in entry["joints"]):
                    continue
                value = np.mean([done[j] for j in entry["joints"]], axis=0)
            elif isinstance(entry, dict):
                value = harrington_hjc(*(marker(m) for m in entry["markers"]), side=entry["harrington"])
            else:
                labels = [entry] if isinstance(entry, str) else entry
                value = np.mean([marker(label) for label in labels], axis=0)  # NaN if any is missing
            done[joint] = value
            del pending[joint]
            progressed = True
        if not progressed:
            raise PosepipeError(
                rec.source, f"joint map: {sorted(pending)} refer to joints that are never made"
            )
    mapped = np.zeros(len(H36M_JOINTS), bool)
    missing = {}
    for joint, value in done.items():
        j = H36M_JOINTS.index(joint)
        joints[:, j], mapped[j] = value, True
        absent = int((~np.isfinite(value).all(axis=-1)).sum())
        if absent == len(value):
            raise PosepipeError(rec.source, f"joint {joint} ({mapping[joint]!r}) is missing in every frame")
        if absent:
            missing[joint] = absent
    return joints, mapped, missing


# ---- time ------------------------------------------------------------------------------------------


#: How far, as a fraction of the shortest sample interval, a query may fall outside a recording's
#: first or last sample and still take that end's value. Times in files are rounded (a TRC's time
#: column has 6 decimals, a C3D stores its rate as float32), so a video frame that falls on the
#: recording's last sample can land a fraction of a microsecond past it.
END_TOLERANCE = 1e-3


def resample(times: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Linear interpolation of (N, ...) ``values`` at ``query`` (Q,) times; NaN outside
    [times[0], times[-1]] (widened by :data:`END_TOLERANCE` of a sample at each end, where the end
    sample's value is taken) and wherever one of the two bracketing samples is NaN."""
    flat = values.reshape(len(times), -1)
    slack = END_TOLERANCE * float(np.diff(times).min())
    i = np.searchsorted(times, query, side="right") - 1
    inside = (query >= times[0] - slack) & (query <= times[-1] + slack)
    i = np.clip(i, 0, len(times) - 2)
    w = np.clip((query - times[i]) / (times[i + 1] - times[i]), 0.0, 1.0)[:, None]
    out = flat[i] * (1 - w) + flat[i + 1] * w
    exact = np.isclose(w[:, 0], 0.0)
    out[exact] = flat[i[exact]]
    last = np.isclose(w[:, 0], 1.0)
    out[last] = flat[i[last] + 1]
    out[~inside] = np.nan
    return out.reshape((len(query),) + values.shape[1:])


def speed_signal(joints: np.ndarray, dt: float, lag: int = 1) -> np.ndarray:
    """(T-lag,) mean over joints of the root-relative joint speed over ``lag`` frames,
    |x(t + lag) - x(t)| / (lag dt): a longer baseline than one frame keeps frame-to-frame jitter of
    an estimate from swamping the motion (white noise of sigma adds about sigma sqrt(2) / (lag dt))."""
    rel = joints - joints[:, :1]
    return np.linalg.norm(rel[lag:] - rel[:-lag], axis=-1).mean(axis=1) / (lag * dt)


@dataclass
class Offset:
    """The time offset (reference time = video time + ``seconds``) and how it was found."""

    seconds: float
    source: str  # "given" or "cross-correlation"
    peak: float = float("nan")
    second_peak: float = float("nan")
    frames: float = float("nan")  # in timeline frames, sub-frame refined

    @property
    def confidence(self) -> float:
        if not np.isfinite(self.peak):
            return float("nan")
        return float(self.peak / self.second_peak) if self.second_peak > 0 else float("inf")


def find_offset(
    est_joints: np.ndarray,
    est_times: np.ndarray,
    ref_joints: np.ndarray,
    ref_times: np.ndarray,
    *,
    min_overlap_s: float,
    max_offset_s: float | None = None,
) -> Offset:
    """The offset maximising the correlation of joint speeds (module docstring). Both joint arrays
    hold the same joints (mapped ones, pelvis first); NaN frames are left out of each shift's r."""
    dt = float(np.median(np.diff(est_times)))
    grid = np.arange(ref_times[0], ref_times[-1] + dt / 2, dt)
    lag = max(1, int(round(SPEED_BASELINE_S / dt)))
    ref_speed = speed_signal(resample(ref_times, ref_joints, grid), dt, lag)
    est_speed = speed_signal(est_joints, dt, lag)
    n_est, n_ref = len(est_speed), len(ref_speed)
    min_frames = max(3, int(np.ceil(min_overlap_s / dt)))
    # shift m: estimate frame j against grid frame j + m; offset = grid[0] + m dt - est_times[0]
    shifts = np.arange(-(n_est - min_frames), n_ref - min_frames + 1)
    if max_offset_s is not None:
        offsets = grid[0] + shifts * dt - est_times[0]
        shifts = shifts[np.abs(offsets) <= max_offset_s + dt / 2]
    r = np.full(len(shifts), np.nan)
    for k, m in enumerate(shifts):
        j0, j1 = max(0, -m), min(n_est, n_ref - m)
        if j1 - j0 < min_frames:
            continue
        a, b = est_speed[j0:j1], ref_speed[j0 + m : j1 + m]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < min_frames:
            continue
        a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        # Pearson's r weighted by the overlap's share of the shorter signal (the biased estimator
        # of cross-correlation): a short overlap cannot win on a chance match.
        r[k] = (a * b).sum() / den * ok.sum() / min(n_est, n_ref) if den > 0 else np.nan
    if not np.isfinite(r).any():
        raise PosepipeError(
            None,
            f"no time shift gives {min_overlap_s:g} s of overlap with motion in both (video "
            f"{est_times[0]:.3f}-{est_times[-1]:.3f} s, reference {ref_times[0]:.3f}-{ref_times[-1]:.3f} s)",
        )
    best = int(np.nanargmax(r))
    frac = 0.0
    if 0 < best < len(r) - 1 and np.isfinite(r[best - 1 : best + 2]).all():
        y0, y1, y2 = r[best - 1 : best + 2]
        den = y0 - 2 * y1 + y2
        frac = float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5)) if den < 0 else 0.0
    exclusion = max(2, int(round(PEAK_EXCLUSION_S / dt)))
    others = [
        r[k]
        for k in range(len(r))
        if abs(k - best) > exclusion
        and np.isfinite(r[k])
        and (k == 0 or not np.isfinite(r[k - 1]) or r[k] >= r[k - 1])
        and (k == len(r) - 1 or not np.isfinite(r[k + 1]) or r[k] >= r[k + 1])
    ]
    second = float(max(others)) if others else float("nan")
    m = shifts[best] + frac
    return Offset(
        seconds=float(grid[0] + m * dt - est_times[0]),
        source="cross-correlation",
        peak=float(r[best]),
        second_peak=second,
        frames=float((grid[0] - est_times[0]) / dt + m),
    )


def align_in_time(
    ref_joints: np.ndarray, ref_times: np.ndarray, video_times: np.ndarray, offset_s: float, *, min_overlap_s: float,
    source=None,
) -> tuple[np.ndarray, float]:  # fmt: skip
    """(T, 17, 3) reference on the video timeline (NaN where it has no sample) and the overlap in
    seconds; refuses an overlap shorter than ``min_overlap_s``."""
    on_video = resample(ref_times, ref_joints, video_times + offset_s)
    covered = (video_times + offset_s >= ref_times[0]) & (video_times + offset_s <= ref_times[-1])
    dt = float(np.median(np.diff(video_times))) if len(video_times) > 1 else 0.0
    overlap = float(covered.sum() * dt)
    if overlap < min_overlap_s:
        raise PosepipeError(
            source,
            f"the reference overlaps the video for {overlap:.2f} s at offset {offset_s:+.3f} s (reference "
            f"{ref_times[0]:.2f}-{ref_times[-1]:.2f} s, video {video_times[0]:.2f}-{video_times[-1]:.2f} s); "
            f"at least {min_overlap_s:g} s is needed (evaluate.min_overlap_s)",
        )
    return on_video, overlap
