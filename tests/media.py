"""Small synthetic videos for tests, made with the ffmpeg that imageio-ffmpeg ships and PyAV.

Frames carry their own index as a flat grey level (``level(i)``), so a test can tell which
source frame a decoded image came from even after lossy compression.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def level(i: int) -> int:
    """Grey level of frame ``i`` in videos made by :func:`write_indexed_video` (distinct for i < 24)."""
    return 16 + (i % 24) * 9


def write_indexed_video(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    fps: Fraction | int = 30,
    frames: int = 30,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """H.264 mp4 whose frame i is flat grey ``level(i)``; ``pts`` (in ``time_base``) makes it VFR."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10", "bf": "0"}
        if time_base is not None:
            stream.codec_context.time_base = time_base
        for i in range(frames):
            image = np.full((height, width, 3), level(i), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


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


def mean_level(image: np.ndarray) -> float:
    return float(image.mean())
