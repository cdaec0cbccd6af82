"""Faults outside the input: a full disk, an unexpected exception, SIGTERM, NaN weights.

Each must end the stage with one line naming the file and the cause (the traceback of an
unexpected exception stays in the log, above that line), and leave no output behind.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from posepipe import cli
from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
from posepipe.lift3d.checkpoint import save_checkpoint


def random_persons(frames: int, *, width: int, height: int, seed: int = 0) -> list:
    """One random person per frame: (boxes (1, 4), box_scores (1,), keypoints (1, 17, 3))."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(frames):
        kp = np.concatenate([rng.uniform([0, 0], [width, height], (17, 2)), rng.uniform(0.5, 1, (17, 1))], 1)
        out.append((np.array([[*kp[:, :2].min(0), *kp[:, :2].max(0)]]), np.array([0.9]), kp[None]))
    return out


def _keypoints(tmp_path, frames: int = 200):
    path = tmp_path / "keypoints2d.npz"
    save_keypoints2d(path, from_frames(random_persons(frames, width=640, height=360), width=640, height=360))
    return path


def test_unexpected_exception_gives_one_line_and_keeps_the_traceback(tmp_path, monkeypatch, capsys, caplog):
    def disk_full(path, ds):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "dataset2d.npz"))

    monkeypatch.setattr("posepipe.dataset2d.save_dataset2d", disk_full)
    src = _keypoints(tmp_path)
    code = cli.main(
        ["dataset2d", str(src), "--out", str(tmp_path / "out" / "dataset2d.npz"), "--video-id", "v"]
    )
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last == (
        f"posepipe dataset2d: error: {src}: {tmp_path / 'out' / 'dataset2d.npz'}: No space left on device "
        "(OSError, errno 28)"
    )
    assert "unexpected failure" in caplog.text and "Traceback" in caplog.text


def test_full_disk_fails_cleanly(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        src = _keypoints(tmp_path, frames=3000)
        out = disk / "dataset2d.npz"
        run = subprocess.run(
            [sys.executable, "-m", "posepipe", "dataset2d", str(src), "--out", str(out), "--video-id", "v"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert run.returncode == 1, run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith(f"posepipe dataset2d: error: {src}: ") and "No space left on device" in last
        assert list(disk.iterdir()) == []  # no output, no temporary
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_sigterm_leaves_a_line_and_no_output(tmp_path):
    from posepipe.dataset2d import run_dataset2d
    from posepipe.testing import random_model

    ckpt = tmp_path / "lifter.bin"
    save_checkpoint(ckpt, model_pos=random_model(widths=(3, 3, 3, 3, 3), channels=256))
    run_dataset2d(_keypoints(tmp_path, frames=20000), tmp_path / "dataset2d.npz", video_id="v")
    out = tmp_path / "result"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "posepipe", "lift3d", str(tmp_path / "dataset2d.npz"), "--checkpoint", str(ckpt),
         "--fps", "25", "--out", str(out / "pose3d.npz"), "--csv", str(out / "pose3d.csv"), "--window", "256"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    log = ""
    while "lift3d v.mp4" not in log and time.monotonic() < deadline:  # wait until inference runs
        log += proc.stderr.readline()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM
    assert f"posepipe lift3d: error: {tmp_path / 'dataset2d.npz'}: stopped by SIGTERM" in rest
    assert list(out.iterdir()) == []


def test_nan_weights_are_an_error_naming_the_checkpoint(tmp_path):
    from posepipe.dataset2d import run_dataset2d
    from posepipe.errors import PosepipeError
    from posepipe.lift3d.stage import run_lift3d
    from posepipe.testing import random_model

    model = random_model()
    with torch.no_grad():
        model.expand_conv.weight[0, 0, 0] = float("nan")
    ckpt = tmp_path / "nan.bin"
    save_checkpoint(ckpt, model_pos=model)
    run_dataset2d(_keypoints(tmp_path, frames=30), tmp_path / "dataset2d.npz", video_id="v")
    with pytest.raises(
        PosepipeError, match=r"nan.bin: the model gave non-finite 3D joints in 30 of 30 frames"
    ):
        run_lift3d(tmp_path / "dataset2d.npz", checkpoint_path=ckpt, out=tmp_path / "pose3d.npz", fps=25)
    assert not (tmp_path / "pose3d.npz").exists()
    assert np.isnan(model.expand_conv.weight.detach().numpy()).any()
