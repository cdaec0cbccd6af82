"""The real workflow on awkward input: each bad video fails alone (or works), with its reason in
the terminal and in summary.csv; bad settings stop the run at once with one short line.

The run stops after keypoints2d (imported from COCO JSON), which is all these faults touch, so
the whole module takes seconds.
"""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from posepipe.artefacts.keypoints2d import load_keypoints2d
from posepipe.testing import add_video
from tests.snakemake_run import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

PERIODIC = "ha" * 20  # Snakemake takes a wildcard ending in 20 repeats for an endless recursion
CONFIG = {"input": {"directory": "."}, "keypoints2d": {"source": "file"}, "render": {"enabled": False}}
UNTIL = ["--until", "keypoints2d"]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    """Good videos beside one without its keypoints file, one named {x}, a periodic name and a
    name starting with '-', all in the working directory itself (input.directory '.')."""
    workdir = tmp_path_factory.mktemp("faults")
    for name in ("good", "nokp", "{x}", PERIODIC, "-dash"):
        add_video(workdir, name, frames=6)
    for path in (workdir / "videos").iterdir():
        path.rename(workdir / path.name)
    (workdir / "videos").rmdir()
    (workdir / "nokp.coco.json").unlink()
    proc = snakemake(workdir, "--cores", "2", "--keep-going", *UNTIL, config=CONFIG, check=False)
    return workdir, proc


def summary(workdir) -> dict[str, dict]:
    table = pd.read_csv(workdir / "results/summary.csv", dtype=str).fillna("")
    return {row["video"]: row for row in table.to_dict("records")}


def test_bad_videos_fail_alone_and_awkward_names_work(faulty_run):
    workdir, proc = faulty_run
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    periodic = next(p.name for p in (workdir / "results").iterdir() if p.name.startswith(PERIODIC))
    assert periodic != PERIODIC  # a stable hash suffix keeps Snakemake from refusing it
    for video, source in [("good", "good"), ("x", "{x}"), (periodic, PERIODIC), ("dash", "-dash")]:
        kp = load_keypoints2d(workdir / f"results/{video}/keypoints2d.npz")
        assert kp.meta["source_file"].endswith(f"{source}.coco.json"), kp.meta  # the file itself, not a link
    header = json.loads((workdir / "results/dash/frames/timeline.json").read_text())
    assert header["source"] == "./-dash.mp4"

    # The missing file fails its own video's job, naming the file ...
    assert not (workdir / "results/nokp/keypoints2d.npz").exists()
    assert (
        "nokp.coco.json: keypoints file not found"
        in (workdir / "results/nokp/logs/keypoints2d.log").read_text()
    )
    # ... the terminal says why without the workstation profile ...
    assert "nokp: failed at keypoints2d: nokp.coco.json: keypoints file not found" in output
    # ... and so does the summary, beside the others' rows.
    rows = summary(workdir)
    assert rows["nokp"]["status"] == "failed at keypoints2d: nokp.coco.json: keypoints file not found"
    for video in ("good", "x", periodic, "dash"):
        assert rows[video]["status"] == "pending (dataset2d)" and rows[video]["keypoints2d_s"], rows[video]
    assert rows["x"]["source"] == "{x}.mp4"  # read through results/x/links/, shown as itself


def test_a_keypoints_file_that_appears_later_is_picked_up(faulty_run, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(faulty_run[0], workdir, symlinks=True)
    shutil.copy(workdir / "good.coco.json", workdir / "nokp.coco.json")
    # Only the job that failed runs again: the linked {x} video and the others are up to date.
    assert planned_jobs(workdir, *UNTIL, config=CONFIG) == {("keypoints2d", "nokp")}
    snakemake(workdir, "--cores", "1", *UNTIL, config=CONFIG)
    assert load_keypoints2d(workdir / "results/nokp/keypoints2d.npz").num_frames == 6
    assert summary(workdir)["nokp"]["status"] == "pending (dataset2d)"


def short_error(workdir, config, *needles):
    """A dry run stops with a message holding every needle, in a few lines (no schema dump)."""
    proc = snakemake(workdir, "--dry-run", config=config, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for needle in needles:
        assert needle in output, output
    assert len(output.splitlines()) < 12, output


def test_sample_sheet_out_of_range_names_line_and_column(tmp_path):
    add_video(tmp_path, "a", frames=3)
    (tmp_path / "samples.tsv").write_text(
        "video\tpath\tfps\n# lab sheet\nneg\tvideos/a.mp4\t-5\nhuge\tvideos/a.mp4\t1e9\nok\tvideos/a.mp4\t50\n"
    )
    config = {"input": {"directory": None, "samples": "samples.tsv"}}
    short_error(
        tmp_path, config,
        "sample sheet samples.tsv: line 3, column fps: -5.0 is less than or equal to the minimum of 0",
        "line 4, column fps: 1000000000.0 is greater than the maximum of 1000",
    )  # fmt: skip


def test_missing_input_folder_is_an_error(tmp_path):
    short_error(tmp_path, {"input": {"directory": "no_such_folder"}}, "no_such_folder: the input folder")


def test_unknown_placeholder_in_file_pattern(tmp_path):
    (tmp_path / "videos").mkdir()
    config = {"keypoints2d": {"source": "file", "file_pattern": "{dir}/{stem}.json"}}
    short_error(
        tmp_path, config,
        "config keypoints2d.file_pattern '{dir}/{stem}.json': unknown placeholder {dir}; "
        "allowed: {directory}, {stem}, {video}",
    )  # fmt: skip


def test_yaml_syntax_error_in_the_default_config_names_line_and_column(tmp_path):
    """Snakemake's own loader says only "not valid JSON or YAML" (for a --configfile it still does:
    that file is read before the Snakefile runs)."""
    import subprocess
    import sys

    from tests.snakemake_run import REPO

    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("Snakefile", "config.yaml", "workflow", "posepipe", "envs"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / name)
    text = (copy / "config.yaml").read_text()
    assert "\n  recursive: false\n" in text
    (copy / "config.yaml").write_text(text.replace("\n  recursive: false\n", "\n  recursive: [false\n"))
    line = text[: text.index("\n  recursive: false\n")].count("\n") + 2
    (tmp_path / "videos").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "-d", str(tmp_path), "--dry-run"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    output = proc.stderr + proc.stdout
    assert re.search(r"config\.yaml, line \d+, column \d+: YAML syntax error: expected ',' or ']'", output), (
        output
    )
    assert f"flow sequence that starts at line {line}, column 14" in output, output


def test_run_wide_names_and_a_missing_sample_sheet_row(tmp_path):
    """Videos named like run-wide files run beside a normal one under ids of their own, and a
    sample-sheet row whose file does not exist fails that video alone (issue 19, items 1 and 2)."""
    for name in ("good", "qc_summary.csv", "dataset2d_custom.npz"):
        add_video(tmp_path, name, frames=6)
    (tmp_path / "samples.tsv").write_text("video\tpath\ngone\tvideos/gone.mp4\n")
    config = {**CONFIG, "input": {"directory": "videos", "samples": "samples.tsv"}}
    proc = snakemake(tmp_path, "--cores", "2", "--keep-going", *UNTIL, config=config, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "videos/gone.mp4 (sample sheet) does not exist: video gone will fail at probe" in output
    rows = summary(tmp_path)
    assert rows["gone"]["status"] == "failed at probe: videos/gone.mp4: file not found"
    assert "gone: failed at probe: videos/gone.mp4: file not found" in output
    for video in ("good", "qc_summary.csv_video", "dataset2d_custom.npz_video"):
        assert rows[video]["status"] == "pending (dataset2d)", rows[video]
        assert (tmp_path / "results" / video / "keypoints2d.npz").exists()
    # Once the file is there, only its own video runs.
    add_video(tmp_path, "gone", frames=6)
    assert {video for _, video in planned_jobs(tmp_path, *UNTIL, config=config)} == {"gone"}


def test_one_failed_video_leaves_the_run_wide_files_and_the_report(tmp_path):
    """With one video failing (--keep-going), qc_summary.* and dataset2d_custom.npz cover the
    complete ones and name the failed one, and `snakemake --report` works (issue 19, item 6)."""
    import numpy as np

    from posepipe.testing import random_checkpoint

    for name in ("good", "nokp"):
        add_video(tmp_path, name, frames=8)
    (tmp_path / "videos/nokp.coco.json").unlink()
    random_checkpoint(tmp_path / "lifter.bin")
    config = {
        **CONFIG,
        "input": {"directory": "videos"},
        "lift3d": {"checkpoint": "lifter.bin"},
        "exports": [],
    }
    proc = snakemake(tmp_path, "--cores", "2", "--keep-going", config=config, check=False)
    assert proc.returncode != 0
    table = pd.read_csv(tmp_path / "results/qc_summary.csv", dtype=str).fillna("").set_index("video")
    assert table.loc["good", "status"] == "complete"
    assert table.loc["good", "detection_rate"]  # the QC numbers of the complete ones
    assert table.loc["nokp", "status"].startswith("failed at keypoints2d: ")
    html = (tmp_path / "results/qc_summary.html").read_text()
    assert "1 of 2 videos complete" in html and "failed at keypoints2d" in html
    merged = np.load(tmp_path / "results/dataset2d_custom.npz", allow_pickle=True)
    assert sorted(merged["positions_2d"].item()) == ["good.mp4"]
    meta = json.loads(str(merged["meta"]))
    assert [entry["video"] for entry in meta["left_out"]] == ["nokp"]
    assert meta["left_out"][0]["status"].startswith("failed at keypoints2d: ")

    report = snakemake(tmp_path, "--report", "report.zip", config=config, check=False)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "the report covers the 1 of 2 videos that are complete" in report.stdout + report.stderr
    import zipfile

    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()  # report/data/raw/<hash>/<file name>
    assert sum(n.endswith("/qc.html") for n in names) == 1, names  # the complete video's page
    assert sum(n.endswith("/qc_summary.html") for n in names) == 1, names

    # Once the video is mended, a plain re-run makes it and the run-wide files the rules' own way.
    add_video(tmp_path, "nokp", frames=8)
    snakemake(tmp_path, "--cores", "2", config=config)
    merged = np.load(tmp_path / "results/dataset2d_custom.npz", allow_pickle=True)
    assert len(merged["positions_2d"].item()) == 2 and "left_out" not in json.loads(str(merged["meta"]))
    assert "2 of 2 videos complete" in (tmp_path / "results/qc_summary.html").read_text()


def test_a_failed_weights_download_is_in_each_videos_row(tmp_path, monkeypatch):
    """The lifter's weights cannot be downloaded (a proxy that refuses): every video's row and the
    terminal carry the download's reason, not "pending (lift3d)" (issue 19, item 12)."""
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    for variable in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # the discard port: nothing listens
    for name in ("a", "b"):
        add_video(tmp_path, name, frames=6)
    config = {**CONFIG, "input": {"directory": "videos"}, "exports": []}
    proc = snakemake(
        tmp_path, "--cores", "2", "--keep-going", "--until", "lift3d", config=config, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    rows = summary(tmp_path)
    log = "resources/models/logs/videopose3d_h36m_detectron_coco.log"
    for video in ("a", "b"):
        status = rows[video]["status"]
        assert status.startswith("failed at lift3d (weights download): "), status
        assert "could not download https://dl.fbaipublicfiles.com/video-pose-3d/" in status, status
        assert f"  {video}: {status}  [log: {log}]" in output


def test_the_config_header_override_works_as_written(tmp_path):
    """config.yaml's header shows `snakemake --config frames='{fps: 50}'`: it must run, with the
    value reaching the stage's command line as a number."""
    from tests.snakemake_run import REPO

    header = (REPO / "config.yaml").read_text().split("\n\n", 1)[0]
    example = re.search(r"`snakemake --config (\w+)='([^']+)'`", header)
    assert example, header
    add_video(tmp_path, "a", frames=3)
    proc = snakemake(
        tmp_path, "--dry-run", "-p", "--until", "frames", "--config", f"{example[1]}={example[2]}"
    )
    assert re.search(r"python -m posepipe frames .* --fps 50 ", proc.stdout), proc.stdout
    bad = snakemake(tmp_path, "--dry-run", "--config", "frames={fsp: 50}", check=False)
    assert bad.returncode != 0
    assert "config frames: 'fsp' is not a key of frames; did you mean 'fps'?" in bad.stdout + bad.stderr
