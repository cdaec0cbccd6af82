"""Encoding: raw BGR frames -> H.264 mp4 through ffmpeg, joining segments, audio, GIF/mp4 previews.

- :class:`Encoder`: one ffmpeg/libx264 process reading raw ``bgr24`` frames on stdin (a context
  manager); x264 options come from :class:`EncoderOptions` (crf or bitrate, preset, threads;
  yuv420p with BT.709 conversion and tags, which browsers assume for HD video).
- :func:`join_segments`: mp4 segments -> one mp4 without re-encoding (ffmpeg concat demuxer),
  adding the final options (audio, metadata, ``+faststart``) in the same pass.
- :func:`audio_args`: ffmpeg arguments that add the source's audio aligned to the timeline.
- :func:`write_preview`: a short, small GIF (palette from the clip itself) or mp4 of a video.

ffmpeg is the one imageio-ffmpeg ships (:func:`ffmpeg_exe`); its failures raise
:class:`posepipe.errors.PosepipeError` naming the output and ffmpeg's last error lines.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from posepipe.atomic import atomic_path
from posepipe.errors import PosepipeError

log = logging.getLogger(__name__)

DEFAULT_PRESET = "ultrafast"  # x264: encoding is ~80% of render CPU; same SSIM as veryfast, ~2.3x the bytes


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class EncoderOptions:
    """libx264 settings: ``crf`` (quality) unless ``bitrate`` (e.g. '3000k') is given."""

    crf: int = 18
    bitrate: str | None = None
    preset: str = DEFAULT_PRESET
    x264_threads: int | None = None

    def args(self) -> list[str]:
        rate = ["-b:v", self.bitrate] if self.bitrate else ["-crf", str(self.crf)]
        threads = ["-threads", str(self.x264_threads)] if self.x264_threads else []
        # BT.709 conversion and tags: browsers assume 709 for HD video; untagged 601 shifts hues.
        return [
            "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic", "-c:v", "libx264",
            "-preset", self.preset, *rate, *threads, "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        ]  # fmt: skip


def run_ffmpeg(args: list[str], *, what: str, path) -> None:
    """Run ffmpeg with ``args``; a failure raises PosepipeError(path, 'ffmpeg failed to <what>: ...')."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        raise PosepipeError(path, f"ffmpeg failed to {what}: {result.stderr.strip()[-2000:]}")


class Encoder:
    """An ffmpeg process reading raw BGR frames of ``width x height`` on stdin (a context manager).

    ``extra`` goes between the raw input and the x264 options (more inputs, mappings, metadata).
    """

    def __init__(
        self, out: Path, *, width: int, height: int, fps: Fraction, options: EncoderOptions, extra: list[str]
    ):
        self.out = out
        # stderr to a file, not a pipe: an ffmpeg that logs a lot must never block on a full pipe.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close())
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "-",
            *extra, *options.args(), str(out),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._log)
        self._stderr = ""

    def write(self, frame: np.ndarray) -> None:
        try:
            self.proc.stdin.write(memoryview(frame).cast("B"))
        except BrokenPipeError:
            self.close(ok=False)
            raise PosepipeError(self.out, f"the ffmpeg encoder stopped: {self._stderr}") from None

    def close(self, *, ok: bool) -> None:
        """Finish the stream (``ok``) or kill the encoder; raise if a finished stream failed to encode."""
        if self.proc.returncode is None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                ok = False
            if not ok:
                self.proc.kill()
            self.proc.wait()
            self._log.seek(0)
            self._stderr = self._log.read().strip()[-2000:]
            self._log.close()
            if ok and self.proc.returncode != 0:
                raise PosepipeError(
                    self.out, f"ffmpeg encoder failed (exit {self.proc.returncode}): {self._stderr}"
                )

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)


def join_segments(segments: list[Path], out: Path, *, extra: list[str]) -> None:
    """Concatenate mp4 ``segments`` (same encoder settings) into ``out`` without re-encoding.

    The listing is written beside the segments; ``extra`` (audio input and mapping, metadata,
    ``-movflags +faststart``) is applied in this same pass.
    """
    listing = segments[0].parent / f".{out.name}.segments.txt"
    listing.write_text("".join(f"file '{s.name}'\n" for s in segments))
    try:
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), *extra, "-c:v", "copy", str(out)],
                   what="join the rendered parts", path=out)  # fmt: skip
    finally:
        listing.unlink(missing_ok=True)


def audio_args(timeline, *, first_time: float, duration: float) -> list[str]:
    """ffmpeg input + mapping arguments that add the source's audio aligned to the output, or []."""
    header = timeline.header or {}
    if not header.get("has_audio"):
        log.info("render: %s has no audio track; writing video only", timeline.source)
        return []
    if header.get("resampled"):
        log.info("render: the timeline of %s is resampled, so its frames do not follow the audio; skipping audio",
                 timeline.source)  # fmt: skip
        return []
    # -seek_timestamp 1: -ss is the stream timestamp itself (source_time), not an offset from the
    # container's start; ffmpeg decodes audio from before it and trims to the exact sample.
    return [
        "-seek_timestamp", "1", "-ss", f"{first_time:.6f}", "-i", os.fspath(timeline.source),
        "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "160k",
        "-af", "aresample=async=1:first_pts=0", "-t", f"{duration:.6f}",
    ]  # fmt: skip


def write_preview(
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    width: int = 480,
    fps: float = 10.0,
    seconds: float = 4.0,
    html: str | os.PathLike | None = None,
) -> None:
    """A short, small GIF (palette from the clip itself) or mp4 of the middle of ``video`` (atomic);
    with ``html``, also a page that shows the GIF (for ``snakemake --report``)."""
    import av

    with av.open(os.fspath(video)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        rate = float(stream.average_rate or fps)
        source_width = stream.codec_context.width
    start = max(0.0, (duration - seconds) / 2)
    fps = min(fps, rate)
    scale = f"fps={fps:g},scale={min(width, source_width)}:-2:flags=lanczos"
    out = Path(out)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".gif":
            graph = (f"{scale},split[a][b];[a]palettegen=max_colors=128:stats_mode=diff[p];"
                     "[b][p]paletteuse=dither=bayer:bayer_scale=3:diff_mode=rectangle")  # fmt: skip
            args = ["-filter_complex", graph, "-loop", "0", "-f", "gif"]
        else:
            args = ["-vf", scale, "-an", "-c:v", "libx264", "-crf", "26", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart"]  # fmt: skip
        run_ffmpeg(["-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", os.fspath(video), *args, str(tmp)],
                   what="write the preview", path=out)  # fmt: skip
    if html is not None:
        from posepipe.report import image_tag, write_page

        write_page(html, f"Preview of {Path(video).parent.name}: {seconds:g} s from the middle of {Path(video).name}",
                   [image_tag(out, alt="preview")])  # fmt: skip
