"""VideoPose3D (Pavllo et al., CVPR 2019) as a lifter: the lifter interface of :data:`posepipe.registry.LIFTERS`.

A lifter module provides:

- ``build(checkpoint_path, *, causal) -> model``: load the weights (safely; a bad file is a
  PosepipeError naming it) into a ready model object;
- ``receptive_field(model) -> int``: input frames one output frame depends on;
- ``infer(model, keypoints, *, width, height, flip, window, device, label) -> (T, 17, 3)``: 2D
  COCO keypoints (T, 17, 2) in pixels of a ``width x height`` frame -> camera-space 3D joints in
  Human3.6M order, metres, float32;
- ``describe(model) -> dict``: what pose3d.npz's meta records about the model (checkpoint path and
  SHA-256, architecture, receptive field).

Here the model is the :class:`posepipe.lift3d.checkpoint.Checkpoint` (the temporal CNN, and the
trajectory model when the file has one); inference is :func:`posepipe.lift3d.infer.lift_keypoints`.
"""

from __future__ import annotations

import os

import numpy as np

from posepipe.errors import PosepipeError
from posepipe.lift3d.checkpoint import Checkpoint, load_checkpoint
from posepipe.lift3d.infer import lift_keypoints
from posepipe.skeleton import H36M_JOINTS


def build(checkpoint_path: str | os.PathLike, *, causal: bool = False) -> Checkpoint:
    """The checkpoint's models (``causal``: the file's convolutions are causal; not recorded in it)."""
    model = load_checkpoint(checkpoint_path, causal=causal)
    if model.architecture.num_joints_out != len(H36M_JOINTS):
        raise PosepipeError(
            checkpoint_path,
            f"model outputs {model.architecture.num_joints_out} joints, expected 17 (Human3.6M)",
        )
    return model


def receptive_field(model: Checkpoint) -> int:
    return model.architecture.receptive_field


def infer(model: Checkpoint, keypoints: np.ndarray, **options) -> np.ndarray:
    """(T, 17, 2) pixels -> (T, 17, 3) metres; ``options`` of :func:`~posepipe.lift3d.infer.lift_keypoints`."""
    return lift_keypoints(keypoints, checkpoint=model, **options)


def describe(model: Checkpoint) -> dict:
    return {
        "checkpoint": {"path": os.fspath(model.path), "sha256": model.sha256, "epoch": model.epoch},
        "architecture": model.architecture.to_dict(),
        "trajectory_model": model.model_traj is not None,
        "receptive_field": model.architecture.receptive_field,
    }
