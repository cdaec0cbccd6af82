"""The evaluate stage against known truth: metrics, reference files, joint maps, time alignment.

Every reference here is built by the test: a synthetic walking skeleton (Human3.6M joints, metres,
Z up), and estimates made from it by known rotations, scales, translations, time offsets and noise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepipe.errors import PosepipeError
from posepipe.evaluate import metrics as M
from posepipe.evaluate import reference as R
from posepipe.skeleton import H36M_JOINTS, H36M_PARENTS

# A standing Human3.6M skeleton, metres, Z up, X forward, pelvis at 0.95 m.
STAND = np.array(
    [[0, 0, 0.95], [0, -0.12, 0.93], [0, -0.12, 0.50], [0, -0.12, 0.08],  # hip, right leg
     [0, 0.12, 0.93], [0, 0.12, 0.50], [0, 0.12, 0.08],  # left leg
     [0, 0, 1.18], [0, 0, 1.45], [0.04, 0, 1.55], [0, 0, 1.70],  # spine, thorax, nose, head
     [0, 0.18, 1.42], [0, 0.20, 1.15], [0.05, 0.20, 0.90],  # left arm
     [0, -0.18, 1.42], [0, -0.20, 1.15], [0.05, -0.20, 0.90]]  # right arm
)  # fmt: skip


def walking(times: np.ndarray) -> np.ndarray:
    """(T, 17, 3) a person walking along +X at 1.2 m/s with swinging limbs (irregular rhythm, so
    the joint speed has one best time alignment)."""
    t = np.asarray(times)[:, None]
    phase = 2 * np.pi * (0.9 * t + 0.15 * np.sin(0.7 * t))
    joints = np.repeat(STAND[None], len(times), axis=0)
    swing = 0.25 * np.sin(phase) * (1 + 0.3 * np.sin(0.45 * t))
    for idx, sign in ((2, 1), (3, 1.6), (5, -1), (6, -1.6), (12, 0.6), (13, 1), (15, -0.6), (16, -1)):
        joints[:, idx, 0] += sign * swing[:, 0]
    joints[:, :, 2] += 0.02 * np.cos(2 * phase)
    joints[:, :, 0] += 1.2 * t
    return joints


def plain_mpjpe(p, g):
    return np.mean(np.linalg.norm(p - g, axis=-1))


def plain_p_mpjpe(p, g):
    """Protocol #2 written plainly, one frame at a time (Umeyama with the determinant fix)."""
    errors = []
    for a, b in zip(p, g, strict=True):
        a0, b0 = a - a.mean(0), b - b.mean(0)
        u, s, vt = np.linalg.svd(b0.T @ a0)
        d = np.eye(3)
        if np.linalg.det(u @ vt) < 0:
            d[2, 2] = -1
        rot = u @ d @ vt
        scale = np.trace(np.diag(s) @ d) / (a0**2).sum()
        errors.append(np.linalg.norm(scale * a0 @ rot.T + b.mean(0) - b, axis=-1).mean())
    return float(np.mean(errors))


# ---- metrics ---------------------------------------------------------------------------------------


def test_procrustes_recovers_exact_similarity_per_frame():
    rng = np.random.default_rng(0)
    ref = walking(np.arange(40) / 30)
    rots = Rotation.random(40, random_state=1).as_matrix()
    scales = rng.uniform(0.5, 2.0, 40)
    est = scales[:, None, None] * np.einsum("fik,fjk->fji", rots, ref) + rng.normal(size=(40, 1, 3))
    aligned, got_rot, got_scale = M.procrustes_frames(est, ref)
    assert np.abs(aligned - ref).max() < 1e-9
    assert np.allclose(got_scale, 1 / scales, rtol=1e-9)
    assert np.allclose(np.einsum("fij,fjk->fik", got_rot, rots), np.eye(3), atol=1e-9)
    assert M.summarise(M.p_mpjpe_errors(est, ref))["mean"] < 1e-9


def test_metrics_equal_a_plain_computation_on_random_data_and_mirrors_keep_their_error():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(25, 17, 3))
    p = g + rng.normal(scale=0.3, size=g.shape)
    assert M.summarise(M.p_mpjpe_errors(p, g))["mean"] == pytest.approx(plain_p_mpjpe(p, g), rel=1e-12)
    assert M.summarise(M.joint_errors(p, g))["mean"] == pytest.approx(plain_mpjpe(p, g), rel=1e-12)
    # A mirror image: the best orthogonal fit would be the reflection (error 0); excluded, it is not.
    mirrored = g * np.array([-1.0, 1.0, 1.0])
    u, s, vt = np.linalg.svd((g[0] - g[0].mean(0)).T @ (mirrored[0] - mirrored[0].mean(0)))
    assert np.linalg.det(u @ vt) < 0  # the unconstrained optimum is a reflection
    err = M.summarise(M.p_mpjpe_errors(mirrored, g))["mean"]
    assert err > 0.1
    assert err == pytest.approx(plain_p_mpjpe(mirrored, g), rel=1e-12)
    _, rots, _ = M.procrustes_frames(mirrored, g)
    assert np.allclose(np.linalg.det(rots), 1.0)


def test_mpjpe_equals_the_injected_per_joint_errors_and_the_sequence_rotation_is_found():
    rng = np.random.default_rng(3)
    ref = walking(np.arange(60) / 30)
    lengths = np.linspace(0.0, 0.08, 17)
    lengths[0] = 0.0  # the root is the alignment point
    directions = rng.normal(size=(60, 17, 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    est = ref + lengths[None, :, None] * directions
    errors = M.mpjpe_errors(est, ref, rotation=np.eye(3))
    assert np.allclose(errors, np.broadcast_to(lengths, (60, 17)), atol=1e-12)
    summary = M.summarise(errors)
    assert summary["mean"] == pytest.approx(lengths.mean(), abs=1e-12)
    assert np.allclose(summary["per_joint"], lengths, atol=1e-12)
    # A camera frame turned against the lab: one rotation for the sequence undoes it exactly.
    turn = Rotation.from_euler("xyz", [100, -20, 35], degrees=True).as_matrix()
    cam = (ref - ref[:, :1]) @ turn.T + [0.1, 0.2, 3.0]
    assert np.allclose(M.sequence_rotation(cam, ref), turn.T, atol=1e-9)
    assert M.summarise(M.mpjpe_errors(cam, ref))["mean"] < 1e-9
    assert M.summarise(M.n_mpjpe_errors(1.3 * cam, ref))["mean"] < 1e-9
    assert M.summarise(M.mpjpe_errors(1.3 * cam, ref))["mean"] > 0.05


def test_mpjpe_with_noise_matches_the_analytic_expectation():
    """Isotropic Gaussian noise of sigma per axis: E|e| = sigma sqrt(8/pi) (chi, 3 degrees of freedom)."""
    rng = np.random.default_rng(4)
    ref = walking(np.arange(3000) / 30)
    sigma = 0.01
    noise = rng.normal(scale=sigma, size=ref.shape)
    noise[:, 0] = 0
    errors = M.mpjpe_errors(ref + noise, ref, rotation=np.eye(3))
    assert M.summarise(errors[:, 1:])["mean"] == pytest.approx(sigma * np.sqrt(8 / np.pi), rel=0.01)


def test_acceleration_error_on_uneven_times():
    times = np.cumsum(np.r_[0, np.random.default_rng(5).uniform(0.02, 0.05, 49)])
    ref = walking(times)
    c = np.array([0.3, -0.2, 0.6])
    est = ref + c * times[:, None, None] ** 2  # a constant extra acceleration 2c
    err = M.acceleration_errors(est, ref, times)
    assert np.isnan(err[[0, -1]]).all()
    assert np.allclose(err[1:-1], 2 * np.linalg.norm(c), rtol=1e-9)


def test_root_trajectory_error_after_one_alignment():
    ref = walking(np.arange(90) / 30)
    turn = Rotation.from_euler("z", 73, degrees=True).as_matrix()
    est = 0.9 * ref @ turn.T + [2.0, -1.0, 0.05]
    assert np.nanmax(M.root_trajectory_errors(est, ref, similarity=True)["root"]) < 1e-9
    rigid = M.root_trajectory_errors(est / 0.9, ref)
    assert np.nanmax(rigid["root"]) < 1e-9 and rigid["scale"] == 1.0
    drift = est / 0.9
    # The estimate drifts 30 cm ahead along its path: a rigid fit cannot stretch the path, so the
    # residual is the drift less its mean, |U(-0.15, 0.15)| on average 7.5 cm.
    drift += np.linspace(0, 0.3, 90)[:, None, None] * turn[:, 0]
    assert np.nanmean(M.root_trajectory_errors(drift, ref)["root"]) == pytest.approx(0.075, rel=0.03)


def test_angle_errors_and_t_interval():
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(200, 2)) * 20
    est = ref + [2.0, 0.0]
    est[:, 1] = -ref[:, 1]
    est[5, 0] = np.nan
    out = M.angle_errors(est, ref)
    assert out["rmse"][0] == pytest.approx(2.0) and out["bias"][0] == pytest.approx(2.0)
    assert out["r"][0] == pytest.approx(1.0) and out["r"][1] == pytest.approx(-1.0)
    assert out["frames"][0] == 199
    mean, low, high, n = M.t_interval([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3)
    assert high - mean == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)  # t(0.975, 2) s / sqrt(n)


# ---- time alignment ------------------------------------------------------------------------------


def test_resampling_takes_an_end_sample_a_rounding_error_away_but_not_half_a_sample():
    times = np.round(2.5 + np.arange(357) / (4 * 30000 / 1001), 6)  # a TRC's 6-decimal time column
    values = np.stack([times, -times], 1)
    values[10] = np.nan
    last = 2.5 + 89 * 1001 / 30000  # the video's last frame: 0.33 us past the rounded last sample
    query = np.array([2.5 - 1e-7, times[5] + 0.5 * (times[6] - times[5]), times[10], times[12], last,
                      last + 1e-4, 2.5 - 1e-4])  # fmt: skip
    out = R.resample(times, values, query)
    np.testing.assert_allclose(out[0], values[0])
    np.testing.assert_allclose(out[1], (values[5] + values[6]) / 2)
    assert np.isnan(out[2]).all() and np.allclose(out[3], values[12])
    assert last > times[-1] and np.allclose(out[4], values[-1])
    assert np.isnan(out[5:]).all()  # a third of a 120 Hz sample outside: no value


def test_time_offset_found_within_a_frame_across_rates():
    """A 100 Hz reference against a 30 fps estimate in another frame, scaled, with noise."""
    ref_times = np.arange(0, 14, 0.01)
    ref = walking(ref_times)
    video_times = np.arange(240) / 30.0
    offset = 3.4  # reference time = video time + 3.4 s (102 frames)
    turn = Rotation.from_euler("xyz", [95, 5, -30], degrees=True).as_matrix()
    truth = walking(video_times + offset)
    est = 0.8 * (truth - truth[:, :1]) @ turn.T + np.random.default_rng(7).normal(
        scale=0.005, size=truth.shape
    )
    found = R.find_offset(est, video_times, ref, ref_times, min_overlap_s=2.0)
    assert abs(found.seconds - offset) < 1 / 30
    assert round(found.frames) == 102
    assert found.confidence > 1.0 and found.peak > 0.7
    on_video, overlap = R.align_in_time(ref, ref_times, video_times, found.seconds, min_overlap_s=2.0)
    assert overlap == pytest.approx(8.0, abs=0.05)
    noise_free = R.align_in_time(ref, ref_times, video_times, offset, min_overlap_s=2.0)[0]
    assert M.summarise(M.p_mpjpe_errors(0.8 * (truth - truth[:, :1]) @ turn.T, noise_free))["mean"] < 1e-3


def test_short_overlap_is_refused():
    ref_times = np.arange(0, 3, 0.01)
    video_times = np.arange(90) / 30.0
    with pytest.raises(PosepipeError, match="overlaps the video for 0.50 s"):
        R.align_in_time(walking(ref_times), ref_times, video_times, 2.5, min_overlap_s=1.0, source="ref.c3d")
    with pytest.raises(PosepipeError, match="no time shift"):
        R.find_offset(walking(video_times), video_times, walking(ref_times), ref_times, min_overlap_s=10.0)


# ---- markers, files, units ----------------------------------------------------------------------------


def pelvis_markers(hip_centre_frames: int = 20):
    """Plug-in Gait pelvis markers in a pelvis frame (x anterior, y up, z right), turned and moved."""
    local = {
        "LASI": [0, 0, -0.12], "RASI": [0, 0, 0.12], "LPSI": [-0.16, 0.0, -0.04], "RPSI": [-0.16, 0.0, 0.04],
    }  # fmt: skip
    rot = Rotation.from_euler("xyz", [10, 40, -5], degrees=True).as_matrix()
    move = np.array([0.5, 0.9, -0.2])
    return (
        {k: np.tile(np.array(v) @ rot.T + move, (hip_centre_frames, 1)) for k, v in local.items()},
        rot,
        move,
    )


def test_harrington_hip_centre_in_a_turned_pelvis():
    markers, rot, move = pelvis_markers()
    # PW = 240 mm, PD = 160 mm: right HJC at (-0.24*160-9.9, -0.30*240-10.9, 0.33*240+7.3) mm
    right = np.array([-48.3, -82.9, 86.5]) / 1000
    got = R.harrington_hjc(markers["LASI"], markers["RASI"], markers["LPSI"], markers["RPSI"], "right")
    assert np.allclose(got, right @ rot.T + move, atol=1e-12)
    left = R.harrington_hjc(markers["LASI"], markers["RASI"], markers["LPSI"], markers["RPSI"], "left")
    assert np.allclose(left, right * [1, 1, -1] @ rot.T + move, atol=1e-12)


def recording(labels, points, rate=100.0, units="m"):
    return R.Recording(list(labels), points, np.arange(len(points)) / rate, units, "z", "test.c3d")


def test_marker_means_and_missing_frames_are_counted():
    markers, _, _ = pelvis_markers(10)
    labels = list(markers)
    points = np.stack([markers[k] for k in labels], axis=1)
    points[[2, 5], 1] = np.nan  # RASI lost in two frames
    rec = recording(labels, points)
    joints, mapped, missing = R.apply_joint_map(rec, {"hip": labels})
    assert np.allclose(joints[0, 0], points[0].mean(axis=0))
    assert mapped.sum() == 1 and missing == {"hip": 2}
    assert np.isnan(joints[[2, 5], 0]).all() and np.isnan(joints[:, 1:]).all()
    with pytest.raises(PosepipeError, match="names 'RKNE', which the file does not have"):
        R.apply_joint_map(rec, {"hip": labels, "right_knee": "RKNE"})
    points[:, 0] = np.nan
    with pytest.raises(PosepipeError, match="missing in every frame"):
        R.apply_joint_map(recording(labels, points), {"hip": ["LASI"], "right_hip": "RASI"})


def write_c3d(path, labels, points_mm, *, rate=100.0, units="mm", first_frame=0):
    import ezc3d

    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [rate]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = tuple(labels)
    data = np.ones((4, points_mm.shape[1], points_mm.shape[0]))
    data[:3] = points_mm.transpose(2, 1, 0)
    c3d["data"]["points"] = data
    c3d.add_parameter("POINT", "UNITS", [units])
    c3d["header"]["points"]["first_frame"] = first_frame
    c3d.write(str(path))


def write_trc(path, labels, points, times, units="mm"):
    n = len(labels)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"100\t100\t{len(times)}\t{n}\t{units}\t100\t1\t{len(times)}",
        "\t".join(["Frame#", "Time"] + [f"{name}\t\t" for name in labels]).rstrip("\t"),
        "\t".join(["", ""] + [f"X{i}\tY{i}\tZ{i}" for i in range(1, n + 1)]),
        "",
    ]
    for k, t in enumerate(times):
        values = ["" if not np.isfinite(v) else f"{v:.6f}" for v in points[k].ravel()]
        lines.append("\t".join([str(k + 1), f"{t:.6f}", *values]))
    path.write_text("\n".join(lines) + "\n")


def plugin_gait_markers(joints: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Markers placed so that the shipped Plug-in Gait map gives back ``joints`` exactly (the head's
    four markers around it, two wrist markers either side, T10/STRN and C7/CLAV around the spine
    and thorax, the pelvis from a known hip-centre geometry)."""
    labels, cols = [], []

    def add(name, value):
        labels.append(name)
        cols.append(value)

    T = len(joints)
    for name, j in (("RKNE", 2), ("RANK", 3), ("LKNE", 5), ("LANK", 6), ("LSHO", 11), ("LELB", 12),
                    ("RSHO", 14), ("RELB", 15)):  # fmt: skip
        add(name, joints[:, j])
    for (a, b), j in (
        (("T10", "STRN"), 7),
        (("C7", "CLAV"), 8),
        (("LWRA", "LWRB"), 13),
        (("RWRA", "RWRB"), 16),
    ):
        add(a, joints[:, j] + [0.03, 0.01, 0])
        add(b, joints[:, j] - [0.03, 0.01, 0])
    for name, d in (("LFHD", [0.05, 0.05, 0]), ("RFHD", [0.05, -0.05, 0]), ("LBHD", [-0.05, 0.05, 0]),
                    ("RBHD", [-0.05, -0.05, 0])):  # fmt: skip
        add(name, joints[:, 10] + d)
    # Pelvis (Z up, X forward, Y left, i.e. z_pelvis = -Y): mid-ASIS so that the hip centres land
    # on joints 1 and 4 for PW = 240 mm, PD = 160 mm.
    right_local = np.array([-48.3, -82.9, 86.5]) / 1000  # (anterior, up, right)
    centre = (joints[:, 1] + joints[:, 4]) / 2
    mid_asis = centre - np.array([right_local[0], 0.0, right_local[1]])
    for name, d in (("LASI", [0, 0.12, 0]), ("RASI", [0, -0.12, 0]), ("LPSI", [-0.16, 0.04, 0]),
                    ("RPSI", [-0.16, -0.04, 0])):  # fmt: skip
        add(name, mid_asis + d)
    points = np.stack(cols, axis=1)
    assert points.shape == (T, len(labels), 3)
    return labels, points


def test_c3d_written_like_a_mocap_system_loads_with_the_plugin_gait_map(tmp_path):
    times = np.arange(300) / 100.0
    joints = walking(times)
    # Hip centres where Harrington's regression puts them for this pelvis (Z up, X forward, Y left).
    joints[:, 1] = joints[:, 0] + [-0.0483, -0.0865, -0.0829]
    joints[:, 4] = joints[:, 0] + [-0.0483, 0.0865, -0.0829]
    joints[:, 0] = (joints[:, 1] + joints[:, 4]) / 2  # Human3.6M's pelvis: the hips' mid-point
    labels, points = plugin_gait_markers(joints)
    path = tmp_path / "walk.c3d"
    write_c3d(path, labels, points * 1000, first_frame=50)
    rec = R.read_reference(path)
    assert rec.units == "mm" and rec.up == "z" and rec.rate == pytest.approx(100.0)
    assert rec.time[0] == pytest.approx(0.5)  # the first frame keeps its place in the capture
    got, mapped, missing = R.apply_joint_map(rec, R.load_joint_map("plugin_gait"))
    assert not missing and not mapped[H36M_JOINTS.index("neck_nose")] and mapped.sum() == 16
    assert np.nanmax(np.abs(got[:, mapped] - joints[:, mapped])) < 1e-5  # float32 in the file
    # the same numbers in metres, labelled so
    write_c3d(tmp_path / "m.c3d", labels, points, units="m")
    assert np.allclose(R.read_reference(tmp_path / "m.c3d").points, rec.points, atol=1e-6)
    # mm numbers labelled m: refused in one line
    write_c3d(tmp_path / "bad.c3d", labels, points * 1000, units="m")
    with pytest.raises(PosepipeError, match=r"bad.c3d: the units say m but the points span \d+"):
        R.read_reference(tmp_path / "bad.c3d")


def test_trc_in_opensims_layout_loads_with_a_joint_centre_map(tmp_path):
    times = np.arange(200) / 100.0
    joints = walking(times)
    joints[7:10, 3] = np.nan  # the right ankle lost for three frames
    write_trc(tmp_path / "centres.trc", H36M_JOINTS, joints * 1000, times)
    rec = R.read_reference(tmp_path / "centres.trc")
    assert rec.up == "y" and rec.units == "mm" and rec.labels == list(H36M_JOINTS)
    got, mapped, missing = R.apply_joint_map(rec, R.load_joint_map("h36m"))
    assert mapped.all() and missing == {"right_foot": 3}
    assert np.allclose(got, joints, atol=1e-8, equal_nan=True)
    write_trc(tmp_path / "m.trc", H36M_JOINTS, joints, times, units="m")
    assert np.allclose(R.read_reference(tmp_path / "m.trc").points, rec.points, atol=1e-6, equal_nan=True)


def test_bad_files_and_maps_say_so_in_one_line(tmp_path):
    (tmp_path / "junk.c3d").write_bytes(b"not a c3d at all" * 10)
    (tmp_path / "junk.trc").write_text("PathFileType\t4\nDataRate\n")
    (tmp_path / "x.bvh").write_text("")
    np.savez(tmp_path / "nounits.npz", joints=np.zeros((5, 17, 3)), rate=100.0)
    for name, reason in (("junk.c3d", "cannot read the C3D"), ("junk.trc", "cannot read the TRC"),
                         ("x.bvh", "a reference must be"), ("nounits.npz", "needs 'joints'"),
                         ("absent.c3d", "does not exist")):  # fmt: skip
        with pytest.raises(PosepipeError, match=reason) as info:
            R.read_reference(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)
    with pytest.raises(PosepipeError, match="not Human3.6M joints"):
        R.load_joint_map({"hip": "X", "pelvis": "Y"})
    with pytest.raises(PosepipeError, match="must give 'hip'"):
        R.load_joint_map({"left_knee": "LKNE"})
    with pytest.raises(PosepipeError, match="not a shipped joint map"):
        R.load_joint_map(tmp_path / "none.yaml")


def test_shipped_maps_name_real_joints():
    for name in R.JOINT_MAPS:
        assert R.load_joint_map(name)["hip"]
    assert len(H36M_PARENTS) == len(STAND)


# ---- the stage -------------------------------------------------------------------------------------


def stage_inputs(tmp_path, *, offset=1.5, frames=150, noise=0.0, seed=8, turn_deg=(95, 5, -30), rate=100.0):
    """pose3d.npz + timeline.json of a 30 fps video whose person is the reference's walk seen from a
    camera (turned, root-relative, with noise), and the reference as a 100 Hz C3D in mm."""
    from posepipe.artefacts.pose3d import Pose3D, save_pose3d

    fps = 30.0
    times = np.arange(frames) / fps
    truth = walking(times + offset)
    turn = Rotation.from_euler("xyz", turn_deg, degrees=True).as_matrix()
    cam = (truth - truth[:, :1]) @ turn.T
    cam = cam + np.random.default_rng(seed).normal(scale=noise, size=cam.shape) if noise else cam
    pose = Pose3D(positions=cam.astype(np.float32), display=cam.astype(np.float32), time=times)
    save_pose3d(tmp_path / "pose3d.npz", pose)
    (tmp_path / "timeline.json").write_text(
        json.dumps({"video_id": "walk", "fps": 30.0, "frame_count": frames, "timeline_csv": "timeline.csv"})
    )
    ref_times = np.arange(0, (frames / fps + offset + 2.0) * rate) / rate
    ref = walking(ref_times)
    path = tmp_path / "walk.reference.c3d"
    write_c3d(path, H36M_JOINTS, ref * 1000, rate=rate)
    return {
        "pose3d_npz": tmp_path / "pose3d.npz",
        "timeline_json": tmp_path / "timeline.json",
        "reference": path,
    }


def test_stage_finds_the_offset_and_gives_zero_error_without_noise(tmp_path):
    import pandas as pd

    from posepipe.artefacts.evaluate import load_evaluate
    from posepipe.evaluate.stage import EvaluateSettings, run_evaluate

    inputs = stage_inputs(tmp_path)
    (tmp_path / "exact_in").mkdir()
    out = tmp_path / "evaluate"
    metrics = run_evaluate(**inputs, out_dir=out, settings=EvaluateSettings())
    assert metrics == load_evaluate(out / "metrics.json")
    assert (
        abs(metrics["time"]["offset_s"] - 1.5) < 1 / 30
        and metrics["time"]["offset_source"] == "cross-correlation"
    )
    # The found offset is sub-frame refined, not exact: errors are those of a few ms of timing.
    assert metrics["p_mpjpe_mm"] < 5.0
    # A 150 Hz reference has a sample at every video time: with the offset given, what is left is
    # float32 rounding (pose3d in m, C3D in mm).
    exact_inputs = stage_inputs(tmp_path / "exact_in", rate=150.0)
    exact = run_evaluate(
        **exact_inputs, out_dir=tmp_path / "exact", settings=EvaluateSettings(), offset_s=1.5
    )
    for key in ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm"):
        assert exact[key] < 1e-3, key
    assert exact["accel_error_mm_s2"] < 5.0
    assert exact["frames"]["used"] == 150 and exact["time"]["offset_source"] == "given"
    joints = pd.read_csv(tmp_path / "exact" / "per_joint.csv")
    assert list(joints["joint"]) == list(H36M_JOINTS)
    frames = pd.read_csv(tmp_path / "exact" / "per_frame.csv")
    assert len(frames) == 150 and frames["reference_time"].iloc[0] == pytest.approx(1.5)
    for name in ("evaluate.png", "evaluate.html"):
        assert (tmp_path / "exact" / name).stat().st_size > 1000


def world_of(joints: np.ndarray, times: np.ndarray):
    """A World of one person (track -1) with ``joints`` (T, 17, 3) and plausible camera fields."""
    from posepipe.artefacts.world import World

    T = len(times)
    return World(
        joints=joints[None], root=joints[None, :, 0], root_camera=joints[None, :, 0],
        camera_matrix=np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), dist_coeffs=np.zeros(0),
        lens="pinhole", image_size=np.array([640, 480]), R_world_camera=np.eye(3), t_world_camera=np.zeros(3),
        floor=np.array([0.0, -1.0, 0.0, 1.5]), contacts=np.zeros((1, T, 2), bool),
        reprojection_px=np.zeros((1, T)), scale=np.ones(1), height_m=np.full(1, np.nan),
        track_ids=np.array([-1]), time=times,
        meta={"intrinsics_source": "assumed", "scale_source": "lifter", "floor_source": "assumed_tilt"},
    )  # fmt: skip


def test_stage_with_noise_world_and_angles(tmp_path):
    from posepipe.artefacts.angles import Angles, save_angles
    from posepipe.artefacts.world import save_world
    from posepipe.evaluate.stage import EvaluateSettings, run_evaluate

    sigma = 0.01
    inputs = stage_inputs(tmp_path, noise=sigma, frames=300)
    times = np.arange(300) / 30.0
    truth = walking(times + 1.5)
    turn = Rotation.from_euler("z", 40, degrees=True).as_matrix()
    world = truth @ turn.T + [1.0, 2.0, 0.0]
    world += np.linspace(0, 0.2, 300)[:, None, None] * turn[:, 0]  # drifts ahead along the path
    save_world(tmp_path / "world.npz", world_of(world, times))
    ref_angles = np.stack([30 * np.sin(times + 1.5), 10 * np.cos(2 * (times + 1.5))], axis=1)
    save_angles(tmp_path / "angles.npz", Angles(values=(ref_angles + [3.0, 0.0])[None], names=("knee_flexion_r", "x"),
                                                time=times, track_ids=np.array([-1]), meta={"frame": "world"}))  # fmt: skip
    ref_times = np.arange(0, 300 / 30 + 3.5, 0.01)
    np.savez(tmp_path / "ref.npz", joints=walking(ref_times) * 1000, units="mm", time=ref_times,
             angles=np.stack([30 * np.sin(ref_times), 10 * np.cos(2 * ref_times)], axis=1),
             angle_names=np.array(["knee_flexion_r", "x"]))  # fmt: skip
    metrics = run_evaluate(
        pose3d_npz=inputs["pose3d_npz"], timeline_json=inputs["timeline_json"], reference=tmp_path / "ref.npz",
        out_dir=tmp_path / "out", settings=EvaluateSettings(), offset_s=1.5, world_npz=tmp_path / "world.npz",
        angles_npz=tmp_path / "angles.npz",
    )  # fmt: skip
    # Root-relative noise: the root's own noise moves every joint, so each non-root joint's error
    # is sigma * sqrt(2) per axis: E|e| = sigma sqrt(2) sqrt(8/pi); the root's is 0 (16 of 17 joints).
    expected = 16 / 17 * sigma * np.sqrt(2) * np.sqrt(8 / np.pi) * 1000
    assert metrics["mpjpe_mm"] == pytest.approx(expected, rel=0.05)
    assert metrics["p_mpjpe_mm"] < metrics["mpjpe_mm"]
    assert metrics["world"]["root_mean_mm"] == pytest.approx(50.0, rel=0.05)  # 0..20 cm drift less its mean
    assert metrics["angles"]["knee_flexion_r"]["rmse_deg"] == pytest.approx(3.0, abs=0.01)
    assert metrics["angles"]["knee_flexion_r"]["r"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["angles_source"] == {"frame": "world", "reference": "reference file"}


@pytest.mark.parametrize("frame", ["world", "camera"])
def test_angles_computed_from_the_reference_joints_with_the_same_definitions(tmp_path, frame):
    """The angles stage's numbers (posepipe.biomech.angles on the estimate's joints) against the same
    definitions on the reference's joints brought into the estimate's frame: equal for equal poses."""
    from posepipe.artefacts.angles import Angles, save_angles
    from posepipe.artefacts.world import save_world
    from posepipe.biomech.angles import CAMERA_UP, compute_angles
    from posepipe.evaluate.stage import EvaluateSettings, run_evaluate

    inputs = stage_inputs(tmp_path, frames=150, rate=150.0)
    times = np.arange(150) / 30.0
    truth = walking(times + 1.5)
    truth[:, 13, 2] += 0.2 * np.sin(2 * times)  # the left wrist swings up and down: elbow and shoulder move
    turn = Rotation.from_euler("z", 40, degrees=True).as_matrix()
    world = truth @ turn.T + [1.0, 2.0, 0.0]
    save_world(tmp_path / "world.npz", world_of(world, times))
    if frame == "world":
        values, names = compute_angles(world[None])
    else:
        from posepipe.artefacts.pose3d import load_pose3d

        values, names = compute_angles(load_pose3d(inputs["pose3d_npz"]).positions, up=CAMERA_UP)
    save_angles(tmp_path / "angles.npz", Angles(values=values, names=names, time=times, track_ids=np.array([-1]),
                                                meta={"frame": frame}))  # fmt: skip
    ref_times = np.arange(0, 150 / 30 + 3.5, 1 / 150)
    ref = walking(ref_times)
    if frame == "world":  # (the camera-frame estimate is stage_inputs' pose3d: the plain walk)
        ref[:, 13, 2] += 0.2 * np.sin(2 * (ref_times - 1.5))
    np.savez(tmp_path / "ref.npz", joints=ref, units="m", time=ref_times)
    metrics = run_evaluate(
        pose3d_npz=inputs["pose3d_npz"], timeline_json=inputs["timeline_json"], reference=tmp_path / "ref.npz",
        out_dir=tmp_path / "out", settings=EvaluateSettings(), offset_s=1.5, world_npz=tmp_path / "world.npz",
        angles_npz=tmp_path / "angles.npz",
    )  # fmt: skip
    assert metrics["angles_source"] == {"frame": frame, "reference": "computed from the reference joints"}
    assert set(metrics["angles"]) >= {"knee_flexion_l", "hip_flexion_r", "elbow_flexion_l", "trunk_flexion"}
    worst = {n: a["rmse_deg"] for n, a in metrics["angles"].items() if a["rmse_deg"] > 0.01}
    assert not worst, worst


def test_stage_refusals_are_one_line(tmp_path):
    from posepipe.evaluate.stage import EvaluateSettings, run_evaluate

    inputs = stage_inputs(tmp_path)
    with pytest.raises(
        PosepipeError, match="walk.reference.c3d: the reference overlaps the video for 0.00 s"
    ):
        run_evaluate(**inputs, out_dir=tmp_path / "o", settings=EvaluateSettings(), offset_s=100.0)
    with pytest.raises(PosepipeError, match="names 'LASI'"):
        run_evaluate(**inputs, out_dir=tmp_path / "o", settings=EvaluateSettings(joint_map="plugin_gait"))
    assert not (tmp_path / "o").exists()


def test_run_wide_summary_with_t_intervals(tmp_path):
    import pandas as pd

    from posepipe.evaluate.stage import EvaluateSettings, write_evaluate_summary

    files = []
    for k, noise in enumerate((0.005, 0.01, 0.02)):
        folder = tmp_path / f"v{k}"
        folder.mkdir()
        from posepipe.evaluate.stage import run_evaluate

        run_evaluate(**stage_inputs(folder, noise=noise, seed=k), out_dir=folder / "evaluate",
                     settings=EvaluateSettings(), offset_s=1.5, video=f"v{k}")  # fmt: skip
        files.append(folder / "evaluate" / "metrics.json")
    rows, stats = write_evaluate_summary(
        files, out=tmp_path / "s.csv", intervals=tmp_path / "i.csv", html=tmp_path / "s.html"
    )
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table["video"]) == ["v0", "v1", "v2"]
    values = table["mpjpe_mm"].to_numpy()
    mpjpe = next(s for s in stats if s["metric"] == "mpjpe_mm")
    half = 4.302653 * values.std(ddof=1) / np.sqrt(3)
    assert mpjpe["mean"] == pytest.approx(values.mean(), rel=1e-3)
    assert mpjpe["ci95_high"] - mpjpe["mean"] == pytest.approx(half, rel=1e-3)
    assert "95%" in (tmp_path / "s.html").read_text()


def test_command_line_inline_map_and_one_line_errors(tmp_path, main, capsys):
    inputs = stage_inputs(tmp_path)
    args = ["evaluate", str(inputs["pose3d_npz"]), "--timeline", str(inputs["timeline_json"]),
            "--reference", str(inputs["reference"]), "--out-dir", str(tmp_path / "out"), "--offset-s", "1.5"]  # fmt: skip
    legs = {name: name for name in H36M_JOINTS[:7]}
    assert main([*args, "--joint-map", json.dumps(legs)]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (
        metrics["reference"]["joints"] == list(H36M_JOINTS[:7])
        and metrics["reference"]["joint_map"] == "inline"
    )
    capsys.readouterr()
    assert main([*args, "--joint-map", "plugin_gait"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("posepipe evaluate: error: ") and "'LASI'" in err[0]
    assert main([*args[:-2], "--offset-s", "60"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least 2 s is needed (evaluate.min_overlap_s)" in err[0]
    assert metrics == json.loads((tmp_path / "out" / "metrics.json").read_text())  # the earlier result stands


def test_references_beside_videos_and_in_the_sample_sheet(tmp_path):
    from posepipe.inputs import collect_videos, find_reference, load_sample_sheet

    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_bytes(b"")
    (tmp_path / "a.reference.trc").write_text("")
    (tmp_path / "a.reference.c3d").write_bytes(b"")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("path\treference\treference_offset_s\nb.mp4\tmocap/b.c3d\t-0.25\n")
    rows = load_sample_sheet(sheet, base=tmp_path)
    assert rows[0]["reference"] == tmp_path / "mocap" / "b.c3d" and rows[0]["reference_offset_s"] == -0.25
    videos = collect_videos(directory=tmp_path, patterns=["*.mp4"], samples=rows)
    assert find_reference(videos["a"]) == tmp_path / "a.reference.c3d"  # .c3d before .trc
    assert find_reference(videos["b"]) == tmp_path / "mocap" / "b.c3d"  # named, even though missing
    (tmp_path / "a.reference.c3d").unlink()
    (tmp_path / "a.reference.trc").unlink()
    assert find_reference(videos["a"]) is None
