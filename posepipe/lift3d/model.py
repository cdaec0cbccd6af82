"""The dilated temporal convolution network of VideoPose3D (Pavllo et al., CVPR 2019), our own code.

Layout (parameter names are those of the published checkpoints, so their ``model_pos`` and
``model_traj`` state dicts load directly):

- ``expand_conv``: Conv1d(J_in * F, C, w0, no bias), then ``expand_bn``, ReLU, dropout.
- one residual block per further filter width ``w_i`` (dilation ``d_i = w0 * ... * w_{i-1}``):
  ``layers_conv[2i]``: Conv1d(C, C, w_i, dilation d_i) + ``layers_bn[2i]`` + ReLU + dropout, then
  ``layers_conv[2i+1]``: Conv1d(C, C, 1) + ``layers_bn[2i+1]`` + ReLU + dropout, added to the
  block input cropped to the block's output length.
- ``shrink``: Conv1d(C, J_out * 3, 1, with bias).

All convolutions are "valid": an input of T + RF - 1 frames gives T output frames, RF being the
receptive field ``1 + 2 * sum(pads)``. Causal models keep the same weights; only the crop of the
residual branch moves to the newest frames, so output ``t`` depends on inputs ``t - RF + 1 .. t``
once the caller pads the sequence by RF - 1 frames at the start (see ``infer.pad_sequence``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def block_geometry(filter_widths: Sequence[int], *, causal: bool) -> tuple[list[int], list[int], list[int]]:
    """Per layer (expand + each block): half-widths ``pads``, residual ``shifts``, and ``dilations``.

    ``pads[i]`` frames are lost on each side by layer ``i``; the receptive field is ``1 + 2 * sum(pads)``.
    """
    widths = [int(w) for w in filter_widths]
    if not widths or any(w < 1 or w % 2 == 0 for w in widths):
        raise ValueError(f"filter widths must be odd and positive, got {widths}")
    pads = [widths[0] // 2]
    shifts = [widths[0] // 2 if causal else 0]
    dilations = [1]
    dilation = widths[0]
    for w in widths[1:]:
        pads.append((w - 1) * dilation // 2)
        shifts.append(w // 2 * dilation if causal else 0)
        dilations.append(dilation)
        dilation *= w
    return pads, shifts, dilations


def receptive_field(filter_widths: Sequence[int]) -> int:
    """Frames of input that one output frame depends on (the product of the widths)."""
    pads, _, _ = block_geometry(filter_widths, causal=False)
    return 1 + 2 * sum(pads)


class TemporalCNN(nn.Module):
    """Temporal CNN that lifts a 2D joint sequence to 3D.

    Args:
        num_joints_in: joints in the input (17 for COCO).
        in_features: values per input joint (2: x, y).
        num_joints_out: joints in the output (17 for Human3.6M; 1 for a trajectory model).
        filter_widths: one odd width per layer, e.g. (3, 3, 3, 3, 3) for a receptive field of 243.
        channels: width of every hidden layer.
        causal: output frame t sees only inputs up to t (the caller pads accordingly).
        dropout: dropout probability (inactive in eval mode).
        dense: plain (undilated) convolutions with the same receptive field (upstream ablation).

    ``forward``: (B, T + RF - 1, num_joints_in, in_features) -> (B, T, num_joints_out, 3).
    """

    def __init__(
        self,
        *,
        num_joints_in: int,
        in_features: int = 2,
        num_joints_out: int,
        filter_widths: Sequence[int],
        channels: int = 1024,
        causal: bool = False,
        dropout: float = 0.25,
        dense: bool = False,
    ):
        super().__init__()
        self.num_joints_in = int(num_joints_in)
        self.in_features = int(in_features)
        self.num_joints_out = int(num_joints_out)
        self.filter_widths = tuple(int(w) for w in filter_widths)
        self.channels = int(channels)
        self.causal = bool(causal)
        self.dense = bool(dense)
        self.pads, self.shifts, dilations = block_geometry(self.filter_widths, causal=self.causal)

        # Registration order follows the published checkpoints so state_dict keys come out in the
        # same order (drop/relu/expand_bn/shrink first, then the convolutions).
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.shrink = nn.Conv1d(channels, self.num_joints_out * 3, 1)
        self.expand_conv = nn.Conv1d(
            self.num_joints_in * self.in_features, channels, self.filter_widths[0], bias=False
        )
        convs, bns = [], []
        for width, pad, dilation in zip(self.filter_widths[1:], self.pads[1:], dilations[1:], strict=True):
            if dense:
                convs.append(nn.Conv1d(channels, channels, 2 * pad + 1, bias=False))
            else:
                convs.append(nn.Conv1d(channels, channels, width, dilation=dilation, bias=False))
            bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            convs.append(nn.Conv1d(channels, channels, 1, bias=False))
            bns.append(nn.BatchNorm1d(channels, momentum=0.1))
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(bns)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(self.pads)

    @property
    def pad(self) -> int:
        """Frames of context on each side, (RF - 1) / 2."""
        return sum(self.pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.num_joints_in, self.in_features):
            raise ValueError(
                f"expected (B, T, {self.num_joints_in}, {self.in_features}) input, got {tuple(x.shape)}"
            )
        if x.shape[1] < self.receptive_field:
            raise ValueError(f"need at least {self.receptive_field} input frames, got {x.shape[1]}")
        batch = x.shape[0]
        x = x.reshape(batch, x.shape[1], -1).transpose(1, 2)  # (B, J*F, T)
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i in range(len(self.filter_widths) - 1):
            pad, shift = self.pads[i + 1], self.shifts[i + 1]
            residual = x[:, :, pad + shift : x.shape[2] - pad + shift]
            x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
            x = residual + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        x = self.shrink(x)  # (B, J_out*3, T_out)
        return x.transpose(1, 2).reshape(batch, -1, self.num_joints_out, 3)
