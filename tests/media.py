"""Test clips made with the ffmpeg that imageio-ffmpeg ships, and where the repository's test data is.

Videos whose frames carry their own index (``write_indexed_video``, ``level``) are built by
:mod:`posepipe.testing`; they are importable from here too, for the test modules that import
them from this module.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from posepipe.testing import level, write_indexed_video

__all__ = ["TEST_DATA", "ffmpeg", "ffmpeg_exe", "level", "write_indexed_video", "write_test_video"]

# Data files kept in the repository for the tests (tests/data/README.md): the real sample clip with
# its keypoints (media/) and the upstream VideoPose3D parity fixture (vp3d/). Every clone has them.
TEST_DATA = Path(__file__).resolve().parent / "data"


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def write_test_video(
    path: Path, *, size: str = "160x120", rate: str = "30", seconds: float = 1.0, extra: tuple[str, ...] = ()
) -> Path:
    """ffmpeg testsrc clip (H.264 unless ``extra`` says otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}", "-t", str(seconds),
        "-pix_fmt", "yuv420p", *extra, str(path),
    )  # fmt: skip
    return path
