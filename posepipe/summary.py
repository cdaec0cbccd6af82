"""results/summary.csv: one row per video, whatever state it is in.

Written at the end of every workflow run (also one where some videos failed), from the files
under ``results/{video}/``. Columns:

- ``video``, ``status``: ``complete``; ``failed at STAGE: REASON`` (the first stage not done has
  no output, and a log written after its input was made and after the stage's last benchmark
  (Snakemake writes that only on success): the job ran on it and did not finish;
  REASON is the log's ``posepipe STAGE: error: ...`` line, else its last line naming an error,
  else its last line); or ``pending (STAGE)`` (the stage has not run on the current input). A
  stage is done when its output exists, the stage before it is done, and its output is not older
  than that stage's (Snakemake's own rule: an output older than its input is out of date).
- ``source``, ``frames``, ``fps``, ``width``, ``height``: from ``frames/timeline.json`` (``source``
  is the video's own path also where the stages read it through a link, see
  ``posepipe.inputs.snakemake_safe_path``).
- ``detection_rate``, ``interpolated_frames``, ``mean_keypoint_score``: from ``dataset2d.npz``.
- ``warnings``: every stage's ``warnings`` list (JSON headers in :data:`WARNING_SOURCES`), joined
  with ``"; "``, plus a note for each of this video's files that could not be read.
- ``{stage}_s``: seconds from Snakemake's benchmark file, only for a done stage whose output is
  not newer than its benchmark file: a time left from an earlier run (of a stage that has since
  failed, been stopped, or gone out of date) is not reported as current.

The summary never fails because of one video's files: anything unreadable becomes a note in
that video's row, and the other rows are unaffected.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from posepipe.atomic import atomic_path
from posepipe.dataset2d import load_dataset2d
from posepipe.errors import PosepipeError
from posepipe.video import load_timeline_header

# Stage -> the output that proves it finished.
STAGE_OUTPUTS = (
    ("probe", "probe.json"),
    ("frames", "frames/timeline.json"),
    ("keypoints2d", "keypoints2d.npz"),
    ("tracks", "tracks.npz"),  # only when people are followed by track (person: main or all)
    ("dataset2d", "dataset2d.npz"),
    ("lift3d", "pose3d.npz"),
    ("render", "render.mp4"),
)

# What a video needs to be complete unless told otherwise: no tracks (person: top_score).
DEFAULT_STAGES = tuple(stage for stage, _ in STAGE_OUTPUTS if stage != "tracks")

# JSON files (under results/{video}/) whose top-level "warnings" list (of strings) is reported.
# A stage that has warnings of its own adds its header here.
WARNING_SOURCES = ("probe.json", "frames/timeline.json")

COLUMNS = (
    ["video", "status", "source", "frames", "fps", "width", "height", "detection_rate",
     "interpolated_frames", "mean_keypoint_score", "warnings"]
    + [f"{stage}_s" for stage, _ in STAGE_OUTPUTS]
)  # fmt: skip

# A benchmark file is written just after its job's output; allow for coarse file-system clocks.
_CLOCK_SLACK_S = 2.0
_OUR_ERROR = re.compile(r"^posepipe [\w-]+: error: (.*)$")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def failure_reason(log: Path) -> str | None:
    """The one line of a stage's log that says why it stopped (see the module docstring)."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if found := _OUR_ERROR.match(line):
            return found.group(1)
    errors = [ln for ln in lines if "error" in ln.lower()]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "the log is empty (the job was stopped before it wrote anything)"


def _shown_source(source: str) -> str:
    """The video's own path where the stages read it through the workflow's link to a name with
    braces (results/{video}/links/, see posepipe.inputs.snakemake_safe_path)."""
    path = Path(source)
    if path.parent.name == "links" and path.is_symlink():
        return os.path.normpath(path.parent / os.readlink(path))
    return source


def _unreadable(path: Path, exc: Exception) -> str:
    text = str(exc) if isinstance(exc, PosepipeError) else f"{path}: {type(exc).__name__}: {exc}"
    return f"unreadable {text}"


def collect_warnings(folder: Path) -> tuple[list[str], list[str]]:
    """(warnings, problems): every ``warnings`` list in the JSON headers of :data:`WARNING_SOURCES`
    under ``folder``, in that order; problems name the headers that could not be read."""
    warnings: list[str] = []
    problems: list[str] = []
    for name in WARNING_SOURCES:
        path = folder / name
        if not path.exists():
            continue
        try:
            found = json.loads(path.read_text()).get("warnings", [])
        except (OSError, ValueError, AttributeError) as exc:
            problems.append(_unreadable(path, exc))
            continue
        if not isinstance(found, list) or not all(isinstance(w, str) for w in found):
            problems.append(f"{path}: 'warnings' is not a list of strings")
            continue
        warnings += found
    return warnings, problems


def stage_states(folder: Path, stages: tuple[str, ...]) -> dict[str, tuple[str, float | None]]:
    """For each of ``stages`` (in workflow order): (state, time of the newest output before it).
    state is 'done', 'missing', or 'stale' (the output is there but older than the stage before
    it, or a stage before it is not done)."""
    states: dict[str, tuple[str, float | None]] = {}
    previous: float | None = None
    broken = False
    for stage, output in STAGE_OUTPUTS:
        if stage not in stages:
            continue
        made = _mtime(folder / output)
        if made is None:
            state = "missing"
        elif broken or (previous is not None and made < previous):
            state = "stale"
        else:
            state = "done"
        states[stage] = (state, previous)
        if state == "done":
            previous = made
        else:
            broken = True
    return states


def _status(folder: Path, states: dict) -> tuple[str, str | None]:
    """(status, the failed stage or None)."""
    for stage, (state, input_time) in states.items():
        if state == "done":
            continue
        log = folder / "logs" / f"{stage}.log"
        logged = _mtime(log)
        benchmarked = _mtime(folder / "benchmarks" / f"{stage}.tsv")
        # A log written after the stage's input was made: the job ran on it. Snakemake writes the
        # benchmark only when the job succeeds, so one written after the log means the output
        # was there and has been removed since: the stage is to do, not failed.
        ran = logged is not None and (input_time is None or logged >= input_time)
        if state == "missing" and ran and (benchmarked is None or benchmarked < logged):
            return f"failed at {stage}: {failure_reason(log)}", stage
        return f"pending ({stage})", None
    return "complete", None


def _benchmark_seconds(folder: Path, stage: str, output: str) -> float | None:
    """The benchmark time of ``stage``, if it belongs to the output that is there now."""
    bench = folder / "benchmarks" / f"{stage}.tsv"
    bench_time, output_time = _mtime(bench), _mtime(folder / output)
    if bench_time is None or output_time is None or output_time > bench_time + _CLOCK_SLACK_S:
        return None
    lines = bench.read_text().splitlines()
    if len(lines) < 2:
        return None
    return round(float(lines[1].split("\t")[0]), 3)


def video_row(results: Path, video: str, *, stages: tuple[str, ...]) -> dict:
    """The summary row of one video; never raises for a bad file (the row says what was wrong).

    ``failed_stage`` (not a column) names the stage whose job failed, if any.
    """
    folder = Path(results) / video
    row: dict = {"video": video}
    problems: list[str] = []
    try:
        states = stage_states(folder, stages)
        row["status"], row["failed_stage"] = _status(folder, states)
    except Exception as exc:  # a summary row is written whatever happened
        states = {}
        row["status"], row["failed_stage"] = f"unknown (cannot read {folder}: {exc})", None

    timeline = folder / "frames/timeline.json"
    if timeline.exists():
        try:
            header = load_timeline_header(timeline)
            row |= {"source": _shown_source(header["source"]), "frames": header["frame_count"]}
            row |= {"fps": round(header["fps"], 4), "width": header["width"], "height": header["height"]}
        except Exception as exc:
            problems.append(_unreadable(timeline, exc))
    dataset = folder / "dataset2d.npz"
    if dataset.exists():
        try:
            ds = load_dataset2d(dataset)
            detected = ds.detected.astype(bool)
            row["detection_rate"] = round(float(detected.mean()), 4)
            row["interpolated_frames"] = int((~detected).sum())
            if ds.scores is not None and detected.any():
                row["mean_keypoint_score"] = round(float(ds.scores[detected].mean()), 4)
        except Exception as exc:
            problems.append(_unreadable(dataset, exc))
    try:
        warnings, unreadable = collect_warnings(folder)
    except Exception as exc:
        warnings, unreadable = [], [f"cannot collect warnings ({exc})"]
    if warnings or unreadable or problems:
        row["warnings"] = "; ".join(warnings + unreadable + problems)
    for stage, output in STAGE_OUTPUTS:
        if states.get(stage, ("missing",))[0] != "done":
            continue  # a time left from an earlier run
        try:
            seconds = _benchmark_seconds(folder, stage, output)
        except Exception as exc:
            seconds = None
            row["warnings"] = "; ".join(
                filter(None, [row.get("warnings"), f"bad benchmark of {stage} ({exc})"])
            )
        if seconds is not None:
            row[f"{stage}_s"] = seconds
    return row


def write_summary(
    videos: list[str],
    *,
    out: str | os.PathLike = "results/summary.csv",
    results: str | os.PathLike = "results",
    stages: tuple[str, ...] = DEFAULT_STAGES,
) -> list[dict]:
    """Write the summary table (atomically) and return its rows."""
    import pandas as pd

    rows = [video_row(Path(results), video, stages=stages) for video in videos]
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return rows


def register_cli(sub) -> None:
    p = sub.add_parser("summary", help="write results/summary.csv for the given video ids")
    p.add_argument("videos", nargs="*", help="video ids (default: every folder under --results)")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="results/summary.csv")
    p.add_argument("--no-render", action="store_true", help="a video is complete without render.mp4")
    p.add_argument("--tracks", action="store_true", help="a video needs tracks.npz (person: main or all)")

    def run(args) -> None:
        videos = args.videos or sorted(
            p.name for p in Path(args.results).iterdir() if (p / "probe.json").exists()
        )
        stages = tuple(
            s
            for s, _ in STAGE_OUTPUTS
            if (s != "render" or not args.no_render) and (s != "tracks" or args.tracks)
        )
        for row in write_summary(videos, out=args.out, results=args.results, stages=stages):
            print(f"{row['video']}: {row['status']}")

    p.set_defaults(handler=run)
