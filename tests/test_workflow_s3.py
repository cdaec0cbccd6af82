"""The whole workflow on videos in a bucket with its results in a bucket, against a real S3 API on
loopback (moto's server, tests/s3_server.py), through Snakemake's S3 storage plugin: the same
outputs as a local run, a no-op re-run, and a new object in the bucket runs only its own jobs.

Two 10-frame clips with 2D keypoints imported from COCO JSON beside them (no detectron2) and a small
random VideoPose3D checkpoint, as in tests/test_incremental.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from posepipe.testing import add_video, random_checkpoint
from tests import s3_server as fixtures
from tests.snakemake_run import REPO, planned_jobs, snakemake

pytestmark = pytest.mark.workflow
s3_server, s3 = fixtures.s3_server, fixtures.s3  # the fixtures of this module

PER_VIDEO = ("probe", "frames", "keypoints2d", "dataset2d", "lift3d", "world", "angles", "render", "qc")
GATHER = {("merge_dataset2d", ""), ("qc_summary", "")}
CONFIG = {
    "keypoints2d": {"source": "file"},
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"height": 64, "audio": False, "preview": False},
    "exports": [],
    "angles": {"figure": False},
}
IN, OUT = "s3://lab/in", "s3://lab/out"
STORAGE = ("--default-storage-provider", "s3", "--default-storage-prefix", OUT, "--keep-storage-local-copies")


def upload(client, folder: Path, names):
    for name in names:
        client.upload_file(str(folder / name), "lab", f"in/{name}")


def download(client, prefix: str, into: Path) -> Path:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="lab", Prefix=prefix):
        for item in page.get("Contents", []):
            target = into / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file("lab", item["Key"], str(target))
    return into


def test_bucket_in_bucket_out_equals_a_local_run(s3, tmp_path):
    client = s3.client()
    client.create_bucket(Bucket="lab")
    local = tmp_path / "local"
    for name, seed in (("alpha", 1), ("beta", 2)):
        add_video(local, name, seed=seed)
    random_checkpoint(local / "lifter.bin")
    snakemake(local, "--cores", "2", config={**CONFIG, "input": {"directory": "videos"}})
    upload(client, local / "videos", ["alpha.mp4", "alpha.coco.json", "beta.mp4", "beta.coco.json"])

    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "lifter.bin").write_bytes((local / "lifter.bin").read_bytes())
    config = {**CONFIG, "input": {"directory": IN}}
    snakemake(remote, "--cores", "2", *STORAGE, config=config)
    assert not (remote / "results").exists()  # everything went to the bucket

    fetched = download(client, "out/results/", tmp_path / "fetched")
    compare = subprocess.run(
        [sys.executable, "bench/compare_results.py", str(local / "results"), str(fetched)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    differs = [line for line in compare.stdout.splitlines() if line.startswith(("DIFFERS", "MISSING"))]
    # The summaries differ in their timings only (and name the staged copy as the source).
    assert [line for line in differs if "summary" not in line] == [], compare.stdout
    assert "same     alpha/render.mp4" in compare.stdout and "same     beta/pose3d.npz" in compare.stdout
    summary = (fetched / "summary.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in summary[1:]] == [["alpha", "complete"], ["beta", "complete"]]

    assert planned_jobs(remote, *STORAGE, config=config) == set()

    add_video(tmp_path / "more", "gamma", seed=3)
    upload(client, tmp_path / "more" / "videos", ["gamma.mp4", "gamma.coco.json"])
    expected = {(rule, "gamma") for rule in PER_VIDEO} | GATHER
    assert planned_jobs(remote, *STORAGE, config=config) == expected


def startup_error(workdir: Path, config: dict) -> str:
    """The line naming the input and the reason, of a run that stops before any job."""
    proc = snakemake(workdir, "--dry-run", config=config, check=False)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("input: ")]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return lines[0]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "lifter.bin").write_bytes(b"")
    return tmp_path


def test_missing_bucket_stops_with_one_line(s3, workdir):
    line = startup_error(workdir, {**CONFIG, "input": {"directory": "s3://no-such-bucket/videos"}})
    assert line == "input: s3://no-such-bucket/videos: cannot list the objects: the bucket does not exist"


def test_wrong_credentials_stop_with_one_line(s3, workdir, monkeypatch):
    s3.client().create_bucket(Bucket="lab")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    s3.require_auth(True)
    try:
        line = startup_error(workdir, {**CONFIG, "input": {"directory": IN}})
    finally:
        s3.require_auth(False)
    assert line.startswith(f"input: {IN}: cannot list the objects: the server does not know this access key")


def test_endpoint_down_stops_with_one_line(workdir, monkeypatch):
    endpoint = f"http://127.0.0.1:{fixtures.free_port()}"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SNAKEMAKE_STORAGE_S3_ENDPOINT_URL", endpoint)  # the plugin's variable
    line = startup_error(workdir, {**CONFIG, "input": {"directory": IN}})
    assert line.startswith(
        f"input: {IN}: cannot list the objects: cannot connect to the S3 endpoint {endpoint} (is it up"
    )


def test_missing_object_in_the_sample_sheet_fails_that_video_only(s3, workdir):
    """A row naming an object that is not (or no longer) in the bucket: a warning naming it, and
    its own jobs are planned (its probe fails, naming it); the other video is planned as usual."""
    client = s3.client()
    client.create_bucket(Bucket="lab")
    client.put_object(Bucket="lab", Key="in/alpha.mp4", Body=b"")
    (workdir / "samples.tsv").write_text(f"path\n{IN}/alpha.mp4\n{IN}/gone.mp4\n")
    config = {**CONFIG, "input": {"directory": None, "samples": "samples.tsv"}}
    proc = snakemake(workdir, "--dry-run", config=config)
    assert (
        f"posepipe: {IN}/gone.mp4 (sample sheet) does not exist: video gone will fail at probe"
        in proc.stdout + proc.stderr
    )
    jobs = planned_jobs(workdir, config=config)
    assert ("probe", "gone") in jobs and ("probe", "alpha") in jobs


def test_results_in_a_bucket_refuse_what_they_cannot_do_yet(workdir):
    proc = snakemake(workdir, "--dry-run", *STORAGE, config={**CONFIG, "shard_frames": 100}, check=False)
    assert proc.returncode != 0
    assert (
        "results in a bucket (--default-storage-provider) do not work yet with frames.jpeg or shard_frames"
        in (proc.stdout + proc.stderr)
    )


# Runs snakemake's command line with one object deleted after the DAG is built and before the first
# job is scheduled: a deletion "mid-run" at a fixed moment (the workflow has listed the bucket and
# planned the video, and nothing has staged it yet).
DELETE_AFTER_PLANNING = """
import sys
import boto3
import snakemake.scheduling.job_scheduler as scheduler
from snakemake.cli import main

bucket, key = sys.argv.pop(1), sys.argv.pop(1)
planned = scheduler.JobScheduler.__init__

def delete_then_schedule(self, *args, **kwargs):
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)
    planned(self, *args, **kwargs)

scheduler.JobScheduler.__init__ = delete_then_schedule
sys.exit(main())
"""


def test_an_object_deleted_mid_run_stops_the_run_naming_it(s3, tmp_path):
    """Snakemake (9.x) stages a job's storage inputs in its scheduler, before the job, and a failed
    retrieval ends the whole run, also with --keep-going: nothing in the workflow can make it one
    video's failure. The run says which object is gone; the same command again lists the bucket
    again and runs the other video (README, Object storage)."""
    client = s3.client()
    client.create_bucket(Bucket="lab")
    for name, seed in (("alpha", 1), ("beta", 2)):
        add_video(tmp_path / "source", name, seed=seed)
        upload(client, tmp_path / "source" / "videos", [f"{name}.mp4", f"{name}.coco.json"])
    workdir = tmp_path / "work"
    workdir.mkdir()
    random_checkpoint(workdir / "lifter.bin")
    config = {**CONFIG, "input": {"directory": IN}}
    config_path = workdir / "test-config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    args = ["-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(config_path)]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            DELETE_AFTER_PLANNING,
            "lab",
            "in/alpha.mp4",
            *args,
            "--cores",
            "1",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Failed to retrieve input from storage." in output, output
    # Snakemake 9.27 with snakemake-storage-plugin-s3: the URL on one line, the server's answer below it.
    assert f"Failed to get expected local footprint (i.e. size) of {IN}/alpha.mp4" in output, output
    assert "(404) when calling the HeadObject operation: Not Found" in output, output
    # The same command again: alpha is no longer listed, beta's jobs are planned as for a new run.
    jobs = planned_jobs(workdir, config=config)
    assert {video for _, video in jobs} == {"beta", ""}, jobs


def test_a_job_whose_video_is_gone_from_the_listing_names_it(s3, workdir):
    """A cluster job's own Snakemake lists the bucket again; when its video was deleted since the
    run planned it, that job (only) fails with one line naming the video and the prefix (here: a
    target for a video the listing does not have, which is what that job's Snakemake sees)."""
    client = s3.client()
    client.create_bucket(Bucket="lab")
    client.put_object(Bucket="lab", Key="in/beta.mp4", Body=b"")
    proc = snakemake(
        workdir,
        "--dry-run",
        "results/alpha/probe.json",
        config={**CONFIG, "input": {"directory": IN}},
        check=False,
    )
    assert proc.returncode != 0
    assert (
        f"video alpha is not (or no longer) in {IN} (deleted or renamed after the run listed it?): "
        "this video fails; the next run leaves it out" in proc.stdout + proc.stderr
    ), proc.stdout + proc.stderr
