"""Small temporal CNNs with random weights and random batch-norm statistics, for tests and benches."""

from __future__ import annotations

import torch

from posepipe.lift3d.model import TemporalCNN


def random_model(
    *, widths=(3, 3), channels=32, joints_out=17, causal=False, dense=False, seed=0
) -> TemporalCNN:
    """A TemporalCNN in eval mode whose batch norms are not the identity (so they are exercised)."""
    torch.manual_seed(seed)
    model = TemporalCNN(
        num_joints_in=17,
        num_joints_out=joints_out,
        filter_widths=widths,
        channels=channels,
        causal=causal,
        dense=dense,
    )
    with torch.no_grad():
        for bn in [model.expand_bn, *model.layers_bn]:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(1000)
    return model.eval()
