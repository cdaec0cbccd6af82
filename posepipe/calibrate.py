"""``python -m posepipe calibrate``: a camera's intrinsics from a video (or images) of a checkerboard.

Film a printed checkerboard with the camera and settings of the recordings (same resolution,
zoom and stabilisation), from several angles and distances, filling the corners of the picture
too; then ``python -m posepipe calibrate board.mp4 --board 9x6 --square-mm 25 --out camera.yaml``
writes an OpenCV ``FileStorage`` YAML that the world stage reads (README, World frame).

Steps (OpenCV's own calibration): every ``--every``-th frame is searched for the board's inner
corners (``cv2.findChessboardCorners``, refined by ``cv2.cornerSubPix``); at most ``--max-views``
views, spread over the video, go to ``cv2.calibrateCamera`` (radial-tangential k1, k2, p1, p2, k3)
or ``cv2.fisheye.calibrate`` (``--fisheye``: k1..k4). The RMS reprojection error is printed and
written into the file (``rms_px``): below about 0.5 px is a good calibration.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
from pathlib import Path

import numpy as np

from posepipe.errors import PosepipeError

log = logging.getLogger(__name__)
MIN_VIEWS = 5


def board_points(columns: int, rows: int, square: float) -> np.ndarray:
    """(columns x rows, 3) inner-corner positions on the board plane (z = 0), in ``square`` units."""
    grid = np.mgrid[0:columns, 0:rows].T.reshape(-1, 2).astype(np.float64)
    return np.concatenate([grid * square, np.zeros((len(grid), 1))], axis=1)


def frames_of(source: str | os.PathLike, every: int):
    """Grey images of a video (every ``every``-th frame) or of image files (a glob pattern)."""
    import cv2

    files = sorted(glob.glob(os.fspath(source))) if any(c in os.fspath(source) for c in "*?[") else []
    if files:
        for name in files:
            image = cv2.imread(name, cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise PosepipeError(name, "cannot read the image")
            yield image
        return
    if not Path(source).is_file():
        raise PosepipeError(source, "no such video or images")
    capture = cv2.VideoCapture(os.fspath(source))
    if not capture.isOpened():
        raise PosepipeError(source, "cannot open the video")
    try:
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            index += 1
    finally:
        capture.release()


def find_views(
    source, *, columns: int, rows: int, every: int = 1
) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The refined inner corners ((columns x rows, 2) each) of every image where the whole board is
    found, and the image size (width, height)."""
    import cv2

    views, size = [], None
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
    for image in frames_of(source, every):
        this = (image.shape[1], image.shape[0])
        if size is not None and this != size:
            raise PosepipeError(source, f"images of {this} and {size} pixels: one camera mode, please")
        size = this
        found, corners = cv2.findChessboardCorners(
            image, (columns, rows), flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        )
        if found:
            corners = cv2.cornerSubPix(image, corners, (5, 5), (-1, -1), criteria)
            views.append(corners.reshape(-1, 2).astype(np.float64))
    if size is None:
        raise PosepipeError(source, "no frames")
    return views, size


def calibrate(
    views: list[np.ndarray],
    size: tuple[int, int],
    *,
    columns: int,
    rows: int,
    square: float,
    fisheye: bool,
    max_views: int = 40,
    path=None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(camera matrix, distortion coefficients, RMS reprojection error in px) from the views."""
    import cv2

    if len(views) < MIN_VIEWS:
        raise PosepipeError(
            path, f"the {columns}x{rows} board was found in {len(views)} views, {MIN_VIEWS} needed"
        )
    chosen = [
        views[i] for i in np.linspace(0, len(views) - 1, min(max_views, len(views))).round().astype(int)
    ]
    obj = board_points(columns, rows, square)
    if fisheye:
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
        rms, K, D, _, _ = cv2.fisheye.calibrate(
            [obj.reshape(-1, 1, 3)] * len(chosen), [v.reshape(-1, 1, 2) for v in chosen], size, None, None,
            flags=flags, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10),
        )  # fmt: skip
    else:
        rms, K, D, _, _ = cv2.calibrateCamera(
            [obj.astype(np.float32)] * len(chosen), [v.astype(np.float32) for v in chosen], size, None, None
        )
    return np.asarray(K, np.float64), np.asarray(D, np.float64).reshape(-1), float(rms)


def save_calibration(
    path, K: np.ndarray, dist: np.ndarray, size: tuple[int, int], *, fisheye: bool, rms: float
):
    """An OpenCV FileStorage YAML that :func:`posepipe.camera.load_calibration` reads."""
    import cv2

    from posepipe.atomic import atomic_path

    with atomic_path(path, suffix=".yaml") as tmp:
        fs = cv2.FileStorage(os.fspath(tmp), cv2.FILE_STORAGE_WRITE)
        fs.write("image_width", int(size[0]))
        fs.write("image_height", int(size[1]))
        fs.write("camera_matrix", K)
        fs.write("distortion_coefficients", dist.reshape(1, -1))
        fs.write("distortion_model", "fisheye" if fisheye else "radtan")
        fs.write("rms_px", float(rms))
        fs.release()


def run_calibrate(source, out, *, board: str, square_mm: float, fisheye: bool = False, every: int = 1,
                  max_views: int = 40) -> dict:  # fmt: skip
    """Calibrate from ``source`` and write ``out``; returns {camera_matrix, dist_coeffs, rms_px, views}."""
    try:
        columns, rows = (int(n) for n in board.lower().split("x"))
    except ValueError:
        raise PosepipeError(None, f"--board {board!r}: inner corners as COLUMNSxROWS, e.g. 9x6") from None
    views, size = find_views(source, columns=columns, rows=rows, every=every)
    K, dist, rms = calibrate(
        views, size, columns=columns, rows=rows, square=square_mm / 1000, fisheye=fisheye, max_views=max_views,
        path=source,
    )  # fmt: skip
    save_calibration(out, K, dist, size, fisheye=fisheye, rms=rms)
    log.info("%s: %d views, RMS %.3f px -> %s", source, len(views), rms, out)
    return {"camera_matrix": K.tolist(), "dist_coeffs": dist.tolist(), "rms_px": rms, "views": len(views)}


def register_cli(sub) -> None:
    p = sub.add_parser("calibrate", help="camera intrinsics from a video (or images) of a checkerboard")
    p.add_argument("source", help="a video, or a quoted glob of images ('board/*.png')")
    p.add_argument("--board", required=True, help="inner corners, COLUMNSxROWS (a 10x7-square board is 9x6)")
    p.add_argument("--square-mm", type=float, required=True, help="side of one square, millimetres")
    p.add_argument("--out", type=Path, required=True, help="the calibration file to write (.yaml)")
    p.add_argument(
        "--fisheye", action="store_true", help="OpenCV's fisheye model (k1..k4) instead of k1, k2, p1, p2, k3"
    )
    p.add_argument("--every", type=int, default=1, help="search every N-th frame of a video")
    p.add_argument("--max-views", type=int, default=40, help="views used, spread over the video")

    def run(args: argparse.Namespace) -> None:
        result = run_calibrate(
            args.source, args.out, board=args.board, square_mm=args.square_mm, fisheye=args.fisheye,
            every=args.every, max_views=args.max_views,
        )  # fmt: skip
        print(f"{args.out}: {result['views']} views, RMS reprojection error {result['rms_px']:.3f} px")

    p.set_defaults(handler=run)
