"""lift3d inference: normalisation, windowing, flip augmentation, display frame, and the stage's files."""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from posepipe.artefacts.dataset2d import Dataset2D, save_dataset2d
from posepipe.errors import PosepipeError
from posepipe.lift3d import cli as lift3d_cli
from posepipe.lift3d.checkpoint import load_checkpoint, save_checkpoint
from posepipe.lift3d.infer import (
    H36M_DISPLAY_QUATERNION,
    camera_to_display,
    lift_keypoints,
    normalize_screen_coordinates,
    pad_sequence,
    predict,
    resolve_device,
)
from posepipe.lift3d.stage import Lift3DSettings, run_lift3d
from posepipe.registry import STAGE_VERSIONS
from posepipe.skeleton import COCO_LEFT, COCO_RIGHT, H36M_JOINTS, H36M_LEFT, H36M_RIGHT, flip_permutation
from posepipe.testing import random_model

W, H = 512, 288  # a power-of-two width keeps pixel -> normalised conversion exact for integer pixels


def random_pixels(T: int, *, seed: int = 0) -> np.ndarray:
    """(T, 17, 2) integer pixel positions inside a W x H frame, float32."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, W, (T, 17)), rng.integers(0, H, (T, 17))], axis=-1).astype(np.float32)


def test_normalize_screen_coordinates():
    xy = np.array([[0, 0], [W, H], [W / 2, H / 2]], np.float32)
    norm = normalize_screen_coordinates(xy, width=W, height=H)
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm, [[-1, -H / W], [1, H / W], [0, 0]], atol=1e-7)


def test_pad_sequence_edges_and_causal():
    x = np.arange(3, dtype=np.float32)[:, None]
    assert pad_sequence(x, pad=2)[:, 0].tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert pad_sequence(x, pad=2, causal=True)[:, 0].tolist() == [0, 0, 0, 0, 0, 1, 2]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("T", [1, 4, 9, 23])  # receptive field 9: shorter, equal, longer
def test_windowed_equals_whole_sequence(T, flip, causal):
    model = random_model(causal=causal, seed=T)
    norm = normalize_screen_coordinates(random_pixels(T, seed=T), width=W, height=H)
    whole = predict(model, norm, flip=flip, window=None)
    assert whole.shape == (T, 17, 3) and whole.dtype == np.float32
    for window in (1, 2, 5, 9, 10_000):
        np.testing.assert_allclose(predict(model, norm, flip=flip, window=window), whole, rtol=0, atol=1e-5)


def test_causal_output_ignores_future_frames():
    model = random_model(causal=True)
    norm = normalize_screen_coordinates(random_pixels(20), width=W, height=H)
    changed = norm.copy()
    changed[12:] += 0.3
    a, b = predict(model, norm, flip=False), predict(model, changed, flip=False)
    np.testing.assert_array_equal(a[:12], b[:12])
    assert not np.allclose(a[12], b[12])


def test_flip_augmentation_is_exactly_mirror_symmetric():
    model = random_model(widths=(3, 3, 3), seed=5)
    pixels = random_pixels(40, seed=5)
    mirrored = pixels[:, flip_permutation(COCO_LEFT, COCO_RIGHT, 17)].copy()
    mirrored[..., 0] = W - mirrored[..., 0]
    out = predict(model, normalize_screen_coordinates(pixels, width=W, height=H), flip=True, window=16)
    out_m = predict(model, normalize_screen_coordinates(mirrored, width=W, height=H), flip=True, window=16)
    expected = out[:, flip_permutation(H36M_LEFT, H36M_RIGHT, 17)].copy()
    expected[..., 0] *= -1
    np.testing.assert_array_equal(out_m, expected)
    # Without augmentation an untrained model is not symmetric: the test above is not vacuous.
    plain = predict(model, normalize_screen_coordinates(pixels, width=W, height=H), flip=False)
    assert not np.allclose(plain, out)


def test_trajectory_model_is_added(tmp_path):
    pos, traj = random_model(seed=1), random_model(joints_out=1, seed=2)
    path = tmp_path / "traj.bin"
    save_checkpoint(path, model_pos=pos, model_traj=traj)
    ckpt = load_checkpoint(path)
    pixels = random_pixels(12)
    norm = normalize_screen_coordinates(pixels, width=W, height=H)
    got = lift_keypoints(pixels, width=W, height=H, checkpoint=ckpt, device="cpu")
    root = predict(traj, norm, flip=True, joints_left=None, joints_right=None)
    assert root.shape == (12, 1, 3)
    np.testing.assert_allclose(got, predict(pos, norm, flip=True) + root, atol=1e-6)


def test_camera_to_display_rotation_and_floor():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(6, 17, 3)).astype(np.float32)
    shown = camera_to_display(poses)
    assert shown.dtype == np.float32 and shown.shape == poses.shape
    assert shown[..., 2].min() == 0
    w, x, y, z = H36M_DISPLAY_QUATERNION.astype(np.float64)
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    world = poses.astype(np.float64) @ rot.T
    world[..., 2] -= world[..., 2].min()
    np.testing.assert_allclose(shown, world, atol=1e-5)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(PosepipeError, match="cuda"):
            resolve_device("cuda")


def _write_inputs(tmp_path, T=30):
    ds = Dataset2D(
        name="clip.mp4",
        keypoints=random_pixels(T),
        width=W,
        height=H,
        detected=np.ones(T, bool),
        scores=np.ones((T, 17), np.float32),
        box_scores=np.ones(T, np.float32),
        boxes=np.zeros((T, 4), np.float32),
        meta={"stage": "dataset2d"},
    )
    save_dataset2d(tmp_path / "dataset2d.npz", ds)
    save_checkpoint(tmp_path / "ckpt.bin", model_pos=random_model())
    (tmp_path / "timeline.json").write_text(json.dumps({"fps": 25.0, "frame_count": T, "other": 1}))
    return ds


def test_run_lift3d_writes_npz_csv_and_meta(tmp_path, caplog):
    ds = _write_inputs(tmp_path)
    caplog.set_level(logging.INFO, logger="posepipe.lift3d.infer")
    meta = run_lift3d(
        tmp_path / "dataset2d.npz",
        checkpoint_path=tmp_path / "ckpt.bin",
        out=tmp_path / "pose3d.npz",
        csv=tmp_path / "pose3d.csv",
        timeline=tmp_path / "timeline.json",
        settings=Lift3DSettings(device="cpu", window=8),
    )
    with np.load(tmp_path / "pose3d.npz", allow_pickle=False) as z:
        assert set(z.files) == {"positions_3d", "positions_3d_display", "time", "meta"}
        positions, display, times = z["positions_3d"], z["positions_3d_display"], z["time"]
        stored_meta = json.loads(str(z["meta"]))
    assert positions.shape == display.shape == (30, 17, 3)
    assert positions.dtype == display.dtype == np.float32 and times.dtype == np.float64
    np.testing.assert_allclose(times, np.arange(30) / 25.0)
    ckpt = load_checkpoint(tmp_path / "ckpt.bin")
    np.testing.assert_allclose(
        positions, lift_keypoints(ds.keypoints, width=W, height=H, checkpoint=ckpt, device="cpu"), atol=1e-6
    )
    np.testing.assert_allclose(display, camera_to_display(positions), atol=1e-6)
    assert stored_meta == json.loads(json.dumps(meta))
    assert stored_meta["checkpoint"]["sha256"] == ckpt.sha256
    assert stored_meta["receptive_field"] == 9 and stored_meta["flip"] and not stored_meta["causal"]
    assert stored_meta["architecture"]["filter_widths"] == [3, 3] and stored_meta["time_source"] == "timeline"
    assert set(stored_meta["timings_s"]) == {"load", "inference", "csv"}
    assert stored_meta["stage"] == "lift3d" and stored_meta["stage_version"] == STAGE_VERSIONS["lift3d"]

    table = pd.read_csv(tmp_path / "pose3d.csv")
    assert list(table.columns) == ["frame", "time", "joint", "x", "y", "z"]
    assert len(table) == 30 * 17
    assert table["joint"].iloc[:17].tolist() == list(H36M_JOINTS)
    row = table.iloc[5 * 17 + 3]
    assert row["frame"] == 5 and row["joint"] == H36M_JOINTS[3]
    np.testing.assert_allclose(row[["x", "y", "z"]].to_numpy(float), positions[5, 3], rtol=1e-6)
    assert any("frames/s" in r.getMessage() for r in caplog.records)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_run_lift3d_frame_count_and_fps_errors(tmp_path):
    _write_inputs(tmp_path, T=30)
    (tmp_path / "bad_timeline.json").write_text(json.dumps({"fps": 25.0, "frame_count": 31}))
    kwargs = dict(
        checkpoint_path=tmp_path / "ckpt.bin",
        out=tmp_path / "pose3d.npz",
        settings=Lift3DSettings(device="cpu"),
    )
    with pytest.raises(PosepipeError, match="30 frames .* 31"):
        run_lift3d(tmp_path / "dataset2d.npz", timeline=tmp_path / "bad_timeline.json", **kwargs)
    with pytest.raises(PosepipeError, match="fps"):
        run_lift3d(tmp_path / "dataset2d.npz", **kwargs)
    assert not (tmp_path / "pose3d.npz").exists()
    meta = run_lift3d(tmp_path / "dataset2d.npz", fps=50.0, **kwargs)
    assert meta["fps"] == 50.0 and meta["time_source"] == "fps"


def test_cli_lift3d(tmp_path):
    _write_inputs(tmp_path, T=12)
    parser = argparse.ArgumentParser()
    lift3d_cli.register_cli(parser.add_subparsers())
    args = parser.parse_args(
        [
            "lift3d",
            str(tmp_path / "dataset2d.npz"),
            "--checkpoint",
            str(tmp_path / "ckpt.bin"),
            "--out",
            str(tmp_path / "out" / "pose3d.npz"),
            "--csv",
            str(tmp_path / "out" / "pose3d.csv"),
            "--fps",
            "30",
            "--no-flip",
            "--causal",
            "--device",
            "cpu",
            "--window",
            "4",
        ]
    )
    args.handler(args)
    with np.load(tmp_path / "out" / "pose3d.npz") as z:
        meta = json.loads(str(z["meta"]))
        assert z["positions_3d"].shape == (12, 17, 3)
    assert meta["causal"] and not meta["flip"] and meta["window"] == 4
    assert (tmp_path / "out" / "pose3d.csv").exists()


def test_cli_module_is_light_and_consistent():
    import subprocess
    import sys

    from posepipe.lift3d import infer

    code = "import sys, posepipe.lift3d.cli, posepipe.dataset2d; print('torch' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
    parser = argparse.ArgumentParser()
    lift3d_cli.register_cli(parser.add_subparsers())
    base = ["lift3d", "d.npz", "--checkpoint", "c.bin", "--out", "o.npz"]
    assert parser.parse_args([*base, "--device", "cuda:1"]).device == "cuda:1"
    defaults = parser.parse_args(base)
    assert defaults.flip_augmentation and not defaults.causal and defaults.window == infer.DEFAULT_WINDOW
    explicit = parser.parse_args([*base, "--no-causal", "--flip"])
    assert explicit.flip_augmentation and not explicit.causal
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--device", "gpu"])
