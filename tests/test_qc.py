"""The qc stage: numbers with known answers on synthetic data, the files it writes, its warnings."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from posepipe.artefacts.dataset2d import Dataset2D, save_dataset2d
from posepipe.artefacts.keypoints2d import from_frames, save_keypoints2d
from posepipe.artefacts.pose3d import Pose3D, save_pose3d
from posepipe.artefacts.qc import load_qc
from posepipe.qc import BONE_NAMES, QCSettings, bone_cv, joint_speeds, person_numbers, run_qc
from posepipe.registry import STAGE_VERSIONS
from posepipe.skeleton import H36M_PARENTS
from posepipe.summary import write_summary

FPS = 25.0
T = 60


def rigid_skeleton(T: int, *, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) a skeleton of fixed bone lengths, turning about z and moving: every bone CV 0."""
    rng = np.random.default_rng(seed)
    rest = np.zeros((17, 3))
    for child, parent in enumerate(H36M_PARENTS):
        if parent >= 0:
            rest[child] = rest[parent] + rng.normal(0, 0.2, 3)
    angle = np.linspace(0, np.pi, T)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle), 0 * angle], -1),
                    np.stack([np.sin(angle), np.cos(angle), 0 * angle], -1),
                    np.stack([0 * angle, 0 * angle, 1 + 0 * angle], -1)], axis=1)  # fmt: skip
    return np.einsum("tij,kj->tki", rot, rest) + np.linspace(0, 1, T)[:, None, None]


def person(detected: np.ndarray, *, score: float = 0.8) -> Dataset2D:
    T = len(detected)
    scores = np.where(detected[:, None], score, 0.0).astype(np.float32) * np.ones((1, 17), np.float32)
    scores[:, 9] = np.where(detected, 0.2, 0.0)  # a weak left wrist
    return Dataset2D(
        name="v.mp4", keypoints=np.full((T, 17, 2), 50, np.float32), width=640, height=360, detected=detected,
        scores=scores, box_scores=np.ones(T, np.float32), boxes=np.zeros((T, 4), np.float32),
    )  # fmt: skip


def test_interpolated_runs_and_scores():
    detected = np.ones(T, bool)
    detected[10:14] = False  # a run of 4
    detected[30:36] = False  # a run of 6
    numbers, scores, _ = person_numbers(
        keypoints2d_person=person(detected), positions=rigid_skeleton(T), fps=FPS
    )
    assert numbers["interpolated_frames"] == 10 and numbers["interpolated_runs"] == 2
    assert numbers["longest_interpolated_run"] == 6 and numbers["longest_gap"] == 6
    assert numbers["detection_rate"] == pytest.approx(50 / 60, abs=1e-4)
    assert numbers["mean_keypoint_score"] == pytest.approx((16 * 0.8 + 0.2) / 17, abs=1e-4)
    np.testing.assert_allclose(scores[9], [0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(scores[0], [0.8, 0.8], atol=1e-6)


def test_constant_bones_give_cv_zero_and_a_stretch_shows():
    positions = rigid_skeleton(T)
    np.testing.assert_allclose(bone_cv(positions), 0, atol=1e-9)
    stretched = positions.copy()
    stretched[T // 2 :, 13] += (stretched[T // 2 :, 13] - stretched[T // 2 :, 12]) * 0.5  # left forearm +50%
    cv = dict(zip(BONE_NAMES, bone_cv(stretched), strict=True))
    assert cv["left_elbow-left_wrist"] == pytest.approx(0.2, abs=1e-6)  # lengths L and 1.5 L, half each
    assert max(v for k, v in cv.items() if k != "left_elbow-left_wrist") < 1e-9


def test_known_jitter_gives_the_expected_speed_percentile():
    positions = np.zeros((T, 17, 3))
    positions[:, 16, 0] = 0.01 * (-1.0) ** np.arange(T)  # right wrist: +-1 cm every frame
    speeds = joint_speeds(positions, FPS)
    np.testing.assert_allclose(speeds[:, 16], 0.02 * FPS)
    numbers, _, speed_stats = person_numbers(
        keypoints2d_person=person(np.ones(T, bool)), positions=positions, fps=FPS
    )
    assert numbers["p99_joint_speed"] == pytest.approx(0.5)  # 1/17 of the joint-frames move at 0.5 m/s
    assert numbers["mean_joint_speed"] == pytest.approx(0.5 / 17, abs=1e-4)
    np.testing.assert_allclose(speed_stats[16], [0.5, 0.5])


def _write_video(tmp_path, *, several: bool):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "timeline.json").write_text(
        json.dumps(
            {"video_id": "v", "fps": FPS, "frame_count": T, "width": 640, "height": 360, "source": "v.mp4"}
        )
    )
    frames = []
    rng = np.random.default_rng(0)
    for t in range(T):
        n = 2 if several and t % 2 else 1
        kp = np.concatenate([rng.uniform(100, 300, (n, 17, 2)), np.full((n, 17, 1), 0.9)], axis=2)
        frames.append((np.tile([100, 100, 300, 300], (n, 1)), np.full(n, 0.9), kp))
    save_keypoints2d(tmp_path / "keypoints2d.npz", from_frames(frames, width=640, height=360))
    detected = np.ones(T, bool)
    detected[20:40] = False
    save_dataset2d(tmp_path / "dataset2d.npz", person(detected))
    positions = rigid_skeleton(T)
    save_pose3d(
        tmp_path / "pose3d.npz", Pose3D(positions=positions, display=positions, time=np.arange(T) / FPS)
    )
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "lift3d.tsv").write_text("s\th:m:s\n2.25\t0:00:02\n")


def test_stage_files_warnings_and_summary(tmp_path):
    folder = tmp_path / "results" / "v"
    folder.mkdir(parents=True)
    _write_video(folder, several=True)
    report = run_qc(
        timeline_json=folder / "frames/timeline.json", keypoints2d_npz=folder / "keypoints2d.npz",
        dataset2d_npz=folder / "dataset2d.npz", pose3d_npz=folder / "pose3d.npz", out_dir=folder / "qc",
        settings=QCSettings(max_interpolated_share=0.2, max_several_people_share=0.3),
        benchmarks=[folder / "benchmarks" / "lift3d.tsv", folder / "benchmarks" / "render.tsv"],
    )  # fmt: skip
    assert load_qc(folder / "qc" / "qc.json") == json.loads(json.dumps(report))
    assert report["stage_version"] == STAGE_VERSIONS["qc"] and report["frames"] == T
    assert report["people_per_frame"] == {"max": 2, "mean": 1.5, "several_share": 0.5}
    assert report["stage_seconds"] == {"lift3d": 2.25}
    assert report["warnings"] == [
        "two or more people in view in 50% of frames (person: top_score follows one)",
        "33% of frames interpolated",
    ]
    table = pd.read_csv(folder / "qc" / "qc_joints.csv")
    assert len(table) == 34 and set(table.skeleton) == {"coco", "h36m"}
    # the per-joint rows name the person as the per-person table does (one person: the video's name)
    assert set(table.person) == {report["persons"][0]["name"]} == {"v.mp4"}
    assert (folder / "qc" / "qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    row = write_summary(["v"], out=tmp_path / "summary.csv", results=tmp_path / "results",
                        stages=("frames", "dataset2d", "lift3d", "qc"))[0]  # fmt: skip
    assert row["status"] == "complete" and row["interpolated_frames"] == 20 and row["people_max"] == 2
    assert row["warnings"].startswith("two or more people in view in 50% of frames")


@pytest.mark.parametrize("published", [True, False])
def test_weights_that_are_not_the_published_file_are_marked(tmp_path, published):
    """pose3d.npz records the lifter's SHA-256: qc.json names the published file it matches, or
    warns (first), and the warning reaches qc.html, summary.csv and the summary page."""
    from posepipe.weights import PUBLISHED

    lifter = PUBLISHED["videopose3d_h36m_detectron_coco"]
    sha = lifter.sha256 if published else "ab" * 32
    folder = tmp_path / "results" / "v"
    folder.mkdir(parents=True)
    _write_video(folder, several=False)
    positions = rigid_skeleton(T)
    meta = {"checkpoint": {"path": "resources/models/mine.bin", "sha256": sha.upper(), "epoch": 3}}
    save_pose3d(
        folder / "pose3d.npz",
        Pose3D(positions=positions, display=positions, time=np.arange(T) / FPS, meta=meta),
    )
    report = run_qc(
        timeline_json=folder / "frames/timeline.json", keypoints2d_npz=folder / "keypoints2d.npz",
        dataset2d_npz=folder / "dataset2d.npz", pose3d_npz=folder / "pose3d.npz", out_dir=folder / "qc",
        settings=QCSettings(max_interpolated_share=0.5),
    )  # fmt: skip
    assert report["checkpoint"] == {
        "path": "resources/models/mine.bin",
        "sha256": sha,
        "published": "videopose3d_h36m_detectron_coco" if published else None,
    }
    page = (folder / "qc" / "qc.html").read_text()
    row = write_summary(["v"], out=tmp_path / "summary.csv", results=tmp_path / "results",
                        stages=("frames", "dataset2d", "lift3d", "qc"), html=tmp_path / "summary.html")[0]  # fmt: skip
    summary_page = (tmp_path / "summary.html").read_text()
    warning = (
        f"lifted with mine.bin (SHA-256 abababababab...), not the published {lifter.filename} "
        f"(SHA-256 {lifter.sha256[:12]}...)"
    )
    if published:
        assert report["warnings"] == [] and "warnings" not in row
        assert "mine.bin (published; SHA-256 d3219e005b50...)" in page and "No warnings." in page
        assert "not the published" not in summary_page
    else:
        assert report["warnings"] == [warning]
        assert row["warnings"] == warning
        assert "mine.bin (NOT the published file; SHA-256 abababababab...)" in page
        assert html.escape(warning) in page and html.escape(warning) in summary_page


def test_qc_page_alone_has_the_figure_and_the_preview(tmp_path):
    """qc.html carries its figure (embedded: the page works copied anywhere) and links the render
    preview beside the video's folder; the summary page shows the warnings right after the status."""
    import base64
    import re

    folder = tmp_path / "results" / "v"
    folder.mkdir(parents=True)
    _write_video(folder, several=True)
    run_qc(
        timeline_json=folder / "frames/timeline.json", keypoints2d_npz=folder / "keypoints2d.npz",
        dataset2d_npz=folder / "dataset2d.npz", pose3d_npz=folder / "pose3d.npz", out_dir=folder / "qc",
        settings=QCSettings(), preview="../preview.gif",
    )  # fmt: skip
    page = (folder / "qc" / "qc.html").read_text()
    embedded = re.search(r'<img alt="QC figure of v" src="data:image/png;base64,([^"]+)"', page)
    assert embedded and base64.b64decode(embedded[1]) == (folder / "qc" / "qc.png").read_bytes()
    assert '<a href="../preview.gif"><img alt="preview of v" src="../preview.gif"' in page
    assert "it is written by the render stage" in page  # what shows where the GIF cannot be loaded
    assert (
        page.index("Warnings:")
        < page.index("QC figure")
        < page.index("preview of v")
        < page.index("Per person")
    )
    # without a preview (render off): no link to a file that will never exist
    run_qc(
        timeline_json=folder / "frames/timeline.json", keypoints2d_npz=folder / "keypoints2d.npz",
        dataset2d_npz=folder / "dataset2d.npz", pose3d_npz=folder / "pose3d.npz", out_dir=folder / "qc",
    )  # fmt: skip
    assert "preview" not in (folder / "qc" / "qc.html").read_text().lower()

    write_summary(["v"], out=tmp_path / "summary.csv", results=tmp_path / "results",
                  stages=("frames", "dataset2d", "lift3d", "qc"), html=tmp_path / "summary.html")  # fmt: skip
    headers = re.findall(r"<th>([^<]*)</th>", (tmp_path / "summary.html").read_text())
    assert headers[:3] == ["video", "status", "warnings"], headers
    assert pd.read_csv(tmp_path / "summary.csv").columns.get_loc("warnings") > 10  # the CSV is as it was
