"""Loading detectron2 weights safely: the checkpointer subclass (runs where detectron2 is installed).

- zoo ``.pkl`` files are read by the restricted unpickler: a file carrying code is refused and
  the code does not run;
- ``.pth`` files load with ``weights_only=True``;
- ``pixel_mean`` / ``pixel_std`` saved in a file (detectron2 did so 2020-04 .. 2021-02) are
  accepted, with a warning when they differ from the config's;
- a mismatch message says what detectron2 would do: missing parameters random, unexpected ignored.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("detectron2")

from posepipe.errors import PosepipeError  # noqa: E402
from posepipe.keypoints2d import detectron2_backend as backend  # noqa: E402

pytestmark = [
    pytest.mark.detectron2,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"),
]

CONFIG = "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def model_and_state():
    d2 = backend.import_detectron2()
    cfg = backend.build_cfg(CONFIG, device="cpu")
    model = d2.build_model(cfg).eval()
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return cfg, state


def _pkl(path: Path, state: dict, **extra) -> Path:
    with open(path, "wb") as fh:
        pickle.dump({"model": state, "__author__": "test", **extra}, fh)
    return path


def _model(cfg):
    return backend.import_detectron2().build_model(cfg).eval()


def test_zoo_pkl_loads_and_records_the_author(tmp_path, model_and_state):
    cfg, state = model_and_state
    record = backend.load_weights(_model(cfg), _pkl(tmp_path / "w.pkl", state), config=CONFIG)
    assert record["author"] == "test" and record["sha256"]


def test_pkl_carrying_code_is_refused_and_runs_nothing(tmp_path, model_and_state):
    cfg, state = model_and_state
    marker = tmp_path / "pwned"
    path = _pkl(tmp_path / "evil.pkl", state, extra=Payload(marker))
    with pytest.raises(
        PosepipeError, match=r"evil.pkl: refused for safety: the detectron2 weights \(.pkl\) would call"
    ):
        backend.load_weights(_model(cfg), path, config=CONFIG)
    assert not marker.exists()


def test_pth_loads_weights_only_and_refuses_code(tmp_path, model_and_state):
    import torch

    cfg, state = model_and_state
    good = tmp_path / "w.pth"
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}}, good)
    backend.load_weights(_model(cfg), good, config=CONFIG)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}, "x": Payload(marker)}, evil)
    with pytest.raises(
        PosepipeError, match="evil.pth: refused for safety: the detectron2 weights would call"
    ):
        backend.load_weights(_model(cfg), evil, config=CONFIG)
    assert not marker.exists()


def test_pixel_statistics_in_the_file_are_accepted(tmp_path, model_and_state, caplog):
    cfg, state = model_and_state
    same = {**state, "pixel_mean": np.array(cfg.MODEL.PIXEL_MEAN, np.float32).reshape(3, 1, 1),
            "pixel_std": np.array(cfg.MODEL.PIXEL_STD, np.float32).reshape(3, 1, 1)}  # fmt: skip
    with caplog.at_level(logging.WARNING):
        backend.load_weights(_model(cfg), _pkl(tmp_path / "same.pkl", same), config=CONFIG)
    assert "pixel_mean" not in caplog.text
    other = {**same, "pixel_mean": np.array([1.0, 2.0, 3.0], np.float32).reshape(3, 1, 1)}
    model = _model(cfg)
    with caplog.at_level(logging.WARNING):
        backend.load_weights(model, _pkl(tmp_path / "other.pkl", other), config=CONFIG)
    assert "weights file has pixel_mean [1.0, 2.0, 3.0]" in caplog.text
    np.testing.assert_allclose(model.pixel_mean.ravel().numpy(), cfg.MODEL.PIXEL_MEAN)  # the config's


def test_mismatch_message_says_what_detectron2_would_do(tmp_path, model_and_state):
    cfg, state = model_and_state
    broken = {k: v for k, v in state.items() if k != "roi_heads.keypoint_head.score_lowres.weight"}
    broken["roi_heads.mask_head.predictor.weight"] = np.zeros((80, 256, 1, 1), np.float32)
    with pytest.raises(PosepipeError) as err:
        backend.load_weights(_model(cfg), _pkl(tmp_path / "broken.pkl", broken), config=CONFIG)
    message = str(err.value)
    assert (
        "missing from the file, would be random (1): roi_heads.keypoint_head.score_lowres.weight" in message
    )
    assert "not in the model, would be ignored (1): roi_heads.mask_head.predictor.weight" in message
