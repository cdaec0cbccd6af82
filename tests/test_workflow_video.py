"""The real workflow on a folder of small videos: outputs, incremental re-runs, bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.media import write_indexed_video, write_test_video
from tests.snakemake_run import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

BASE = {"input": {"directory": "videos"}, "render": {"enabled": False}}
ONLY_FRAMES = ["--until", "frames"]  # stop at the stage this test is about, whatever comes after


@pytest.fixture
def workdir(tmp_path):
    videos = tmp_path / "videos"
    write_indexed_video(videos / "Tänzer eins.mp4", frames=12, fps=24)
    write_test_video(videos / "b.MOV", size="96x64", rate="30000/1001", seconds=1)
    return tmp_path


def test_outputs_then_nothing_to_do(workdir):
    snakemake(workdir, "--cores", "2", *ONLY_FRAMES, config=BASE)
    header = json.loads((workdir / "results/Tanzer_eins/frames/timeline.json").read_text())
    assert header["frame_count"] == 12 and header["source"].endswith("Tänzer eins.mp4")
    header = json.loads((workdir / "results/b/frames/timeline.json").read_text())
    assert (header["frame_count"], header["fps_fraction"], header["width"]) == (30, "30000/1001", 96)
    for video in ("Tanzer_eins", "b"):
        assert (workdir / f"results/{video}/logs/probe.log").exists()
        assert (workdir / f"results/{video}/benchmarks/frames.tsv").exists()
    assert planned_jobs(workdir, *ONLY_FRAMES, config=BASE) == set()


def test_new_video_runs_only_its_jobs(workdir):
    snakemake(workdir, "--cores", "2", *ONLY_FRAMES, config=BASE)
    write_indexed_video(workdir / "videos/new.mkv", frames=5, fps=10)
    assert planned_jobs(workdir, *ONLY_FRAMES, config=BASE) == {("probe", "new"), ("frames", "new")}


def test_fps_change_reruns_frames_for_every_video_and_nothing_upstream(workdir):
    snakemake(workdir, "--cores", "2", *ONLY_FRAMES, config=BASE)
    config = {**BASE, "frames": {"fps": 50}}
    assert planned_jobs(workdir, *ONLY_FRAMES, config=config) == {("frames", "Tanzer_eins"), ("frames", "b")}
    snakemake(workdir, "--cores", "2", *ONLY_FRAMES, config=config)
    assert json.loads((workdir / "results/b/frames/timeline.json").read_text())["frame_count"] == 50


def test_sample_sheet_sets_per_video_trim(workdir):
    sheet = workdir / "samples.tsv"
    sheet.write_text("video\tpath\tstart\tend\nshort\tvideos/b.MOV\t0.5\t\n")
    config = {"input": {"directory": None, "samples": str(sheet)}}
    snakemake(workdir, "--cores", "1", *ONLY_FRAMES, config=config)
    header = json.loads((workdir / "results/short/frames/timeline.json").read_text())
    assert header["trim"] == {"start": 0.5, "end": None}
    assert header["frame_count"] == 15


def test_bad_inputs_fail_alone_and_leave_no_output(workdir):
    videos = workdir / "videos"
    (videos / "empty.mp4").write_bytes(b"")
    good = videos / "b.MOV"
    (videos / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (videos / "text.mp4").write_text("not a video\n")
    proc = snakemake(workdir, "--cores", "2", "--keep-going", *ONLY_FRAMES, config=BASE, check=False)
    assert proc.returncode != 0
    for video in ("Tanzer_eins", "b"):
        assert (workdir / f"results/{video}/frames/timeline.json").exists()
    for video, reason in [
        ("empty", "file is empty"),
        ("truncated", "not a readable video"),
        ("text", "not a readable video"),
    ]:
        log = (workdir / f"results/{video}/logs/probe.log").read_text()
        assert f"videos/{video}.mp4" in log and reason in log, log
        assert not (workdir / f"results/{video}/probe.json").exists()
        assert not (workdir / f"results/{video}/probe_pts.npy").exists()
        leftovers = [
            p.name for p in (workdir / f"results/{video}").rglob("*") if p.is_file() and "logs" not in p.parts
        ]
        assert leftovers == [], leftovers


def test_two_files_with_the_same_id_are_an_error(workdir):
    shutil.copy(workdir / "videos/b.MOV", workdir / "videos/b.mp4")
    proc = snakemake(workdir, "--dry-run", config=BASE, check=False)
    assert proc.returncode != 0
    assert "maps to video id 'b'" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (
            {"frames": {"fsp": 50}},
            "config frames: 'fsp' is not a key of frames; did you mean 'fps'?",
        ),
        ({"frames": {"fps": -2}}, "config frames.fps: -2 is less than or equal to the minimum of 0"),
        ({"render": {"layout": "sideways"}}, "config render.layout: 'sideways' is not one of"),
    ],
)
def test_bad_config_stops_the_run_naming_the_key(workdir, config, named):
    proc = snakemake(workdir, "--dry-run", config=config, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert named in output
    assert len(output.splitlines()) < 8, output  # one line, not the schema
