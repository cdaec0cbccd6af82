"""The temporal CNN: published layout, geometry, and checkpoint loading/saving."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from posepipe.errors import PosepipeError
from posepipe.lift3d.checkpoint import (
    Architecture,
    build_model,
    infer_architecture,
    load_checkpoint,
    save_checkpoint,
)
from posepipe.lift3d.model import TemporalCNN, block_geometry, receptive_field
from posepipe.testing import random_model


def test_published_layout_names_shapes_and_counts():
    model = TemporalCNN(num_joints_in=17, in_features=2, num_joints_out=17, filter_widths=(3, 3, 3, 3, 3))
    sd = model.state_dict()
    assert len(sd) == 56
    assert sum(t.numel() for t in sd.values()) == 16_970_812
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 16_952_371
    assert model.receptive_field == 243
    assert tuple(sd["expand_conv.weight"].shape) == (1024, 34, 3)
    assert tuple(sd["shrink.weight"].shape) == (51, 1024, 1)
    assert tuple(sd["shrink.bias"].shape) == (51,)
    assert "expand_conv.bias" not in sd
    for i in range(4):
        assert tuple(sd[f"layers_conv.{2 * i}.weight"].shape) == (1024, 1024, 3)
        assert tuple(sd[f"layers_conv.{2 * i + 1}.weight"].shape) == (1024, 1024, 1)
        assert model.layers_conv[2 * i].dilation == (3 ** (i + 1),)
    for name in ["expand_bn", *(f"layers_bn.{i}" for i in range(8))]:
        for part in ("weight", "bias", "running_mean", "running_var"):
            assert tuple(sd[f"{name}.{part}"].shape) == (1024,)
        assert sd[f"{name}.num_batches_tracked"].shape == ()
    assert all(bn.momentum == 0.1 for bn in [model.expand_bn, *model.layers_bn])
    assert infer_architecture(sd) == Architecture((3, 3, 3, 3, 3), 1024, 17, 2, 17, dense=False, causal=False)


def test_state_dict_key_order_matches_upstream(test_data):
    fixture = test_data("vp3d/checkpoint.bin")
    upstream = torch.load(fixture, map_location="cpu", weights_only=True)["model_pos"]
    ours = TemporalCNN(num_joints_in=17, num_joints_out=17, filter_widths=(3, 3, 3), channels=64).state_dict()
    assert list(ours) == list(upstream)
    assert all(ours[k].shape == upstream[k].shape for k in ours)


@pytest.mark.parametrize("causal", [False, True])
def test_geometry_and_causality(causal):
    widths = (3, 5, 3)
    pads, shifts, dilations = block_geometry(widths, causal=causal)
    assert pads == [1, 6, 15] and dilations == [1, 3, 15]
    assert shifts == ([1, 6, 15] if causal else [0, 0, 0])
    assert receptive_field(widths) == 45
    model = random_model(widths=widths, causal=causal)
    x = torch.randn(1, 45 + 9, 17, 2)
    y = model(x)
    assert y.shape == (1, 10, 17, 3)
    # Same weights, other residual crops: causal and symmetric models compute different things.
    other = random_model(widths=widths, causal=not causal)
    assert not torch.allclose(other(x), y)


def test_rejects_short_or_misshaped_input():
    model = random_model()
    with pytest.raises(ValueError, match="at least 9"):
        model(torch.zeros(1, 8, 17, 2))
    with pytest.raises(ValueError, match="17, 2"):
        model(torch.zeros(1, 9, 16, 2))


@pytest.mark.parametrize("dense", [False, True])
def test_infer_architecture_dense_and_trajectory(dense):
    model = random_model(widths=(3, 3, 3), channels=16, dense=dense, joints_out=1)
    arch = infer_architecture(model.state_dict())
    assert arch == Architecture((3, 3, 3), 16, 17, 2, 1, dense=dense)
    assert arch.receptive_field == 27
    assert infer_architecture(model.state_dict(), causal=True).causal


def _published_payload(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_published_format_roundtrip_gives_same_output(tmp_path):
    model = random_model(widths=(3, 3), channels=32, seed=1)
    traj = random_model(widths=(3, 3), channels=32, joints_out=1, seed=2)
    path = tmp_path / "ckpt.bin"
    save_checkpoint(path, model_pos=model, model_traj=traj, epoch=80, lr=1e-4)
    assert not zipfile.is_zipfile(path)  # old serialisation, like the published files
    payload = _published_payload(path)
    assert set(payload) == {"epoch", "lr", "model_pos", "model_traj"} and payload["epoch"] == 80

    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 80 and len(ckpt.sha256) == 64
    assert ckpt.architecture == Architecture((3, 3), 32, 17, 2, 17)
    assert ckpt.trajectory_architecture.num_joints_out == 1
    assert not ckpt.model_pos.training
    x = torch.randn(2, 30, 17, 2)
    with torch.inference_mode():
        assert torch.equal(ckpt.model_pos(x), model(x))
        assert torch.equal(ckpt.model_traj(x), traj(x))


def test_bare_state_dict_and_zip_format_load(tmp_path):
    model = random_model(widths=(3, 3, 3), channels=8, seed=3)
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)  # new zip format, no wrapper dict
    ckpt = load_checkpoint(path, causal=True)
    assert ckpt.epoch is None and ckpt.model_traj is None
    assert ckpt.architecture.causal and ckpt.model_pos.causal
    x = torch.randn(1, 27, 17, 2)
    with torch.inference_mode():
        assert torch.equal(
            ckpt.model_pos(x), random_model(widths=(3, 3, 3), channels=8, seed=3, causal=True)(x)
        )


def test_missing_batchnorm_counters_are_tolerated(tmp_path):
    model = random_model(seed=4)
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_checkpoint(tmp_path / "old.bin", model_pos=sd)
    ckpt = load_checkpoint(tmp_path / "old.bin")
    x = torch.randn(1, 9, 17, 2)
    with torch.inference_mode():
        assert torch.equal(ckpt.model_pos(x), model(x))


def test_mismatched_checkpoint_names_file_and_tensor(tmp_path):
    sd = random_model().state_dict()
    sd["layers_bn.1.running_var"] = torch.ones(31)
    path = tmp_path / "mismatch.bin"
    save_checkpoint(path, model_pos=sd)
    with pytest.raises(PosepipeError, match="layers_bn.1.running_var") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)

    sd = random_model().state_dict()
    del sd["expand_conv.weight"]
    save_checkpoint(path, model_pos=sd)
    with pytest.raises(PosepipeError, match="expand_conv.weight") as err:
        load_checkpoint(path)
    assert err.value.path == str(path)

    torch.save({"epoch": 3, "weights": torch.zeros(3)}, path)
    with pytest.raises(PosepipeError, match="model_pos"):
        load_checkpoint(path)


def test_corrupt_missing_and_truncated_files(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(PosepipeError, match="cannot read") as err:
        load_checkpoint(junk)
    assert str(junk) in str(err.value)

    good = tmp_path / "good.bin"
    save_checkpoint(good, model_pos=random_model())
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PosepipeError) as err:
        load_checkpoint(truncated)
    assert str(truncated) in str(err.value)

    with pytest.raises(PosepipeError, match="not found"):
        load_checkpoint(tmp_path / "absent.bin")


class _Payload:
    """Unpickling this would create a file: the loader must refuse before that happens."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("legacy", [True, False])
def test_refuses_arbitrary_pickled_code(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    payload = {"model_pos": random_model().state_dict(), "extra": _Payload(marker)}
    torch.save(payload, path, pickle_module=pickle, _use_new_zipfile_serialization=not legacy)
    marker.unlink(missing_ok=True)  # __reduce__ is not run by saving, but be sure
    with pytest.raises(
        PosepipeError, match=r"refused for safety: the torch checkpoint would call \w+"
    ) as err:
        load_checkpoint(path)
    assert str(err.value).startswith(str(path)) and "likely succeed" not in str(err.value)
    assert not marker.exists()


def test_build_model_from_architecture():
    arch = Architecture((3, 3), 8, 17, 2, 17, causal=True)
    model = build_model(arch)
    assert model.causal and model.receptive_field == 9 and model.channels == 8
