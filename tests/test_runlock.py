"""posepipe.runlock: a stale Snakemake lock is cleared only when nothing runs in the directory."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from posepipe.runlock import (
    OWNER_FILE,
    clear_stale_lock,
    is_run_process,
    lock_files,
    record_owner,
    run_processes,
)


def _lock(workdir):
    (workdir / ".snakemake/locks").mkdir(parents=True)
    (workdir / ".snakemake/locks/0.output.lock").write_text("results/a/probe.json\n")


def test_command_lines_that_count():
    assert is_run_process(["/x/.venv/bin/python", "/x/.venv/bin/snakemake", "--cores", "2"])
    assert is_run_process(["python3", "-m", "snakemake", "-s", "Snakefile"])
    assert is_run_process(["python", "-m", "posepipe", "render", "a.json"])
    assert not is_run_process(["python", "-m", "posepipe.warm", "serve"])  # stops with its Snakemake
    assert not is_run_process(["vim", "Snakefile"])


def test_no_lock_nothing_to_do(tmp_path):
    assert lock_files(tmp_path) == [] and clear_stale_lock(tmp_path) is None


def test_a_stale_lock_is_cleared(tmp_path):
    _lock(tmp_path)
    record_owner(tmp_path, pid=999999)
    note = clear_stale_lock(tmp_path)
    assert note.startswith("removed the lock in .snakemake/locks left by a Snakemake that no longer runs")
    assert "process 999999" in note and lock_files(tmp_path) == []


def test_a_lock_is_kept_while_a_snakemake_runs_here(tmp_path):
    _lock(tmp_path)
    # A process working in the directory whose command line names snakemake.
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "snakemake"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not run_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid, _ in run_processes(tmp_path)] == [busy.pid]
        note = clear_stale_lock(tmp_path)
        assert note.startswith("not clearing the lock in .snakemake/locks: still running in this directory")
        assert f"pid {busy.pid}" in note and len(lock_files(tmp_path)) == 1
    finally:
        busy.kill()
        busy.wait()
    assert clear_stale_lock(tmp_path).startswith("removed the lock")


def test_a_lock_taken_on_another_host_is_left_alone(tmp_path):
    _lock(tmp_path)
    (tmp_path / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname() + "-other", "pid": 12}))
    note = clear_stale_lock(tmp_path)
    assert "taken by Snakemake process 12 on host" in note and "`snakemake --unlock`" in note
    assert len(lock_files(tmp_path)) == 1
