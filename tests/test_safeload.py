"""No data file runs code: object-array .npz members and .pkl files go through a restricted unpickler.

Each hostile file carries a payload that would create a marker file when unpickled by
``pickle.load`` or ``np.load(allow_pickle=True)``; the marker must never appear.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from posepipe.artefacts.dataset2d import load_dataset2d
from posepipe.errors import PosepipeError
from posepipe.keypoints2d.importers import read_d2npz
from posepipe.safeload import load_npz, load_pickle


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: the stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class SystemPayload:
    """The classic one: ``os.system("touch marker")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _objects(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def test_plain_object_arrays_equal_numpy(tmp_path):
    rng = np.random.default_rng(0)
    nested = _objects([[[], rng.normal(size=(2, 5))], [[], np.zeros((0, 5))], None, {"w": 3, "h": 2.5}])
    path = tmp_path / "plain.npz"
    np.savez(path, nested=nested, numbers=rng.normal(size=(3, 4)).astype(np.float32),
             d=np.array({"a": [1, 2.0, None, "x", (1, 2)], "b": {"c": np.arange(3)}}, dtype=object),
             scalar=np.float64(2.5))  # fmt: skip
    ours = load_npz(path)
    with np.load(path, allow_pickle=True) as ref:
        assert sorted(ours) == sorted(ref.files)
        assert np.array_equal(ours["numbers"], ref["numbers"]) and ours["numbers"].dtype == np.float32
        assert ours["scalar"] == 2.5
        np.testing.assert_array_equal(ours["nested"][0][1], ref["nested"][0][1])
        assert ours["nested"][2] is None and ours["nested"][3] == {"w": 3, "h": 2.5}
        assert ours["d"].item()["a"] == [1, 2.0, None, "x", (1, 2)]
        np.testing.assert_array_equal(ours["d"].item()["b"]["c"], np.arange(3))


@pytest.mark.parametrize("payload", [Payload, SystemPayload])
def test_hostile_d2npz_is_refused_and_runs_nothing(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    boxes = _objects([[[], np.zeros((1, 5))], [[], payload(marker)]])
    np.savez(path, boxes=boxes, keypoints=_objects([[[], np.zeros((1, 4, 17))]] * 2))
    assert not marker.exists()
    with pytest.raises(PosepipeError) as err:
        read_d2npz(path, frame_count=2)
    message = str(err.value)
    assert message.startswith(f"{path}: refused for safety")
    assert ("pathlib" in message and "touch" in message) or "system" in message
    assert not marker.exists()


def test_hostile_dataset2d_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "dataset2d.npz"
    positions = {"v.mp4": {"custom": [np.zeros((3, 17, 2), np.float32)]}}
    metadata = {"layout_name": "coco", "video_metadata": {"v.mp4": {"w": 4, "h": 4}}, "x": Payload(marker)}
    np.savez(path, positions_2d=np.array(positions, dtype=object), metadata=np.array(metadata, dtype=object))
    with pytest.raises(PosepipeError, match="refused for safety"):
        load_dataset2d(path)
    assert not marker.exists()


def test_hostile_pkl_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"model": {"w": np.zeros(3)}, "__author__": Payload(marker)}, fh)
    with pytest.raises(PosepipeError, match=r"model_final.pkl: refused for safety: the weights would call"):
        load_pickle(path, what="weights")
    assert not marker.exists()
    good = tmp_path / "good.pkl"
    with open(good, "wb") as fh:
        pickle.dump({"model": {"w": np.arange(3.0)}, "__author__": "me"}, fh, protocol=2)
    data = load_pickle(good)
    assert data["__author__"] == "me" and np.array_equal(data["model"]["w"], np.arange(3.0))


def test_not_an_archive_or_damaged(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(PosepipeError, match="text.npz: cannot read as npz archive .not an .npz archive"):
        load_npz(text)
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(10))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(PosepipeError, match="cut.npz"):
        load_npz(cut)
