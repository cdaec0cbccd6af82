"""posepipe's generic full-body OpenSim model, built through the OpenSim API (``opensim`` 4.6).

OpenSim's ground frame is Y up (Delp et al. 2007, OpenSim's model conventions): X forward, Y up,
Z to the subject's right, metres; the same axes in every body at the zero pose (standing, arms
down). Every body's origin is its proximal joint centre. The model carries one marker per
Human3.6M joint (:data:`posepipe.skeleton.H36M_JOINTS`) at that joint's centre, named like the
joint, so the marker map of this model is the identity.

Bodies, joints and coordinates (degrees; signs follow gait2392 / Rajagopal 2016 where they name
the same motion; the range is the clamped coordinate range, which IK holds as bounds):

========== ========== ================================================= =====================
body       joint      coordinates (axis: + direction)                   range
========== ========== ================================================= =====================
pelvis     ground_    pelvis_tilt (Z: posterior-up = +), pelvis_list    tilt, list +-90,
           pelvis     (X), pelvis_rotation (Y), pelvis_tx/ty/tz (m)     rotation +-360, free
thorax     lumbar     lumbar_extension (Z: backward +), lumbar_bending  -90..45, +-45, +-60
           (at the    (X: to the right +), lumbar_rotation (Y)
           spine pt.)
head       neck       neck_flexion (-Z: forward +), neck_bending (X),   -60..80, +-50, +-80
           (thorax)   neck_rotation (Y)
humerus_r  shoulder_r arm_flex_r (Z: forward +), arm_add_r (X: medial   -90..180, -180..90,
/ _l       / _l       +; -X on the left), arm_rot_r (Y: internal +;     -90..90
                      -Y on the left)
forearm_r  elbow_r    elbow_flex_r (Z: flexion +)                       0..160
femur_r    hip_r      hip_flexion_r (Z), hip_adduction_r (X; -X left),  -40..130, -50..35,
                      hip_rotation_r (Y: internal +; -Y left)           -50..50
tibia_r    knee_r     knee_flexion_r (-Z: flexion +)                    -10..160
foot_r     ankle_r    ankle_angle_r (Z: dorsiflexion +), LOCKED at 0    -40..30
========== ========== ================================================= =====================

The ankle angle is locked: the 17 joints end at the ankle (no toe, no heel), so nothing observes
the foot. No hand body either (no hand points): the wrist marker sits on the forearm, whose
pronation is not modelled. The spine joint of Human3.6M (between pelvis and thorax) is a marker on
the pelvis, the lumbar joint's centre, so that pelvis tilt is observed (the pelvis's other three
markers, root and hips, are on one line).

Generic segment lengths are those of an adult of :data:`GENERIC_HEIGHT_M`: the mean Human3.6M
bone lengths (VideoPose3D's skeleton, metres). Masses: a :data:`GENERIC_MASS_KG` kg body split
by de Leva's (1996) male segment fractions (pelvis = lower trunk 11.17 %, thorax = middle and
upper trunk 32.29 %, head and neck 6.94 %, upper arm 2.71 %, forearm and hand 2.23 %, thigh
14.16 %, shank 4.33 %, foot 1.37 %; the sum is 100 %). Inertia: each body as a solid cylinder
along its segment (radius :data:`RADIUS_SHARE` of its length), centre of mass at mid-segment:
I_long = m r^2 / 2, I_transverse = m (3 r^2 + L^2) / 12. Masses and inertias play no part in IK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from posepipe.skeleton import H36M_JOINTS

GENERIC_HEIGHT_M = 1.75
GENERIC_MASS_KG = 75.0
RADIUS_SHARE = 0.15
MODEL_NAME = "posepipe_fullbody"


@dataclass(frozen=True)
class Segment:
    """A body: its parent, where its joint sits in the parent (m), its coordinates as
    (name, axis, range in degrees), its markers {joint: position in the body (m)}, its length
    (m, along which the cylinder lies), direction of the segment (+1 up, -1 down) and mass share."""

    name: str
    parent: str
    joint: str
    location: tuple[float, float, float]
    coordinates: tuple[tuple[str, tuple[float, float, float], tuple[float, float]], ...]
    markers: dict
    length: float
    direction: int
    mass_share: float
    locked: tuple[str, ...] = ()


def _side(side: str) -> float:
    return 1.0 if side == "r" else -1.0


def _segments() -> tuple[Segment, ...]:
    hip_w, spine, thorax, shoulder_w, shoulder_drop = 0.1329, 0.2334, 0.2571, 0.1514, 0.02
    femur, tibia, humerus, forearm, nose, head = 0.4429, 0.4540, 0.2788, 0.2518, 0.1210, 0.1150
    foot = 0.08
    segs = [
        Segment(
            "pelvis", "ground", "ground_pelvis", (0.0, 0.0, 0.0),
            (("pelvis_tilt", (0, 0, 1), (-90, 90)), ("pelvis_list", (1, 0, 0), (-90, 90)),
             ("pelvis_rotation", (0, 1, 0), (-360, 360))),
            {"hip": (0.0, 0.0, 0.0), "right_hip": (0.0, 0.0, hip_w), "left_hip": (0.0, 0.0, -hip_w),
             "spine": (0.0, spine, 0.0)},
            spine, 1, 0.1117,
        ),
        Segment(
            "thorax", "pelvis", "lumbar", (0.0, spine, 0.0),
            (("lumbar_extension", (0, 0, 1), (-90, 45)), ("lumbar_bending", (1, 0, 0), (-45, 45)),
             ("lumbar_rotation", (0, 1, 0), (-60, 60))),
            {"thorax": (0.0, thorax, 0.0), "right_shoulder": (0.0, thorax - shoulder_drop, shoulder_w),
             "left_shoulder": (0.0, thorax - shoulder_drop, -shoulder_w)},
            thorax, 1, 0.3229,
        ),
        Segment(
            "head", "thorax", "neck", (0.0, thorax, 0.0),
            (("neck_flexion", (0, 0, -1), (-60, 80)), ("neck_bending", (1, 0, 0), (-50, 50)),
             ("neck_rotation", (0, 1, 0), (-80, 80))),
            {"neck_nose": (0.05, nose, 0.0), "head": (0.0, nose + head, 0.0)},
            nose + head, 1, 0.0694,
        ),
    ]  # fmt: skip
    for s in ("r", "l"):
        k, side = _side(s), "right" if s == "r" else "left"
        segs += [
            Segment(
                f"femur_{s}", "pelvis", f"hip_{s}", (0.0, 0.0, k * hip_w),
                ((f"hip_flexion_{s}", (0, 0, 1), (-40, 130)), (f"hip_adduction_{s}", (k, 0, 0), (-50, 35)),
                 (f"hip_rotation_{s}", (0, k, 0), (-50, 50))),
                {f"{side}_knee": (0.0, -femur, 0.0)}, femur, -1, 0.1416,
            ),
            Segment(
                f"tibia_{s}", f"femur_{s}", f"knee_{s}", (0.0, -femur, 0.0),
                ((f"knee_flexion_{s}", (0, 0, -1), (-10, 160)),),
                {f"{side}_foot": (0.0, -tibia, 0.0)}, tibia, -1, 0.0433,
            ),
            Segment(
                f"foot_{s}", f"tibia_{s}", f"ankle_{s}", (0.0, -tibia, 0.0),
                ((f"ankle_angle_{s}", (0, 0, 1), (-40, 30)),), {}, foot, -1, 0.0137,
                locked=(f"ankle_angle_{s}",),
            ),
            Segment(
                f"humerus_{s}", "thorax", f"shoulder_{s}", (0.0, thorax - shoulder_drop, k * shoulder_w),
                ((f"arm_flex_{s}", (0, 0, 1), (-90, 180)), (f"arm_add_{s}", (k, 0, 0), (-180, 90)),
                 (f"arm_rot_{s}", (0, k, 0), (-90, 90))),
                {f"{side}_elbow": (0.0, -humerus, 0.0)}, humerus, -1, 0.0271,
            ),
            Segment(
                f"forearm_{s}", f"humerus_{s}", f"elbow_{s}", (0.0, -humerus, 0.0),
                ((f"elbow_flex_{s}", (0, 0, 1), (0, 160)),),
                {f"{side}_wrist": (0.0, -forearm, 0.0)}, forearm, -1, 0.0223,
            ),
        ]  # fmt: skip
    return tuple(segs)


SEGMENTS = _segments()
SEGMENT_BY_NAME = {seg.name: seg for seg in SEGMENTS}
# Every Human3.6M joint is a marker of exactly one body.
MARKER_BODY = {joint: seg.name for seg in SEGMENTS for joint in seg.markers}
assert sorted(MARKER_BODY) == sorted(H36M_JOINTS)
PELVIS_TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")
# In the model's order (the .mot's columns): the pelvis rotations, its translations, then the rest.
COORDINATES = tuple(
    name
    for seg in SEGMENTS
    for name in [c[0] for c in seg.coordinates]
    + (list(PELVIS_TRANSLATIONS) if seg.parent == "ground" else [])
)

# How each body is scaled from the person's bones: per axis (X, Y, Z), the Human3.6M bones
# (child, parent joint names) whose median lengths, over the generic model's, give the factor;
# the factor of an axis is the mean of its bones' ratios. None: the mean of the other two axes.
SCALE_BONES = {
    "pelvis": (None, (("spine", "hip"),), (("right_hip", "hip"), ("left_hip", "hip"))),
    "thorax": (None, (("thorax", "spine"),), (("right_shoulder", "thorax"), ("left_shoulder", "thorax"))),
    "head": (None, (("neck_nose", "thorax"), ("head", "neck_nose")), None),
}
for _s, _side_name in (("r", "right"), ("l", "left")):
    for _body, _bone in (
        (f"femur_{_s}", (f"{_side_name}_knee", f"{_side_name}_hip")),
        (f"tibia_{_s}", (f"{_side_name}_foot", f"{_side_name}_knee")),
        (f"foot_{_s}", (f"{_side_name}_foot", f"{_side_name}_knee")),
        (f"humerus_{_s}", (f"{_side_name}_elbow", f"{_side_name}_shoulder")),
        (f"forearm_{_s}", (f"{_side_name}_wrist", f"{_side_name}_elbow")),
    ):
        SCALE_BONES[_body] = (None, (_bone,), None)


def marker_positions_zero_pose() -> dict[str, np.ndarray]:
    """{joint: ground position (m)} of the generic model at the zero pose (pure arithmetic)."""
    origin = {"ground": np.zeros(3)}
    for seg in SEGMENTS:
        origin[seg.name] = origin[seg.parent] + np.array(seg.location)
    return {
        j: origin[MARKER_BODY[j]] + np.array(SEGMENT_BY_NAME[MARKER_BODY[j]].markers[j]) for j in MARKER_BODY
    }


def generic_bone_length(child: str, parent: str) -> float:
    pos = marker_positions_zero_pose()
    return float(np.linalg.norm(pos[child] - pos[parent]))


def _transform_axes(osim, coordinates, translations=(None, None, None)):
    """A SpatialTransform with the rotations given (coordinate, axis) first; the unused rotation
    axes complete an independent set and, like the translations without a coordinate, are held
    constant at 0. A TransformAxis adopts its function (C++ ownership), so Python must not free it:
    without ``thisown = False`` opensim 4.6 crashes when the joint is built."""

    def adopted(function):
        function.thisown = False
        return function

    st = osim.SpatialTransform()
    used = [np.asarray(axis, float) for _, axis, _ in coordinates]
    spare = [a for a in np.eye(3) if all(abs(np.dot(a, u)) < 0.5 for u in used)]
    for i in range(3):
        ta = st.updTransformAxis(i)
        if i < len(coordinates):
            name, axis, _ = coordinates[i]
            ta.setCoordinateNames(osim.ArrayStr(name, 1))
            ta.setAxis(osim.Vec3(*map(float, axis)))
            ta.setFunction(adopted(osim.LinearFunction(1.0, 0.0)))
        else:
            ta.setAxis(osim.Vec3(*map(float, spare.pop(0))))
            ta.setFunction(adopted(osim.Constant(0.0)))
    for i, axis in enumerate(np.eye(3)):
        ta = st.updTransformAxis(3 + i)
        ta.setAxis(osim.Vec3(*map(float, axis)))
        if translations[i]:
            ta.setCoordinateNames(osim.ArrayStr(translations[i], 1))
            ta.setFunction(adopted(osim.LinearFunction(1.0, 0.0)))
        else:
            ta.setFunction(adopted(osim.Constant(0.0)))
    return st


def cylinder_inertia(mass: float, length: float) -> tuple[float, float, float]:
    """(Ixx, Iyy, Izz) of a solid cylinder along Y, radius RADIUS_SHARE * length, about its centre."""
    r = RADIUS_SHARE * length
    transverse = mass * (3 * r * r + length * length) / 12.0
    return transverse, mass * r * r / 2.0, transverse


def build_generic_model(*, mass_kg: float = GENERIC_MASS_KG):
    """The generic model (an ``opensim.Model``, not yet initialised)."""
    from posepipe.osim.solve import import_opensim

    osim = import_opensim()

    model = osim.Model()
    model.setName(MODEL_NAME)
    model.setGravity(osim.Vec3(0, -9.80665, 0))
    bodies = {"ground": model.getGround()}
    for seg in SEGMENTS:
        mass = seg.mass_share * mass_kg
        com = osim.Vec3(0.0, seg.direction * seg.length / 2.0, 0.0)
        body = osim.Body(
            seg.name, mass, com, osim.Inertia(*cylinder_inertia(mass, seg.length), 0.0, 0.0, 0.0)
        )
        model.addBody(body)
        bodies[seg.name] = body
        free = seg.parent == "ground"
        transform = _transform_axes(osim, seg.coordinates, PELVIS_TRANSLATIONS if free else (None,) * 3)
        zero = osim.Vec3(0.0, 0.0, 0.0)
        joint = osim.CustomJoint(
            seg.joint, bodies[seg.parent], osim.Vec3(*seg.location), zero, body, zero, zero, transform
        )
        model.addJoint(joint)
        for marker, location in seg.markers.items():
            model.addMarker(osim.Marker(marker, body, osim.Vec3(*location)))
    model.finalizeConnections()
    coords = model.updCoordinateSet()
    for seg in SEGMENTS:
        for name, _, (low, high) in seg.coordinates:
            coord = coords.get(name)
            coord.setRangeMin(math.radians(low))
            coord.setRangeMax(math.radians(high))
            coord.setDefaultClamped(seg.parent != "ground")
            coord.setDefaultLocked(name in seg.locked)
    for name in PELVIS_TRANSLATIONS:
        coord = coords.get(name)
        coord.setRangeMin(-100.0)
        coord.setRangeMax(100.0)
        coord.setDefaultClamped(False)
    return model
