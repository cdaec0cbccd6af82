"""The world stage against synthetic scenes with known truth (posepipe.testing.world_scene).

The stage is fed the true root-relative 3D (so the lifter's accuracy is not what is measured) and
the 2D keypoints projected through the known lens; the README's "World frame" table comes from
:func:`error_figures` (run this file with ``python -m tests.test_world`` to print it).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from posepipe.artefacts.dataset2d import Dataset2D, save_persons2d
from posepipe.artefacts.pose3d import Pose3D, save_pose3d
from posepipe.artefacts.world import load_world
from posepipe.errors import PosepipeError
from posepipe.testing import gait, observe, world_scene
from posepipe.world import solve
from posepipe.world.stage import (
    WorldSettings,
    check_height,
    load_person_heights,
    run_world,
    world_from_arrays,
)

NO_SMOOTHING = WorldSettings(smooth_hz=None)
LIFTER_SCALE = 1.1  # the "lifted" skeleton is the truth divided by this; the height gives it back


def solve_scene(scene, *, params=NO_SMOOTHING, heights=True, camera=None):
    P = len(scene["rel"])
    return world_from_arrays(
        scene["rel"] / LIFTER_SCALE, scene["points"], scene["scores"], camera or scene["camera"], fps=scene["fps"],
        time=scene["time"], track_ids=np.arange(P), heights=scene["heights"] if heights else np.full(P, np.nan),
        params=params,
    )  # fmt: skip


def expected_frame(floor: np.ndarray, origin_above: np.ndarray):
    """The contract's world frame, written out again from its definition (BRIEF / artefact docstring)."""
    z = floor[:3]
    x = np.array([0.0, 0.0, 1.0]) - z[2] * z
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    origin = origin_above - (z @ origin_above + floor[3]) * z
    return R, -R @ origin


@pytest.mark.parametrize("lens", ["pinhole", "radtan", "fisheye"])
def test_noise_free_recovery(lens):
    scene = world_scene(persons=1, lens=lens, tilt_deg=25.0, distance=5.0)
    world = solve_scene(scene)
    truth_root = scene["cam"][:, :, 0]
    rel_err = np.linalg.norm(world.root_camera - truth_root, axis=-1) / np.linalg.norm(truth_root, axis=-1)
    assert rel_err.max() < 1e-6
    assert np.linalg.norm(world.floor[:3] - scene["floor"][:3]) < 1e-6
    assert world.floor[3] == pytest.approx(scene["floor"][3], rel=1e-6)
    assert world.scale[0] == pytest.approx(LIFTER_SCALE, rel=1e-6)
    assert solve.stature(world.joints[0]) == pytest.approx(1.75, rel=1e-6)
    assert world.meta["floor_source"] == "contacts" and world.meta["scale_source"] == "height"
    R, t = expected_frame(scene["floor"], truth_root[0, 0])
    np.testing.assert_allclose(world.R_world_camera, R, atol=1e-6)
    np.testing.assert_allclose(world.joints, scene["cam"] @ R.T + t, atol=1e-5)
    # Origin under the first root, feet planted at ankle height, +X away from the camera.
    np.testing.assert_allclose(world.root[0, 0, :2], 0, atol=1e-6)
    assert world.contacts.any(axis=1).all()
    np.testing.assert_allclose(
        world.joints[0, :, [6, 3], 2][world.contacts[0].T], solve.ANKLE_HEIGHT_M, atol=1e-6
    )
    assert np.nanmax(world.reprojection_px) < 1e-6


def test_two_persons_share_one_frame():
    scene = world_scene(persons=2, noise_px=2.0, seed=3)
    world = solve_scene(scene, params=WorldSettings())
    est = np.linalg.norm(world.root[0] - world.root[1], axis=-1)
    true = np.linalg.norm(scene["world"][0, :, 0] - scene["world"][1, :, 0], axis=-1)
    assert np.mean(np.abs(est - true)) < 0.08  # within the 2-px root error of the README table
    # Both on the one floor: planted ankles of both at ankle height.
    for p in range(2):
        z = world.joints[p, :, [6, 3], 2][world.contacts[p].T]
        assert len(z) > 10 and abs(np.median(z) - solve.ANKLE_HEIGHT_M) < 0.05
    assert world.meta["main_person"] in (0, 1)


def error_figures(lens: str, *, focal_factor: float = 1.0, seeds=(0, 1, 2)) -> dict:
    """Mean root error (cm), floor normal error (deg), root height error above the floor (cm)
    over ``seeds`` scenes with 2 px noise (default smoothing and robust refinement)."""
    root, normal, height = [], [], []
    for seed in seeds:
        scene = world_scene(persons=1, lens=lens, noise_px=2.0, seed=seed)
        camera = scene["camera"]
        if focal_factor != 1.0:
            K = camera.matrix.copy()
            K[0, 0] *= focal_factor
            K[1, 1] *= focal_factor
            camera = dataclasses.replace(camera, matrix=K)
        world = solve_scene(scene, params=WorldSettings(), camera=camera)
        root.append(np.nanmean(np.linalg.norm(world.root_camera - scene["cam"][:, :, 0], axis=-1)) * 100)
        normal.append(math.degrees(math.acos(min(1.0, float(world.floor[:3] @ scene["floor"][:3])))))
        height.append(np.nanmean(np.abs(world.root[..., 2] - scene["world"][:, :, 0, 2])) * 100)
    return {
        "root_cm": float(np.mean(root)),
        "normal_deg": float(np.mean(normal)),
        "height_cm": float(np.mean(height)),
    }


@pytest.mark.parametrize("lens", ["pinhole", "radtan", "fisheye"])
def test_two_pixel_noise(lens):
    figures = error_figures(lens, seeds=(0,))
    assert figures["root_cm"] < 8 and figures["normal_deg"] < 3 and figures["height_cm"] < 5


def test_wrong_focal_scales_the_depth():
    scene = world_scene(persons=1, noise_px=0.0)
    camera = scene["camera"]
    K = camera.matrix.copy()
    K[:2, :2] *= 1.2
    world = solve_scene(scene, camera=dataclasses.replace(camera, matrix=K))
    ratio = world.root_camera[0, :, 2] / scene["cam"][0, :, 0, 2]
    assert np.median(ratio) == pytest.approx(1.2, abs=0.03)  # depth grows with the focal length


def test_no_floor_contact_warns_and_assumes_the_tilt():
    # A glider: the first pose of a walk carried along at 1.2 m/s, never a foot standing still.
    pose = gait(60, 25.0)[:1]
    walkers = (pose + np.arange(60)[:, None, None] / 25.0 * np.array([1.2, 0.3, 0.0]))[None]
    scene = observe(walkers, tilt_deg=15.0)
    scene["heights"] = np.array([1.75])
    world = solve_scene(scene, params=dataclasses.replace(NO_SMOOTHING, assumed_tilt_deg=15.0))
    assert world.meta["floor_source"] == "assumed_tilt"
    assert any("no foot is still on the floor" in w for w in world.meta["warnings"])
    assert not world.contacts.any() or world.contacts.mean() < 0.05
    assert np.linalg.norm(world.floor[:3] - scene["floor"][:3]) < 1e-6  # the assumed tilt was the true one


def test_camera_height_and_tilt_given():
    scene = world_scene(persons=1, tilt_deg=20.0)
    params = dataclasses.replace(NO_SMOOTHING, camera_height_m=float(scene["floor"][3]), camera_tilt_deg=20.0)
    world = solve_scene(scene, params=params)
    assert world.meta["floor_source"] == "camera_height"
    np.testing.assert_allclose(world.floor, scene["floor"], atol=1e-9)
    with pytest.raises(PosepipeError, match="camera_tilt_deg"):
        solve_scene(scene, params=dataclasses.replace(NO_SMOOTHING, camera_height_m=1.5))


def test_a_person_seen_in_one_frame():
    scene = world_scene(persons=2, frames=40)
    for key in ("rel", "points"):
        scene[key][1, 1:] = np.nan
    world = solve_scene(scene)
    assert np.isnan(world.root[1]).all() and np.isfinite(world.root[0]).all()
    assert any("person 1 is seen in 1 frame" in w for w in world.meta["warnings"])
    scene["rel"][0, 1:] = np.nan  # nobody seen twice (a one-frame clip): placed from that frame
    world = solve_scene(scene)
    assert np.isfinite(world.root[:, 0]).all() and np.isnan(world.root[:, 1:]).all()
    assert world.meta["floor_source"] == "assumed_tilt" and not world.contacts.any()
    assert any("no person is seen in two frames or more" in w for w in world.meta["warnings"])
    scene["rel"][:, 0] = np.nan
    with pytest.raises(PosepipeError, match="no person is seen in any frame"):
        solve_scene(scene)


@pytest.mark.parametrize("value", [0, 5, -1, "tall"])
def test_bad_heights(value, tmp_path):
    with pytest.raises(PosepipeError, match="height"):
        check_height(value, "sample sheet line 2")
    path = tmp_path / "clip.persons.yaml"
    path.write_text(f"3: {{height_m: {value}}}\n")
    with pytest.raises(PosepipeError, match="clip.persons.yaml"):
        load_person_heights(path)


def test_person_heights_file(tmp_path):
    path = tmp_path / "clip.persons.yaml"
    path.write_text("persons:\n  0: {height_m: 1.8}\n  4: 1.6\n")
    assert load_person_heights(path) == {0: 1.8, 4: 1.6}
    path.write_text("[1, 2]\n")
    with pytest.raises(PosepipeError, match="mapping"):
        load_person_heights(path)


def write_inputs(folder, scene, *, tracked=True):
    """pose3d.npz, dataset2d.npz and a timeline of ``scene`` as the workflow's stages write them."""
    P, T = scene["rel"].shape[:2]
    tracks = np.arange(P) * 3 if tracked else None
    rel = scene["rel"] / LIFTER_SCALE
    save_pose3d(folder / "pose3d.npz", Pose3D(rel if tracked else rel[0], rel if tracked else rel[0], scene["time"],
                                             track_ids=tracks))  # fmt: skip
    people = [
        Dataset2D(
            f"clip.mp4.p{p}",
            scene["points"][p].astype(np.float32),
            1920,
            1080,
            np.ones(T, bool),
            scene["scores"][p].astype(np.float32),
            np.ones(T, np.float32),
            np.zeros((T, 4), np.float32),
            track_id=int(tracks[p]) if tracked else -1,
        )  # fmt: skip
        for p in range(P)
    ]
    save_persons2d(folder / "dataset2d.npz", people, meta={"video_id": "clip"})
    timeline = {"video_id": "clip", "fps": scene["fps"], "frame_count": T, "width": 1920, "height": 1080,
                "rotation": 0}  # fmt: skip
    (folder / "timeline.json").write_text(json.dumps(timeline))
    return folder / "pose3d.npz", folder / "dataset2d.npz", folder / "timeline.json"


def test_run_world_writes_the_artefact(tmp_path):
    scene = world_scene(persons=2, frames=60)
    pose3d, dataset2d, timeline = write_inputs(tmp_path, scene)
    (tmp_path / "clip.persons.yaml").write_text("0: {height_m: 1.75}\n3: {height_m: 1.62}\n")
    run_world(pose3d, dataset2d, timeline, tmp_path / "world.npz", tmp_path / "world.csv", settings=NO_SMOOTHING,
              sheet={"fx": 1000.0, "cx": 959.5, "cy": 539.5}, persons=tmp_path / "clip.persons.yaml")  # fmt: skip
    world = load_world(tmp_path / "world.npz", frame_count=60)
    assert world.meta["intrinsics_source"] == "sheet" and world.meta["scale_source"] == "height"
    assert world.track_ids.tolist() == [0, 3] and world.joints.dtype == np.float32
    np.testing.assert_allclose(world.scale, LIFTER_SCALE, rtol=1e-4)  # float32 files
    err = np.linalg.norm(world.root_camera - scene["cam"][:, :, 0], axis=-1)
    assert err.max() < 1e-3
    import pandas as pd

    table = pd.read_csv(tmp_path / "world.csv")
    assert len(table) == 120 and {"person", "frame", "root_z", "contact_left", "head_z"} <= set(table.columns)
    from posepipe.qc import world_numbers

    numbers = world_numbers(tmp_path / "world.npz", frame_count=60)
    assert numbers["intrinsics_source"] == "sheet" and numbers["floor_source"] == "contacts"
    assert numbers["reprojection_px"]["p95"] < 0.05 and numbers["floor_residual_m"] < 1e-3
    assert [p["track"] for p in numbers["persons"]] == [0, 3] and 0.3 < numbers["persons"][0][
        "contact_share"
    ] < 0.9
    # Nothing given: the field of view is assumed, and said so.
    run_world(pose3d, dataset2d, timeline, tmp_path / "assumed.npz", settings=NO_SMOOTHING)
    assumed = load_world(tmp_path / "assumed.npz")
    assert assumed.meta["intrinsics_source"] == "assumed" and assumed.meta["scale_source"] == "lifter"
    assert any("intrinsics assumed" in w for w in assumed.meta["warnings"])


def test_load_world_refuses_a_broken_file(tmp_path):
    scene = world_scene(persons=1, frames=30)
    pose3d, dataset2d, timeline = write_inputs(tmp_path, scene, tracked=False)
    run_world(pose3d, dataset2d, timeline, tmp_path / "world.npz", settings=NO_SMOOTHING)
    with np.load(tmp_path / "world.npz") as z:
        arrays = dict(z)
    arrays["R_world_camera"] = arrays["R_world_camera"] * 2
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(PosepipeError, match="bad.npz: world R_world_camera is not a rotation"):
        load_world(tmp_path / "bad.npz")
    with pytest.raises(PosepipeError, match="timeline has 31"):
        load_world(tmp_path / "world.npz", frame_count=31)


if __name__ == "__main__":  # the README table
    print("| lens | root error (cm) | floor normal (deg) | root height (cm) |")
    for name in ("pinhole", "radtan", "fisheye"):
        f = error_figures(name)
        print(f"| {name} | {f['root_cm']:.1f} | {f['normal_deg']:.2f} | {f['height_cm']:.1f} |")
    for factor in (0.8, 1.2):
        f = error_figures("pinhole", focal_factor=factor)
        print(
            f"| pinhole, focal x{factor} | {f['root_cm']:.1f} | {f['normal_deg']:.2f} | {f['height_cm']:.1f} |"
        )


def test_exports_in_the_world_frame(tmp_path):
    from posepipe.exports.motion import y_up
    from posepipe.exports.stage import ExportSettings, run_export
    from posepipe.exports.trc import read_trc

    scene = world_scene(persons=2, frames=40)
    pose3d, dataset2d, timeline = write_inputs(tmp_path, scene)
    run_world(
        pose3d, dataset2d, timeline, tmp_path / "world.npz", settings=NO_SMOOTHING, sheet={"fx": 1000.0}
    )
    world = load_world(tmp_path / "world.npz")
    in_world = ExportSettings(frame="world")
    files = run_export(pose3d, fmt="trc", out_dir=tmp_path / "trc", video_id="clip", settings=in_world,
                       world_npz=tmp_path / "world.npz")  # fmt: skip
    _, _, _, _, points = read_trc(files[1])
    np.testing.assert_allclose(points, y_up(world.joints[1]) * 1000, atol=1e-3)  # mm, Y up, on the floor
    (csv, _) = run_export(pose3d, fmt="csv", out_dir=tmp_path / "csv", video_id="clip", settings=in_world,
                          world_npz=tmp_path / "world.npz")  # fmt: skip
    import pandas as pd

    assert pd.read_csv(csv)["hip_z"].to_numpy() == pytest.approx(world.root[0, :, 2], abs=1e-5)
    # BVH: the root's position channels carry the trajectory (cm, Y up), so the skeleton walks.
    (bvh, _) = run_export(pose3d, fmt="bvh", out_dir=tmp_path / "bvh", video_id="clip", settings=in_world,
                          world_npz=tmp_path / "world.npz")  # fmt: skip
    motion = bvh.read_text().split("Frame Time:")[1].strip().splitlines()[1:]
    first, last = (np.array(line.split()[:3], float) for line in (motion[0], motion[-1]))
    np.testing.assert_allclose(first, y_up(world.root[0, 0]) * 100, atol=1e-3)
    np.testing.assert_allclose(last, y_up(world.root[0, -1]) * 100, atol=1e-3)
    assert np.linalg.norm(last - first) > 100  # walked more than a metre
    # Default frame: today's files, unchanged; world without its file: one line.
    camera = run_export(pose3d, fmt="trc", out_dir=tmp_path / "trc_camera", video_id="clip")
    assert camera[0].read_text() != files[0].read_text()
    with pytest.raises(PosepipeError, match="needs the video's world.npz"):
        run_export(pose3d, fmt="trc", out_dir=tmp_path / "x", video_id="clip", settings=in_world)


def test_dataset2d_undistort_then_world(tmp_path):
    """dataset2d.undistort: the keypoints come out in the ideal pinhole grid, and the world stage
    does not undistort them twice."""
    import cv2

    from posepipe.artefacts.dataset2d import load_persons2d
    from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
    from posepipe.dataset2d import run_dataset2d

    scene = world_scene(persons=1, frames=40, lens="radtan")
    camera = scene["camera"]
    fs = cv2.FileStorage(str(tmp_path / "clip.calib.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 1920)
    fs.write("image_height", 1080)
    fs.write("camera_matrix", camera.matrix)
    fs.write("distortion_coefficients", camera.dist.reshape(1, -1))
    fs.release()
    kps = np.concatenate([scene["points"][0], np.full((40, 17, 1), 0.9)], axis=-1)
    frames = [(np.array([[0, 0, 1920, 1080]]), np.array([0.99]), kps[t][None]) for t in range(40)]
    save_keypoints2d(tmp_path / "keypoints2d.npz", from_frames(frames, width=1920, height=1080))
    run_dataset2d(tmp_path / "keypoints2d.npz", tmp_path / "dataset2d.npz", video_id="clip",
                  calibration=tmp_path / "clip.calib.yaml")  # fmt: skip
    (ds,) = load_persons2d(tmp_path / "dataset2d.npz")
    cam = scene["cam"][0][:, [9, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]]
    ideal = (cam @ camera.matrix.T)[..., :2] / cam[..., 2:]
    assert np.abs(ds.keypoints - ideal).max() < 2e-3  # float32 pixels
    assert ds.meta["undistorted"]["lens"] == "radtan"
    save_pose3d(tmp_path / "pose3d.npz", Pose3D(scene["rel"][0], scene["rel"][0], scene["time"]))
    (tmp_path / "timeline.json").write_text(json.dumps({"fps": 25.0, "frame_count": 40, "width": 1920,
                                                        "height": 1080, "rotation": 0}))  # fmt: skip
    run_world(tmp_path / "pose3d.npz", tmp_path / "dataset2d.npz", tmp_path / "timeline.json", tmp_path / "w.npz",
              settings=NO_SMOOTHING, calibration=tmp_path / "clip.calib.yaml")  # fmt: skip
    world = load_world(tmp_path / "w.npz")
    assert world.lens == "radtan" and world.meta["intrinsics_source"] == "calibration"
    err = np.linalg.norm(world.root_camera[0] - scene["cam"][0, :, 0], axis=-1)
    assert err.max() < 1e-3


def test_render_world_panel_draws_each_trail():
    """render.frame: world: the 3D panel shows every person where they are on the floor, with
    the trail of their root in their colour (drawn frame by frame up to the current one)."""
    from posepipe.render.scene import build_view3d, plan_layout
    from posepipe.render.visualizer import FrameRenderer, person_palette

    scene = world_scene(persons=2, frames=60)
    world = solve_scene(scene)
    trails = world.root.copy()
    trails[..., 2] = 0.0
    layout = plan_layout(1920, 1080, height=480, layout="3d_only")
    view = build_view3d(world.joints.reshape(-1, 17, 3), size=layout.view_size)
    T = world.num_frames
    renderer = FrameRenderer(
        layout=layout, view=view, name="clip", keypoints=np.full((2, T, 17, 2), np.nan), detected=np.ones((2, T), bool),
        scores=None, poses=world.joints, time=world.time, thickness=3, labels=["P0", "P1"], trails=trails,
    )  # fmt: skip
    out = renderer.render(T - 1, None, renderer.new_frame())

    def coloured(image, point, colour):
        x, y = view.project(point).round().astype(int) + [layout.view_x, 0]
        patch = image[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(int)
        return bool((np.abs(patch - np.array(colour)).sum(axis=1) < 90).any())

    for p in range(2):
        colour = person_palette(p)["center"]
        assert sum(coloured(out, trails[p, t], colour) for t in (5, 10, 15, 20, 25)) >= 4, p
    early = renderer.render(0, None, renderer.new_frame())  # no trail yet
    assert not any(coloured(early, trails[0, t], person_palette(0)["center"]) for t in (15, 20, 25))
