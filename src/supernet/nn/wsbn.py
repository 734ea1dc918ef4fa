"""Weight-sharing batch normalisation (WSBN, Luo et al.'s NAO; SPEC 6.7).

The statistics (and affine parameters) after a shared op depend on which vertices feed it, so WSBN
keeps one BN per set of incoming vertices. For a vertex v of a NASBench-101 cell the inputs are a
non-empty subset of the vertices 0..v-1 (0 = cell input), indexed ``sum(2**i for i in inputs) - 1``:
2**v - 1 BNs. Each is a ``DynamicBatchNorm`` at C_max, so dynamic channels slice it like any BN.

Unlike the authors' ``WSBNFull`` (which always tracks running statistics and resets them to mean 1,
var 0, a quirk), tracking and evaluation statistics follow the network's ``BNSpec``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from supernet.nn.channels import DynamicBatchNorm, Selection
from supernet.nn.ops import BNSpec


def incoming_index(sources: Iterable[int]) -> int:
    """The WSBN index of a set of source vertices (0 = cell input)."""
    index = sum(1 << s for s in set(sources)) - 1
    if index < 0:
        raise ValueError("a vertex needs at least one input")
    return index


class WSBatchNorm(nn.Module):
    """``sets`` BNs at ``channels``; ``forward`` uses the one of the given incoming set."""

    def __init__(self, sets: int, channels: int, bn: BNSpec) -> None:
        super().__init__()
        self.bns = nn.ModuleList(DynamicBatchNorm.from_spec(bn, channels) for _ in range(sets))

    def forward(self, x: torch.Tensor, select: Selection = None, *, incoming: int) -> torch.Tensor:
        if not 0 <= incoming < len(self.bns):
            raise ValueError(f"incoming-set index {incoming} out of range for {len(self.bns)} WSBN slots")
        return self.bns[incoming](x, select)


def with_own_batchnorms(op: nn.Module) -> nn.Module:
    """A twin of ``op`` that shares every weight except its batch norms.

    DARTS-NDS WSBN (SPEC 6.7: one BN per source node): a node's op is shared whatever state it reads,
    and each source gets such a twin. Modules that own weights (convolutions, OFA kernels) are the
    very same objects in both, so gradients from every source meet in one weight; ``parameters()``
    lists a shared weight once.
    """
    twin = copy.deepcopy(op)
    shared: list[str] = []
    for name, module in op.named_modules():
        if not name or isinstance(module, _BatchNorm) or any(name.startswith(f"{s}.") for s in shared):
            continue
        if next(module.parameters(recurse=False), None) is not None:
            parent, _, leaf = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, leaf, module)
            shared.append(name)
    return twin
