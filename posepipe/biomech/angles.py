"""Joint and segment angles from the 17 Human3.6M joints (degrees), after the ISB recommendations.

Plain numpy on arrays (no I/O, no stage imports): :func:`compute_angles` takes joints
``(..., 17, 3)`` (:data:`posepipe.skeleton.H36M_JOINTS` order, any unit, typically (P, T, 17, 3)
metres) and returns ``(values (..., A) float64 degrees, names (A,))`` in the order of
:data:`ANGLE_NAMES`; NaN where a joint it needs is NaN or its segment is degenerate (zero length,
or two axes that should span a plane are parallel).

Segment frames (ISB axes: X anterior, Y superior along the segment, Z to the right; every frame
right-handed, X = Y x Z; the same axes on both sides, left-side angles mirrored so that flexion and
adduction are positive on both sides, as ISB asks):

- pelvis: Z from left hip to right hip (primary); Y the root -> spine direction made
  perpendicular to Z; origin the root joint. The ISB pelvis (Wu et al. 2002) is built on the
  anterior and posterior iliac spines, which Human3.6M lacks: its tilt here is that of the lower
  spine (root -> spine), so hip flexion is the thigh against the lower trunk.
- thorax: Y from the spine joint to the thorax joint (primary; the ISB thorax, Wu et al. 2005, runs
  along T8 -> C7), Z the left -> right shoulder line made perpendicular to Y. The shoulders of
  Human3.6M are the glenohumeral centres, so a shrug or protraction tilts this Z a little.
- trunk (for angles against the vertical): Y from the root to the thorax joint, Z the shoulder line
  made perpendicular to Y.
- femur, humerus: only the long axis (hip centre - knee, shoulder - elbow) is known; no
  epicondyles, so their rotation about the long axis is not.
- global: Y = ``up`` (world +Z when the world stage ran; the camera's -Y, image up, otherwise), X =
  ``forward`` made horizontal (default: world +X, the camera's viewing direction on the floor;
  camera +Z for a camera-frame ``up``), Z = X x Y (to the right as seen from the camera).

Angles (name: definition; sign; zero pose):

- ``hip_flexion_l/_r``: femur relative to pelvis, ISB joint coordinate system (Grood & Suntay;
  Wu et al. 2002), i.e. the Cardan sequence Z-X-Y: first angle, about the pelvis Z axis; flexion
  positive (knee forward), extension negative; zero: thigh along the pelvis Y axis (root -> spine
  line) seen from the side.
- ``hip_adduction_l/_r``: second angle of that sequence (about the floating axis); adduction
  positive (knee towards the midline), abduction negative; zero: thigh in the pelvis sagittal plane.
  Both depend on the femur's long axis only, so they are exact without the femur's third axis.
  The third angle (internal/external rotation) needs the femoral epicondyles: not given.
- ``knee_flexion_l/_r``: angle between the femur (hip -> knee) and the tibia (knee -> ankle) long
  axes, 0 to 180; 0 = straight leg. For a hinge knee this is the JCS flexion angle; without
  epicondyles its sign cannot be had, so hyperextension reads as a small flexion. Knee ab/adduction
  and rotation: not given (no epicondyles, no malleoli).
- ``shoulder_elevation_l/_r``, ``shoulder_plane_l/_r``: humerus relative to thorax, ISB Y-X-Y
  sequence (Wu et al. 2005): the first angle is the plane of elevation (0 = abduction in the
  frontal plane, 90 = forward flexion in the sagittal plane, negative = behind the frontal plane,
  range -180..180), the second the elevation (0 = arm hanging along the thorax Y axis, 0..180,
  reported positive). The plane is NaN while the elevation is below
  :data:`PLANE_MIN_ELEVATION_DEG` (gimbal lock: at zero elevation every plane is the same pose).
  The third angle (humeral axial rotation) needs the forearm's orientation about the humerus,
  which Human3.6M gives only while the elbow is bent; not given.
- ``elbow_flexion_l/_r``: angle between the humerus (shoulder -> elbow) and forearm (elbow ->
  wrist) long axes, 0 = straight arm, 0..180 (ISB elbow flexion; hyperextension reads as flexion).
- ``trunk_flexion``, ``trunk_lateral_bend``: the trunk frame against the global frame, in the
  rotation-obliquity-tilt order of Baker (2001, Gait & Posture 13:1-6), ISB axes Y-X-Z: the
  rotation about the vertical first, so that flexion and bend are in the body's own planes
  whichever way it faces. Flexion: forward lean positive (the negative of the right-hand angle
  about the trunk Z axis); lateral bend: lean to the right positive; zero: trunk axis (root ->
  thorax) vertical.
- ``trunk_rotation``, ``pelvis_rotation``: the first angle of that sequence for the trunk
  (shoulder line) and the pelvis (hip line): rotation about the vertical, positive to the left
  (counter-clockwise seen from above, right-hand rule about ``up``), zero = facing along the global
  X axis (away from the camera), range -180..180 (it wraps when the person turns round).
- ``neck_flexion``: the thorax -> head-top direction relative to the thorax, first angle of the
  Z-X-Y sequence about the thorax Z axis; forward (chin down) positive; zero: head top on the
  thorax Y axis.

Not given, and why: ankle angles (Human3.6M's "foot" joint is the ankle centre; no toe, heel or
malleolus points, so the foot segment has no direction); wrist angles and forearm pronation /
supination (no hand points, so the hand segment has no direction and the forearm no axis about
its length); hip and shoulder axial rotation (see above); the head's own rotation (nose and head
top give one direction only besides the neck).
"""

from __future__ import annotations

import numpy as np

# Human3.6M joint indices (posepipe.skeleton.H36M_JOINTS)
ROOT, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 0, 1, 2, 3, 4, 5, 6
SPINE, THORAX, NOSE, HEAD = 7, 8, 9, 10
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = 11, 12, 13, 14, 15, 16

ANGLE_NAMES = (
    "hip_flexion_l", "hip_flexion_r", "hip_adduction_l", "hip_adduction_r",
    "knee_flexion_l", "knee_flexion_r",
    "shoulder_elevation_l", "shoulder_elevation_r", "shoulder_plane_l", "shoulder_plane_r",
    "elbow_flexion_l", "elbow_flexion_r",
    "trunk_flexion", "trunk_lateral_bend", "trunk_rotation", "pelvis_rotation", "neck_flexion",
)  # fmt: skip
# Each bilateral angle's two names (left, right), for left-right comparisons.
BILATERAL = tuple((name, name[:-1] + "r") for name in ANGLE_NAMES if name.endswith("_l"))
# Below this shoulder elevation the plane of elevation is NaN (gimbal lock of the Y-X-Y sequence).
PLANE_MIN_ELEVATION_DEG = 5.0
# Camera frame "up" (image up is -Y in OpenCV / Human3.6M camera coordinates).
CAMERA_UP = (0.0, -1.0, 0.0)
WORLD_UP = (0.0, 0.0, 1.0)

_EPS = 1e-9  # shorter than this (in the joints' unit) is a degenerate segment


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > _EPS, v / n, np.nan)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _frame(y: np.ndarray, z: np.ndarray, *, primary: str) -> np.ndarray:
    """Rows X, Y, Z (..., 3, 3) of a right-handed frame from a superior direction ``y`` and a
    rightward direction ``z``; ``primary`` ("y" or "z") is kept, the other made perpendicular to
    it. NaN where either is degenerate or the two are parallel (within 1e-6 rad)."""
    if primary == "y":
        Y = _unit(y)
        zz = z - _dot(z, Y)[..., None] * Y
        ok = np.linalg.norm(zz, axis=-1) > 1e-6 * np.linalg.norm(z, axis=-1)
        Z = np.where(ok[..., None], _unit(zz), np.nan)
    else:
        Z = _unit(z)
        yy = y - _dot(y, Z)[..., None] * Z
        ok = np.linalg.norm(yy, axis=-1) > 1e-6 * np.linalg.norm(y, axis=-1)
        Y = np.where(ok[..., None], _unit(yy), np.nan)
    return np.stack([np.cross(Y, Z), Y, Z], axis=-2)


def _in_frame(frame: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Coordinates of direction ``v`` (unit) in ``frame`` (rows X, Y, Z)."""
    return np.einsum("...ij,...j->...i", frame, _unit(v))


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors a and b in degrees (atan2 form: exact near 0 and 180)."""
    a, b = _unit(a), _unit(b)
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), _dot(a, b)))


def global_frame(up=WORLD_UP, forward=None) -> np.ndarray:
    """Rows X (forward, horizontal), Y (up), Z (= X x Y) of the global frame, (3, 3)."""
    up = np.asarray(up, dtype=np.float64)
    if up.shape != (3,) or not np.isfinite(up).all() or np.linalg.norm(up) == 0:
        raise ValueError(f"up must be a non-zero 3-vector, got {up!r}")
    up = up / np.linalg.norm(up)
    if forward is None:  # world +X (world frame, up along Z), else the camera's viewing axis +Z
        forward = (1.0, 0.0, 0.0) if abs(up[2]) > 0.9 else (0.0, 0.0, 1.0)
    forward = np.asarray(forward, dtype=np.float64)
    horizontal = forward - np.dot(forward, up) * up
    if np.linalg.norm(horizontal) < 1e-6:
        raise ValueError(f"forward {forward!r} is parallel to up {up!r}")
    X = horizontal / np.linalg.norm(horizontal)
    return np.stack([X, up, np.cross(X, up)])


def _against_vertical(frame: np.ndarray, glob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rotation about the vertical, lateral bend, flexion) in degrees of a segment frame against
    the global frame: Baker's rotation-obliquity-tilt order, R = Ry(rotation) Rx(bend) Rz(tilt),
    flexion = -tilt (forward lean positive)."""
    # R[j, i] = segment axis i . global axis j
    R = np.einsum("...ik,jk->...ji", frame, glob)
    rotation = np.arctan2(R[..., 0, 2], R[..., 2, 2])
    bend = np.arcsin(np.clip(-R[..., 1, 2], -1.0, 1.0))
    tilt = np.arctan2(R[..., 1, 0], R[..., 1, 1])
    return np.degrees(rotation), np.degrees(bend), -np.degrees(tilt)


def compute_angles(joints, up=WORLD_UP, forward=None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Joint and segment angles (see the module docstring) of Human3.6M joints.

    Args:
        joints: (..., 17, 3), e.g. (P, T, 17, 3); NaN joints give NaN angles.
        up: the vertical (world: (0, 0, 1); camera frame: :data:`CAMERA_UP`).
        forward: the horizontal direction rotations are measured from (None: see
            :func:`global_frame`).

    Returns:
        values (..., A) float64 degrees, names :data:`ANGLE_NAMES` (A,).
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim < 2 or j.shape[-2:] != (17, 3):
        raise ValueError(f"joints must have shape (..., 17, 3), got {j.shape}")
    glob = global_frame(up, forward)
    pelvis = _frame(j[..., SPINE, :] - j[..., ROOT, :], j[..., R_HIP, :] - j[..., L_HIP, :], primary="z")
    shoulders = j[..., R_SHOULDER, :] - j[..., L_SHOULDER, :]
    thorax = _frame(j[..., THORAX, :] - j[..., SPINE, :], shoulders, primary="y")
    trunk = _frame(j[..., THORAX, :] - j[..., ROOT, :], shoulders, primary="y")

    out: dict[str, np.ndarray] = {}
    for side, hip, knee, ankle, mirror in (
        ("l", L_HIP, L_KNEE, L_ANKLE, -1.0),
        ("r", R_HIP, R_KNEE, R_ANKLE, 1.0),
    ):
        u = _in_frame(pelvis, j[..., hip, :] - j[..., knee, :])  # femur Y axis in the pelvis frame
        out[f"hip_flexion_{side}"] = np.degrees(np.arctan2(-u[..., 0], u[..., 1]))
        out[f"hip_adduction_{side}"] = np.degrees(
            np.arctan2(mirror * u[..., 2], np.hypot(u[..., 0], u[..., 1]))
        )
        out[f"knee_flexion_{side}"] = _between(
            j[..., knee, :] - j[..., hip, :], j[..., ankle, :] - j[..., knee, :]
        )
    for side, shoulder, elbow, wrist, mirror in (
        ("l", L_SHOULDER, L_ELBOW, L_WRIST, -1.0),
        ("r", R_SHOULDER, R_ELBOW, R_WRIST, 1.0),
    ):
        u = _in_frame(thorax, j[..., shoulder, :] - j[..., elbow, :])  # humerus Y axis in the thorax frame
        elevation = np.degrees(np.arctan2(np.hypot(u[..., 0], u[..., 2]), u[..., 1]))
        plane = np.degrees(np.arctan2(-u[..., 0], -mirror * u[..., 2]))
        out[f"shoulder_elevation_{side}"] = elevation
        with np.errstate(invalid="ignore"):
            out[f"shoulder_plane_{side}"] = np.where(elevation >= PLANE_MIN_ELEVATION_DEG, plane, np.nan)
        out[f"elbow_flexion_{side}"] = _between(
            j[..., elbow, :] - j[..., shoulder, :], j[..., wrist, :] - j[..., elbow, :]
        )
    rotation, bend, flexion = _against_vertical(trunk, glob)
    out["trunk_flexion"], out["trunk_lateral_bend"], out["trunk_rotation"] = flexion, bend, rotation
    out["pelvis_rotation"] = _against_vertical(pelvis, glob)[0]
    u = _in_frame(thorax, j[..., HEAD, :] - j[..., THORAX, :])
    out["neck_flexion"] = np.degrees(np.arctan2(u[..., 0], u[..., 1]))
    values = np.stack([out[name] for name in ANGLE_NAMES], axis=-1)
    return values, ANGLE_NAMES
