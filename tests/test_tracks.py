"""The tracks stage: person tracks from detections, on synthetic scenes with known identities."""

from __future__ import annotations

import numpy as np
import pytest

from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
from posepipe.artefacts.tracks import load_tracks
from posepipe.errors import PosepipeError
from posepipe.registry import STAGE_VERSIONS
from posepipe.summary import collect_warnings
from posepipe.tracks import TracksSettings, box_iou, find_duplicates, keypoint_similarity, link, run_tracks
from tests.synthetic_people import add_detection, id_switches, person_at, scene

FPS = 25.0


def _rows_frames(kp):
    return np.repeat(np.arange(kp.num_frames), kp.counts())


def _walk(x0, x1, T, y=200.0):
    return np.stack([np.linspace(x0, x1, T), np.full(T, y)], axis=1)


def test_iou_and_oks():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0], [0, 0]])
    _, _, kp = person_at(100, 100)
    moved = kp.copy()
    moved[:, 0] += 5
    oks = keypoint_similarity(kp[None], np.stack([kp, moved]), np.array([5000.0, 5000.0]))
    assert oks[0, 0] == pytest.approx(1.0) and 0 < oks[0, 1] < 1
    hidden = kp.copy()
    hidden[:, 2] = 0
    assert keypoint_similarity(kp[None], hidden[None], np.array([5000.0]), min_score=0.5)[0, 0] == 0


def test_two_people_apart_with_misses_and_shuffled_order():
    T = 100
    paths = {0: _walk(100, 250, T), 1: _walk(500, 400, T)}
    paths[0][[10, 11, 40, 41, 42]] = np.nan  # detection misses
    paths[1][[60]] = np.nan
    kp, truth = scene(paths, shuffle_seed=3)
    tracks = link(kp, params=TracksSettings(), fps=FPS)
    assert tracks.num_tracks == 2 and (tracks.track_ids >= 0).all()
    assert id_switches(truth, tracks.track_ids, _rows_frames(kp)) == 0
    assert tracks.refound.tolist() == [2, 1]  # person 0 re-found twice, person 1 once
    assert tracks.length.tolist() == [95, 99] and tracks.first.tolist() == [0, 0]
    # The same scene listed in another order gives the same ids per person.
    kp2, truth2 = scene(paths, shuffle_seed=11)
    tracks2 = link(kp2, params=TracksSettings(), fps=FPS)
    for pid in (0, 1):
        assert set(tracks.track_ids[truth == pid]) == set(tracks2.track_ids[truth2 == pid])


def test_false_detection_for_a_few_frames_is_dropped():
    T = 60
    kp, truth = scene({0: _walk(100, 300, T)})
    for t in (20, 21, 22):
        kp, truth = add_detection(kp, truth, t, person_at(550, 150, score=0.6))
    tracks = link(kp, params=TracksSettings(min_track_frames=10), fps=FPS)
    assert tracks.num_tracks == 1 and tracks.meta["tracks_dropped_short"] == 1
    assert (tracks.track_ids[truth == -1] == -1).all() and (tracks.track_ids[truth == 0] == 0).all()


def test_leaving_for_three_seconds_and_returning():
    T = 200
    paths = {0: _walk(100, 200, T), 1: _walk(450, 450, T, y=220)}
    paths[1][50:125] = np.nan  # 75 frames = 3 s away, back where they left
    kp, truth = scene(paths)
    rows_frames = _rows_frames(kp)
    default = link(kp, params=TracksSettings(), fps=FPS)  # lost for more than one second: a new track
    assert default.num_tracks == 3 and id_switches(truth, default.track_ids, rows_frames) == 1
    patient = link(kp, params=TracksSettings(max_lost_frames=100), fps=FPS)
    assert patient.num_tracks == 2 and id_switches(truth, patient.track_ids, rows_frames) == 0
    assert patient.refound.tolist() == [0, 1]


def test_assignment_gates_before_and_after():
    from posepipe.tracks import assign

    # The plain minimum-sum assignment would pair 0-1 (cost 0) and 1-0 (0.8, over the gate): one match.
    assert assign(np.array([[0.45, 0.0], [0.8, 0.45]]), max_cost=0.6) == [(0, 0), (1, 1)]
    assert assign(np.array([[0.9, 0.95]]), max_cost=0.6) == []  # the only pair is over the gate
    assert assign(np.zeros((0, 3)), max_cost=0.6) == []


def test_gate_is_checked_after_the_assignment():
    # One track, and in the next frame only a far-away detection: the assignment pairs them, the gate refuses.
    kp, truth = scene(
        {0: np.array([[100.0, 200.0], [np.nan, np.nan]]), 1: np.array([[np.nan, np.nan], [560, 100]])}
    )
    tracks = link(kp, params=TracksSettings(min_track_frames=1), fps=FPS)
    assert tracks.num_tracks == 2 and tracks.track_ids.tolist() == [0, 1]


def test_crossing_identity_switches():
    """Two people walking past each other, 9 crossings (vertical offset 0/5/20 px, 50/100/200 frames).

    Stated figure: with the velocity model 2 identity switches in all 9 (both in the hardest case:
    identical skeletons overlapping exactly at 17.6 px/frame closing speed); without it, 10.
    """
    totals = {True: 0, False: 0}
    for dy in (0, 5, 20):
        for T in (50, 100, 200):
            kp, truth = scene({0: _walk(100, 540, T), 1: _walk(540, 100, T, y=200 + dy)}, shuffle_seed=0)
            for velocity in (True, False):
                tracks = link(kp, params=TracksSettings(velocity=velocity), fps=FPS)
                assert tracks.num_tracks == 2
                totals[velocity] += id_switches(truth, tracks.track_ids, _rows_frames(kp))
    assert totals == {True: 2, False: 10}


def test_roundtrip_cli_and_bad_file(tmp_path):
    kp, _ = scene({0: _walk(100, 300, 30)})
    save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
    tracks = run_tracks(
        tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=FPS, settings=TracksSettings()
    )
    loaded = load_tracks(tmp_path / "tracks.npz", detections=len(kp.boxes))
    assert loaded.meta["stage"] == "tracks" and loaded.meta["stage_version"] == STAGE_VERSIONS["tracks"]
    np.testing.assert_array_equal(loaded.track_ids, tracks.track_ids)
    assert loaded.meta["max_lost_frames_used"] == 25
    with pytest.raises(PosepipeError, match="has track ids for 30 detections, keypoints2d.npz has 31"):
        load_tracks(tmp_path / "tracks.npz", detections=31)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(PosepipeError, match="bad.npz: cannot read tracks file"):
        load_tracks(tmp_path / "bad.npz")


def test_nobody_and_single_frame_tracks():
    empty = from_frames([(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 17, 3)))] * 5, width=64, height=48)
    tracks = link(empty, params=TracksSettings(), fps=FPS)
    assert tracks.num_tracks == 0 and len(tracks.track_ids) == 0
    kp, _ = scene({0: np.array([[np.nan, np.nan], [100.0, 200.0], [np.nan, np.nan]])})
    assert link(kp, params=TracksSettings(min_track_frames=1), fps=FPS).length.tolist() == [1]
    assert link(kp, params=TracksSettings(min_track_frames=2), fps=FPS).track_ids.tolist() == [-1]


def _with_duplicates(kp, truth, *, pid: int, shift: float = 0.0, frames=None):
    """(kp, truth) with every detection of person ``pid`` listed twice (the copy ``shift`` px to the
    right and a lower box score), in ``frames`` (default all)."""
    frame_of_row = _rows_frames(kp)
    for row in np.flatnonzero(truth == pid)[::-1]:  # from the end: earlier rows keep their index
        t = int(frame_of_row[row])
        if frames is not None and t not in frames:
            continue
        box, keypoints = kp.boxes[row].copy(), kp.keypoints[row].copy()
        box[[0, 2]] += shift
        keypoints[:, 0] += shift
        kp, truth = add_detection(kp, truth, t, (box, kp.box_scores[row] - 0.05, keypoints), pid=pid)
    return kp, truth


def test_duplicate_detections_are_merged_before_linking(tmp_path, caplog):
    """The same person listed twice per frame (an exact copy, or 1 px off) is one track, not two;
    the duplicates are counted and warned about (issue 19, item 4)."""
    T = 40
    kp, truth = scene({0: _walk(100, 250, T), 1: _walk(500, 400, T)}, shuffle_seed=3)
    for shift in (0.0, 1.0):
        dup, dup_truth = _with_duplicates(kp, truth, pid=0, shift=shift)
        save_keypoints2d(tmp_path / "keypoints2d.npz", dup)
        assert link(dup, params=TracksSettings(), fps=FPS).num_tracks == 3  # what linking alone makes of it
        tracks = run_tracks(
            tmp_path / "keypoints2d.npz", tmp_path / "tracks.npz", fps=FPS, settings=TracksSettings()
        )
        assert tracks.num_tracks == 2
        assert id_switches(dup_truth, tracks.track_ids, _rows_frames(dup)) == 0
        copies = dup.box_scores < 0.9 - 0.01  # the lower-scoring copy of each pair is the one dropped
        assert (tracks.track_ids[copies] == -1).all() and (tracks.track_ids[~copies] >= 0).all()
        meta = load_tracks(tmp_path / "tracks.npz").meta
        assert meta["duplicates"] == {"oks_threshold": 0.95, "merged": T, "frames": T}
        expected = (
            f"{T} duplicate detections in {T} frames merged into the detection they repeat "
            "(keypoint similarity above tracks.duplicate_oks 0.95)"
        )
        assert meta["warnings"] == [expected] and expected in caplog.text
        assert collect_warnings(tmp_path) == ([expected], [])  # summary.csv's warnings column
    # duplicate_oks 1 turns it off.
    off = run_tracks(
        tmp_path / "keypoints2d.npz",
        tmp_path / "off.npz",
        fps=FPS,
        settings=TracksSettings(duplicate_oks=1.0),
    )
    assert off.num_tracks == 3 and "warnings" not in off.meta


def test_the_duplicate_default_changes_nothing_on_ordinary_scenes(tmp_path):
    """Two people apart and crossing 5 or 20 px apart: tracks.npz is byte-identical with the merge
    on (default 0.95) and off. (Two identical skeletons passing exactly through each other, at the
    slowest crossing, are merged in 2 of 400 detections: they are indistinguishable there.)"""
    scenes = [scene({0: _walk(100, 250, 60), 1: _walk(500, 400, 60)}, shuffle_seed=3)[0]]
    scenes += [scene({0: _walk(100, 540, T), 1: _walk(540, 100, T, y=200 + dy)}, shuffle_seed=0)[0]
               for dy in (5, 20) for T in (50, 100, 200)]  # fmt: skip
    for i, kp in enumerate(scenes):
        save_keypoints2d(tmp_path / "keypoints2d.npz", kp)
        run_tracks(tmp_path / "keypoints2d.npz", tmp_path / "on.npz", fps=FPS, settings=TracksSettings())
        run_tracks(
            tmp_path / "keypoints2d.npz",
            tmp_path / "off.npz",
            fps=FPS,
            settings=TracksSettings(duplicate_oks=1.0),
        )
        assert (tmp_path / "on.npz").read_bytes() == (tmp_path / "off.npz").read_bytes(), i
    kp, _ = scene({0: _walk(100, 540, 200), 1: _walk(540, 100, 200)}, shuffle_seed=0)
    assert find_duplicates(kp, oks_threshold=0.95, min_score=0.2).sum() == 2
