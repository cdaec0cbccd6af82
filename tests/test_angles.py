"""Joint angles (posepipe.biomech.angles) against skeletons posed with known angles, and the
``angles`` stage and artefact.

The skeleton is built here by forward kinematics from the angles' definitions (ISB Cardan
sequences, body axes X anterior, Y up, Z right), not from the module's decomposition; angles
set analytically come back to 1e-6 degrees (float64, noise-free).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from posepipe.artefacts.angles import Angles, load_angles, save_angles, save_angles_csv, summary_table
from posepipe.biomech.angles import ANGLE_NAMES, BILATERAL, CAMERA_UP, PLANE_MIN_ELEVATION_DEG, compute_angles
from posepipe.errors import PosepipeError
from posepipe.skeleton import H36M_LEFT, H36M_RIGHT, flip_permutation

TOL = 1e-6  # degrees, float64 noise-free
MIRROR = np.diag([1.0, 1.0, -1.0])  # body axes: reflect right <-> left


def rx(deg):
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def ry(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def rz(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def pose(**a) -> np.ndarray:
    """(17, 3) Human3.6M joints in body-global axes (X forward, Y up, Z right) posed with the
    angles ``a`` (degrees; missing ones 0): torso (pelvis and trunk as one rigid segment) by
    Ry(rotation) Rx(lateral bend) Rz(-flexion); thorax twisted about its axis by ``twist``; hips
    Rz(flexion) Rx(adduction) Ry(axial) (left side mirrored); knee Rz(-flexion); shoulders
    Ry(plane) Rx(-elevation) Ry(axial) (ISB Y-X-Y, left mirrored); elbow and neck flexion."""
    g = a.get
    J = np.zeros((17, 3))
    torso = ry(g("rotation", 0)) @ rx(g("bend", 0)) @ rz(-g("flexion", 0))
    thorax = torso @ ry(g("twist", 0))
    J[0] = (0.0, 0.95, 0.0)
    J[7] = J[0] + torso @ (0, 0.25, 0)
    J[8] = J[7] + torso @ (0, 0.27, 0)
    head = thorax @ rz(-g("neck", 0))
    J[9] = J[8] + head @ (0.1, 0.12, 0)
    J[10] = J[8] + head @ (0, 0.25, 0)
    for side, hip, knee, ankle, shoulder, elbow, wrist, m in (
        ("r", 1, 2, 3, 14, 15, 16, np.eye(3)),
        ("l", 4, 5, 6, 11, 12, 13, MIRROR),
    ):
        J[hip] = J[0] + torso @ m @ (0, 0, 0.12)
        femur = (
            torso
            @ m
            @ rz(g(f"hip_flex_{side}", 0))
            @ rx(g(f"hip_add_{side}", 0))
            @ ry(g(f"hip_rot_{side}", 0))
            @ m
        )
        J[knee] = J[hip] - femur @ (0, 0.44, 0)
        tibia = femur @ rz(-g(f"knee_{side}", 0))
        J[ankle] = J[knee] - tibia @ (0, 0.42, 0)
        J[shoulder] = J[8] + thorax @ m @ (0, 0, 0.17)
        humerus = (
            thorax
            @ m
            @ ry(g(f"plane_{side}", 0))
            @ rx(-g(f"elev_{side}", 0))
            @ ry(g(f"arm_rot_{side}", 0))
            @ m
        )
        J[elbow] = J[shoulder] - humerus @ (0, 0.29, 0)
        e = np.radians(g(f"elbow_{side}", 0))
        J[wrist] = J[elbow] + humerus @ (0.25 * np.sin(e), -0.25 * np.cos(e), 0)
    return J


def to_world(J):
    """Body-global axes (X forward, Y up, Z right) to the world frame (x forward, y left, z up)."""
    return np.stack([J[..., 0], -J[..., 2], J[..., 1]], axis=-1)


def to_camera(J):
    """Body-global axes to a level camera's (x right, y down, z forward): the person seen from behind."""
    return np.stack([J[..., 2], -J[..., 1], J[..., 0]], axis=-1)


def angles_of(J, **kw) -> dict[str, float]:
    values, names = compute_angles(to_world(J)[None, None], **kw)
    return dict(zip(names, values[0, 0], strict=True))


# Each case: the pose's settings and the angles (by name) that must come back; every angle not
# named must be 0 (or NaN for the plane of elevation at zero elevation).
CASES = {
    "neutral": ({}, {}),
    "hip flexion 30": ({"hip_flex_r": 30}, {"hip_flexion_r": 30}),
    "hip extension -15 left": ({"hip_flex_l": -15}, {"hip_flexion_l": -15}),
    "hip abduction 20": (
        {"hip_add_r": -20, "hip_add_l": -20},
        {"hip_adduction_r": -20, "hip_adduction_l": -20},
    ),
    "hip adduction 10 left": ({"hip_add_l": 10}, {"hip_adduction_l": 10}),
    "knee flexion 60": ({"knee_r": 60, "knee_l": 60}, {"knee_flexion_r": 60, "knee_flexion_l": 60}),
    "deep squat knee 130": ({"knee_l": 130}, {"knee_flexion_l": 130}),
    "elbow 90": ({"elbow_r": 90, "elbow_l": 90}, {"elbow_flexion_r": 90, "elbow_flexion_l": 90}),
    "shoulder abduction 90": (
        {"elev_r": 90, "elev_l": 90},
        {
            "shoulder_elevation_r": 90,
            "shoulder_elevation_l": 90,
            "shoulder_plane_r": 0,
            "shoulder_plane_l": 0,
        },
    ),
    "shoulder flexion 60": (
        {"plane_l": 90, "elev_l": 60},
        {"shoulder_elevation_l": 60, "shoulder_plane_l": 90},
    ),
    "shoulder elevation 120 in plane 30": (
        {"plane_r": 30, "elev_r": 120},
        {"shoulder_elevation_r": 120, "shoulder_plane_r": 30},
    ),
    "shoulder extension 40": (
        {"plane_r": -90, "elev_r": 40},
        {"shoulder_elevation_r": 40, "shoulder_plane_r": -90},
    ),
    "trunk lean 15": ({"flexion": 15}, {"trunk_flexion": 15}),
    "trunk lateral bend 10 right": ({"bend": 10}, {"trunk_lateral_bend": 10}),
    "pelvis rotation 40": ({"rotation": 40}, {"pelvis_rotation": 40, "trunk_rotation": 40}),
    "trunk twist 25 on pelvis -30": (
        {"rotation": -30, "twist": 25},
        {"pelvis_rotation": -30, "trunk_rotation": -5},
    ),
    "neck flexion 20": ({"neck": 20}, {"neck_flexion": 20}),
    "turned round": ({"rotation": 180}, {"pelvis_rotation": 180, "trunk_rotation": 180}),
}


def check(got: dict, expected: dict, tol: float = TOL) -> None:
    for name in ANGLE_NAMES:
        value = got[name]
        if name.startswith("shoulder_plane") and name not in expected:
            side = name[-1]
            if got[f"shoulder_elevation_{side}"] < PLANE_MIN_ELEVATION_DEG:
                assert np.isnan(value), name
                continue
        want = expected.get(name, 0.0)
        diff = (value - want + 180) % 360 - 180 if "rotation" in name else value - want
        assert abs(diff) <= tol, f"{name}: {value} != {want}"


@pytest.mark.parametrize("case", list(CASES))
def test_each_angle_alone(case):
    settings, expected = CASES[case]
    check(angles_of(pose(**settings)), expected)


def test_combined_pose_recovers_every_angle():
    settings = {
        "rotation": 35, "bend": -8, "flexion": 20, "neck": -10,
        "hip_flex_r": 45, "hip_add_r": 12, "hip_rot_r": 25, "knee_r": 70,
        "hip_flex_l": -12, "hip_add_l": -18, "hip_rot_l": -30, "knee_l": 15,
        "plane_r": 60, "elev_r": 75, "arm_rot_r": 40, "elbow_r": 110,
        "plane_l": -20, "elev_l": 35, "arm_rot_l": -35, "elbow_l": 30,
    }  # fmt: skip
    expected = {
        "pelvis_rotation": 35, "trunk_rotation": 35, "trunk_lateral_bend": -8, "trunk_flexion": 20,
        "neck_flexion": -10, "hip_flexion_r": 45, "hip_adduction_r": 12, "knee_flexion_r": 70,
        "hip_flexion_l": -12, "hip_adduction_l": -18, "knee_flexion_l": 15,
        "shoulder_plane_r": 60, "shoulder_elevation_r": 75, "elbow_flexion_r": 110,
        "shoulder_plane_l": -20, "shoulder_elevation_l": 35, "elbow_flexion_l": 30,
    }  # fmt: skip
    check(angles_of(pose(**settings)), expected)


def test_cross_talk_abduction_while_flexed_and_axial_rotations():
    """Hip adduction read while the hip is flexed 90 degrees, the thigh rotated about its axis
    and the knee bent (the shank swings sideways): flexion and adduction stay exact; humeral
    axial rotation with the elbow bent changes no shoulder angle."""
    for flex, add, rot in ((90, -20, 0), (90, -20, 45), (60, 15, -40), (-20, -30, 70)):
        got = angles_of(pose(hip_flex_r=flex, hip_add_r=add, hip_rot_r=rot, knee_r=80))
        check(got, {"hip_flexion_r": flex, "hip_adduction_r": add, "knee_flexion_r": 80})
    for rot in (-80, 0, 60):
        got = angles_of(pose(plane_l=45, elev_l=70, arm_rot_l=rot, elbow_l=90))
        check(got, {"shoulder_plane_l": 45, "shoulder_elevation_l": 70, "elbow_flexion_l": 90})


def test_hip_angles_are_relative_to_the_pelvis():
    """Trunk (and pelvis) leaning forward 25 and bending 10, thigh posed against the pelvis: the
    hip angles do not move; the vertical-relative angles show the lean."""
    got = angles_of(
        pose(flexion=25, bend=10, rotation=-60, hip_flex_l=30, hip_add_l=-10, plane_r=90, elev_r=45)
    )
    check(
        got,
        {"trunk_flexion": 25, "trunk_lateral_bend": 10, "pelvis_rotation": -60, "trunk_rotation": -60,
         "hip_flexion_l": 30, "hip_adduction_l": -10, "shoulder_plane_r": 90, "shoulder_elevation_r": 45},
    )  # fmt: skip


def gait(T: int = 101) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A synthetic gait cycle (T frames), walking along +X: knee flexion with the two bumps of
    gait (loading ~18 deg, swing ~62 deg), hip flexion +30 / -10, arm swing, pelvis rotation
    +/- 5, the right side half a cycle behind; returns (T, 17, 3) world joints and the truth."""
    phase = np.linspace(0, 1, T)

    def knee(p):
        return 5 + 13 * np.exp(-(((p - 0.13) / 0.07) ** 2)) + 57 * np.exp(-(((p - 0.72) / 0.11) ** 2))

    def hip(p):
        return 10 + 20 * np.cos(2 * np.pi * p)

    truth = {"knee_flexion_l": knee(phase), "knee_flexion_r": knee((phase + 0.5) % 1),
             "hip_flexion_l": hip(phase), "hip_flexion_r": hip(phase + 0.5),
             "pelvis_rotation": 5 * np.sin(2 * np.pi * phase), "trunk_flexion": 4 + np.sin(4 * np.pi * phase),
             "shoulder_elevation_l": 15 + 5 * np.cos(2 * np.pi * phase)}  # fmt: skip
    frames = []
    for t in range(T):
        J = pose(
            rotation=truth["pelvis_rotation"][t], flexion=truth["trunk_flexion"][t],
            knee_l=truth["knee_flexion_l"][t], knee_r=truth["knee_flexion_r"][t],
            hip_flex_l=truth["hip_flexion_l"][t], hip_flex_r=truth["hip_flexion_r"][t],
            plane_l=90 * np.sign(np.cos(2 * np.pi * phase[t])), elev_l=truth["shoulder_elevation_l"][t],
        )  # fmt: skip
        frames.append(to_world(J) + (1.2 * phase[t], 0.0, 0.0))
    return np.array(frames), truth


def test_gait_knee_curve():
    joints, truth = gait()
    values, names = compute_angles(joints[None])
    index = {n: i for i, n in enumerate(names)}
    for name, curve in truth.items():
        np.testing.assert_allclose(values[0, :, index[name]], curve, atol=TOL, rtol=0, err_msg=name)
    knee = values[0, :, index["knee_flexion_l"]]
    assert 60 < knee.max() < 63 and 4 < knee.min() < 6  # the swing peak and the straight stance


def test_rigid_motion_and_camera_frame_agree_with_world_frame():
    """Every angle from camera coordinates (any camera pose, told its up and forward) equals the
    world-frame angles; a level camera with the default up (-Y) and forward (+Z) too; joint
    angles (not against the vertical) do not change under any rotation of the whole body."""
    joints, _ = gait(21)
    world, _ = compute_angles(joints)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        R = q * np.sign(np.linalg.det(q))  # a proper rotation: camera -> world
        t = rng.normal(size=3) * 3
        camera = (joints - t) @ R  # x_cam = R^T (x_world - t), row vectors
        got, _ = compute_angles(camera, up=R.T @ (0, 0, 1), forward=R.T @ (1, 0, 0))
        np.testing.assert_allclose(got, world, atol=TOL, rtol=0, equal_nan=True)
        moved, _ = compute_angles(camera)  # up taken as camera's world +Z: only joint angles hold
        joint_angles = [i for i, n in enumerate(ANGLE_NAMES) if not n.startswith(("trunk_", "pelvis_"))]
        np.testing.assert_allclose(
            moved[..., joint_angles], world[..., joint_angles], atol=TOL, equal_nan=True
        )
    body = pose(flexion=12, bend=-5, rotation=70, hip_flex_r=20, plane_l=45, elev_l=30)
    a, _ = compute_angles(to_world(body))
    b, _ = compute_angles(to_camera(body), up=CAMERA_UP)
    np.testing.assert_allclose(b, a, atol=TOL, equal_nan=True)


def test_mirrored_body_swaps_left_and_right():
    body = pose(hip_flex_r=35, hip_add_r=-12, knee_r=40, plane_r=30, elev_r=80, elbow_r=50, knee_l=10,
                rotation=25, bend=6, flexion=9, neck=12)  # fmt: skip
    mirrored = (body @ MIRROR)[flip_permutation(H36M_LEFT, H36M_RIGHT, 17)]
    a, names = compute_angles(to_world(body))
    b, _ = compute_angles(to_world(mirrored))
    index = {n: i for i, n in enumerate(names)}
    for left, right in BILATERAL:
        np.testing.assert_allclose(b[index[left]], a[index[right]], atol=TOL, equal_nan=True)
        np.testing.assert_allclose(b[index[right]], a[index[left]], atol=TOL, equal_nan=True)
    for name in ("trunk_lateral_bend", "trunk_rotation", "pelvis_rotation"):
        assert abs(b[index[name]] + a[index[name]]) < TOL, name
    for name in ("trunk_flexion", "neck_flexion"):
        assert abs(b[index[name]] - a[index[name]]) < TOL, name


def test_absent_and_degenerate_joints_give_nan():
    J = to_world(pose(knee_r=30))
    joints = np.stack([J, J, J, J])
    joints[1, 2] = np.nan  # right knee missing
    joints[2, 4] = joints[2, 1]  # hips on one point: no pelvis frame
    joints[3] = np.nan  # person absent
    values, names = compute_angles(joints)
    index = {n: i for i, n in enumerate(names)}
    assert np.isfinite(values[0, [index[n] for n in names if "plane" not in n]]).all()
    nan_knee = {"hip_flexion_r", "hip_adduction_r", "knee_flexion_r"}
    assert {n for n in names if np.isnan(values[1, index[n]])} - {
        "shoulder_plane_l",
        "shoulder_plane_r",
    } == nan_knee
    assert np.isnan(values[2, index["hip_flexion_l"]]) and np.isnan(values[2, index["pelvis_rotation"]])
    assert np.isfinite(values[2, index["knee_flexion_r"]])
    assert np.isnan(values[3]).all()
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        compute_angles(np.zeros((4, 16, 3)))


def test_float32_joints_and_noise_figures():
    """Float32 joints (what the files hold) stay within 1e-4 degrees of the float64 truth."""
    joints, truth = gait()
    values, names = compute_angles(joints.astype(np.float32)[None])
    index = {n: i for i, n in enumerate(names)}
    for name, curve in truth.items():
        assert np.abs(values[0, :, index[name]] - curve).max() < 1e-4, name


def make_angles(P=2, T=5) -> Angles:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(P, T, len(ANGLE_NAMES))).astype(np.float32) * 30
    values[1, 0] = np.nan
    return Angles(values, ANGLE_NAMES, np.arange(T) / 25.0, np.array([3, 7]), {"frame": "world"})


def test_artefact_round_trip_csv_and_summary(tmp_path):
    angles = make_angles()
    meta = save_angles(tmp_path / "angles.npz", angles)
    assert meta["stage"] == "angles" and meta["frame"] == "world" and angles.meta == {"frame": "world"}
    back = load_angles(tmp_path / "angles.npz")
    np.testing.assert_array_equal(back.values, angles.values)
    assert back.names == ANGLE_NAMES and back.frame == "world" and list(back.track_ids) == [3, 7]
    save_angles_csv(tmp_path / "angles.csv", angles)
    table = pd.read_csv(tmp_path / "angles.csv")
    assert list(table.columns) == ["person", "frame", "time", "angle", "value"]
    assert len(table) == np.isfinite(angles.values).sum()
    row = table[(table.person == 7) & (table.frame == 2) & (table.angle == "knee_flexion_l")].iloc[0]
    assert row.value == pytest.approx(angles.values[1, 2, ANGLE_NAMES.index("knee_flexion_l")], abs=1e-4)
    assert row.time == pytest.approx(0.08)
    summary = summary_table(angles).set_index(["person", "angle"])
    v = angles.values[1, 1:, ANGLE_NAMES.index("hip_flexion_l")].astype(np.float64)
    r = angles.values[1, 1:, ANGLE_NAMES.index("hip_flexion_r")].astype(np.float64)
    got = summary.loc[(7, "hip_flexion_l")]
    assert (
        got.frames == 4
        and got["range"] == pytest.approx(np.ptp(v))
        and got["mean"] == pytest.approx(v.mean())
    )
    assert got.left_minus_right_mean == pytest.approx((v - r).mean())
    assert got.left_minus_right_range == pytest.approx(np.ptp(v) - np.ptp(r))
    assert summary.loc[(7, "hip_flexion_r")].left_minus_right_mean == got.left_minus_right_mean
    assert np.isnan(summary.loc[(3, "trunk_flexion")].left_minus_right_mean)


def test_artefact_bad_files(tmp_path):
    with pytest.raises(PosepipeError, match="missing.npz"):
        load_angles(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(PosepipeError, match="cannot read joint angles"):
        load_angles(tmp_path / "junk.npz")
    (tmp_path / "truncated.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(PosepipeError, match="truncated.npz: cannot read joint angles"):
        load_angles(tmp_path / "truncated.npz")
    angles = make_angles()
    np.savez(tmp_path / "short.npz", values=angles.values[:, :3], names=np.array(ANGLE_NAMES),
             time=angles.time, track_ids=angles.track_ids, meta=np.array(json.dumps({"frame": "world"})))  # fmt: skip
    with pytest.raises(
        PosepipeError, match=r"short.npz: values has shape \(2, 3, 17\), expected \(2, 5, 17\)"
    ):
        load_angles(tmp_path / "short.npz")
    np.savez(tmp_path / "nometa.npz", values=angles.values)
    with pytest.raises(PosepipeError, match="not an angles.npz: no meta, names, time, track_ids array"):
        load_angles(tmp_path / "nometa.npz")


# ---- the stage ----------------------------------------------------------------------------------


def write_timeline(folder, T: int, fps: float = 25.0):
    from posepipe.artefacts.timeline import save_timeline

    folder.mkdir(parents=True, exist_ok=True)
    time = np.arange(T) / fps + 0.0
    header = {"video_id": "walk", "source": "walk.mp4", "width": 640, "height": 480, "rotation": 0, "fps": fps,
              "fps_fraction": f"{int(fps)}/1", "frame_count": T, "timeline_csv": "timeline.csv"}  # fmt: skip
    table = pd.DataFrame({"frame": np.arange(T), "time": time, "source_frame": np.arange(T),
                          "source_pts": np.arange(T), "source_time": time})  # fmt: skip
    save_timeline(folder / "timeline.json", folder / "timeline.csv", header, table)
    return folder / "timeline.json"


def write_inputs(tmp_path, *, T=41, tilt_deg=0.0):
    """timeline, pose3d.npz (camera frame, root-relative, person 5 walking and person 9 never
    seen) and world.npz of a camera 1.6 m high tilted down ``tilt_deg``; returns paths and the
    gait truth."""
    from posepipe.artefacts.pose3d import Pose3D, save_pose3d
    from posepipe.artefacts.world import World, save_world

    joints, truth = gait(T)  # world frame
    world = np.stack([joints, np.full_like(joints, np.nan)])
    # camera axes in world coordinates: x right (-Y world), y down, z forward (+X world, tilted down)
    t = np.radians(tilt_deg)
    z = np.array([np.cos(t), 0, -np.sin(t)])
    x = np.array([0.0, -1.0, 0.0])
    R = np.stack([x, np.cross(z, x), z], axis=1)  # columns: camera axes in the world
    origin = np.array([-3.0, 0.0, 1.6])
    camera = (world - origin) @ R
    camera_relative = camera - camera[:, :, :1]
    timeline = write_timeline(tmp_path / "frames", T)
    pose3d = tmp_path / "pose3d.npz"
    save_pose3d(pose3d, Pose3D(camera_relative, camera_relative, np.arange(T) / 25.0, {}, np.array([5, 9])))
    P = 2
    save_world(
        tmp_path / "world.npz",
        World(
            joints=world, root=world[:, :, 0], root_camera=camera[:, :, 0],
            camera_matrix=np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), dist_coeffs=np.zeros(0),
            lens="pinhole", image_size=np.array([640, 480]), R_world_camera=R, t_world_camera=origin,
            floor=np.array([0, -1.0, 0, 1.6]), contacts=np.zeros((P, T, 2), bool), reprojection_px=np.zeros((P, T)),
            scale=np.ones(P), height_m=np.full(P, np.nan), track_ids=np.array([5, 9]), time=np.arange(T) / 25.0,
            meta={"intrinsics_source": "assumed", "scale_source": "lifter", "floor_source": "assumed_tilt"},
        ),
    )  # fmt: skip
    return timeline, pose3d, tmp_path / "world.npz", truth


def test_stage_world_and_camera_inputs(tmp_path):
    from posepipe.angles import run_angles

    timeline, pose3d, world, truth = write_inputs(tmp_path, tilt_deg=0.0)
    out_w, out_c = tmp_path / "w", tmp_path / "c"
    run_angles(timeline_json=timeline, world_npz=world, out_dir=out_w)
    run_angles(timeline_json=timeline, pose3d_npz=pose3d, out_dir=out_c)
    a, c = load_angles(out_w / "angles.npz"), load_angles(out_c / "angles.npz")
    assert a.frame == "world" and c.frame == "camera" and "image up" in c.meta["up_note"]
    assert a.meta["warnings"] == ["track 9: no frame with 3D joints, every angle NaN"]
    assert list(a.track_ids) == [5, 9] and np.isnan(a.values[1]).all()
    np.testing.assert_allclose(a.time, np.arange(41) / 25.0)
    for name, curve in truth.items():  # float32 files: 1e-4 degrees
        np.testing.assert_allclose(a.values[0, :, a.names.index(name)], curve, atol=1e-4, err_msg=name)
    # a level camera: the camera frame's up (-Y) is the vertical, every angle agrees
    np.testing.assert_allclose(c.values, a.values, atol=1e-3, equal_nan=True)
    table = pd.read_csv(out_w / "angles.csv")
    assert set(table.person) == {5} and len(table) == np.isfinite(a.values).sum()
    summary = pd.read_csv(out_w / "angles_summary.csv").set_index(["person", "angle"])
    knee = summary.loc[(5, "knee_flexion_l")]
    assert knee.frame_of_reference == "world" and knee.frames == 41
    assert knee["range"] == pytest.approx(np.ptp(truth["knee_flexion_l"]), abs=1e-3)
    assert summary.loc[(9, "knee_flexion_l")].frames == 0
    assert (out_w / "angles.png").stat().st_size > 10_000


def test_stage_tilted_camera_keeps_joint_angles(tmp_path):
    """Camera tilted down 25 degrees: camera-frame joint angles equal the world ones; the
    angles against the vertical (camera -Y taken as up) are off by the tilt (image up leans
    forward with the camera, so the upright walker reads 25 degrees of extension): why world.npz
    wins."""
    from posepipe.angles import AnglesSettings, run_angles

    timeline, pose3d, world, _ = write_inputs(tmp_path, T=11, tilt_deg=25.0)
    no_figure = AnglesSettings(figure=False)
    a = run_angles(timeline_json=timeline, world_npz=world, out_dir=tmp_path / "w", settings=no_figure)
    c = run_angles(timeline_json=timeline, pose3d_npz=pose3d, out_dir=tmp_path / "c", settings=no_figure)
    assert not (tmp_path / "w" / "angles.png").exists()
    joint = [i for i, n in enumerate(a.names) if not n.startswith(("trunk_", "pelvis_"))]
    np.testing.assert_allclose(c.values[..., joint], a.values[..., joint], atol=1e-3, equal_nan=True)
    lean = a.names.index("trunk_flexion")
    # exactly -25 when facing along the camera's axis; the pelvis turning +/-5 degrees moves some
    # of the tilt into lateral bend
    np.testing.assert_allclose(c.values[0, :, lean] - a.values[0, :, lean], -25.0, atol=0.1)


def test_stage_bad_input_one_line_and_nothing_written(tmp_path, capsys):
    from posepipe import cli

    timeline, pose3d, _, _ = write_inputs(tmp_path, T=11)
    other = write_timeline(tmp_path / "other", 12)
    out = tmp_path / "out"
    code = cli.main(["angles", str(other), "--pose3d", str(pose3d), "--out-dir", str(out)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert last == f"posepipe angles: error: {pose3d}: has 11 frames of 3D poses, the timeline has 12"
    assert not out.exists() or not any(out.iterdir())
    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    code = cli.main(["angles", str(timeline), "--world", str(tmp_path / "broken.npz"), "--out-dir", str(out)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and last.startswith(
        f"posepipe angles: error: {tmp_path / 'broken.npz'}: cannot read world poses"
    )
    assert not out.exists() or not any(out.iterdir())


def test_stage_one_frame_and_a_leg_never_seen(tmp_path):
    """A one-frame sequence gives one value per angle (range 0); a person whose left leg is never
    seen (NaN throughout) gets NaN left-leg angles and every other angle."""
    from posepipe.angles import run_angles
    from posepipe.artefacts.pose3d import Pose3D, save_pose3d

    timeline = write_timeline(tmp_path / "frames", 1)
    J = to_camera(pose(knee_l=40, knee_r=25, hip_flex_r=10))[None, None]
    J[0, 0, 5] = np.nan  # left knee
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(J, J, np.zeros(1), {}, np.array([2])))
    angles = run_angles(timeline_json=timeline, pose3d_npz=tmp_path / "pose3d.npz", out_dir=tmp_path / "out")
    got = dict(zip(angles.names, angles.values[0, 0], strict=True))
    assert np.isnan([got["knee_flexion_l"], got["hip_flexion_l"], got["hip_adduction_l"]]).all()
    assert got["knee_flexion_r"] == pytest.approx(25, abs=1e-4) and got["hip_flexion_r"] == pytest.approx(
        10, abs=1e-4
    )
    summary = pd.read_csv(tmp_path / "out" / "angles_summary.csv").set_index("angle")
    assert summary.loc["knee_flexion_r", "range"] == 0 and summary.loc["knee_flexion_l", "frames"] == 0
    assert np.isnan(summary.loc["knee_flexion_r", "left_minus_right_mean"])
