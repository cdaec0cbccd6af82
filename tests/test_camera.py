"""posepipe.camera: calibration files, sheet columns, assumed intrinsics, scaling, rotation, undistortion."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from posepipe.camera import (
    Camera,
    fit_to_video,
    focal_from_fov,
    load_calibration,
    project_points,
    resolve_camera,
    rotate_camera,
    undistort_points,
)
from posepipe.errors import PosepipeError

K = np.array([[1400.0, 0.0, 955.0], [0.0, 1390.0, 545.0], [0.0, 0.0, 1.0]])
RADTAN8 = np.array([-0.3, 0.12, 0.001, -0.0007, -0.02, 0.01, -0.005, 0.002])
FISHEYE = np.array([0.05, -0.01, 0.003, -0.0006])


def cloud(n=400, seed=0):
    """Points in front of the camera that land inside a 1920 x 1080 image."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(2, 10, n)
    x = rng.uniform(-0.6, 0.6, n) * z
    y = rng.uniform(-0.35, 0.35, n) * z
    return np.stack([x, y, z], axis=1)


@pytest.mark.parametrize(
    ("lens", "dist"), [("radtan", RADTAN8), ("radtan", RADTAN8[:5]), ("fisheye", FISHEYE)]
)
def test_undistortion_round_trip_against_opencv(lens, dist):
    camera = Camera(K, dist, lens, (1920, 1080), "calibration")
    X = cloud()
    zero = np.zeros(3)
    if lens == "fisheye":
        observed = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), zero, zero, K, dist)[0].reshape(-1, 2)
    else:
        observed = cv2.projectPoints(X, zero, zero, K, dist)[0].reshape(-1, 2)
    np.testing.assert_allclose(project_points(X, camera), observed, atol=1e-9)
    ideal = X[:, :2] / X[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
    assert np.abs(undistort_points(observed, camera) - ideal).max() < 1e-6


def test_pinhole_and_nan_pass_through():
    camera = Camera(K, np.zeros(0), "pinhole", (1920, 1080), "sheet")
    pts = np.array([[10.0, 20.0], [np.nan, np.nan]])
    out = undistort_points(pts, Camera(K, RADTAN8, "radtan", (1920, 1080), "calibration"))
    assert np.isnan(out[1]).all() and np.isfinite(out[0]).all()
    np.testing.assert_array_equal(undistort_points(pts, camera), pts)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_follows_the_frames(rotation):
    """A calibration of the stored sensor, rotated like np.rot90 rotates the frames."""
    w, h = 1920, 1080
    camera = Camera(K, RADTAN8[:5], "radtan", (w, h), "calibration")
    stored = project_points(cloud(), camera)
    turned = rotate_camera(camera, rotation)
    # Where np.rot90(image, k) puts pixel (x, y), one quarter turn counter-clockwise at a time.
    x, y, cw, ch = stored[:, 0], stored[:, 1], w, h
    for _ in range(rotation // 90):
        x, y, cw, ch = y, cw - 1 - x, ch, cw
    # The same scene seen by the turned camera: rotate the points' camera axes with the image.
    X = cloud()
    for _ in range(rotation // 90):
        X = np.stack([X[:, 1], -X[:, 0], X[:, 2]], axis=1)
    np.testing.assert_allclose(project_points(X, turned), np.stack([x, y], axis=1), atol=1e-6)
    assert turned.size == (cw, ch)
    # fit_to_video does it when the video's frames are the transposed size.
    if rotation % 180:
        assert fit_to_video(camera, h, w, rotation=rotation).size == (h, w)


def test_scaled_to_the_video_resolution():
    camera = Camera(K, RADTAN8[:5], "radtan", (1920, 1080), "calibration", "calib.yaml")
    half = fit_to_video(camera, 960, 540)
    X = cloud()
    np.testing.assert_allclose(
        project_points(X, half), (project_points(X, camera) + 0.5) / 2 - 0.5, atol=1e-9
    )
    with pytest.raises(PosepipeError, match=r"calib.yaml: calibrated at 1920x1080, the video is 1440x1080"):
        fit_to_video(camera, 1440, 1080)


def write_opencv_yaml(path, *, size=(1920, 1080), dist=RADTAN8[:5]):
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", size[0])
    fs.write("image_height", size[1])
    fs.write("camera_matrix", K)
    fs.write("distortion_coefficients", np.asarray(dist).reshape(1, -1))
    fs.release()
    return path


def test_opencv_yaml_and_json(tmp_path):
    camera = load_calibration(write_opencv_yaml(tmp_path / "cam.yaml"))
    np.testing.assert_allclose(camera.matrix, K)
    np.testing.assert_allclose(camera.dist, RADTAN8[:5])
    assert (camera.lens, camera.size, camera.source) == ("radtan", (1920, 1080), "calibration")
    plain = {
        "camera_matrix": K.tolist(),
        "dist_coeffs": FISHEYE.tolist(),
        "image_size": [3840, 2160],
        "fisheye": True,
    }
    (tmp_path / "cam.json").write_text(json.dumps(plain))
    fisheye = load_calibration(tmp_path / "cam.json")
    assert fisheye.lens == "fisheye" and fisheye.size == (3840, 2160)
    no_distortion = load_calibration(write_opencv_yaml(tmp_path / "pin.yaml", dist=np.zeros(5)))
    assert no_distortion.lens == "pinhole" and len(no_distortion.dist) == 0


def test_pose2sim_toml(tmp_path):
    def table(name, f):
        return (
            f'[{name}]\nname = "{name}"\nsize = [ 1920.0, 1080.0,]\n'
            f"matrix = [ [ {f}, 0.0, 959.5,], [ 0.0, {f}, 539.5,], [ 0.0, 0.0, 1.0,],]\n"
            "distortions = [ -0.2, 0.05, 0.0, 0.0,]\nrotation = [ 0.0, 0.0, 0.0,]\n"
            "translation = [ 0.0, 0.0, 0.0,]\nfisheye = false\n\n"
        )

    one = tmp_path / "one.toml"
    one.write_text(table("cam_01", 1500.0))
    assert load_calibration(one).matrix[0, 0] == 1500.0
    two = tmp_path / "two.toml"
    two.write_text(table("cam_01", 1500.0) + table("clip", 1600.0) + "[metadata]\nadjusted = false\n")
    assert load_calibration(two, name="clip").matrix[0, 0] == 1600.0
    with pytest.raises(PosepipeError, match=r"two.toml: holds 2 cameras"):
        load_calibration(two, name="other")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("camera_matrix: [1, 2, 3]\nimage_size: [1920, 1080]\n", "has 3 numbers"),
        ("camera_matrix: [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]]\n", "no image size"),
        ("image_size: [1920, 1080]\n", "no camera_matrix"),
        ("camera_matrix: [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]]\nimage_size: [1920, 1080]\n"
         "dist_coeffs: [0.1, 0.2, 0.3]\n", "3 distortion coefficients"),
        ("camera_matrix: [[-5, 0, 960], [0, 1000, 540], [0, 0, 1]]\nimage_size: [1920, 1080]\n", "not a camera matrix"),
        ("camera_matrix: [[1000, 0, 960\n", "malformed calibration file"),
    ],
)  # fmt: skip
def test_bad_calibration_files(tmp_path, text, reason):
    path = tmp_path / "clip.calib.yaml"
    path.write_text(text)
    with pytest.raises(PosepipeError, match=reason) as info:
        load_calibration(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_missing_calibration(tmp_path):
    with pytest.raises(PosepipeError, match="calibration file not found"):
        resolve_camera(1920, 1080, calibration=tmp_path / "nope.yaml")


def test_precedence_sheet_config_assumed(tmp_path):
    calib = resolve_camera(
        960, 540, calibration=write_opencv_yaml(tmp_path / "c.yaml"), sheet={"fov_deg": 50}
    )
    assert calib.source == "calibration" and calib.matrix[0, 0] == pytest.approx(700.0)
    sheet = resolve_camera(
        1920, 1080, sheet={"fx": 1200.0, "fy": 1210.0, "cx": 950.0, "cy": 530.0}, fov_deg=40
    )
    np.testing.assert_allclose(sheet.matrix, [[1200, 0, 950], [0, 1210, 530], [0, 0, 1]])
    mm = resolve_camera(1920, 1080, sheet={"focal_mm": 4.0, "sensor_width_mm": 6.4})
    assert mm.matrix[0, 0] == pytest.approx(1200.0) and mm.source == "sheet"
    fov = resolve_camera(1920, 1080, sheet={"fov_deg": 90.0})
    assert fov.matrix[0, 0] == pytest.approx(959.5 + 0.5) and fov.matrix[0, 2] == 959.5
    config = resolve_camera(1920, 1080, fov_deg=60.0)
    assert config.source == "config" and config.matrix[0, 0] == pytest.approx(focal_from_fov(1920, 60.0))
    assumed = resolve_camera(1920, 1080)
    assert assumed.source == "assumed" and assumed.matrix[0, 0] == pytest.approx(focal_from_fov(1920, 65.0))
    with pytest.raises(PosepipeError, match="incomplete"):
        resolve_camera(1920, 1080, sheet={"focal_mm": 4.0}, sheet_origin="samples.tsv line 3")
    with pytest.raises(PosepipeError, match="samples.tsv line 3: fx 0"):
        resolve_camera(1920, 1080, sheet={"fx": 0}, sheet_origin="samples.tsv line 3")
