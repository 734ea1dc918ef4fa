"""The loss landscape of a trained super-net (the paper's Fig. 7, after Li et al., 2018).

The super-net's training loss is the mean of its architectures' losses (single-path one-shot), so
its landscape is that mean, evaluated on a grid around the trained weights along two random
directions. The directions are filter-normalised: every filter of a direction has the norm of the
weights' filter, so the plot does not depend on the arbitrary scale of weights that BN makes
scale-invariant; BN parameters and biases are left out of the directions (Li et al.'s "biasbn").

The same fixed images and architectures serve every grid point, so differences across the grid are
the weights' alone. A super-net trained on one architecture (``space.subsample=1``) is the
stand-alone network the paper compares against. The figure is ``report.figures.plot_landscapes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernet.errors import SupernetError
from supernet.nn.norm import BNMode, set_bn_mode
from supernet.runtime import CPU, Runtime


@dataclass(frozen=True)
class Landscape:
    coords: np.ndarray  # offsets along each direction, symmetric around 0
    loss: np.ndarray  # [i, j]: mean loss at weights + coords[i] * d1 + coords[j] * d2

    @property
    def center(self) -> float:
        mid = len(self.coords) // 2
        return float(self.loss[mid, mid])

    @property
    def rise(self) -> float:
        """Mean loss on the grid's border minus the centre's: how sharp the basin is at this span."""
        border = np.concatenate([self.loss[0], self.loss[-1], self.loss[1:-1, 0], self.loss[1:-1, -1]])
        return float(border.mean() - self.center)

    def _laplacian(self) -> np.ndarray:
        z = self.loss
        return z[2:, 1:-1] + z[:-2, 1:-1] + z[1:-1, 2:] + z[1:-1, :-2] - 4 * z[1:-1, 1:-1]

    @property
    def nonconvex_share(self) -> float:
        """Share of interior grid points where the surface curves down (negative discrete Laplacian)."""
        return float((self._laplacian() < 0).mean())

    @property
    def local_minima(self) -> int:
        """Interior grid points lower than their eight neighbours: basins a descent could stall in."""
        z = self.loss
        inner = z[1:-1, 1:-1]
        lower = np.ones_like(inner, dtype=bool)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    lower &= inner < z[1 + di:z.shape[0] - 1 + di, 1 + dj:z.shape[1] - 1 + dj]
        return int(lower.sum())


def filter_normalised_direction(model: nn.Module, generator: torch.Generator) -> list[torch.Tensor]:
    """A random direction per parameter: Gaussian, each filter rescaled to the norm of the weights'
    filter; zero for 1-D parameters (BN scale and shift, biases)."""
    out = []
    for p in model.parameters():
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        w = p.detach().flatten(1).norm(dim=1)
        scale = w / d.flatten(1).norm(dim=1).clamp_min(1e-10)
        out.append(d * scale.view(-1, *([1] * (p.dim() - 1))))
    return out


@torch.no_grad()
def mean_loss(model: nn.Module, archs: Sequence[object], batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
              runtime: Runtime = CPU) -> float:
    """Cross-entropy averaged over every image of every architecture (each architecture counts equally)."""
    total = torch.zeros((), dtype=torch.float64, device=batches[0][1].device)
    n = sum(y.numel() for _, y in batches)
    for arch in archs:
        for x, y in batches:
            with runtime.autocast():
                logits = model(x, arch)
            total += F.cross_entropy(logits.float(), y, reduction="sum").double()
    return float(total) / (n * len(archs))


def check_grid(steps: int, span: float) -> None:
    if steps < 3 or steps % 2 == 0:
        raise SupernetError(f"steps={steps}: the grid needs an odd number >= 3 of points per axis (0 in the middle)")
    if not math.isfinite(span) or span <= 0:
        raise SupernetError(f"span={span} must be a positive number")


@torch.no_grad()
def loss_landscape(
    model: nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    steps: int = 11,
    span: float = 1.0,
    seed: int = 0,
    bn: BNMode = "batch",
    runtime: Runtime = CPU,
    on_point: Callable[[], None] | None = None,
) -> Landscape:
    """Mean loss of ``archs`` on a ``steps`` x ``steps`` grid over [-span, span]^2; the model's weights
    are restored afterwards, also when interrupted."""
    check_grid(steps, span)
    if not archs or not batches:
        raise SupernetError("a loss landscape needs at least one architecture and one batch")
    model.eval()
    set_bn_mode(model, bn)
    generator = torch.Generator().manual_seed(seed)
    d1 = filter_normalised_direction(model, generator)
    d2 = filter_normalised_direction(model, generator)
    params = list(model.parameters())
    origin = [p.detach().clone() for p in params]
    coords = np.linspace(-span, span, steps)
    coords[steps // 2] = 0.0  # exactly the trained weights, not -span + k * step rounded
    loss = np.empty((steps, steps))
    try:
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                for p, p0, u, v in zip(params, origin, d1, d2, strict=True):
                    torch.add(p0, u, alpha=float(a), out=p).add_(v, alpha=float(b))
                loss[i, j] = mean_loss(model, archs, batches, runtime)
                if on_point is not None:
                    on_point()
    finally:
        for p, p0 in zip(params, origin, strict=True):
            p.copy_(p0)
    return Landscape(coords, loss)
