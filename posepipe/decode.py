"""Decoding frames of a video (PyAV), the ground floor under every stage that looks at pixels.

:func:`iter_frames` yields the frames of a frame timeline (:mod:`posepipe.artefacts.timeline`):
it decodes the source, applies the rotation and repeats or skips source frames as the timeline's
table says; it seeks, so parallel workers can each read a range. :func:`decoded_frames` is the
damage-tolerant decode loop the probe also counts frames with.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from posepipe.artefacts.timeline import Timeline
from posepipe.errors import PosepipeError

log = logging.getLogger(__name__)

# Decoder threading. Frame threading ("FRAME", part of "AUTO") hides decode errors: a worker
# thread's failure can come back with another frame's output and PyAV then drops the error (a
# truncated last packet decodes to nothing, silently), and the set of frames decoded from a
# damaged file then depends on the thread count. Slice threading reports every error and
# gives the same frames on every machine.
DECODE_THREADS = "SLICE"

MAX_FAILED_READS = 8  # consecutive demuxer read errors after which the rest of the file is given up


def open_video(path: str | os.PathLike):
    import av

    given, path = os.fspath(path), Path(path)
    if not path.exists():  # named as given: an s3:// URL of a sample sheet keeps its '//'
        raise PosepipeError(given, "file not found")
    if path.stat().st_size == 0:
        raise PosepipeError(path, "file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise PosepipeError(path, f"not a readable video ({exc.strerror or exc})") from exc
    if not container.streams.video:
        container.close()
        raise PosepipeError(path, "contains no video stream")
    stream = container.streams.video[0]
    stream.thread_type = DECODE_THREADS
    return container, stream


def decode_errors():
    import av

    return (av.error.FFmpegError, EOFError)


class DecodeErrors:
    """Count of the packets that failed to decode (or to be read), and the first reason."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def add(self, exc: Exception) -> None:
        self.count += 1
        if self.first is None:
            self.first = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def decoded_frames(container, stream, errors: DecodeErrors) -> Iterator:
    """Every frame of ``stream`` that decodes, in presentation order; damaged packets are skipped.

    Each packet is decoded on its own, so a packet the decoder rejects costs that packet (and
    what references it) instead of the rest of the video; every rejected packet, and every read
    error of the demuxer, is added to ``errors``. The demuxer's final empty packet drains the
    decoder's delayed frames.
    """
    codec = stream.codec_context
    failed_reads = 0
    while failed_reads < MAX_FAILED_READS:
        try:
            for packet in container.demux(stream):
                failed_reads = 0
                try:
                    frames = codec.decode(packet)
                except decode_errors() as exc:
                    errors.add(exc)
                    continue
                yield from frames
            return
        except decode_errors() as exc:  # the demuxer could not read on; try the next packet
            errors.add(exc)
            failed_reads += 1
    try:  # the demuxer gave up before its final packet: drain the decoder here
        yield from codec.decode(None)
    except decode_errors() as exc:
        errors.add(exc)


def rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4  # rotation is counter-clockwise, like np.rot90
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def iter_frames(
    timeline: Timeline, *, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (timeline index, BGR uint8 (height, width, 3)) for frames ``start:stop``.

    Decodes the source once, seeking near ``start`` when timestamps allow; a source frame that
    the timeline repeats (resampling up) is converted once and yielded for each use. Damaged
    packets are skipped as the probe skipped them (the timeline references only frames the probe
    decoded); a referenced frame that does not decode raises :class:`PosepipeError` naming it, so
    a reader never gets fewer frames than the timeline has. (In a damaged stretch, pixels that
    the decoder's error concealment makes up can depend on where decoding started; intact
    frames are the same whether the reader seeks or not.)
    """
    stop = timeline.frame_count if stop is None else min(stop, timeline.frame_count)
    if start >= stop:
        return
    want_idx = timeline.source_frame[start:stop]
    want_pts = timeline.source_pts[start:stop]
    by_pts = timeline.timestamps_reliable  # else frames are known only by their decoding order
    seek = by_pts and want_idx[0] > 0

    def missing(j: int, why: str) -> PosepipeError:
        return PosepipeError(
            timeline.source,
            f"frame {start + j} of the timeline (source frame {want_idx[j]}, pts {want_pts[j]}) {why}",
        )

    for attempt in ("seek", "scan") if seek else ("scan",):
        container, stream = open_video(timeline.source)
        errors = DecodeErrors()
        j, decoded = 0, -1
        try:
            if attempt == "seek":
                try:
                    container.seek(int(want_pts[0]), stream=stream, backward=True, any_frame=False)
                except decode_errors():
                    continue  # decode from the start instead
            for frame in decoded_frames(container, stream, errors):
                decoded += 1
                if by_pts:
                    if frame.pts is None or frame.pts < want_pts[j]:
                        continue
                    if frame.pts != want_pts[j]:
                        if attempt == "seek" and j == 0:
                            break  # the seek overshot: decode from the start instead
                        raise missing(j, "did not decode (has the file changed since probing?)")
                elif decoded < want_idx[j]:
                    continue
                source_index = want_idx[j]
                image = rotate(frame.to_ndarray(format="bgr24"), timeline.rotation)
                while j < len(want_idx) and want_idx[j] == source_index:
                    yield start + j, image
                    j += 1
                if j == len(want_idx):
                    return
            else:
                raise missing(j, "did not decode: the video ended first (has it changed since probing?)")
        finally:
            container.close()
            if errors.count:
                log.warning(
                    "%s: skipped %d undecodable packet(s) reading timeline frames %d-%d (first: %s)",
                    timeline.source, errors.count, start, start + j, errors.first,
                )  # fmt: skip
