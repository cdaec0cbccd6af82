"""The bad-input corpus: awkward and damaged videos and hostile keypoint files, made on the spot.

``build(folder)`` writes every case into ``folder/videos`` (plus ``folder/samples.tsv`` for the
cases whose keypoints file is not ``{stem}.coco.json``) and returns the :data:`Case` list, each
with the behaviour expected of the workflow under ``--keep-going``: the summary status of its
row (a regular expression), a warning that must be in its row, and files that must never appear
(a payload's marker). Nothing binary is committed; ``python -m tests.corpus DIR`` builds it by
hand.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posepipe.testing import coco_results, write_indexed_video, write_timeline
from tests.media import ffmpeg

W, H = 64, 48


@dataclass(frozen=True)
class Case:
    """``video`` is the id the workflow gives the file; ``status`` a regex for its summary status."""

    name: str
    file: str
    video: str
    status: str
    why: str
    warning: str | None = None
    never: tuple[str, ...] = ()


class Payload:
    """Unpickling it would create ``marker``: the stand-in for code in a data file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _keypoints_for(video: Path, out: Path, *, frames: int | None = None, **options) -> list[dict]:
    """COCO results for every frame of ``video``'s timeline (its frame count found by probing)."""
    if frames is None:
        scratch = out.parent.parent / ".probe" / video.stem
        frames = json.loads(write_timeline(video, scratch).read_text())["frame_count"]
    entries = coco_results(
        frames, width=options.pop("width", W), height=options.pop("height", H), seed=1, **options
    )
    out.write_text(json.dumps(entries))
    return entries


def _encoded(path: Path, *, codec: list[str], size: str = f"{W}x{H}", frames: int = 12, extra=()) -> Path:
    ffmpeg(
        *extra,
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate=25",
        "-frames:v",
        str(frames),
        *codec,
        str(path),
    )
    return path


def build(folder: str | os.PathLike) -> list[Case]:
    folder = Path(folder)
    videos = folder / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    samples = ["path\tkeypoints2d"]

    def good(
        stem: str, video: Path | None = None, *, why: str, warning=None, vid=None, never=(), **kp
    ) -> None:
        video = video or write_indexed_video(videos / f"{stem}.mp4", frames=12)
        _keypoints_for(video, videos / f"{stem}.coco.json", **kp)
        cases.append(Case(stem, video.name, vid or stem, "complete", why, warning, never))

    good("good", why="a plain H.264 clip")
    good("one_frame", write_indexed_video(videos / "one_frame.mp4", frames=1), empty_frames=(), why="1 frame")
    good("odd_size", _encoded(videos / "odd_size.mp4", size="161x121", codec=["-c:v", "libx264", "-pix_fmt", "yuv444p"]),
         width=161, height=121, why="odd width and height (render pads to even)")  # fmt: skip
    good(
        "vp9", _encoded(videos / "vp9.webm", codec=["-c:v", "libvpx-vp9", "-b:v", "200k"]), why="VP9 in WebM"
    )
    good("hevc", _encoded(videos / "hevc.mkv", codec=["-c:v", "libx265", "-x265-params", "log-level=none"]),
         why="HEVC in Matroska")  # fmt: skip
    good("mjpeg", _encoded(videos / "mjpeg.avi", codec=["-c:v", "mjpeg"]), why="Motion JPEG in AVI")
    good("late_start", _encoded(videos / "late_start.mp4", codec=["-c:v", "libx264"], extra=("-itsoffset", "2")),
         why="video stream starts 2 s into the container")  # fmt: skip

    # Damage: a clip cut at 30 %, and one with random bytes in the middle; both decoded as far as
    # possible, the loss recorded and warned about in summary.csv.
    codec = ["-c:v", "libx264", "-g", "10", "-movflags", "+faststart"]  # the index first, as cameras write
    data = _encoded(folder / "whole.mp4", codec=codec, frames=120, size="160x120").read_bytes()
    (videos / "truncated.mp4").write_bytes(data[: int(len(data) * 0.3)])
    good("truncated", videos / "truncated.mp4", width=160, height=120, why="the first 30 % of a file",
         warning="of frames lost to damage")  # fmt: skip
    noisy = bytearray(data)
    noisy[len(data) // 2 : len(data) // 2 + 2000] = np.random.default_rng(0).bytes(2000)
    (videos / "bytes_in_middle.mp4").write_bytes(bytes(noisy))
    good("bytes_in_middle", videos / "bytes_in_middle.mp4", width=160, height=120,
         why="2 kB of random bytes in the middle", warning="of frames lost to damage")  # fmt: skip

    # Cut before its index (the moov box at the end, ffmpeg's default): nothing is readable.
    tail = _encoded(
        folder / "tail_index.mp4", codec=["-c:v", "libx264"], frames=60, size="160x120"
    ).read_bytes()
    (videos / "cut_before_index.mp4").write_bytes(tail[: len(tail) // 2])
    cases.append(Case("cut_before_index", "cut_before_index.mp4", "cut_before_index",
                      r"failed at probe: .*cut_before_index\.mp4: not a readable video",
                      "half of a file whose index is at its end"))  # fmt: skip

    # Hostile and awkward names: processed like any other; no shell ever runs part of a name.
    marker = folder / "pwned_by_name"
    good(f"$(touch {marker.name})", vid="touch_pwned_by_name", never=(marker.name,),
         why="command substitution in the name")  # fmt: skip
    good("it's; here", vid="it_s_here", why="quote and semicolon in the name")
    good("Tänzer 1 (take 2)", vid="Tanzer_1_take_2", why="accents, spaces and brackets")
    good("qc_summary.csv", vid="qc_summary.csv_video", why="named like a run-wide file")
    good("dataset2d_custom.npz", vid="dataset2d_custom.npz_video", why="named like the merged 2D dataset")

    # Bad keypoint files: the video fails at keypoints2d with one line, the others go on.
    def bad_keypoints(stem: str, change, *, status: str, why: str) -> None:
        video = write_indexed_video(videos / f"{stem}.mp4", frames=12)
        entries = coco_results(12, width=W, height=H, seed=2)
        change(entries)
        (videos / f"{stem}.coco.json").write_text(json.dumps(entries))  # json writes NaN as NaN
        cases.append(Case(stem, video.name, stem, status, why))

    bad_keypoints("nan_score", lambda e: e[3].update(score=float("nan")), why="a NaN box score",
                  status=r"failed at keypoints2d: .*nan_score\.coco\.json: frame 4: a box score value is NaN")  # fmt: skip

    def far(entries):
        entries[5]["keypoints"][0] = 1e30

    bad_keypoints("far_point", far, why="a keypoint at 1e30 px",
                  status=r"failed at keypoints2d: .*far_point\.coco\.json: a point lies at \(1e\+30")  # fmt: skip

    def nobody(entries):
        for entry in entries:
            entry["score"] = 0.3

    bad_keypoints("nobody", nobody, why="every person below the score threshold",
                  status=r"failed at dataset2d: .*no person detected in any of the 12 frames "
                  r"\(keypoints2d.score_threshold 0.7 removed all 11 persons")  # fmt: skip

    def other_category(entries):
        for entry in entries:
            entry["category_id"] = 2

    bad_keypoints("other_category", other_category, why="every detection of another category (category_id 2)",
                  status=r"failed at dataset2d: .*no person detected in any of the 12 frames "
                  r"\(all 11 detections in the keypoints file are of categories other than person")  # fmt: skip
    write_indexed_video(videos / "no_keypoints.mp4", frames=12)
    cases.append(Case("no_keypoints", "no_keypoints.mp4", "no_keypoints",
                      r"failed at keypoints2d: .*no_keypoints\.coco\.json: keypoints file not found",
                      "no keypoints file beside the video"))  # fmt: skip

    # A keypoints file that carries code (infer_video_d2 layout, listed in the sample sheet).
    evil_marker = folder / "pwned_by_npz"
    write_indexed_video(videos / "evil.mp4", frames=12)
    boxes = np.empty(12, dtype=object)
    boxes[:] = [[[], np.zeros((1, 5))]] * 11 + [[[], Payload(str(evil_marker))]]
    np.savez(videos / "evil.d2.npz", boxes=boxes, keypoints=boxes)
    samples.append("videos/evil.mp4\tvideos/evil.d2.npz")
    cases.append(Case("evil", "evil.mp4", "evil", r"failed at keypoints2d: .*evil\.d2\.npz: refused for safety",
                      "a keypoints .npz whose pickle would run a command", never=(evil_marker.name,)))  # fmt: skip

    # A sample-sheet row whose file does not exist: that video fails alone.
    samples.append("videos/gone.mp4\t")
    cases.append(Case("gone", "gone.mp4", "gone", r"failed at probe: .*gone\.mp4: file not found",
                      "a sample-sheet row whose file does not exist"))  # fmt: skip

    # Not videos at all.
    (videos / "zero_bytes.mp4").write_bytes(b"")
    (videos / "text_as_video.mp4").write_text("this is not a video\n" * 20)
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(videos / "audio_only.mp4")
    )
    for stem, reason, why in (("zero_bytes", "file is empty", "0 bytes"),
                              ("text_as_video", "not a readable video", "text named .mp4"),
                              ("audio_only", "contains no video stream", "sound only")):  # fmt: skip
        cases.append(Case(stem, f"{stem}.mp4", stem, rf"failed at probe: .*{stem}\.mp4: {reason}", why))
    (folder / "samples.tsv").write_text("\n".join(samples) + "\n")
    shutil.rmtree(folder / ".probe", ignore_errors=True)
    return cases


if __name__ == "__main__":
    for case in build(sys.argv[1]):
        print(f"{case.file:32} {case.status:70} {case.why}")
