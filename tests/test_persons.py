"""Several people: per-track 2D sequences (dataset2d) and per-person 3D (lift3d)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from posepipe.artefacts.dataset2d import load_dataset2d, load_persons2d
from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
from posepipe.artefacts.pose3d import load_pose3d
from posepipe.dataset2d import Dataset2DSettings, build_person, run_dataset2d, runs
from posepipe.errors import PosepipeError
from posepipe.lift3d.checkpoint import load_checkpoint, save_checkpoint
from posepipe.lift3d.infer import lift_keypoints
from posepipe.lift3d.stage import Lift3DSettings, run_lift3d
from posepipe.testing import random_model
from posepipe.tracks import TracksSettings, run_tracks
from tests.synthetic_people import scene

FPS = 25.0


def _walk(x0, x1, T, y=200.0):
    return np.stack([np.linspace(x0, x1, T), np.full(T, y)], axis=1)


@pytest.fixture
def two_people(tmp_path):
    """Person 0 walks the whole clip with a 3-frame miss and a 40-frame absence; person 1 from frame 20."""
    T = 120
    a, b = _walk(100, 250, T), _walk(520, 420, T)
    a[[30, 31, 32]] = np.nan
    a[60:100] = np.nan
    b[:20] = np.nan
    kp, truth = scene({0: a, 1: b}, shuffle_seed=1)
    save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
    run_tracks(tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=FPS,
                settings=TracksSettings(max_lost_frames=60))  # fmt: skip
    return tmp_path, kp


def test_runs():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(3, bool)) == [] and runs(np.ones(2, bool)) == [(0, 2)]


def test_build_person_fills_short_gaps_and_splits_long_ones():
    kp = from_frames(
        [(np.array([[t, t, t + 10, t + 20]]), np.array([0.9]), np.full((1, 17, 3), float(t))) if t in (1, 2, 5, 12)
         else (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3))) for t in range(14)],
        width=64, height=48,
    )  # fmt: skip
    rows = np.full(14, -1)
    rows[[1, 2, 5, 12]] = [0, 1, 2, 3]
    ds = build_person(kp, rows, name="v.mp4.p0", track_id=0, max_gap_frames=3)
    assert runs(ds.present) == [(1, 6), (12, 13)]
    np.testing.assert_allclose(ds.keypoints[3, 0], [3.0, 3.0])  # interpolated between frames 2 and 5
    assert np.isnan(ds.keypoints[[0, 6, 11, 13]]).all()  # before, inside the long gap, after: absent
    assert ds.detected.tolist() == [t in (1, 2, 5, 12) for t in range(14)]
    assert ds.meta["interpolated_frames"] == 2


def test_dataset2d_all_persons_layout_and_upstream_subjects(two_people):
    tmp, kp = two_people
    persons = run_dataset2d(tmp / "keypoints2d.npz", tmp / "dataset2d.npz", video_id="clip",
                            settings=Dataset2DSettings(person="all", max_gap_frames=5),
                            tracks_path=tmp / "tracks.npz")  # fmt: skip
    assert [p.name for p in persons] == ["clip.mp4.p0", "clip.mp4.p1"]
    loaded = load_persons2d(tmp / "dataset2d.npz")
    assert [p.track_id for p in loaded] == [0, 1]
    assert runs(loaded[0].present) == [(0, 60), (100, 120)] and runs(loaded[1].present) == [(20, 120)]
    np.testing.assert_array_equal(loaded[0].keypoints, persons[0].keypoints)
    # Upstream's view: one subject per segment, finite, loadable the way run.py loads it.
    with np.load(tmp / "dataset2d.npz", allow_pickle=True) as z:
        positions = z["positions_2d"].item()
        meta = json.loads(str(z["meta"]))
    assert sorted(positions) == ["clip.mp4.p0.s0", "clip.mp4.p0.s1", "clip.mp4.p1"]
    assert all(np.isfinite(v["custom"][0]).all() for v in positions.values())
    assert [s["first"] for s in meta["subjects"]] == [0, 100, 20]
    one = load_dataset2d(tmp / "dataset2d.npz", subject="clip.mp4.p0.s1")
    np.testing.assert_array_equal(one.keypoints, persons[0].keypoints[100:120])


def test_main_person_is_the_longest_track(two_people):
    tmp, _ = two_people
    (main,) = run_dataset2d(tmp / "keypoints2d.npz", tmp / "dataset2d.npz", video_id="clip",
                            settings=Dataset2DSettings(person="main"),
                            tracks_path=tmp / "tracks.npz")  # fmt: skip
    assert main.track_id == 1  # 100 frames against 77


def test_lift_per_person_segments_alone_and_absent_frames_nan(two_people):
    tmp, _ = two_people
    run_dataset2d(tmp / "keypoints2d.npz", tmp / "dataset2d.npz", video_id="clip",
                  settings=Dataset2DSettings(person="all", max_gap_frames=5),
                  tracks_path=tmp / "tracks.npz")  # fmt: skip
    save_checkpoint(tmp / "lifter.bin", model_pos=random_model(widths=(3, 3), channels=16))
    run_lift3d(tmp / "dataset2d.npz", checkpoint_path=tmp / "lifter.bin", out=tmp / "pose3d.npz",
               csv=tmp / "pose3d.csv", fps=FPS, settings=Lift3DSettings(device="cpu"))  # fmt: skip
    pose = load_pose3d(tmp / "pose3d.npz", frame_count=120)
    assert pose.positions.shape == (2, 120, 17, 3) and pose.track_ids.tolist() == [0, 1]
    persons = load_persons2d(tmp / "dataset2d.npz")
    ckpt = load_checkpoint(tmp / "lifter.bin")
    for p, person in enumerate(persons):
        assert np.isnan(pose.positions[p][~person.present]).all()
        for start, stop in runs(person.present):
            alone = lift_keypoints(
                person.keypoints[start:stop], width=640, height=360, checkpoint=ckpt, device="cpu"
            )
            np.testing.assert_array_equal(pose.positions[p, start:stop], alone)
    assert np.isfinite(pose.display[0, :60]).all() and np.nanmin(pose.display[0][..., 2]) == 0
    table = pd.read_csv(tmp / "pose3d.csv")
    assert list(table.columns[:2]) == ["person", "frame"]
    assert table.groupby("person").frame.nunique().to_dict() == {0: 80, 1: 100}


def test_single_frame_segment_lifts(tmp_path):
    kp, _ = scene({0: np.array([[100.0, 200.0]] + [[np.nan, np.nan]] * 9 + [[120.0, 200.0]] * 10)})
    save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
    run_tracks(tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=FPS,
                settings=TracksSettings(max_lost_frames=20, min_track_frames=1))  # fmt: skip
    run_dataset2d(tmp_path / "keypoints2d.npz", tmp_path / "dataset2d.npz", video_id="v",
                  settings=Dataset2DSettings(person="all", max_gap_frames=2),
                  tracks_path=tmp_path / "tracks.npz")  # fmt: skip
    save_checkpoint(tmp_path / "lifter.bin", model_pos=random_model(widths=(3, 3), channels=16))
    run_lift3d(tmp_path / "dataset2d.npz", checkpoint_path=tmp_path / "lifter.bin", out=tmp_path / "pose3d.npz",
               fps=FPS, settings=Lift3DSettings(device="cpu"))  # fmt: skip
    pose = load_pose3d(tmp_path / "pose3d.npz")
    assert np.isfinite(pose.positions[0, 0]).all() and np.isnan(pose.positions[0, 1:10]).all()


def test_nobody_tracked_is_an_error_naming_the_file(tmp_path):
    kp = from_frames([(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)))] * 4, width=64, height=48,
                     meta={"score_threshold": 0.7, "persons_below_threshold": 3})  # fmt: skip
    save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
    run_tracks(tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=FPS, settings=TracksSettings())
    with pytest.raises(PosepipeError, match=r"keypoints2d.npz: no person track in any of the 4 frames .*"
                       r"score_threshold 0.7 removed all 3 persons"):  # fmt: skip
        run_dataset2d(tmp_path / "keypoints2d.npz", tmp_path / "d.npz", video_id="v",
                      settings=Dataset2DSettings(person="all"),
                      tracks_path=tmp_path / "tracks.npz")  # fmt: skip
    assert not (tmp_path / "d.npz").exists()


def test_real_two_person_clip_keeps_identities(tmp_path, test_data):
    """dance.mp4 beside itself 30 frames later, keypoints of both in one COCO file, shuffled per frame."""
    from posepipe.keypoints2d.importers import run_import
    from posepipe.testing import write_timeline
    from tests.synthetic_people import id_switches, two_dancers

    video, keypoints, truth = two_dancers(test_data("media"), tmp_path)
    timeline = write_timeline(video, tmp_path / "frames", video_id="duet")
    kp = run_import(keypoints, timeline_json=timeline, out=tmp_path / "keypoints2d.npz")
    tracks = run_tracks(tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=30000 / 1001,
                         settings=TracksSettings())  # fmt: skip
    assert tracks.num_tracks == 2 and (tracks.track_ids >= 0).all()
    # Rows of a frame keep the file's (shuffled) order, so ``truth`` is per row.
    rows_frames = np.repeat(np.arange(kp.num_frames), kp.counts())
    assert id_switches(truth, tracks.track_ids, rows_frames) == 0
    # The left dancer is track 0 (left edge first), the right one track 1, in every frame.
    assert (tracks.track_ids == truth).all()
    run_dataset2d(tmp_path / "keypoints2d.npz", tmp_path / "dataset2d.npz", video_id="duet",
                  settings=Dataset2DSettings(person="all"), tracks_path=tmp_path / "tracks.npz")  # fmt: skip
    save_checkpoint(tmp_path / "lifter.bin", model_pos=random_model(widths=(3, 3), channels=16))
    run_lift3d(tmp_path / "dataset2d.npz", checkpoint_path=tmp_path / "lifter.bin", out=tmp_path / "pose3d.npz",
               timeline=timeline, settings=Lift3DSettings(device="cpu"))  # fmt: skip
    pose = load_pose3d(tmp_path / "pose3d.npz", frame_count=150)
    assert pose.positions.shape == (2, 150, 17, 3) and np.isfinite(pose.positions).all()
