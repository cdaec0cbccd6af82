"""Long videos in frame-range shards: the plan, the joined keypoints2d.npz equal to the unsharded
one (same arrays), the joined render equal frame for frame (lossless x264, so any difference would
be ours), and what a change re-runs."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from posepipe.artefacts.keypoints2d import join_ranges, load_keypoints2d
from posepipe.keypoints2d.importers import run_import
from posepipe.render.stage import read_render_meta
from posepipe.shards import output_range, plan_ranges
from posepipe.testing import add_video, random_checkpoint, write_timeline
from tests.snakemake_run import planned_jobs, snakemake

FRAMES, SHARD = 1200, 500
CONFIG = {
    "input": {"directory": "videos"},
    "keypoints2d": {"source": "file"},
    "lift3d": {"checkpoint": "lifter.bin"},
    "render": {"height": 64, "audio": False, "crf": 0, "preview": False},
    "exports": [],
}


def test_plan_and_output_ranges():
    assert plan_ranges(1200, 500) == [(0, 500), (500, 1000), (1000, 1200)]
    assert plan_ranges(7, 0) == [(0, 7)] and plan_ranges(7, 100) == [(0, 7)]
    assert plan_ranges(10, 3, align=4) == [(0, 4), (4, 8), (8, 10)]  # whole detector batches
    # every 3rd frame, 400 output frames: the ranges' output frames tile 0..400 without overlap.
    outs = [output_range(a, b, every=3, count=400) for a, b in plan_ranges(1200, 500)]
    assert outs == [(0, 167), (167, 334), (334, 400)]
    assert output_range(1000, 1200, every=1, count=900) == (900, 900)  # max_frames cut it: empty


def test_import_shards_join_to_the_unsharded_arrays(tmp_path):
    video = add_video(tmp_path, "clip", frames=60)
    timeline = write_timeline(video, tmp_path / "frames")
    keypoints = tmp_path / "videos" / "clip.coco.json"
    whole = run_import(keypoints, timeline_json=timeline, out=tmp_path / "whole.npz")
    parts = [
        run_import(keypoints, timeline_json=timeline, out=tmp_path / f"p{a}.npz", frame_range=(a, b))
        for a, b in plan_ranges(60, 25)
    ]
    joined = join_ranges(parts[::-1], frame_count=60)
    for name in ("frame_offsets", "boxes", "box_scores", "keypoints"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))
    assert joined.meta["persons"] == whole.meta["persons"] and len(joined.meta["shards"]) == 3
    # The threshold's count too (each shard counts its own frames, the join adds them up).
    strict = run_import(keypoints, timeline_json=timeline, out=tmp_path / "s.npz", score_threshold=0.99)
    shards = [run_import(keypoints, timeline_json=timeline, out=tmp_path / f"s{a}.npz", frame_range=(a, b),
                              score_threshold=0.99) for a, b in plan_ranges(60, 25)]  # fmt: skip
    joined = join_ranges(shards, frame_count=60)
    assert joined.meta["persons_below_threshold"] == strict.meta["persons_below_threshold"] == 59
    with pytest.raises(Exception, match="do not tile"):
        join_ranges(parts[:1] + parts[2:], frame_count=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same long clip run unsharded and with 500-frame shards."""
    out = {}
    for name, shard in (("whole", 0), ("sharded", SHARD)):
        workdir = tmp_path_factory.mktemp(name)
        add_video(workdir, "long", frames=FRAMES, seed=4)
        random_checkpoint(workdir / "lifter.bin")
        proc = snakemake(workdir, "--cores", "2", config={**CONFIG, "shard_frames": shard})
        out[name] = (workdir, proc.stdout + proc.stderr)
    return out


@pytest.mark.workflow
def test_sharded_outputs_equal_the_unsharded_ones(runs):
    import av

    whole, sharded = runs["whole"][0] / "results/long", runs["sharded"][0] / "results/long"
    a, b = load_keypoints2d(whole / "keypoints2d.npz"), load_keypoints2d(sharded / "keypoints2d.npz")
    for name in ("frame_offsets", "boxes", "box_scores", "keypoints"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert [s["frame_range"] for s in b.meta["shards"]] == [[0, 500], [500, 1000], [1000, 1200]]
    frames = []
    for path in (whole / "render.mp4", sharded / "render.mp4"):
        with av.open(str(path)) as container:
            frames.append([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert len(frames[0]) == len(frames[1]) == FRAMES
    assert all(np.array_equal(x, y) for x, y in zip(*frames, strict=True))
    assert read_render_meta(sharded / "render.mp4")["shards"] == 3
    log = runs["sharded"][1]
    assert log.count("rule keypoints2d_shard:") == 3 and log.count("rule render_shard:") == 3
    assert not list(sharded.glob("shards/*.npz")) and not list(sharded.glob("shards/*.mp4"))  # temp


@pytest.mark.workflow
def test_what_reruns_after_changes(runs, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(runs["sharded"][0], workdir, symlinks=True)
    config = {**CONFIG, "shard_frames": SHARD}
    assert planned_jobs(workdir, config=config) == set()
    # Another shard size: the plan of a finished video is kept, nothing is re-detected.
    assert planned_jobs(workdir, config={**config, "shard_frames": 300}) == set()
    # A detector setting: every shard again, then the gather and what follows.
    changed = {**config, "keypoints2d": {**CONFIG["keypoints2d"], "score_threshold": 0.5}}
    out = snakemake(workdir, "--dry-run", config=changed).stdout
    assert out.count("rule keypoints2d_shard:") == 3 and "rule keypoints2d:" in out
    # A new video gets its own plan and shards; the finished one runs nothing.
    add_video(workdir, "short", frames=30, seed=5)
    planned = planned_jobs(workdir, config=config)
    assert {video for _, video in planned} <= {"short", ""}
    shards = json.loads((workdir / "results/long/shards.json").read_text())
    assert shards["ranges"] == [[0, 500], [500, 1000], [1000, 1200]] and shards["shard_frames"] == SHARD


@pytest.mark.workflow
def test_a_failed_shard_reruns_alone(tmp_path):
    add_video(tmp_path, "long", frames=FRAMES, seed=4)
    random_checkpoint(tmp_path / "lifter.bin")
    config = {**CONFIG, "shard_frames": SHARD}
    # Two of the three shards are made; the third one's job "failed" (it never wrote its file).
    done = ["results/long/shards/keypoints2d_0_500.npz", "results/long/shards/keypoints2d_1000_1200.npz"]
    snakemake(tmp_path, "--cores", "2", "--notemp", "results/long/shards.json", *done, config=config)
    assert all((tmp_path / path).exists() for path in done)
    out = snakemake(tmp_path, "--dry-run", "results/long/keypoints2d.npz", config=config).stdout
    assert (
        out.count("rule keypoints2d_shard:") == 1
        and "wildcards: video=long, frame_first=500, frame_stop=1000" in out
    )
    assert "rule keypoints2d:" in out


@pytest.mark.workflow
def test_detector_shards_each_ask_for_a_gpu(tmp_path):
    """Under source: detectron2 every keypoints2d shard is a GPU job (resources gpu=1) and the
    gather is not; planned only, so neither detectron2 nor real weights are needed."""
    add_video(tmp_path, "long", frames=FRAMES, seed=4)
    random_checkpoint(tmp_path / "lifter.bin")
    (tmp_path / "weights.pkl").write_bytes(b"not read by a dry run")
    config = {**CONFIG, "shard_frames": SHARD,
              "keypoints2d": {"source": "detectron2", "weights": "weights.pkl", "batch_size": 4}}  # fmt: skip
    snakemake(tmp_path, "--cores", "1", "results/long/shards.json", config=config)
    out = snakemake(tmp_path, "--dry-run", "results/long/keypoints2d.npz", config=config).stdout
    blocks = re.split(r"\n(?=\[|rule |localrule )", out)
    shards = [b for b in blocks if "rule keypoints2d_shard:" in b]
    gather = [b for b in blocks if "rule keypoints2d:" in b]
    assert len(shards) == 3 and all("gpu=1" in b for b in shards), shards
    assert len(gather) == 1 and "gpu=" not in gather[0]
    assert json.loads((tmp_path / "results/long/shards.json").read_text())["align"] == 4
