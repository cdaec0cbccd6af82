"""Loading and saving temporal-CNN checkpoints in the published VideoPose3D format.

A published checkpoint (e.g. ``pretrained_h36m_detectron_coco.bin``) is a dict saved with the old
non-zip torch serialisation: ``epoch`` (int), ``lr`` (float), ``model_pos`` (state dict) and, for
in-the-wild models, ``model_traj`` (state dict of a 1-joint trajectory model, or None). A bare
state dict of ``model_pos`` is accepted as well.

Files are read with ``torch.load(weights_only=True)``: only tensors and plain containers are
unpickled, so a checkpoint cannot run code. The architecture (filter widths, channels, joints in
and out, dense or dilated) is read from the tensor shapes; causality leaves no trace in the
weights and is an argument.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

from posepipe.atomic import atomic_path
from posepipe.errors import PosepipeError
from posepipe.lift3d.model import TemporalCNN, receptive_field
from posepipe.safeload import torch_load
from posepipe.weights import sha256_file


@dataclass(frozen=True)
class Architecture:
    """Hyper-parameters of one ``TemporalCNN``, as read from a state dict."""

    filter_widths: tuple[int, ...]
    channels: int
    num_joints_in: int
    in_features: int
    num_joints_out: int
    dense: bool = False
    causal: bool = False

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.filter_widths)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["filter_widths"] = list(self.filter_widths)
        d["receptive_field"] = self.receptive_field
        return d


@dataclass
class Checkpoint:
    """A loaded checkpoint: eval-mode CPU models and what they were read from."""

    path: str
    sha256: str
    model_pos: TemporalCNN
    architecture: Architecture
    model_traj: TemporalCNN | None = None
    trajectory_architecture: Architecture | None = None
    epoch: int | None = None


def _shape(state_dict: dict, key: str, path) -> tuple[int, ...]:
    tensor = state_dict.get(key)
    if not isinstance(tensor, torch.Tensor):
        raise PosepipeError(path, f"not a temporal-CNN state dict: tensor {key!r} is missing")
    return tuple(tensor.shape)


def infer_architecture(
    state_dict: dict,
    *,
    causal: bool = False,
    dense: bool | None = None,
    in_features: int = 2,
    path: str | os.PathLike | None = None,
) -> Architecture:
    """Read the architecture of a ``TemporalCNN`` from its state dict's tensor shapes.

    Args:
        state_dict: ``model_pos`` or ``model_traj`` tensors.
        causal: not recorded in the weights; passed through.
        dense: None to infer. Shapes cannot always tell the two apart: a dense block standing for
            width w after layers of total width d has a kernel of (w - 1) * d + 1, which is also a
            valid (odd) width for a dilated block. A model is read as dense only when every block's
            kernel is the dense kernel of the first layer's width and at least one kernel is wider
            than that width (the upstream ablation uses uniform widths). Pass True/False to decide.
        in_features: values per input joint (2 for x, y); splits the input channels into joints.
        path: named in errors.
    """
    expand = _shape(state_dict, "expand_conv.weight", path)
    shrink = _shape(state_dict, "shrink.weight", path)
    if len(expand) != 3 or len(shrink) != 3 or shrink[2] != 1:
        raise PosepipeError(
            path,
            f"unexpected shapes: expand_conv.weight {expand}, shrink.weight {shrink} (want 3-D, 1-wide shrink)",
        )
    channels, inputs, width0 = expand
    if inputs % in_features:
        raise PosepipeError(
            path, f"expand_conv takes {inputs} input channels, not a multiple of {in_features}"
        )
    if shrink[0] % 3 or shrink[1] != channels:
        raise PosepipeError(
            path, f"shrink.weight {shrink} does not fit {channels} channels and (x, y, z) outputs"
        )

    kernels = []
    while f"layers_conv.{2 * len(kernels)}.weight" in state_dict:
        i = len(kernels)
        main = _shape(state_dict, f"layers_conv.{2 * i}.weight", path)
        pointwise = _shape(state_dict, f"layers_conv.{2 * i + 1}.weight", path)
        if main[:2] != (channels, channels) or len(main) != 3 or pointwise != (channels, channels, 1):
            raise PosepipeError(
                path,
                f"block {i}: layers_conv.{2 * i}.weight {main} / layers_conv.{2 * i + 1}.weight {pointwise} "
                f"do not fit {channels} channels",
            )
        kernels.append(main[2])
    if any(k % 2 == 0 for k in [width0, *kernels]):
        raise PosepipeError(
            path, f"even kernel sizes {[width0, *kernels]}: only odd widths exist in this model"
        )

    dense_widths = []
    dilation = width0
    for k in kernels:
        w = (k - 1) // dilation + 1
        dense_widths.append(w if (k - 1) % dilation == 0 and w % 2 == 1 else None)
        dilation *= w if dense_widths[-1] else 1
    if dense is None:
        dense = bool(kernels) and all(w == width0 for w in dense_widths) and max(kernels) > width0
    if dense and any(w is None for w in dense_widths):
        raise PosepipeError(path, f"kernel sizes {kernels} cannot come from a dense model")
    widths = (width0, *(dense_widths if dense else kernels))
    return Architecture(
        filter_widths=tuple(int(w) for w in widths),
        channels=int(channels),
        num_joints_in=int(inputs // in_features),
        in_features=int(in_features),
        num_joints_out=int(shrink[0] // 3),
        dense=bool(dense),
        causal=bool(causal),
    )


def build_model(arch: Architecture, *, dropout: float = 0.25) -> TemporalCNN:
    """A freshly initialised ``TemporalCNN`` of the given architecture."""
    return TemporalCNN(
        num_joints_in=arch.num_joints_in,
        in_features=arch.in_features,
        num_joints_out=arch.num_joints_out,
        filter_widths=arch.filter_widths,
        channels=arch.channels,
        causal=arch.causal,
        dropout=dropout,
        dense=arch.dense,
    )


def model_from_state_dict(
    state_dict: dict,
    *,
    causal: bool = False,
    dense: bool | None = None,
    path: str | os.PathLike | None = None,
) -> tuple[TemporalCNN, Architecture]:
    """Infer the architecture, build the model, load the tensors strictly; eval mode, CPU."""
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    arch = infer_architecture(state_dict, causal=causal, dense=dense, path=path)
    model = build_model(arch)
    # Checkpoints from PyTorch < 0.4.1 have no batch-norm step counters; they do not affect inference.
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state_dict:
            state_dict[key] = torch.zeros_like(value)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise PosepipeError(path, f"tensors do not match the inferred architecture {arch}: {detail}") from exc
    return model.eval(), arch


def load_checkpoint(
    path: str | os.PathLike, *, causal: bool = False, dense: bool | None = None
) -> Checkpoint:
    """Load a published-format checkpoint or a bare ``model_pos`` state dict.

    Raises PosepipeError naming ``path`` when the file is missing, unreadable, holds anything but
    tensors and plain containers, or its tensors do not form a temporal CNN.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PosepipeError(path, "checkpoint file not found")
    obj = torch_load(path, what="torch checkpoint")
    if not isinstance(obj, dict):
        raise PosepipeError(path, f"expected a dict of tensors, found {type(obj).__name__}")

    if "model_pos" in obj:
        pos_state, traj_state, epoch = obj["model_pos"], obj.get("model_traj"), obj.get("epoch")
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        pos_state, traj_state, epoch = obj, None, None
    else:
        raise PosepipeError(path, f"no 'model_pos' entry and not a bare state dict (keys: {sorted(obj)[:8]})")
    if not isinstance(pos_state, dict):
        raise PosepipeError(path, f"'model_pos' is a {type(pos_state).__name__}, not a state dict")

    model_pos, arch = model_from_state_dict(pos_state, causal=causal, dense=dense, path=path)
    model_traj = traj_arch = None
    if traj_state is not None:
        if not isinstance(traj_state, dict):
            raise PosepipeError(path, f"'model_traj' is a {type(traj_state).__name__}, not a state dict")
        model_traj, traj_arch = model_from_state_dict(traj_state, causal=causal, dense=dense, path=path)
        if traj_arch.num_joints_out != 1 or traj_arch.num_joints_in != arch.num_joints_in:
            raise PosepipeError(
                path,
                f"model_traj maps {traj_arch.num_joints_in} joints to {traj_arch.num_joints_out}; "
                f"expected {arch.num_joints_in} to 1",
            )
    return Checkpoint(
        path=path,
        sha256=sha256_file(path),
        model_pos=model_pos,
        architecture=arch,
        model_traj=model_traj,
        trajectory_architecture=traj_arch,
        epoch=None if epoch is None else int(epoch),
    )


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model_pos: torch.nn.Module | dict,
    model_traj: torch.nn.Module | dict | None = None,
    epoch: int = 0,
    lr: float = 0.001,
    legacy_format: bool = True,
) -> None:
    """Write a checkpoint the way the published ones are: a dict with ``epoch``, ``lr``, ``model_pos``
    (and ``model_traj`` when given), old non-zip serialisation unless ``legacy_format`` is False."""

    def state(m):
        return {
            k: v.detach().cpu() for k, v in (m.state_dict() if isinstance(m, torch.nn.Module) else m).items()
        }

    payload = {"epoch": int(epoch), "lr": float(lr), "model_pos": state(model_pos)}
    if model_traj is not None:
        payload["model_traj"] = state(model_traj)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp, _use_new_zipfile_serialization=not legacy_format)
