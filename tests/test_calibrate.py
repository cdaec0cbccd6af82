"""python -m posepipe calibrate on rendered checkerboard views of a known camera."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posepipe.calibrate import run_calibrate
from posepipe.camera import load_calibration
from posepipe.errors import PosepipeError

K = np.array([[820.0, 0.0, 322.0], [0.0, 820.0, 236.0], [0.0, 0.0, 1.0]])
COLUMNS, ROWS, SQUARE = 7, 5, 0.03


def render_board(rvec, tvec, size=(640, 480), scale=4):
    """A white image with the board's black squares projected by K (drawn at ``scale`` x, then
    shrunk: anti-aliased edges)."""
    big = np.full((size[1] * scale, size[0] * scale), 255, np.uint8)
    Ks = K.copy()
    Ks[:2] *= scale
    Ks[:2, 2] += (scale - 1) / 2
    for i in range(-1, COLUMNS):
        for j in range(-1, ROWS):
            if (i + j) % 2:
                continue
            corners = np.array([[i, j, 0], [i + 1, j, 0], [i + 1, j + 1, 0], [i, j + 1, 0]], float) * SQUARE
            img, _ = cv2.projectPoints(corners, rvec, tvec, Ks, None)
            cv2.fillConvexPoly(big, np.round(img.reshape(-1, 2) * 16).astype(np.int32), 0, cv2.LINE_AA, 4)
    return cv2.resize(big, size, interpolation=cv2.INTER_AREA)


def test_recovers_the_camera(tmp_path):
    rng = np.random.default_rng(0)
    centre = np.array([(COLUMNS - 1) / 2, (ROWS - 1) / 2, 0]) * SQUARE
    for k in range(12):
        rvec = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3)])
        R = cv2.Rodrigues(rvec)[0]
        shift = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.04, 0.04), rng.uniform(0.45, 0.65)])
        tvec = shift - R @ centre
        cv2.imwrite(str(tmp_path / f"view{k:02d}.png"), render_board(rvec, tvec))
    result = run_calibrate(str(tmp_path / "view*.png"), tmp_path / "cam.yaml", board=f"{COLUMNS}x{ROWS}",
                           square_mm=SQUARE * 1000)  # fmt: skip
    assert result["views"] >= 10 and result["rms_px"] < 0.2
    camera = load_calibration(tmp_path / "cam.yaml")
    assert camera.size == (640, 480)
    np.testing.assert_allclose(np.diag(camera.matrix)[:2], [820, 820], rtol=0.01)
    np.testing.assert_allclose(camera.matrix[:2, 2], [322, 236], atol=6)


def test_too_few_views(tmp_path):
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((48, 64), 255, np.uint8))
    with pytest.raises(PosepipeError, match="found in 0 views"):
        run_calibrate(str(tmp_path / "*.png"), tmp_path / "c.yaml", board="7x5", square_mm=30)
    with pytest.raises(PosepipeError, match="COLUMNSxROWS"):
        run_calibrate(str(tmp_path / "*.png"), tmp_path / "c.yaml", board="seven", square_mm=30)
