"""The workstation GPU allocator, without a GPU: lock files stand in for the cards."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from posepipe import gpu
from posepipe.errors import PosepipeError

REPO = Path(__file__).resolve().parents[1]
PRINT_ENV = [
    sys.executable,
    "-c",
    "import os; print('CVD=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))",
]


@pytest.fixture(autouse=True)
def no_scheduler_gpu(monkeypatch):
    """Tests start as on a workstation: no CUDA_VISIBLE_DEVICES from a scheduler."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def fake_nvidia_smi(bin_dir: Path, indices: list[int]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + "".join(f"echo {i}\n" for i in indices))
    exe.chmod(0o755)


def test_two_claims_get_different_gpus(tmp_path):
    with gpu.claim_gpu(["0", "1"], tmp_path) as a, gpu.claim_gpu(["0", "1"], tmp_path) as b:
        assert {a, b} == {"0", "1"}
    # Released: the first card is free again.
    with gpu.claim_gpu([0, 1], tmp_path) as c:
        assert c == "0"


def test_third_claim_waits_until_one_is_released(tmp_path):
    got: dict = {}

    def third():
        started = time.monotonic()
        with gpu.claim_gpu(["0", "1"], tmp_path, timeout=30, poll=0.05) as gpu_id:
            got["id"], got["waited"] = gpu_id, time.monotonic() - started

    with gpu.claim_gpu(["0", "1"], tmp_path) as a:
        with gpu.claim_gpu(["0", "1"], tmp_path) as b:
            thread = threading.Thread(target=third)
            thread.start()
            time.sleep(0.5)
            assert "id" not in got, "the third claim must wait while both GPUs are held"
        thread.join(timeout=10)
        assert got["id"] == b != a
        assert got["waited"] >= 0.4


def test_waiting_gives_up_after_timeout_naming_the_holder(tmp_path):
    expected = rf"no GPU free after waiting 0.2 s; held: 0 \(pid {os.getpid()}"
    with gpu.claim_gpu(["0"], tmp_path), pytest.raises(PosepipeError, match=expected):
        gpu.claim_gpu(["0"], tmp_path, timeout=0.2, poll=0.05).__enter__()


def test_lock_held_by_another_process(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from posepipe import gpu\n"
         f"with gpu.claim_gpu(['0', '1'], {str(tmp_path)!r}) as g:\n"
         "    print(g, flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "0"
        with gpu.claim_gpu(["0", "1"], tmp_path) as gpu_id:
            assert gpu_id == "1"
    finally:
        holder.kill()
        holder.wait()
    # A killed holder leaves no stale lock: the kernel released it.
    with gpu.claim_gpu(["0"], tmp_path, timeout=5) as gpu_id:
        assert gpu_id == "0"


def test_scheduler_choice_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    locks = tmp_path / "locks"
    with gpu.claim_gpu(["0", "1"], locks) as gpu_id:
        assert gpu_id == "3"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not locks.exists()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with gpu.claim_gpu(["0"], locks) as gpu_id:
        assert gpu_id is None


def test_no_gpu_means_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi
    assert gpu.visible_gpus() == []
    with gpu.claim_gpu(None, tmp_path / "locks") as gpu_id:
        assert gpu_id is None
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with gpu.claim_gpu([], tmp_path / "locks") as gpu_id:
        assert gpu_id is None


def test_ids_from_nvidia_smi(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path / "bin", [0, 1])
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert gpu.visible_gpus() == ["0", "1"]
    with gpu.claim_gpu(None, tmp_path / "locks") as a, gpu.claim_gpu(None, tmp_path / "locks") as b:
        assert (a, b) == ("0", "1")


def test_parse_ids():
    assert gpu.parse_ids("0, 2") == ["0", "2"]
    assert gpu.parse_ids("none") is None
    assert gpu.parse_ids("") is None


def run_cli(argv: list[str]) -> int:
    """Parse and run ``with-gpu`` as posepipe's CLI would; return the exit status."""
    parser = argparse.ArgumentParser(prog="posepipe")
    gpu.register_cli(parser.add_subparsers(dest="stage", required=True))
    args = parser.parse_args(argv)
    with pytest.raises(SystemExit) as exc:
        args.handler(args)
    return exc.value.code


def test_cli_sets_cuda_visible_devices_for_the_child(tmp_path, capfd):
    locks = str(tmp_path / "locks")
    with gpu.claim_gpu(["0", "1"], locks):  # another job holds GPU 0
        assert run_cli(["with-gpu", "--ids", "0,1", "--lock-dir", locks, "--", *PRINT_ENV]) == 0
    assert capfd.readouterr().out.strip() == "CVD=1"


def test_cli_returns_the_commands_exit_status(tmp_path):
    locks = str(tmp_path / "locks")
    assert run_cli(["with-gpu", "--ids", "0", "--lock-dir", locks, "--", "sh", "-c", "exit 7"]) == 7
    assert run_cli(["with-gpu", "--ids", "0", "--lock-dir", locks, "--", "sh", "-c", "kill -TERM $$"]) == 143


def test_cli_without_gpu_leaves_the_environment_alone(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty'}{os.pathsep}/usr/bin:/bin")
    assert run_cli(["with-gpu", "--lock-dir", str(tmp_path / "locks"), "--", *PRINT_ENV]) == 0
    assert capfd.readouterr().out.strip() == "CVD=<unset>"


def test_cli_errors(tmp_path):
    with pytest.raises(PosepipeError, match="no command given"):
        gpu.run_with_gpu(["--"], ids=["0"], lock_dir=tmp_path)
    with pytest.raises(PosepipeError, match="command not found"):
        gpu.run_with_gpu(["/nonexistent/tool"], ids=["0"], lock_dir=tmp_path)


def test_python_dash_m_posepipe_with_gpu(tmp_path):
    """The real entry point, in a child process."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run(
        [sys.executable, "-m", "posepipe", "with-gpu", "--ids", "5", "--lock-dir", str(tmp_path), "--", *PRINT_ENV],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "CVD=5"
    env["CUDA_VISIBLE_DEVICES"] = "2"
    out = subprocess.run(
        [sys.executable, "-m", "posepipe", "with-gpu", "--ids", "5", "--lock-dir", str(tmp_path), "--", *PRINT_ENV],
        capture_output=True, text=True, cwd=REPO, env=env, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "CVD=2"
