"""results/summary.csv: one row per video, whatever state it is in.

Written at the end of every workflow run (also one where some videos failed), from the files
under ``results/{video}/``. Columns:

- ``video``, ``status``: ``complete``; ``failed at STAGE: REASON`` (the first stage not done has
  no output, and a log written after its input was made and after the stage's last benchmark
  (Snakemake writes that only on success): the job ran on it and did not finish;
  REASON is the log's ``posepipe STAGE: error: ...`` line, else its last line naming an error,
  else its last line); ``failed at STAGE (weights download): REASON`` (the stage waits for a
  file whose job failed, e.g. its published weights could not be downloaded: REASON is that
  job's, see ``waiting_for`` of :func:`write_summary`); or ``pending (STAGE)`` (the stage has not
  run on the current input). A
  stage is done when its output exists, the stage before it is done, and its output is not older
  than that stage's (Snakemake's own rule: an output older than its input is out of date).
- ``source``, ``frames``, ``fps``, ``width``, ``height``: from ``frames/timeline.json`` (``source``
  is the video's own path also where the stages read it through a link, see
  ``posepipe.inputs.snakemake_safe_path``).
- ``detection_rate``, ``interpolated_frames``, ``longest_interpolated_run``, ``mean_keypoint_score``,
  ``people_max``, ``people_mean``, ``tracks``, ``fragments_merged``, ``frames_with_two_or_more``,
  ``longest_gap``, ``max_bone_cv``, ``mean_joint_speed``, ``p99_joint_speed``, ``keypoints2d_model``
  (which 2D model made the keypoints: qc.json's ``keypoints2d`` detector, with its model where
  the detector's name does not say it): from ``qc/qc.json``
  (over all persons: rates pooled, counts summed, longest and maxima over persons); without it, the
  first three from ``dataset2d.npz``.
- ``rom_person``, ``knee_flexion_rom_l``, ``knee_flexion_rom_r``, ``hip_flexion_rom_l``,
  ``hip_flexion_rom_r``, ``rom_by_person``: ranges of motion (max - min, degrees, 1 decimal) of knee
  and hip flexion from ``angles.npz`` (the same numbers as ``angles_summary.csv``'s ``range``), read
  only when the angles stage is done. The four columns are the main person's: the one with the most
  frames with a knee or hip flexion value (the first of ties); ``rom_person`` is their track id (-1:
  the one person of a one-person selection, as in ``angles.csv``). With two or more people,
  ``rom_by_person`` lists everyone, e.g. ``track 0: knee L 62.0/R 60.1, hip L 41.2/R 43.0; track 3:
  knee L 55.3/R -, hip L 38.9/R 40.2`` (``-``: never defined). Empty without angles.
- ``warnings``: every stage's ``warnings`` list (the headers in :data:`WARNING_SOURCES`), joined
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
import zipfile
from pathlib import Path

from posepipe.artefacts.angles import load_angles, summary_table
from posepipe.artefacts.dataset2d import load_persons2d
from posepipe.artefacts.timeline import load_timeline_header
from posepipe.atomic import atomic_path
from posepipe.benchmarks import benchmark_seconds
from posepipe.errors import PosepipeError
from posepipe.registry import STAGES

# Stage -> the output that proves it finished.
STAGE_OUTPUTS = tuple((stage.name, stage.output) for stage in STAGES if stage.output)
# The stages whose outputs each stage reads (the first of these that the run has; else the one
# before it in STAGE_OUTPUTS): the registry's ``reads``.
AFTER = {stage.name: stage.reads for stage in STAGES if stage.output}

# What a video needs to be complete unless told otherwise: no tracks (person: top_score), no
# opensim (off by default).
DEFAULT_STAGES = tuple(stage for stage, _ in STAGE_OUTPUTS if stage not in ("tracks", "opensim"))

# Files (under results/{video}/) whose top-level "warnings" list (of strings) is reported, in
# workflow order: a JSON file's own, an .npz file's JSON ``meta``. A stage that has warnings of its
# own adds its file here.
WARNING_SOURCES = (
    "probe.json",
    "frames/timeline.json",
    "tracks.npz",
    "dataset2d.npz",
    "qc/qc.json",
    "world.npz",
    "angles.npz",
)

QC_COLUMNS = ["detection_rate", "interpolated_frames", "longest_interpolated_run", "mean_keypoint_score",
              "people_max", "people_mean", "tracks", "fragments_merged", "frames_with_two_or_more",
              "longest_gap", "max_bone_cv", "mean_joint_speed", "p99_joint_speed", "keypoints2d_model"]  # fmt: skip
# Ranges of motion from angles.npz: (joint in rom_by_person, angle name without its side).
ROM_ANGLES = (("knee", "knee_flexion"), ("hip", "hip_flexion"))
ROM_COLUMNS = [
    "rom_person",
    *(f"{name}_rom_{side}" for _, name in ROM_ANGLES for side in "lr"),
    "rom_by_person",
]
COLUMNS = (
    ["video", "status", "source", "frames", "fps", "width", "height", *QC_COLUMNS, *ROM_COLUMNS, "warnings"]
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
    if not lines:
        return "the log is empty (the job was stopped before it wrote anything)"
    # No error line: the job was ended from outside (SIGKILL, out of memory) without a word.
    return f"stopped without an error line (killed? out of memory?); its last line: {lines[-1][:200]}"


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


def _header(path: Path) -> dict:
    """The JSON header of a stage's file: the file itself (.json), or an .npz file's ``meta``."""
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as z:  # only the JSON string is read: no pickle
            return json.loads(str(z["meta"]))
    return json.loads(path.read_text())


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
            found = _header(path).get("warnings", [])
        except (OSError, ValueError, KeyError, EOFError, AttributeError, zipfile.BadZipFile) as exc:
            problems.append(_unreadable(path, exc))  # a cut-short .npz: BadZipFile
            continue
        if not isinstance(found, list) or not all(isinstance(w, str) for w in found):
            problems.append(f"{path}: 'warnings' is not a list of strings")
            continue
        warnings += found
    return warnings, problems


def stage_states(folder: Path, stages: tuple[str, ...]) -> dict[str, tuple[str, float | None]]:
    """For each of ``stages`` (in workflow order): (state, time of the output it was made from).
    state is 'done', 'missing', or 'stale' (the output is there but older than the output of the
    stage it reads (:data:`AFTER`), or that stage is not done)."""
    states: dict[str, tuple[str, float | None]] = {}
    made: dict[str, float | None] = {}
    order = [stage for stage, _ in STAGE_OUTPUTS if stage in stages]
    for i, (stage, output) in enumerate((s, o) for s, o in STAGE_OUTPUTS if s in stages):
        before = next((s for s in AFTER.get(stage, ()) if s in stages), order[i - 1] if i else None)
        previous = made.get(before) if before else None
        broken = before is not None and states[before][0] != "done"
        made[stage] = _mtime(folder / output)
        if made[stage] is None:
            state = "missing"
        elif broken or (previous is not None and made[stage] < previous):
            state = "stale"
        else:
            state = "done"
        states[stage] = (state, previous)
    return states


def qc_columns(report: dict) -> dict:
    """Summary columns from a qc.json (see the module docstring)."""
    persons = report.get("persons", [])
    row: dict = {
        "people_max": report["people_per_frame"]["max"],
        "people_mean": report["people_per_frame"]["mean"],
    }
    if "tracks" in report:
        row |= {k: report["tracks"][k] for k in ("fragments_merged", "frames_with_two_or_more")}
        row["tracks"] = report["tracks"]["count"]
    present = sum(p["frames_present"] for p in persons)
    interpolated = sum(p["interpolated_frames"] for p in persons)
    if present:
        row["detection_rate"] = round((present - interpolated) / present, 4)
    row["interpolated_frames"] = interpolated
    for key, pick in (("longest_interpolated_run", max), ("longest_gap", max), ("max_bone_cv", max),
                      ("p99_joint_speed", max), ("mean_keypoint_score", None), ("mean_joint_speed", None)):  # fmt: skip
        values = [p[key] for p in persons if p.get(key) is not None]
        if values:
            row[key] = pick(values) if pick else round(float(sum(values) / len(values)), 4)
    made_by = report.get("keypoints2d") or {}
    detector, model = made_by.get("detector"), made_by.get("model")
    if detector or model:
        name = str(detector or model)
        if detector and model and str(model) not in name:
            name += f" ({model})"
        row["keypoints2d_model"] = name
    return row


def rom_columns(angles) -> dict:
    """Range-of-motion columns from an :class:`posepipe.artefacts.angles.Angles` (see the module
    docstring): the ``range`` of its :func:`~posepipe.artefacts.angles.summary_table`, the table
    the stage writes as angles_summary.csv. {} when the file has no person."""
    import math

    if not len(angles.track_ids):
        return {}
    names = [f"{name}_{side}" for _, name in ROM_ANGLES for side in "lr"]
    table = summary_table(angles)
    table = table[table.angle.isin(names)]
    ranges = table.pivot(index="person", columns="angle", values="range").reindex(columns=names)
    frames = table.groupby("person")["frames"].max()
    order = [int(t) for t in angles.track_ids]
    main = max(order, key=lambda t: (frames.get(t, 0), -order.index(t)))  # the first of ties

    def degrees(track: int, name: str) -> float | None:
        value = float(ranges.loc[track, name])
        return None if math.isnan(value) else round(value, 1)

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    row: dict = {"rom_person": main}
    for name in names:
        if (value := degrees(main, name)) is not None:
            row[f"{name[:-2]}_rom_{name[-1]}"] = value
    if len(order) > 1:
        row["rom_by_person"] = "; ".join(
            f"track {t}: "
            + ", ".join(
                f"{joint} L {shown(degrees(t, name + '_l'))}/R {shown(degrees(t, name + '_r'))}"
                for joint, name in ROM_ANGLES
            )
            for t in order
        )
    return row


def _blocked(stage: str, waiting_for: dict) -> tuple[str, str] | None:
    """(status, log) when ``stage`` waits for a file that is not there and whose job failed (its
    log holds a reason), per ``waiting_for`` {stage: (file, its job's log)}; else None."""
    if stage not in waiting_for:
        return None
    needed, log = (Path(p) for p in waiting_for[stage])
    if needed.exists() or not log.exists():
        return None
    reason = failure_reason(log)
    if reason is None or "error" not in log.read_text(errors="replace").lower():
        return None  # a download that worked, its file removed since: it is simply to do again
    return f"failed at {stage} (weights download): {reason}", os.fspath(log)


def _status(
    folder: Path, states: dict, waiting_for: dict | None = None
) -> tuple[str, str | None, str | None]:
    """(status, the failed stage or None, the log that says why when it is not the stage's own)."""
    for stage, (state, input_time) in states.items():
        if state == "done":
            continue
        # The stage's own log, then (sharded keypoints2d / render) its shards' logs, newest first.
        shard_logs = sorted(
            (folder / "logs").glob(f"{stage}_*.log"), key=lambda p: _mtime(p) or 0, reverse=True
        )
        for log in [folder / "logs" / f"{stage}.log", *shard_logs]:
            logged = _mtime(log)
            benchmarked = _mtime(folder / "benchmarks" / f"{log.stem}.tsv")
            # A log written after the stage's input was made: the job ran on it. Snakemake writes the
            # benchmark only when the job succeeds, so one written after the log means the output
            # was there and has been removed since: the stage is to do, not failed.
            ran = logged is not None and (input_time is None or logged >= input_time)
            if state == "missing" and ran and (benchmarked is None or benchmarked < logged):
                where = (
                    stage if log.stem == stage else f"{stage} (shard {log.stem.removeprefix(stage + '_')})"
                )
                return f"failed at {where}: {failure_reason(log)}", stage, None
        if blocked := _blocked(stage, waiting_for or {}):
            return blocked[0], stage, blocked[1]
        return f"pending ({stage})", None, None
    return "complete", None, None


def _benchmark_seconds(folder: Path, stage: str, output: str) -> float | None:
    """The benchmark time of ``stage``, if it belongs to the output that is there now."""
    bench = folder / "benchmarks" / f"{stage}.tsv"
    bench_time, output_time = _mtime(bench), _mtime(folder / output)
    if bench_time is None or output_time is None or output_time > bench_time + _CLOCK_SLACK_S:
        return None
    return benchmark_seconds(bench)


def video_row(results: Path, video: str, *, stages: tuple[str, ...], waiting_for: dict | None = None) -> dict:
    """The summary row of one video; never raises for a bad file (the row says what was wrong).

    ``failed_stage`` (not a column) names the stage whose job failed, if any, and ``failed_log``
    (not a column) the log that says why when it is not the stage's own (a weights download).
    """
    folder = Path(results) / video
    row: dict = {"video": video}
    problems: list[str] = []
    try:
        states = stage_states(folder, stages)
        row["status"], row["failed_stage"], row["failed_log"] = _status(folder, states, waiting_for)
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
    qc, dataset = folder / "qc" / "qc.json", folder / "dataset2d.npz"
    if states.get("qc", ("missing",))[0] == "done":
        try:
            row |= qc_columns(json.loads(qc.read_text()))
        except Exception as exc:
            problems.append(_unreadable(qc, exc))
    elif dataset.exists():
        try:
            people = load_persons2d(dataset)
            present = sum(int(p.present.sum()) for p in people)
            detected = sum(int((p.detected & p.present).sum()) for p in people)
            row["detection_rate"] = round(detected / max(present, 1), 4)
            row["interpolated_frames"] = present - detected
            scores = [p.scores[p.detected & p.present] for p in people if p.scores is not None]
            if scores and sum(len(s) for s in scores):
                import numpy as np

                row["mean_keypoint_score"] = round(float(np.concatenate(scores).mean()), 4)
        except Exception as exc:
            problems.append(_unreadable(dataset, exc))
    try:
        warnings, unreadable = collect_warnings(folder)
    except Exception as exc:
        warnings, unreadable = [], [f"cannot collect warnings ({exc})"]
    angles = folder / "angles.npz"
    if states.get("angles", ("missing",))[0] == "done":
        try:
            row |= rom_columns(load_angles(angles))
        except Exception as exc:
            # One note per file: its header may already be noted as unreadable (WARNING_SOURCES).
            if not any(str(angles) in note for note in unreadable):
                problems.append(_unreadable(angles, exc))
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
    html: str | os.PathLike | None = None,
    waiting_for: dict[str, tuple[str | os.PathLike, str | os.PathLike]] | None = None,
) -> list[dict]:
    """Write the summary table (atomically; also as an HTML page when ``html`` is given, with the
    columns that have a value and the warnings third, after video and status) and return its rows.
    ``waiting_for``: {stage: (a file the stage needs that another job makes, that job's log)}, e.g.
    the weights a download makes: a video whose first unfinished stage waits for that file, when
    the file is missing and the log is there, gets that log's reason as its status."""
    import pandas as pd

    rows = [video_row(Path(results), video, stages=stages, waiting_for=waiting_for) for video in videos]
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    if html is not None:
        from posepipe.report import table as html_table
        from posepipe.report import write_page

        done = sum(row["status"] == "complete" for row in rows)
        shown = table.dropna(axis=1, how="all")
        # On the page the warnings come right after the status (on screen first; the table is wide),
        # left-aligned and wrapped; the CSV keeps its column order.
        first = [c for c in ("video", "status", "warnings") if c in shown.columns]
        shown = shown[first + [c for c in shown.columns if c not in first]]
        style = "".join(
            f"td:nth-child({i}),th:nth-child({i}){{text-align:left}}" for i in range(1, len(first) + 1)
        ) + ("td:nth-child(3){min-width:22em;max-width:40em}" if "warnings" in first else "")
        write_page(html, f"posepipe summary: {done} of {len(rows)} videos complete", [html_table(shown)],
                   style=style)  # fmt: skip
    return rows


def register_cli(sub) -> None:
    p = sub.add_parser("summary", help="write results/summary.csv for the given video ids")
    p.add_argument("videos", nargs="*", help="video ids (default: every folder under --results)")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="results/summary.csv")
    p.add_argument("--html", default=None, help="also write the table as an HTML page (for the report)")
    p.add_argument("--no-render", action="store_true", help="a video is complete without render.mp4")
    p.add_argument("--tracks", action="store_true", help="a video needs tracks.npz (person: main or all)")
    p.add_argument(
        "--stage", action="append", choices=[s for s, _ in STAGE_OUTPUTS], dest="stages",
        help="the stages a complete video has (repeat; replaces --no-render / --tracks)",
    )  # fmt: skip

    def run(args) -> None:
        videos = args.videos or sorted(
            p.name for p in Path(args.results).iterdir() if (p / "probe.json").exists()
        )
        stages = (
            tuple(args.stages)
            if args.stages
            else tuple(
                s
                for s, _ in STAGE_OUTPUTS
                if (s != "render" or not args.no_render) and (s != "tracks" or args.tracks)
            )
        )
        for row in write_summary(videos, out=args.out, results=args.results, stages=stages, html=args.html):
            print(f"{row['video']}: {row['status']}")

    p.set_defaults(handler=run)
