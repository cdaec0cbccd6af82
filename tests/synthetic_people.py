"""Synthetic multi-person scenes with known identities, for the tracker and per-person stages.

A person is a COCO skeleton of fixed proportions (standing, 160 px tall) placed at a centre
that moves along a path; each frame lists the visible persons' detections in a given order.
"""

from __future__ import annotations

import numpy as np

from posepipe.artefacts.keypoints2d import Keypoints2D, from_frames

# A standing COCO skeleton, x and y in units of body height, origin at the hip centre.
TEMPLATE = np.array(
    [[0.0, -0.45], [-0.03, -0.48], [0.03, -0.48], [-0.06, -0.46], [0.06, -0.46],  # nose, eyes, ears
     [-0.12, -0.32], [0.12, -0.32], [-0.16, -0.15], [0.16, -0.15], [-0.17, 0.0], [0.17, 0.0],  # arms
     [-0.08, 0.0], [0.08, 0.0], [-0.09, 0.25], [0.09, 0.25], [-0.09, 0.5], [0.09, 0.5]]  # legs
)  # fmt: skip


def person_at(cx: float, cy: float, *, height: float = 160.0, score: float = 0.9, phase: float = 0.0):
    """(box (4,), box score, keypoints (17, 3)) of a person whose hips are at (cx, cy)."""
    xy = TEMPLATE * height + [cx, cy]
    xy[[9, 10, 15, 16], 0] += np.array([1, -1, -1, 1]) * 0.05 * height * np.sin(phase)  # swinging limbs
    kp = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1)
    margin = 0.05 * height
    box = np.array([*(xy.min(0) - margin), *(xy.max(0) + margin)])
    return box, score, kp


def scene(
    paths: dict[int, np.ndarray], *, shuffle_seed: int | None = None, width: int = 640, height: int = 360
):
    """Detections of persons following ``paths`` (id -> (T, 2) hip centre, NaN where not visible).

    Returns:
        (Keypoints2D, truth: int64 (N,) the person id of each detection row).
    """
    T = len(next(iter(paths.values())))
    rng = np.random.default_rng(shuffle_seed)
    frames, truth = [], []
    for t in range(T):
        people = [(pid, p[t]) for pid, p in paths.items() if np.all(np.isfinite(p[t]))]
        if shuffle_seed is not None:
            people = [people[i] for i in rng.permutation(len(people))]
        dets = [person_at(*c, phase=0.3 * t) for _, c in people]
        truth += [pid for pid, _ in people]
        frames.append(
            (np.array([d[0] for d in dets]).reshape(-1, 4), np.array([d[1] for d in dets]),
             np.array([d[2] for d in dets]).reshape(-1, 17, 3))
        )  # fmt: skip
    return from_frames(frames, width=width, height=height), np.array(truth, np.int64)


def add_detection(kp: Keypoints2D, truth: np.ndarray, t: int, det, *, pid: int = -1):
    """A copy of (kp, truth) with one more detection ``det`` in frame ``t`` (e.g. a false one)."""
    frames = [kp.frame(i) for i in range(kp.num_frames)]
    b, s, k = frames[t]
    frames[t] = (np.vstack([b, det[0][None]]), np.append(s, det[1]), np.concatenate([k, det[2][None]]))
    at = int(kp.frame_offsets[t + 1])
    return from_frames(frames, width=kp.width, height=kp.height), np.insert(truth, at, pid)


def id_switches(truth: np.ndarray, track_ids: np.ndarray, frame_of_row: np.ndarray) -> int:
    """Identity switches counted as MOT's IDSW: for each true person, the number of times the track
    id matched to them changes from one tracked frame to the next (untracked frames are skipped)."""
    switches = 0
    for pid in np.unique(truth[truth >= 0]):
        rows = np.flatnonzero((truth == pid) & (track_ids >= 0))
        ids = track_ids[rows[np.argsort(frame_of_row[rows], kind="stable")]]
        switches += int(np.count_nonzero(np.diff(ids)))
    return switches


def two_dancers(media, out_dir, *, frames: int = 150, delay: int = 30, scale: float = 0.5):
    """A real two-person clip from the sample ``dance.mp4`` (tests/data/media): the clip (left) beside itself ``delay``
    frames later (right), scaled by ``scale``, and both persons' COCO keypoints in one results file,
    listed in a shuffled order in every frame.

    Returns:
        (video path, keypoints JSON path, truth: per COCO entry of the file, 0 = left, 1 = right).
    """
    import json
    from pathlib import Path

    from tests.media import ffmpeg_exe

    media, out_dir = Path(media), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w, h = round(800 * scale) // 2 * 2, round(480 * scale) // 2 * 2
    video = out_dir / "duet.mp4"
    chain = (
        f"[0:v]trim=start_frame=0:end_frame={frames},setpts=PTS-STARTPTS,scale={w}:{h}[a];"
        f"[1:v]trim=start_frame={delay}:end_frame={delay + frames},setpts=PTS-STARTPTS,scale={w}:{h}[b];"
        "[a][b]hstack"
    )
    import subprocess

    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(media / "dance.mp4"), "-i",
         str(media / "dance.mp4"), "-filter_complex", chain, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(video)],
        check=True,
    )  # fmt: skip
    source = {e["image_id"]: e for e in json.loads((media / "dance.coco.json").read_text())}
    rng = np.random.default_rng(0)
    entries, truth = [], []
    for t in range(frames):
        people = []
        for who, (src, dx) in enumerate(((source[t], 0.0), (source[t + delay], w))):
            kp = np.asarray(src["keypoints"], float).reshape(17, 3)
            kp[:, :2] = kp[:, :2] * scale + [dx, 0]
            x, y, bw, bh = src["bbox"]
            people.append((who, {"image_id": t, "category_id": 1, "score": src["score"],
                                 "bbox": [x * scale + dx, y * scale, bw * scale, bh * scale],
                                 "keypoints": kp.ravel().tolist()}))  # fmt: skip
        for i in rng.permutation(2):
            truth.append(people[i][0])
            entries.append(people[i][1])
    keypoints = out_dir / "duet.coco.json"
    keypoints.write_text(json.dumps(entries))
    return video, keypoints, np.array(truth)
