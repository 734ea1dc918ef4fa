"""Batch normalisation whose evaluation statistics are an explicit choice.

The paper's central fix (SPEC 6.1): running statistics of a super-net mix the statistics of every
sampled path, so evaluating one path with them is biased. ``SwitchableBatchNorm`` always trains with
batch statistics, optionally tracks running ones, and at evaluation uses whichever ``BNMode`` is set,
so a single checkpoint that tracked statistics can be evaluated both ways (Fig. 6 from one training).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from supernet.errors import SupernetError

BNMode = Literal["batch", "running"]


class SwitchableBatchNorm(nn.BatchNorm2d):
    eval_mode: BNMode = "batch"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch = self.training or self.eval_mode == "batch"
        update = self.training and self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean if (update or not use_batch) else None,
            self.running_var if (update or not use_batch) else None,
            self.weight,
            self.bias,
            use_batch,
            self.momentum if self.momentum is not None else 0.1,
            self.eps,
        )


def make_bn(channels: int, affine: bool, track: bool) -> SwitchableBatchNorm:
    bn = SwitchableBatchNorm(channels, affine=affine, track_running_stats=track)
    bn.eval_mode = "running" if track else "batch"
    return bn


def set_bn_mode(model: nn.Module, mode: BNMode) -> None:
    """Select the statistics every BN layer uses at evaluation."""
    for m in model.modules():
        if isinstance(m, SwitchableBatchNorm):
            if mode == "running" and not m.track_running_stats:
                raise SupernetError(
                    "bn=running needs a super-net trained with supernet.bn_track_stats=true; "
                    "this one kept no running statistics (evaluate with bn=batch)"
                )
            m.eval_mode = mode
