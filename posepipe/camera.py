"""Camera intrinsics and lens distortion of one video (ground floor: pure helpers, no stage).

Where the intrinsics come from, in order of precedence (:func:`resolve_camera`):

1. ``calibration``: a calibration file, named per video or in the sample sheet:
   - OpenCV ``FileStorage`` YAML or JSON (what ``cv2.calibrateCamera`` users save):
     ``camera_matrix`` (or ``K``), ``distortion_coefficients`` / ``dist_coeffs`` (or ``D``),
     ``image_width`` / ``image_height`` (or ``image_size: [w, h]``), optional ``fisheye: true``
     or ``distortion_model: fisheye``; plain YAML/JSON with the same keys is read too.
   - TOML as Pose2Sim and aniposelib write it: one table per camera with ``name``, ``size``
     [w, h], ``matrix`` (3x3), ``distortions`` [k1, k2, p1, p2] and optional ``fisheye``; with
     several cameras, the one whose ``name`` (or table name) is the video's id is taken.
2. ``sheet``: sample-sheet columns ``fx, fy, cx, cy`` (pixels), or ``fov_deg`` (horizontal field
   of view), or ``focal_mm`` with ``sensor_width_mm``; the principal point is the image centre
   when not given.
3. ``config``: the ``world:`` section's ``fov_deg`` for every video.
4. ``assumed``: a horizontal field of view of ``world.assumed_fov_deg`` (65 degrees: between a
   phone's main camera, about 65-70, and the narrower modes of action cameras), recorded as
   assumed in world.npz and QC and warned about in the summary.

A calibration made at another resolution is scaled to the video's (the same aspect ratio, within
1 %); a different aspect ratio is refused. Rotation metadata (counter-clockwise degrees, as the
timeline applies it with ``np.rot90``): a calibration of the sensor as stored is rotated with the
frames (:func:`rotate_camera`: axes swapped, principal point moved, tangential terms turned).

Lens models (OpenCV's): ``pinhole`` (no distortion), ``radtan`` (radial-tangential: k1, k2, p1,
p2[, k3[, k4, k5, k6]]) and ``fisheye`` (equidistant with k1..k4). Undistortion
(:func:`undistort_points`) maps pixels to the pixel grid of an ideal pinhole camera with the same
camera matrix (``cv2.undistortPoints`` / ``cv2.fisheye.undistortPoints`` with ``P = K``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from posepipe.errors import PosepipeError

LENSES = ("pinhole", "radtan", "fisheye")
SOURCES = ("calibration", "sheet", "config", "assumed")
SHEET_COLUMNS = ("calibration", "fx", "fy", "cx", "cy", "fov_deg", "focal_mm", "sensor_width_mm")
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Camera:
    """Intrinsics of one video: ``matrix`` float64 (3, 3), ``dist`` float64 (N,) in OpenCV's order
    (empty for a pinhole), ``lens``, ``size`` (width, height) in pixels, ``source`` (one of
    :data:`SOURCES`) and ``origin`` (the file or column it came from, for messages)."""

    matrix: np.ndarray
    dist: np.ndarray
    lens: str
    size: tuple[int, int]
    source: str
    origin: str = ""

    @property
    def distorted(self) -> bool:
        return self.lens != "pinhole" and bool(np.any(self.dist != 0))


def pinhole(
    fx: float, fy: float, cx: float, cy: float, size: tuple[int, int], *, source: str, origin: str = ""
):
    """A camera without distortion."""
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return Camera(K, np.zeros(0), "pinhole", (int(size[0]), int(size[1])), source, origin)


def focal_from_fov(width: int, fov_deg: float) -> float:
    """Focal length in pixels of a horizontal field of view over ``width`` pixels."""
    return 0.5 * width / math.tan(math.radians(fov_deg) / 2)


def from_fov(width: int, height: int, fov_deg: float, *, source: str, origin: str = "") -> Camera:
    """Square pixels, principal point at the image centre, the given horizontal field of view."""
    if not 1 <= float(fov_deg) < 179:
        raise PosepipeError(
            origin or None, f"a horizontal field of view of {fov_deg} degrees is not plausible"
        )
    f = focal_from_fov(width, fov_deg)
    return pinhole(f, f, (width - 1) / 2, (height - 1) / 2, (width, height), source=source, origin=origin)


def _number(value, what: str, origin: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PosepipeError(origin, f"{what} {value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise PosepipeError(origin, f"{what} {value!r} must be a positive number")
    return number


def from_sheet(row: dict, width: int, height: int, *, origin: str) -> Camera | None:
    """The camera of the sample-sheet columns ``fx, fy, cx, cy`` | ``fov_deg`` | ``focal_mm`` +
    ``sensor_width_mm`` of ``row`` (None when none is given); ``origin`` names the sheet line."""
    given = {
        k
        for k in ("fx", "fy", "cx", "cy", "fov_deg", "focal_mm", "sensor_width_mm")
        if row.get(k) is not None
    }
    if not given:
        return None
    if given & {"fx", "fy"}:
        fx = _number(row.get("fx", row.get("fy")), "fx", origin)
        fy = _number(row.get("fy", fx), "fy", origin)
        cx = float(row["cx"]) if row.get("cx") is not None else (width - 1) / 2
        cy = float(row["cy"]) if row.get("cy") is not None else (height - 1) / 2
        return pinhole(fx, fy, cx, cy, (width, height), source="sheet", origin=origin)
    if "fov_deg" in given:
        return from_fov(
            width, height, _number(row["fov_deg"], "fov_deg", origin), source="sheet", origin=origin
        )
    if given >= {"focal_mm", "sensor_width_mm"}:
        f = _number(row["focal_mm"], "focal_mm", origin) / _number(
            row["sensor_width_mm"], "sensor_width_mm", origin
        )
        f *= width
        return pinhole(
            f, f, (width - 1) / 2, (height - 1) / 2, (width, height), source="sheet", origin=origin
        )
    raise PosepipeError(
        origin, f"intrinsics columns {sorted(given)} are incomplete: give fx (fy, cx, cy), fov_deg, "
        "or focal_mm with sensor_width_mm",
    )  # fmt: skip


# ---- calibration files ---------------------------------------------------------------------------


def _matrix(value, path, what: str) -> np.ndarray:
    try:
        K = np.asarray(value.get("data") if isinstance(value, dict) else value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PosepipeError(path, f"{what} is not a matrix of numbers ({exc})") from None
    if K.size != 9:
        raise PosepipeError(path, f"{what} has {K.size} numbers, a camera matrix has 9")
    K = K.reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]):
        raise PosepipeError(path, f"{what} is not a camera matrix (fx, fy > 0, last row 0 0 1): {K.tolist()}")
    return K


def _dist(value, path, lens: str) -> np.ndarray:
    if value is None:
        return np.zeros(4 if lens == "fisheye" else 0)
    try:
        dist = np.asarray(value.get("data") if isinstance(value, dict) else value, dtype=np.float64).reshape(
            -1
        )
    except (TypeError, ValueError) as exc:
        raise PosepipeError(path, f"distortion coefficients are not numbers ({exc})") from None
    allowed = (4,) if lens == "fisheye" else (0, 4, 5, 8)
    if len(dist) not in allowed or not np.all(np.isfinite(dist)):
        raise PosepipeError(
            path,
            f"{len(dist)} distortion coefficients for a {lens} lens (expected {' or '.join(map(str, allowed))})",
        )
    return dist


def _lens(dist: np.ndarray, fisheye: bool) -> tuple[str, np.ndarray]:
    if fisheye:
        return "fisheye", dist
    if not np.any(dist != 0):
        return "pinhole", np.zeros(0)
    return "radtan", dist


def _size(value, path) -> tuple[int, int]:
    try:
        w, h = (int(round(float(v))) for v in np.asarray(value, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        raise PosepipeError(path, f"image size {value!r} is not two numbers (width, height)") from None
    if w <= 0 or h <= 0:
        raise PosepipeError(path, f"image size {w}x{h} is not positive")
    return w, h


def _read_mapping(path: Path) -> dict:
    """A YAML/JSON calibration as a dict: OpenCV FileStorage first (its ``%YAML:1.0`` header and
    ``!!opencv-matrix`` tags are not plain YAML), then plain YAML/JSON."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("%YAML") or "opencv-matrix" in text:
        import cv2

        fs = cv2.FileStorage(os.fspath(path), cv2.FILE_STORAGE_READ)
        try:
            if not fs.isOpened():
                raise PosepipeError(path, "cannot read the OpenCV calibration file")
            out = {}
            for key in fs.root().keys():  # noqa: SIM118 (a FileNode is not iterable)
                node = fs.getNode(key)
                if node.isMap() and node.getNode("data").isSeq():  # a matrix
                    out[key] = node.mat()
                elif node.isSeq():
                    out[key] = [node.at(i).real() for i in range(node.size())]
                elif node.isReal() or node.isInt():
                    out[key] = node.real()
                elif node.isString():
                    out[key] = node.string()
            return out
        finally:
            fs.release()
    import yaml

    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PosepipeError(
            path, f"malformed calibration file ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(data, dict):
        raise PosepipeError(path, "malformed calibration file: not a mapping of keys to values")
    return data


def _first(data: dict, *keys):
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def load_calibration(path: str | os.PathLike, *, name: str | None = None) -> Camera:
    """The camera of a calibration file (at the size it was calibrated at).

    ``name``: the camera to take from a TOML file with several (its ``name`` or table name).

    Raises:
        PosepipeError: missing or malformed file, a matrix that is not a camera matrix, an
            unknown number of distortion coefficients, no image size, several cameras and none named.
    """
    path = Path(path)
    if not path.is_file():
        raise PosepipeError(path, "calibration file not found")
    if path.suffix.lower() == ".toml":
        return _load_toml(path, name)
    data = _read_mapping(path)
    K = _first(data, "camera_matrix", "K", "matrix", "cameraMatrix")
    if K is None:
        raise PosepipeError(path, "malformed calibration file: no camera_matrix (or K)")
    K = _matrix(K, path, "camera_matrix")
    model = str(_first(data, "distortion_model", "lens", "model") or "").lower()
    fisheye = bool(_first(data, "fisheye")) or model in ("fisheye", "equidistant", "opencv_fisheye")
    dist = _dist(
        _first(data, "distortion_coefficients", "dist_coeffs", "D", "distortion", "distortions", "distCoeffs"),
        path, "fisheye" if fisheye else "radtan",
    )  # fmt: skip
    if "image_size" in data or "size" in data:
        size = _size(_first(data, "image_size", "size"), path)
    elif "image_width" in data and "image_height" in data:
        size = _size([data["image_width"], data["image_height"]], path)
    else:
        raise PosepipeError(
            path, "malformed calibration file: no image size (image_width/image_height or image_size)"
        )
    lens, dist = _lens(dist, fisheye)
    return Camera(K, dist, lens, size, "calibration", os.fspath(path))


def _load_toml(path: Path, name: str | None) -> Camera:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PosepipeError(path, f"malformed calibration file ({exc})") from None
    cams = {key: value for key, value in data.items() if isinstance(value, dict) and "matrix" in value}
    if not cams:
        raise PosepipeError(path, "malformed calibration file: no camera table with a matrix")
    if len(cams) > 1:
        chosen = [k for k, v in cams.items() if name is not None and name in (k, str(v.get("name")))]
        if len(chosen) != 1:
            names = sorted(str(v.get("name", k)) for k, v in cams.items())
            raise PosepipeError(
                path, f"holds {len(cams)} cameras {names}; name one after the video ({name!r})"
            )
        cam = cams[chosen[0]]
    else:
        cam = next(iter(cams.values()))
    if "size" not in cam:
        raise PosepipeError(path, "malformed calibration file: the camera has no size")
    fisheye = bool(cam.get("fisheye", False))
    K = _matrix(cam["matrix"], path, "matrix")
    lens, dist = _lens(_dist(cam.get("distortions"), path, "fisheye" if fisheye else "radtan"), fisheye)
    return Camera(K, dist, lens, _size(cam["size"], path), "calibration", os.fspath(path))


# ---- fitting a camera to the video ---------------------------------------------------------------


def rotate_camera(camera: Camera, rotation: int) -> Camera:
    """The camera of frames rotated by ``rotation`` degrees counter-clockwise (``np.rot90``).

    One quarter turn counter-clockwise maps pixel (x, y) of a W x H image to (y, W - 1 - x): the
    normalised coordinates turn as (u, v) -> (v, -u), so fx and fy swap, the principal point
    moves with the pixels, radial terms stay and the tangential pair turns (p1, p2) -> (-p2, p1).
    """
    k = (int(rotation) // 90) % 4
    K, dist, (w, h) = camera.matrix.copy(), camera.dist.copy(), camera.size
    for _ in range(k):
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        K = np.array([[fy, 0.0, cy], [0.0, fx, w - 1 - cx], [0.0, 0.0, 1.0]])
        if camera.lens == "radtan" and len(dist) >= 4:
            dist[2], dist[3] = -dist[3], dist[2]
        w, h = h, w
    return replace(camera, matrix=K, dist=dist, size=(w, h))


def fit_to_video(camera: Camera, width: int, height: int, *, rotation: int = 0) -> Camera:
    """``camera`` for frames of ``width`` x ``height`` (as displayed): rotated with the frames when
    the calibration is of the stored sensor (its size is the transposed one), then scaled.

    Raises:
        PosepipeError: another aspect ratio (naming the calibration).
    """
    if rotation % 180 == 90 and camera.size[0] != camera.size[1]:
        stored_landscape = camera.size[0] > camera.size[1]
        if stored_landscape != (width > height):
            camera = rotate_camera(camera, rotation)
    cw, ch = camera.size
    if abs((width / height) / (cw / ch) - 1) > ASPECT_TOLERANCE:
        raise PosepipeError(
            camera.origin or None,
            f"calibrated at {cw}x{ch}, the video is {width}x{height}: another aspect ratio (crop or a "
            "different mode?); calibrate at the video's aspect ratio",
        )
    if (cw, ch) == (width, height):
        return camera
    sx, sy = width / cw, height / ch
    K = camera.matrix.copy()
    # Pixel centres at integers (OpenCV): scale about the image's corner at (-0.5, -0.5).
    K[0, 0], K[0, 1], K[0, 2] = K[0, 0] * sx, K[0, 1] * sx, (K[0, 2] + 0.5) * sx - 0.5
    K[1, 1], K[1, 2] = K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5
    return replace(camera, matrix=K, size=(width, height))


def resolve_camera(
    width: int,
    height: int,
    *,
    rotation: int = 0,
    calibration: str | os.PathLike | None = None,
    name: str | None = None,
    sheet: dict | None = None,
    sheet_origin: str = "sample sheet",
    fov_deg: float | None = None,
    assumed_fov_deg: float | None = None,
) -> Camera:
    """The video's camera by precedence (module docstring): a calibration file, the sheet's
    columns, the config's ``fov_deg``, else the assumed field of view."""
    if calibration is not None:
        return fit_to_video(load_calibration(calibration, name=name), width, height, rotation=rotation)
    if sheet:
        camera = from_sheet(sheet, width, height, origin=sheet_origin)
        if camera is not None:
            return camera
    if fov_deg is not None:
        return from_fov(width, height, fov_deg, source="config", origin="world.fov_deg")
    if assumed_fov_deg is None:
        from posepipe.settings import schema_default

        assumed_fov_deg = schema_default("world.assumed_fov_deg")
    return from_fov(width, height, assumed_fov_deg, source="assumed", origin="world.assumed_fov_deg")


# ---- points ----------------------------------------------------------------------------------------


def undistort_points(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Pixels (..., 2) of the real lens -> pixels of an ideal pinhole camera with the same matrix
    (NaN stays NaN). A pinhole camera returns the points unchanged."""
    points = np.asarray(points, dtype=np.float64)
    if not camera.distorted:
        return points.copy()
    import cv2

    flat = points.reshape(-1, 2)
    out = np.full_like(flat, np.nan)
    ok = np.isfinite(flat).all(axis=1)
    if ok.any():
        src = flat[ok].reshape(-1, 1, 2)
        if camera.lens == "fisheye":
            dst = cv2.fisheye.undistortPoints(
                src, camera.matrix, camera.dist.reshape(4, 1), P=camera.matrix,
                criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12),
            )  # fmt: skip
        else:
            dst = cv2.undistortPoints(
                src, camera.matrix, camera.dist, None, None, camera.matrix,
                (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12),
            )  # fmt: skip
        out[ok] = dst.reshape(-1, 2)
    return out.reshape(points.shape)


def project_points(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Camera-space points (..., 3) -> pixels (..., 2) through the lens (OpenCV's models)."""
    import cv2

    points = np.asarray(points, dtype=np.float64)
    flat = points.reshape(-1, 3)
    out = np.full((len(flat), 2), np.nan)
    ok = np.isfinite(flat).all(axis=1) & (flat[:, 2] > 0) if len(flat) else np.zeros(0, bool)
    if ok.any():
        zero = np.zeros(3)
        if camera.lens == "fisheye":
            img, _ = cv2.fisheye.projectPoints(
                flat[ok].reshape(-1, 1, 3), zero, zero, camera.matrix, camera.dist
            )
        else:
            img, _ = cv2.projectPoints(
                flat[ok], zero, zero, camera.matrix, camera.dist if camera.distorted else None
            )
        out[ok] = img.reshape(-1, 2)
    return out.reshape(*points.shape[:-1], 2)
