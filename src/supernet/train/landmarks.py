"""Landmark regularisation (Yu et al., CVPR 2021): a pairwise ranking loss on architectures whose
ground truth is known, added to the super-net's training loss.

Weight sharing lets the training loss of one path lower another's, so the super-net's order of
architectures drifts from their stand-alone order. A few landmark architectures with known accuracy
pull it back: at a step, two landmarks run on the same batch and the better one (by ground truth) is
penalised when its loss is not below the worse one's, ``relu(L_better - L_worse + margin)``, as in the
authors' ``random_pairwise_loss`` with the ``mae_relu`` form (margin 0). The loss uses benchmark labels,
so runs with landmarks are *supervised* and reports mark them so.

The coefficient is 0 for the warm-up epochs (the shared weights first need to be worth ranking), then
rises on a half cosine from 0 to its full value at the last step. The authors' code offers several
schedules (linear warm-up, then constant or cosine decrease); the rising cosine is this project's
default, chosen so the ranking signal is strongest where the final ranking is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernet.runtime import CPU, Runtime


@dataclass(frozen=True)
class LandmarkSchedule:
    coef: float
    warmup: int  # epochs with coefficient 0
    epochs: int  # the training length; the coefficient reaches ``coef`` at its end
    every: int = 1  # a landmark pair every this many steps (the pair costs two more forward/backward passes)
    margin: float = 0.0

    def coefficient(self, epoch: int, step: int, steps: int) -> float:
        """At ``step`` of ``steps`` in ``epoch`` (0-based): 0 in the warm-up, then a rising half cosine."""
        span = self.epochs - self.warmup
        if epoch < self.warmup or span <= 0:
            return 0.0
        t = (epoch - self.warmup + (step + 1) / max(steps, 1)) / span
        return self.coef * 0.5 * (1.0 - math.cos(math.pi * min(t, 1.0)))


class Landmarks:
    """Landmark architectures ordered from worst to best ground truth; ties keep table order, which the
    pair sampler never has to break (a pair of equal accuracies is skipped)."""

    def __init__(self, keys: Sequence[str], archs: Sequence[Any], truth: Sequence[float], schedule: LandmarkSchedule
                 ) -> None:
        if len(keys) < 2:
            raise ValueError("landmark regularisation needs at least two landmark architectures")
        order = np.argsort(np.asarray(truth, dtype=np.float64), kind="stable")
        self.keys = [keys[int(i)] for i in order]
        self.archs = [archs[int(i)] for i in order]
        self.truth = [float(truth[int(i)]) for i in order]
        self.schedule = schedule

    def pair(self, rng: np.random.Generator) -> tuple[int, int] | None:
        """(worse, better) positions of a random pair, or None when the two are tied in ground truth."""
        a, b = (int(i) for i in np.sort(rng.choice(len(self.archs), 2, replace=False)))
        return None if self.truth[a] == self.truth[b] else (a, b)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, epoch: int,
             step: int, steps: int, runtime: Runtime = CPU) -> torch.Tensor | None:
        """Back-propagates the ranking loss of one pair on this batch (gradients add to the step's);
        returns the loss (detached), or None where this step has none."""
        if step % self.schedule.every:
            return None
        coef = self.schedule.coefficient(epoch, step, steps)
        pair = self.pair(rng)  # drawn on every due step, also at coefficient 0, so the stream does not shift
        if pair is None or coef == 0.0:
            return None
        worse, better = pair
        with runtime.autocast():
            loss_worse = F.cross_entropy(model(x, self.archs[worse]), y)
            loss_better = F.cross_entropy(model(x, self.archs[better]), y)
            rank = coef * F.relu(loss_better - loss_worse + self.schedule.margin)
        rank.backward()
        return rank.detach().float()
