"""results/summary.csv: status, reasons, warnings and stage times from a video's files, and no
failure of the whole table because one video's files are bad."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from posepipe.artefacts.angles import Angles, save_angles
from posepipe.artefacts.dataset2d import Dataset2D, save_dataset2d
from posepipe.biomech.angles import ANGLE_NAMES
from posepipe.summary import (
    DEFAULT_STAGES,
    ROM_COLUMNS,
    STAGE_OUTPUTS,
    WARNING_SOURCES,
    collect_warnings,
    write_summary,
)

T0 = 1_700_000_000  # stage k's files are made at T0 + 10 k


def timeline(folder, *, fps=25.0, warnings=None):
    header = {"source": "videos/a.mp4", "fps": fps, "frame_count": 4, "width": 64, "height": 48}
    if warnings is not None:
        header["warnings"] = warnings
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    (folder / "frames/timeline.json").write_text(json.dumps(header))


def dataset(path):
    detected = np.array([True, True, False, True])
    scores = np.full((4, 17), 0.5, np.float32)
    save_dataset2d(path, Dataset2D(
        name="a.mp4", keypoints=np.zeros((4, 17, 2), np.float32), width=64, height=48, detected=detected,
        scores=scores, box_scores=np.ones(4, np.float32), boxes=np.zeros((4, 4), np.float32),
    ))  # fmt: skip


def qc_report(warnings=()):
    """A qc.json of one tracked person with known numbers."""
    person = {"name": "a.mp4", "track": -1, "frames_present": 4, "interpolated_frames": 1,
              "longest_interpolated_run": 1, "longest_gap": 1, "mean_keypoint_score": 0.5, "max_bone_cv": 0.02,
              "mean_joint_speed": 0.4, "p99_joint_speed": 1.2}  # fmt: skip
    return {"stage": "qc", "people_per_frame": {"max": 2, "mean": 1.25, "several_share": 0.25},
            "persons": [person], "warnings": list(warnings)}  # fmt: skip


def angles_file(path, ranges, *, frames=10, present=None, warnings=()):
    """angles.npz of persons {track: {angle: range of motion in degrees or None (never defined)}}:
    each angle a ramp from 5 degrees up by its range over the person's ``present`` frames
    ({track: frame count from 0}, default all); the other angles a constant 20 degrees."""
    tracks = list(ranges)
    values = np.full((len(tracks), frames, len(ANGLE_NAMES)), np.nan, np.float32)
    for p, track in enumerate(tracks):
        seen = (present or {}).get(track, frames)
        for a, name in enumerate(ANGLE_NAMES):
            rom = ranges[track].get(name, 0.0)
            if rom is not None:
                values[p, :seen, a] = 5.0 + np.linspace(0.0, rom, seen)
    meta = {"frame": "world", "warnings": list(warnings)}
    save_angles(path, Angles(values=values, names=ANGLE_NAMES, time=np.arange(frames) / 25.0,
                             track_ids=np.array(tracks, np.int64), meta=meta))  # fmt: skip


ONE_PERSON = {
    -1: {"knee_flexion_l": 62.04, "knee_flexion_r": 60.0, "hip_flexion_l": 41.26, "hip_flexion_r": 43.0}
}


def make_video(results, video, *, upto=STAGE_OUTPUTS[-1][0], fps=25.0, warnings=None, tracks=False):
    """Outputs, logs and benchmarks of every stage up to ``upto``, each stage 10 s after the last
    (stage k's benchmark says k + 1.5 s)."""
    folder = results / video
    for k, (stage, output) in enumerate(STAGE_OUTPUTS):
        if stage == "tracks" and not tracks:
            continue
        path = folder / output
        path.parent.mkdir(parents=True, exist_ok=True)
        if stage == "frames":
            timeline(folder, fps=fps, warnings=warnings)
        elif stage == "dataset2d":
            dataset(path)
        elif stage == "qc":
            path.write_text(json.dumps(qc_report()))
        elif stage == "angles":
            angles_file(path, ONE_PERSON)
        elif path.suffix == ".npz":
            np.savez(path, meta=np.array("{}"))
        else:
            path.write_text("{}")
        (folder / "logs").mkdir(exist_ok=True)
        (folder / "logs" / f"{stage}.log").write_text(f"{stage} done\n")
        (folder / "benchmarks").mkdir(exist_ok=True)
        (folder / "benchmarks" / f"{stage}.tsv").write_text(f"s\th:m:s\n{k + 1}.5\t0:00:01\n")
        touch(folder / "logs" / f"{stage}.log", T0 + 10 * k - 5)
        touch(path, T0 + 10 * k)
        touch(folder / "benchmarks" / f"{stage}.tsv", T0 + 10 * k + 1)
        if stage == upto:
            break
    return folder


def touch(path, when):
    os.utime(path, (when, when))


def row_of(results, video, **kw):
    rows = write_summary([video], out=results / "summary.csv", results=results, **kw)
    return rows[0]


def test_complete_video_with_warnings_and_times(tmp_path):
    make_video(tmp_path, "a", warnings=["3 frames could not be decoded", "audio dropped"])
    row = row_of(tmp_path, "a")
    assert row["status"] == "complete" and row["failed_stage"] is None
    assert (row["frames"], row["fps"], row["width"]) == (4, 25.0, 64)
    assert (row["detection_rate"], row["interpolated_frames"], row["mean_keypoint_score"]) == (0.75, 1, 0.5)
    assert row["warnings"] == "3 frames could not be decoded; audio dropped"
    assert (row["people_max"], row["people_mean"], row["max_bone_cv"], row["p99_joint_speed"]) == (
        2,
        1.25,
        0.02,
        1.2,
    )
    assert [row.get(f"{s}_s") for s, _ in STAGE_OUTPUTS] == [
        1.5,
        2.5,
        3.5,
        None,
        5.5,
        6.5,
        7.5,
        8.5,
        9.5,
        10.5,
        None,  # opensim: off by default, not a stage of the default summary
    ]
    table = pd.read_csv(tmp_path / "summary.csv")
    assert "warnings" in table.columns and "failed_stage" not in table.columns


def test_stopped_stage_shows_its_last_line_and_no_stale_times(tmp_path):
    folder = make_video(tmp_path, "a")
    # A re-run of keypoints2d was killed: Snakemake had removed its output; the outputs after it
    # and every benchmark are from the earlier, complete run.
    (folder / "keypoints2d.npz").unlink()
    log = folder / "logs/keypoints2d.log"
    log.write_text(
        "progress 10/40 frames\nposepipe keypoints2d: error: t.json: stopped by SIGTERM (killed)\n"
    )
    touch(log, T0 + 100)
    row = row_of(tmp_path, "a")
    assert row["status"] == "failed at keypoints2d: t.json: stopped by SIGTERM (killed)"
    assert row["failed_stage"] == "keypoints2d"
    assert (row.get("probe_s"), row.get("frames_s")) == (1.5, 2.5)
    assert all(f"{s}_s" not in row for s in ("keypoints2d", "dataset2d", "lift3d", "render"))


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        ("step 1\nTraceback ...\nValueError: bad shape\nexiting\n", "ValueError: bad shape"),
        ("step 1\nstep 2\n", "stopped without an error line (killed? out of memory?); its last line: step 2"),
        ("", "the log is empty"),
    ],
)
def test_failure_reason_without_our_error_line(tmp_path, log, reason):
    folder = make_video(tmp_path, "a", upto="frames")
    (folder / "logs/keypoints2d.log").write_text(log)
    touch(folder / "logs/keypoints2d.log", T0 + 100)
    assert row_of(tmp_path, "a")["status"].startswith(f"failed at keypoints2d: {reason}")


def test_pending_when_the_log_is_older_than_the_stage_input(tmp_path):
    folder = make_video(tmp_path, "a", upto="frames")
    (folder / "logs/keypoints2d.log").write_text("posepipe keypoints2d: error: old failure\n")
    touch(folder / "logs/keypoints2d.log", T0)  # before frames re-made the timeline
    assert row_of(tmp_path, "a")["status"] == "pending (keypoints2d)"


def test_an_output_removed_after_a_successful_run_is_pending(tmp_path):
    folder = make_video(tmp_path, "a")
    (folder / "keypoints2d.npz").unlink()  # the benchmark is newer than the log: that job succeeded
    assert row_of(tmp_path, "a")["status"] == "pending (keypoints2d)"


def test_output_older_than_its_input_is_out_of_date(tmp_path):
    folder = make_video(tmp_path, "a")
    touch(folder / "frames/timeline.json", T0 + 500)  # frames re-ran (e.g. --until frames, new fps)
    row = row_of(tmp_path, "a")
    assert row["status"] == "pending (keypoints2d)"
    assert row["probe_s"] == 1.5 and "frames_s" not in row  # that frames run left no benchmark
    assert all(f"{s}_s" not in row for s in ("keypoints2d", "dataset2d", "lift3d", "render"))


def test_output_newer_than_its_benchmark_has_no_time(tmp_path):
    folder = make_video(tmp_path, "a", upto="frames")
    touch(folder / "frames/timeline.json", T0 + 100)  # re-made by hand, no benchmark of that
    row = row_of(tmp_path, "a", stages=("probe", "frames"))
    assert row["status"] == "complete" and "frames_s" not in row and row["probe_s"] == 1.5


def test_tracks_are_needed_only_when_followed(tmp_path):
    with_tracks = ("probe", "frames", "keypoints2d", "tracks", "dataset2d", "lift3d")
    make_video(tmp_path, "a", upto="lift3d")
    assert row_of(tmp_path, "a", stages=with_tracks)["status"] == "pending (tracks)"
    make_video(tmp_path, "b", upto="lift3d", tracks=True)
    row = row_of(tmp_path, "b", stages=with_tracks)
    assert row["status"] == "complete" and row["tracks_s"] == 4.5


def test_render_is_optional(tmp_path):
    make_video(tmp_path, "a", upto="lift3d")
    assert row_of(tmp_path, "a", stages=("probe", "frames", "keypoints2d", "dataset2d", "lift3d"))[
        "status"
    ] == ("complete")
    assert row_of(tmp_path, "a")["status"] == "pending (qc)"
    make_video(tmp_path, "b", upto="qc")
    assert row_of(tmp_path, "b")["status"] == "pending (render)"


def test_bad_files_of_one_video_never_fail_the_summary(tmp_path):
    make_video(tmp_path, "good", upto="lift3d")
    make_video(tmp_path, "negative_fps", upto="lift3d", fps=-5.0)
    bad = make_video(tmp_path, "garbage", upto="lift3d")
    for name in ("dataset2d.npz", "probe.json"):
        made = (bad / name).stat().st_mtime
        (bad / name).write_bytes(b"{not json, not npz")
        touch(bad / name, made)
    bench = bad / "benchmarks/lift3d.tsv"
    bench.write_text("s\nnot a number\n")
    touch(bench, T0 + 100)
    missing = tmp_path / "never_ran"
    rows = write_summary(
        ["good", "negative_fps", "garbage", "never_ran"], out=tmp_path / "summary.csv", results=tmp_path,
        stages=("probe", "frames", "keypoints2d", "dataset2d", "lift3d"),
    )  # fmt: skip
    assert not missing.exists()
    by_video = {row["video"]: row for row in rows}
    assert by_video["good"]["status"] == "complete" and by_video["good"]["detection_rate"] == 0.75
    assert "warnings" not in by_video["good"]
    assert (
        "unreadable" in by_video["negative_fps"]["warnings"]
        and "fps=-5.0" in by_video["negative_fps"]["warnings"]
    )
    assert by_video["negative_fps"]["detection_rate"] == 0.75  # the rest of the row is still there
    notes = by_video["garbage"]["warnings"]
    assert "dataset2d.npz" in notes and "probe.json" in notes and "benchmark of lift3d" in notes
    assert by_video["never_ran"]["status"] == "pending (probe)"
    assert len(pd.read_csv(tmp_path / "summary.csv")) == 4


def test_collect_warnings_reads_every_known_header(tmp_path):
    assert WARNING_SOURCES[0] == "probe.json"
    (tmp_path / "probe.json").write_text(json.dumps({"warnings": ["probe says"]}))
    timeline(tmp_path, warnings=["frames says"])
    assert collect_warnings(tmp_path) == (["probe says", "frames says"], [])
    timeline(tmp_path, warnings="not a list")
    warnings, problems = collect_warnings(tmp_path)
    assert warnings == ["probe says"] and "'warnings' is not a list of strings" in problems[0]


def test_a_failed_shard_is_named(tmp_path):
    folder = make_video(tmp_path, "long", upto="frames")
    # Sharded keypoints2d: two shards ran, one failed; the gather never ran (no keypoints2d.log).
    for name, text in (("keypoints2d_0_500", "done\n"), ("keypoints2d_500_1000", "posepipe keypoints2d: error: "
                       "videos/long.mp4: decoding failed at timeline frame 612\n")):  # fmt: skip
        (folder / "logs" / f"{name}.log").write_text(text)
        touch(folder / "logs" / f"{name}.log", T0 + 20)
    (folder / "benchmarks" / "keypoints2d_0_500.tsv").write_text("s\th:m:s\n3.5\t0:00:03\n")
    touch(folder / "benchmarks" / "keypoints2d_0_500.tsv", T0 + 21)
    row = row_of(tmp_path, "long")
    assert row["status"] == (
        "failed at keypoints2d (shard 500_1000): videos/long.mp4: decoding failed at timeline frame 612"
    )
    assert row["failed_stage"] == "keypoints2d"


def test_a_failed_weights_download_is_each_waiting_videos_reason(tmp_path):
    """A video whose next stage waits for weights whose download failed carries the download's
    reason, not "pending" (issue 19, item 12); videos not waiting for them, and a download that
    worked but whose file was removed since, are unaffected."""
    results = tmp_path / "results"
    make_video(results, "a", upto="keypoints2d")  # dataset2d is next: not waiting for weights
    make_video(results, "b", upto="frames")  # keypoints2d is next: waits for the detector's weights
    models = tmp_path / "models"
    (models / "logs").mkdir(parents=True)
    log = models / "logs" / "keypoint_rcnn_R_50_FPN_3x.log"
    reason = (
        f"{models}/keypoint_rcnn_R_50_FPN_3x.pkl: could not download https://dl.fbaipublicfiles.com/x.pkl "
        "([Errno 111] Connection refused); put a copy there by hand"
    )
    log.write_text(f"downloading\nposepipe download: error: {reason}\n")
    waits = {"keypoints2d": (models / "keypoint_rcnn_R_50_FPN_3x.pkl", log)}
    stages = ("probe", "frames", "keypoints2d", "dataset2d", "lift3d", "qc")
    rows = {r["video"]: r for r in write_summary(["a", "b"], out=tmp_path / "s.csv", results=results,
                                                  stages=stages, waiting_for=waits)}  # fmt: skip
    assert rows["b"]["status"] == f"failed at keypoints2d (weights download): {reason}"
    assert rows["b"]["failed_stage"] == "keypoints2d" and rows["b"]["failed_log"] == str(log)
    assert rows["a"]["status"] == "pending (dataset2d)"
    assert pd.read_csv(tmp_path / "s.csv").set_index("video").loc["b", "status"] == rows["b"]["status"]
    # The weights there (placed by hand): to do, not failed.
    (models / "keypoint_rcnn_R_50_FPN_3x.pkl").write_bytes(b"w")
    rows = write_summary(["b"], out=tmp_path / "s.csv", results=results, stages=stages, waiting_for=waits)
    assert rows[0]["status"] == "pending (keypoints2d)"
    # A download that worked, its file removed since: to do again, not failed.
    (models / "keypoint_rcnn_R_50_FPN_3x.pkl").unlink()
    log.write_text("downloading\nSHA-256 checked\n")
    rows = write_summary(["b"], out=tmp_path / "s.csv", results=results, stages=stages, waiting_for=waits)
    assert rows[0]["status"] == "pending (keypoints2d)"


def test_ranges_of_motion_of_knees_and_hips(tmp_path):
    """One person: the four columns hold their ranges (degrees, 1 decimal), rom_by_person is empty;
    the CSV has them beside the QC columns."""
    make_video(tmp_path, "a")
    row = row_of(tmp_path, "a")
    assert row["status"] == "complete" and "warnings" not in row
    assert {c: row.get(c) for c in ROM_COLUMNS} == {
        "rom_person": -1, "knee_flexion_rom_l": 62.0, "knee_flexion_rom_r": 60.0, "hip_flexion_rom_l": 41.3,
        "hip_flexion_rom_r": 43.0, "rom_by_person": None,
    }  # fmt: skip
    table = pd.read_csv(tmp_path / "summary.csv")
    columns = list(table.columns)
    assert columns.index("keypoints2d_model") + 1 == columns.index("rom_person")
    assert columns.index("rom_by_person") + 1 == columns.index("warnings")
    assert table.loc[0, "knee_flexion_rom_l"] == 62.0 and table.loc[0, "hip_flexion_rom_r"] == 43.0


def test_ranges_of_motion_of_several_people(tmp_path):
    """The columns hold the main person's (most frames with a knee or hip value, the first of ties)
    and rom_by_person everyone's, in the file's order, "-" for a side never defined."""
    folder = make_video(tmp_path, "duet")
    made = (folder / "angles.npz").stat().st_mtime
    ranges = {
        4: {"knee_flexion_l": 90.0, "knee_flexion_r": 88.0, "hip_flexion_l": 50.0, "hip_flexion_r": 52.0},
        0: {"knee_flexion_l": 62.0, "knee_flexion_r": 60.04, "hip_flexion_l": 41.0, "hip_flexion_r": 43.0},
        7: {"knee_flexion_l": 55.25, "knee_flexion_r": None, "hip_flexion_l": 38.9, "hip_flexion_r": 40.2},
    }
    angles_file(folder / "angles.npz", ranges, present={4: 6})  # 4 is seen least; 0 and 7 tie
    touch(folder / "angles.npz", made)
    row = row_of(tmp_path, "duet")
    assert row["status"] == "complete"
    assert (row["rom_person"], row["knee_flexion_rom_l"], row["knee_flexion_rom_r"]) == (0, 62.0, 60.0)
    assert (row["hip_flexion_rom_l"], row["hip_flexion_rom_r"]) == (41.0, 43.0)
    assert row["rom_by_person"] == (
        "track 4: knee L 90.0/R 88.0, hip L 50.0/R 52.0; track 0: knee L 62.0/R 60.0, hip L 41.0/R 43.0; "
        "track 7: knee L 55.2/R -, hip L 38.9/R 40.2"
    )
    # The main person with a side never defined: that cell is empty.
    angles_file(folder / "angles.npz", {7: ranges[7], 0: ranges[0]}, present={0: 3})
    touch(folder / "angles.npz", made)
    row = row_of(tmp_path, "duet")
    assert row["rom_person"] == 7 and "knee_flexion_rom_r" not in row and row["knee_flexion_rom_l"] == 55.2
    assert pd.isna(pd.read_csv(tmp_path / "summary.csv").loc[0, "knee_flexion_rom_r"])


def test_no_angles_no_ranges(tmp_path):
    """A video without angles (stage not in the run, not run yet, or out of date) has empty cells."""
    make_video(tmp_path, "a", upto="world")
    make_video(tmp_path, "b")
    touch(tmp_path / "b/world.npz", T0 + 500)  # world re-ran: angles.npz is out of date
    without = tuple(s for s in DEFAULT_STAGES if s != "angles")
    rows = write_summary(["a"], out=tmp_path / "s1.csv", results=tmp_path, stages=without)
    assert rows[0]["status"] == "complete" and not set(ROM_COLUMNS) & set(rows[0])
    rows = write_summary(["a", "b"], out=tmp_path / "s2.csv", results=tmp_path)
    assert [r["status"] for r in rows] == ["pending (angles)", "pending (angles)"]
    assert not set(ROM_COLUMNS) & (set(rows[0]) | set(rows[1]))
    table = pd.read_csv(tmp_path / "s2.csv")
    assert set(ROM_COLUMNS) <= set(table.columns) and table[ROM_COLUMNS].isna().all().all()


def test_bad_angles_file_is_one_note(tmp_path):
    """A bad angles.npz is one note in its video's row (whether its header can be read or not);
    the rest of the row and the other videos are unaffected. The stage's own warnings are reported."""
    make_video(tmp_path, "good")
    for video in ("junk", "shape"):
        folder = make_video(tmp_path, video)
        made = (folder / "angles.npz").stat().st_mtime
        if video == "junk":  # cut short, as by a full disk
            (folder / "angles.npz").write_bytes((folder / "angles.npz").read_bytes()[:300])
        else:  # a readable header, values of the wrong shape
            np.savez(folder / "angles.npz", values=np.zeros((1, 3, 2), np.float32), names=np.array(["a"]),
                     time=np.zeros(3), track_ids=np.zeros(1, np.int64), meta=np.array('{"frame": "world"}'))  # fmt: skip
        touch(folder / "angles.npz", made)
    warned = make_video(tmp_path, "warned")
    made = (warned / "angles.npz").stat().st_mtime
    angles_file(
        warned / "angles.npz", ONE_PERSON, warnings=["track 5: no frame with 3D joints, every angle NaN"]
    )
    touch(warned / "angles.npz", made)
    rows = {r["video"]: r for r in write_summary(["good", "junk", "shape", "warned"], out=tmp_path / "s.csv",
                                                 results=tmp_path)}  # fmt: skip
    assert "warnings" not in rows["good"] and rows["good"]["knee_flexion_rom_l"] == 62.0
    for video, reason in (("junk", "BadZipFile"), ("shape", "values has shape (1, 3, 2)")):
        notes = rows[video]["warnings"]
        assert notes.count("angles.npz") == 1 and reason in notes and notes.startswith("unreadable "), notes
        assert rows[video]["status"] == "complete" and rows[video]["detection_rate"] == 0.75
        assert not set(ROM_COLUMNS) & set(rows[video])
    assert rows["warned"]["warnings"] == "track 5: no frame with 3D joints, every angle NaN"
    assert rows["warned"]["hip_flexion_rom_r"] == 43.0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 4


@pytest.mark.parametrize(
    ("made_by", "expected"),
    [
        ({"detector": "rtmlib rtmo-m", "model": "rtmo-m", "sha256": "ab"}, "rtmlib rtmo-m"),
        ({"detector": "detectron2 Keypoint R-CNN", "model": "COCO-Keypoints/x.yaml"},
         "detectron2 Keypoint R-CNN (COCO-Keypoints/x.yaml)"),
        ({"detector": None, "model": "coco"}, "coco"),
        (None, None),
    ],
)  # fmt: skip
def test_the_2d_model_that_made_the_keypoints(tmp_path, made_by, expected):
    folder = make_video(tmp_path, "a")
    report = qc_report()
    if made_by is not None:
        report["keypoints2d"] = made_by
    (folder / "qc/qc.json").write_text(json.dumps(report))
    touch(folder / "qc/qc.json", T0 + 10 * [s for s, _ in STAGE_OUTPUTS].index("qc"))
    assert row_of(tmp_path, "a").get("keypoints2d_model") == expected
