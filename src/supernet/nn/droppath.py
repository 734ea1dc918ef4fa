"""The dropout factor (SPEC 6.8): scheduled drop-path on cell outputs and dropout before the classifier.

Masks are drawn from the super-net's own ``generator`` (on the host; the trainer reseeds it per
epoch and purpose), never from torch's global RNG, so a resumed run drops exactly what an
uninterrupted one drops. Both are active in training only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Dropouts:
    """The dropout factor of one network: drop-path rate on cell outputs, dropout rate before the head."""

    path: float = 0.0
    head: float = 0.0
    generator: torch.Generator | None = None


NO_DROPOUT = Dropouts()


def scheduled_keep(rate: float, layer: int, layers: int) -> float:
    """NAO's schedule as the authors call it for NB101/NB201 cells: deeper cells drop more, the last
    cell with probability ``rate`` (keep = 1 - (layer + 1) / layers * rate)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop rate must be in [0, 1), got {rate}")
    return 1.0 - (layer + 1) / layers * rate


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor onto ``device`` without making a GPU step wait (pinned, non-blocking)."""
    if t.device.type == "cpu" and device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class _Dropout(nn.Module):
    def __init__(self, keep: float, generator: torch.Generator | None) -> None:
        super().__init__()
        self.keep, self.generator = keep, generator

    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.keep >= 1.0:
            return x
        where = self.generator.device if self.generator is not None else torch.device("cpu")
        kept = torch.rand(self.mask_shape(x), generator=self.generator, device=where) < self.keep
        # Divide by a Python float: in bf16 a pre-rounded 1/keep would bias every kept sample alike.
        return x * to_device(kept, x.device).to(x.dtype) / self.keep

    def extra_repr(self) -> str:
        return f"keep={self.keep:.4f}"


class DropPath(_Dropout):
    """Zero a whole sample's tensor with probability 1 - keep, rescale the kept ones by 1 / keep."""

    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (x.shape[0],) + (1,) * (x.dim() - 1)


class Dropout(_Dropout):
    """Element-wise dropout with a reproducible generator (``nn.Dropout`` uses the global RNG)."""

    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(x.shape)


def node_keep(rate: float, layer: int, layers: int, node: int, nodes: int) -> float:
    """The authors' DARTS cells (SPEC 6.8): the layer's keep probability, then scaled by the node's step, so
    later nodes of deeper cells drop more (keep = 1 - (node + 1) / nodes * (1 - layer keep))."""
    return 1.0 - (node + 1) / nodes * (1.0 - scheduled_keep(rate, layer, layers))


def node_drop_paths(rate: float, layer: int, layers: int, nodes: int, generator: torch.Generator | None
                    ) -> list[nn.Module]:
    """One module per node of a DARTS cell at ``layer`` of ``layers``; each of a node's ops draws its own mask."""
    if rate <= 0:
        return [nn.Identity() for _ in range(nodes)]
    return [DropPath(node_keep(rate, layer, layers, k, nodes), generator) for k in range(nodes)]


def head_dropout(rate: float, generator: torch.Generator | None) -> nn.Module:
    return Dropout(1.0 - rate, generator) if rate > 0 else nn.Identity()


def cell_drop_paths(
    rate: float, positions: Sequence[int], layers: int, generator: torch.Generator | None
) -> list[nn.Module]:
    """One module per cell, cell i scheduled as position ``positions[i]`` of ``layers`` (identity at rate 0)."""
    if rate <= 0:
        return [nn.Identity() for _ in positions]
    return [DropPath(scheduled_keep(rate, pos, layers), generator) for pos in positions]
