"""SIGKILL in the middle of a job: nothing Snakemake takes as complete is left, the re-run redoes
exactly that job (and what is made from it), and the killed job's temporaries are removed then.

Three ways to die: the job's own process killed (a scheduler's out-of-memory kill), Snakemake
killed together with its job (a lost node or a power cut), and Snakemake killed alone while its
job runs on and finishes. The last two leave Snakemake's lock, the last an output that Snakemake
marked incomplete; a plain re-run recovers from both (issue 19, item 7).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from posepipe.testing import add_video, random_checkpoint
from tests.snakemake_run import REPO, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

CONFIG = {
    "input": {"directory": "videos"},
    "keypoints2d": {"source": "file"},
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"height": 64, "audio": False},
    "exports": [],
}
AFTER_KEYPOINTS = {"keypoints2d", "dataset2d", "lift3d", "world", "angles", "qc", "render", "preview"}


def _jobs_of(stage: str, session: int) -> list[tuple[int, str]]:
    """(pid, video) of the running ``python -m posepipe <stage>`` processes of this test's own
    Snakemake (its session; nobody else's jobs on the machine), video from ``--out``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            try:
                ours = os.getsid(int(entry.name)) == session
            except OSError:
                continue
            # `python -m posepipe STAGE ...`: the sub-command right after the module
            if ours and b"posepipe" in argv and argv[argv.index(b"posepipe") + 1 :][:1] == [stage.encode()]:
                out = argv[argv.index(b"--out") + 1].decode()
                pids.append((int(entry.name), Path(out).parent.name))
    return pids


def _start(workdir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "1", "--configfile", str(write_config(workdir, CONFIG))]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(condition, *, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the job")


@pytest.fixture
def workdir(tmp_path):
    add_video(tmp_path, "long", frames=600)
    add_video(tmp_path, "other", frames=10, seed=3)
    random_checkpoint(tmp_path / "lifter.bin")
    return tmp_path


def test_killed_keypoints2d_job_is_redone_alone(workdir):
    proc = _start(workdir)
    victim = None
    while victim is None:  # the first keypoints2d job still running when we get to it
        pid, video = _wait_for(lambda: _jobs_of("keypoints2d", proc.pid))[0]
        try:
            os.kill(pid, signal.SIGKILL)
            victim = video
        except ProcessLookupError:  # it finished first: take the next one
            continue
    proc.wait(timeout=300)
    killed = workdir / "results"
    assert not (killed / victim / "keypoints2d.npz").exists()
    row = pd.read_csv(killed / "summary.csv").set_index("video").loc[victim]
    assert row.status.startswith("failed at keypoints2d: ")
    # The re-run plans exactly that video's keypoints2d and what is made from it (no probe or
    # frames: those outputs were complete); the other video's jobs had not run yet.
    planned = planned_jobs(workdir, config=CONFIG)
    assert {rule for rule, video in planned if video == victim} == AFTER_KEYPOINTS
    snakemake(workdir, "--cores", "2", config=CONFIG)
    assert (killed / victim / "keypoints2d.npz").exists()
    assert not list((killed / victim).glob(".keypoints2d.npz.*"))


def test_snakemake_killed_with_its_render_job(workdir):
    snakemake(workdir, "--cores", "2", "--until", "lift3d", config=CONFIG)
    proc = _start(workdir)
    results = workdir / "results" / "long"
    _wait_for(lambda: list(results.glob(".render.mp4.*")))  # render is writing
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, at once
    proc.wait(timeout=60)
    leftovers = list(results.glob(".render.mp4.*"))
    assert leftovers and not (results / "render.mp4").exists()
    # A killed Snakemake leaves its lock; the next run (here a dry run) clears it, as nothing runs.
    assert list((workdir / ".snakemake/locks").glob("*.lock"))
    dry = snakemake(workdir, "--dry-run", config=CONFIG)
    assert "posepipe: removed the lock in .snakemake/locks left by a Snakemake that no longer runs" in (
        dry.stdout + dry.stderr
    )
    planned = planned_jobs(workdir, config=CONFIG)
    assert ("render", "long") in planned
    assert not {rule for rule, video in planned if video == "long"} & {
        "probe",
        "frames",
        "keypoints2d",
        "lift3d",
    }
    snakemake(workdir, "--cores", "2", config=CONFIG)
    assert (results / "render.mp4").exists()
    assert not any(path.exists() for path in leftovers)  # removed by the next write of render.mp4


def test_snakemake_killed_alone_a_plain_rerun_recovers(workdir):
    """`kill -9` of Snakemake alone: its render job runs on and writes render.mp4, which Snakemake
    had marked incomplete. A plain `snakemake` re-run (no --unlock, no --rerun-incomplete) clears
    the stale lock, redoes that job and finishes."""
    snakemake(workdir, "--cores", "2", "--until", "lift3d", config=CONFIG)
    proc = _start(workdir)
    results = workdir / "results" / "long"
    _wait_for(lambda: list(results.glob(".render.mp4.*")))  # render is writing
    os.kill(proc.pid, signal.SIGKILL)  # Snakemake only: its job goes on
    proc.wait(timeout=60)
    _wait_for(lambda: (results / "render.mp4").exists() and not _jobs_of("render", proc.pid))
    assert list((workdir / ".snakemake/locks").glob("*.lock"))
    assert list((workdir / ".snakemake/incomplete").rglob("*"))  # render.mp4 is marked incomplete
    rerun = snakemake(workdir, "--cores", "2", config=CONFIG, check=False)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output
    assert "removed the lock in .snakemake/locks left by a Snakemake that no longer runs" in output
    assert "rule render:" in output  # redone: the finished file was never recorded as complete
    assert (results / "render.mp4").exists()
    assert pd.read_csv(workdir / "results/summary.csv").set_index("video").loc["long", "status"] == "complete"
