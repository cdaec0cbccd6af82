"""Warm start: stages forked from a server give the same files as a fresh process, fall back to a
fresh process without a server, and never outlive a killed client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from posepipe.testing import add_video, random_checkpoint, write_timeline
from posepipe.warm import WARM_SOCKET_VARIABLE, socket_path, start_server, stop_server
from tests.snakemake_run import snakemake


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    random_checkpoint(tmp_path / "lifter.bin")
    pid = start_server(log=tmp_path / "warm.log", weights=[str(tmp_path / "lifter.bin")])
    assert pid is not None, (tmp_path / "warm.log").read_text()
    yield tmp_path, pid
    stop_server(pid)


def posepipe(*args: str, warm: bool, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != WARM_SOCKET_VARIABLE}
    if warm:
        env[WARM_SOCKET_VARIABLE] = str(socket_path(cwd))
    return subprocess.run([sys.executable, "-m", "posepipe", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, **kw)  # fmt: skip


def test_warm_stages_write_the_same_files(server):
    workdir, pid = server
    video = add_video(workdir, "clip", frames=30)
    timeline = write_timeline(video, workdir / "frames")
    for warm in (False, True):
        out = workdir / ("warm" if warm else "cold")
        common = dict(warm=warm, cwd=workdir)
        steps = [
            ("keypoints2d", str(timeline), "--out", str(out / "kp.npz"), "--source", "file",
             "--input", str(workdir / "videos/clip.coco.json")),
            ("dataset2d", str(out / "kp.npz"), "--out", str(out / "ds.npz"), "--video-id", "clip"),
            ("lift3d", str(out / "ds.npz"), "--checkpoint", "lifter.bin", "--timeline", str(timeline),
             "--out", str(out / "pose3d.npz"), "--device", "cpu"),
        ]  # fmt: skip
        for step in steps:
            done = posepipe(*step, **common)
            assert done.returncode == 0, done.stderr
            assert "INFO" in done.stderr  # the job's own log lines reach its stderr
    for name in ("kp.npz", "ds.npz", "pose3d.npz"):
        with (
            np.load(workdir / "cold" / name, allow_pickle=True) as a,
            np.load(workdir / "warm" / name, allow_pickle=True) as b,
        ):
            for key in a.files:
                if key != "meta" and a[key].dtype != object:
                    assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind == "f"), (name, key)
    from posepipe.artefacts.dataset2d import load_dataset2d

    cold, warm = load_dataset2d(workdir / "cold/ds.npz"), load_dataset2d(workdir / "warm/ds.npz")
    assert np.array_equal(cold.keypoints, warm.keypoints)  # the object-array (upstream) part
    # An error is the stage's own one line and exit status, through the server too.
    failed = posepipe("dataset2d", str(workdir / "absent.npz"), "--out", "x.npz", "--video-id", "v", warm=True,
                      cwd=workdir)  # fmt: skip
    assert failed.returncode == 1 and "absent.npz" in failed.stderr.strip().splitlines()[-1]


def test_without_a_server_the_stage_runs_itself(tmp_path):
    env = {**os.environ, WARM_SOCKET_VARIABLE: str(tmp_path / "nobody.sock")}
    done = subprocess.run([sys.executable, "-m", "posepipe", "shards", "--help"], env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0 and "--frames" in done.stdout


def test_a_killed_client_stops_its_job(server):
    from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
    from posepipe.dataset2d import run_dataset2d
    from tests.test_cli_faults import random_persons

    workdir, server_pid = server
    save_keypoints2d(workdir / "kp.npz", from_frames(random_persons(60000, width=640, height=360), width=640,
                                                     height=360))  # fmt: skip
    run_dataset2d(workdir / "kp.npz", workdir / "ds.npz", video_id="v")
    random_checkpoint(workdir / "big.bin", widths=(3, 3, 3, 3, 3), channels=256)
    env = {**os.environ, WARM_SOCKET_VARIABLE: str(socket_path(workdir))}
    client = subprocess.Popen(
        [sys.executable, "-m", "posepipe", "lift3d", "ds.npz", "--checkpoint", "big.bin", "--fps", "25", "--out",
         "pose3d.npz", "--window", "256", "--device", "cpu"],
        cwd=workdir, env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    forked = []
    while not forked and time.monotonic() < deadline:
        forked = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_child_of(int(p), server_pid)]
        time.sleep(0.05)
    assert forked, "the server forked no job"
    client.send_signal(signal.SIGKILL)  # no chance to pass anything on
    client.wait()
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in forked) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in forked), "the job outlived its killed client"
    assert not (workdir / "pose3d.npz").exists()


def _is_child_of(pid: int, parent: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[1]) == parent


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.workflow
def test_workflow_with_warm_start_equals_cold(tmp_path):
    runs = {}
    for warm in (False, True):
        workdir = tmp_path / ("warm" if warm else "cold")
        add_video(workdir, "a", frames=20, seed=1)
        add_video(workdir, "b", frames=20, seed=2)
        random_checkpoint(workdir / "lifter.bin")
        config = {"input": {"directory": "videos"}, "keypoints2d": {"source": "file"},
                  "lift3d": {"checkpoint": "lifter.bin"}, "render": {"height": 64, "audio": False, "preview": False},
                  "resources": {"warm_start": warm}}  # fmt: skip
        snakemake(workdir, "--cores", "2", config=config)
        runs[warm] = workdir
        if warm:  # the server ran (its log says so) and is gone
            log = (workdir / ".snakemake/log/posepipe-warm.log").read_text()
            assert "warm-start server" in log and not socket_path(workdir).exists()
            # Switching warm start off re-runs nothing.
            assert "Nothing to be done" in snakemake(workdir, "-n", config={**config, "resources": {}}).stdout
    compare = subprocess.run([sys.executable, "bench/compare_results.py", str(runs[False] / "results"),
                              str(runs[True] / "results")], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    differs = [line for line in compare.stdout.splitlines() if line.startswith(("DIFFERS", "MISSING"))]
    assert [line for line in differs if "summary" not in line] == [], compare.stdout
    assert json.loads((runs[True] / "results/a/qc/qc.json").read_text())["stage_seconds"]


def test_messages_read_back_one_at_a_time():
    """Two replies that arrive in one read (a fast job) are still two messages."""
    import socket

    from posepipe.warm import _recv, _send

    a, b = socket.socketpair()
    with a, b:
        _send(a, {"pid": 7})
        _send(a, {"code": 3})
        assert _recv(b)[0] == {"pid": 7} and _recv(b)[0] == {"code": 3}
        a.shutdown(socket.SHUT_WR)
        assert _recv(b)[0] is None
