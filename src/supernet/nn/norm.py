"""Batch normalisation whose evaluation statistics are an explicit choice.

The paper's central fix (SPEC 6.1): running statistics of a super-net mix the statistics of every
sampled path, so evaluating one path with them is biased. ``SwitchableBatchNorm`` always trains with
batch statistics, optionally tracks running ones, and at evaluation uses whichever ``BNMode`` is set,
so a single checkpoint that tracked statistics can be evaluated both ways (Fig. 6 from one training).
A third mode, ``recalibrate``, evaluates with statistics re-estimated for one architecture at a time
(``recalibrate``), as SPOS does; it needs no statistics from training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from supernet.errors import SupernetError
from supernet.runtime import Runtime

BNMode = Literal["batch", "running", "recalibrate"]


class SwitchableBatchNorm(nn.BatchNorm2d):
    eval_mode: BNMode = "batch"
    # bn=recalibrate: while ``calibrating``, each batch's statistics are averaged into ``calibrated``
    # (mean, variance, batches seen); plain attributes, never in a checkpoint.
    calibrating: bool = False
    calibrated: tuple[torch.Tensor, torch.Tensor, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating or (self.eval_mode == "recalibrate" and not self.training):
            return self._recalibrated(x)
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


    def _recalibrated(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:  # batch statistics, and their running mean: momentum 1/(k+1) at the (k+1)-th batch
            mean, var, k = self.calibrated or (x.new_zeros(self.num_features, dtype=torch.float32),
                                               x.new_ones(self.num_features, dtype=torch.float32), 0)
            out = F.batch_norm(x, mean, var, self.weight, self.bias, True, 1.0 / (k + 1), self.eps)
            self.calibrated = (mean, var, k + 1)
            return out
        if self.calibrated is None:
            raise SupernetError("bn=recalibrate: this BN layer was not on the calibrated path; recalibrate the "
                                "architecture before evaluating it")
        mean, var, _ = self.calibrated
        return F.batch_norm(x, mean, var, self.weight, self.bias, False, 0.0, self.eps)


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


@torch.inference_mode()
def recalibrate(model: nn.Module, arch: object, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                runtime: Runtime) -> None:
    """Re-estimate every BN layer's statistics for ``arch`` alone: forget the last architecture's, run
    ``batches`` through its path normalising with batch statistics, keep their average. Layers off the
    path keep none, so evaluating another architecture without recalibrating fails loudly."""
    bns = [m for m in model.modules() if isinstance(m, SwitchableBatchNorm)]
    for m in bns:
        m.calibrated, m.calibrating = None, True
    try:
        for x, _ in batches:
            with runtime.autocast():
                model(x, arch)
    finally:
        for m in bns:
            m.calibrating = False
