"""The Snakemake report opens in a real browser: headless Chromium renders the report and a QC
page of a small finished run to PNG (skipped where no chromium is installed: apt-get install
chromium)."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from posepipe.testing import add_video, random_checkpoint
from tests.snakemake_run import snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(url: str, out) -> np.ndarray:
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900",
         "--virtual-time-budget=10000", f"--screenshot={out}", url],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = cv2.imread(str(out))
    assert image is not None and image.shape[:2] == (900, 1400)
    return image


def dom(url: str) -> str:
    """The page's DOM after its scripts and image loads (headless Chromium's --dump-dom)."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)")
def test_report_and_qc_page_render_in_chromium(tmp_path):
    add_video(tmp_path, "clip", frames=20)
    random_checkpoint(tmp_path / "lifter.bin")
    config = {"input": {"directory": "videos"}, "keypoints2d": {"source": "file"},
              "lift3d": {"checkpoint": "lifter.bin"}, "render": {"height": 64, "audio": False}}  # fmt: skip
    snakemake(tmp_path, "--cores", "2", config=config)
    snakemake(tmp_path, "--report", "report.html", config=config)
    report = screenshot((tmp_path / "report.html").as_uri(), tmp_path / "report.png")
    page = screenshot((tmp_path / "results/clip/qc/qc.html").as_uri(), tmp_path / "qc.png")
    for image in (report, page):
        # Not a blank page: text and figures make many distinct colours and dark pixels.
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
        assert (image.mean(axis=2) < 100).mean() > 0.002
    # qc.html opened alone shows the render preview beside it; a copy elsewhere (as inside the
    # report) says where the preview is instead of showing a broken image.
    assert '<img alt="preview of clip"' in dom((tmp_path / "results/clip/qc/qc.html").as_uri())
    moved = tmp_path / "moved" / "qc.html"
    moved.parent.mkdir()
    shutil.copy(tmp_path / "results/clip/qc/qc.html", moved)
    moved_dom = dom(moved.as_uri())
    assert '<img alt="preview of clip"' not in moved_dom and "is written by the render stage" in moved_dom
