"""2D conditioning (issue: keypoint confidence, temporal filters, the lifter's own frame rate)."""

from __future__ import annotations

import numpy as np
import pytest

from posepipe.artefacts.dataset2d import Dataset2D, load_persons2d
from posepipe.artefacts.keypoints2d import save_keypoints2d
from posepipe.artefacts.pose3d import load_pose3d
from posepipe.conditioning import (
    butterworth,
    fill_low_confidence,
    model_times,
    one_euro,
    resample,
    savitzky_golay,
)
from posepipe.dataset2d import Conditioning, Dataset2DSettings, condition, run_dataset2d
from posepipe.lift3d.checkpoint import load_checkpoint, save_checkpoint
from posepipe.lift3d.infer import lift_at_rate, lift_keypoints
from posepipe.lift3d.stage import Lift3DSettings, run_lift3d
from posepipe.testing import random_model
from posepipe.tracks import TracksSettings, run_tracks
from tests.synthetic_people import scene

FPS = 50.0


def _amplitude(signal: np.ndarray, freq: float, fps: float) -> float:
    """Amplitude of the ``freq`` component of ``signal`` (least squares on sin and cos)."""
    t = np.arange(len(signal)) / fps
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef = np.linalg.lstsq(basis, signal, rcond=None)[0]
    return float(np.hypot(*coef))


def test_butterworth_passes_1hz_and_attenuates_15hz_as_designed():
    from scipy.signal import butter, sosfreqz

    t = np.arange(1000) / FPS
    x = np.sin(2 * np.pi * 1 * t) + 0.5 * np.sin(2 * np.pi * 15 * t)
    y = butterworth(x, fps=FPS, cutoff_hz=6, order=4)
    core = slice(100, 900)  # away from the edges' padding
    assert _amplitude(y[core], 1, FPS) == pytest.approx(1.0, abs=0.01)
    # Zero phase, forward and backward: the gain is |H|^2 of the designed filter.
    sos = butter(4, 6, fs=FPS, output="sos")
    gain = abs(sosfreqz(sos, worN=[15], fs=FPS)[1][0]) ** 2
    assert _amplitude(y[core], 15, FPS) == pytest.approx(0.5 * gain, rel=0.05)
    assert 0.5 * gain < 0.005


def test_zero_phase_no_lag_on_a_ramp():
    x = np.concatenate([np.zeros(100), np.linspace(0, 100, 200), np.full(100, 100.0)])
    y = butterworth(x, fps=FPS, cutoff_hz=6, order=4)
    np.testing.assert_allclose(y[150:250], x[150:250], atol=1e-6)  # middle of the ramp, no delay
    s = savitzky_golay(x, window=9, order=2)
    np.testing.assert_allclose(s[150:250], x[150:250], atol=1e-9)


def test_one_euro_smooths_slow_follows_fast():
    rng = np.random.default_rng(0)
    t = np.arange(500) / FPS
    still = 100 + rng.normal(0, 2, 500)
    y = one_euro(still[:, None], fps=FPS, min_cutoff=1.0, beta=0.05, d_cutoff=1.0)[:, 0]
    fixed = one_euro(still[:, None], fps=FPS, min_cutoff=1.0, beta=0.0, d_cutoff=1.0)[:, 0]
    # beta 0 is a one-pole low-pass at 1 Hz: white noise keeps sqrt(a / (2 - a)) of its spread.
    a = 1 / (1 + FPS / (2 * np.pi))
    assert fixed[100:].std() == pytest.approx(np.sqrt(a / (2 - a)) * still[100:].std(), rel=0.25)
    assert y[100:].std() < 0.5 * still[100:].std()
    fast = 400 * t  # 400 px/s
    z = one_euro(fast[:, None], fps=FPS, min_cutoff=1.0, beta=0.05, d_cutoff=1.0)[:, 0]
    lag_fast = np.mean(fast[200:] - z[200:]) / 400
    slow = one_euro(fast[:, None], fps=FPS, min_cutoff=1.0, beta=0.0, d_cutoff=1.0)[:, 0]
    assert lag_fast < 0.5 * np.mean(fast[200:] - slow[200:]) / 400  # beta cuts the lag
    wide = one_euro(np.stack([still, fast], 1)[:, :, None], fps=FPS, min_cutoff=1.0, beta=0.05, d_cutoff=1.0)
    np.testing.assert_allclose(wide[:, 0, 0], y)  # vectorised: elements independent


def _ds(keypoints, detected=None, scores=None):
    T = len(keypoints)
    return Dataset2D(
        name="v.mp4", keypoints=keypoints.astype(np.float32), width=640, height=360,
        detected=np.ones(T, bool) if detected is None else detected,
        scores=np.full((T, 17), 0.9, np.float32) if scores is None else scores,
        box_scores=np.full(T, 0.9, np.float32), boxes=np.zeros((T, 4), np.float32),
    )  # fmt: skip


def test_segments_are_filtered_separately():
    T = 120
    kp = np.zeros((T, 17, 2), np.float32)
    kp[:50] = 100.0
    kp[70:] = 400.0
    kp[50:70] = np.nan  # the person is absent
    ds = _ds(kp)
    report = condition(ds, options=Conditioning(None, "butterworth", {"cutoff_hz": 6, "order": 4}), fps=FPS)
    np.testing.assert_allclose(ds.keypoints[:50], 100.0, atol=1e-4)  # no smear from 400 across the gap
    np.testing.assert_allclose(ds.keypoints[70:], 400.0, atol=1e-4)
    assert np.isnan(ds.keypoints[50:70]).all() and report["filter_mean_shift_px"] < 1e-3


def test_joint_missing_in_five_frames_is_interpolated_others_keep_their_values():
    T = 20
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 300, (T, 17, 2))
    kp[:, 9, 0] = np.arange(T) * 10.0  # left wrist moves steadily
    scores = np.full((T, 17), 0.9)
    scores[6:11, 9] = 0.05  # hidden for 5 frames
    kp[6:11, 9] = 999.0  # what the detector guessed there
    out, filled = fill_low_confidence(kp, scores, np.ones(T, bool), threshold=0.3)
    np.testing.assert_allclose(out[6:11, 9, 0], np.arange(6, 11) * 10.0)
    np.testing.assert_array_equal(np.delete(out, 9, axis=1), np.delete(kp, 9, axis=1))
    assert filled.sum() == 5 and filled[6:11, 9].all()
    ds = _ds(kp, scores=scores.astype(np.float32))
    assert condition(ds, options=Conditioning(0.3, "none", {}), fps=None)["joints_refilled"] == 5


def test_resampling_up_and_down_returns_the_original_frames():
    t25 = np.arange(40) / 25.0
    x = np.random.default_rng(2).normal(size=(40, 17, 2))
    grid = model_times(t25[0], t25[-1], 50.0)
    assert len(grid) == 79 and grid[-1] == pytest.approx(t25[-1])
    np.testing.assert_allclose(resample(resample(x, t25, grid), grid, t25), x, atol=1e-12)
    # 50 -> 30 fps equals linear interpolation at the timeline's times.
    t50, t30 = np.arange(100) / 50.0, np.arange(60) / 30.0
    y = np.random.default_rng(3).normal(size=(100, 17, 3))
    expected = np.stack([[np.interp(t30, t50, y[:, j, c]) for c in range(3)] for j in range(17)]).transpose(
        2, 0, 1
    )
    np.testing.assert_allclose(resample(y, t50, t30), expected)


def test_model_rate_equal_to_the_timeline_is_exactly_the_plain_lift(tmp_path):
    save_checkpoint(tmp_path / "lifter.bin", model_pos=random_model(widths=(3, 3), channels=16))
    ckpt = load_checkpoint(tmp_path / "lifter.bin")
    kp = np.random.default_rng(4).uniform(100, 300, (60, 17, 2)).astype(np.float32)
    plain = lift_keypoints(kp, width=640, height=360, checkpoint=ckpt, device="cpu")
    grid_same = lift_at_rate(kp, np.arange(60) / 50.0, model_fps=50.0, width=640, height=360, checkpoint=ckpt,
                             device="cpu")  # fmt: skip
    np.testing.assert_allclose(grid_same, plain, atol=1e-5)  # the resampling round trip alone
    # The stage skips resampling when the rates are equal: bit for bit the plain lift.
    from posepipe.artefacts.dataset2d import save_dataset2d

    save_dataset2d(tmp_path / "d.npz", _ds(kp))
    run_lift3d(
        tmp_path / "d.npz",
        checkpoint_path=tmp_path / "lifter.bin",
        out=tmp_path / "a.npz",
        fps=50,
        settings=Lift3DSettings(device="cpu"),
    )
    run_lift3d(tmp_path / "d.npz", checkpoint_path=tmp_path / "lifter.bin", out=tmp_path / "b.npz", fps=50,
               settings=Lift3DSettings(device="cpu", model_fps=50))  # fmt: skip
    np.testing.assert_array_equal(
        load_pose3d(tmp_path / "a.npz").positions, load_pose3d(tmp_path / "b.npz").positions
    )
    run_lift3d(tmp_path / "d.npz", checkpoint_path=tmp_path / "lifter.bin", out=tmp_path / "c.npz", fps=25,
               settings=Lift3DSettings(device="cpu", model_fps=50))  # fmt: skip
    c = load_pose3d(tmp_path / "c.npz")
    assert c.meta["model_fps"] == 50 and c.positions.shape == (1, 60, 17, 3)
    assert not np.array_equal(c.positions, load_pose3d(tmp_path / "a.npz").positions)


def test_conditioning_runs_per_track_and_is_recorded(tmp_path):
    T = 80
    walk = np.stack([np.linspace(100, 300, T), np.full(T, 200.0)], 1)
    other = np.stack([np.linspace(500, 450, T), np.full(T, 200.0)], 1)
    other[30:50] = np.nan
    kp, _ = scene({0: walk, 1: other})
    save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
    run_tracks(tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=FPS, settings=TracksSettings())
    run_dataset2d(
        tmp_path / "keypoints2d.npz", tmp_path / "dataset2d.npz", video_id="v",
        tracks_path=tmp_path / "tracks.npz", fps=FPS,
        settings=Dataset2DSettings(person="all", max_gap_frames=5, joint_score_threshold=0.5, filter="savgol",
                                   savgol_window=9, savgol_order=2),
    )  # fmt: skip
    persons = load_persons2d(tmp_path / "dataset2d.npz")
    report = persons[1].meta["conditioning"]
    assert (
        report["filter"] == "savgol" and report["joints_refilled"] == 0 and report["filter_mean_shift_px"] > 0
    )
    assert np.isnan(persons[1].keypoints[30:50]).all()
