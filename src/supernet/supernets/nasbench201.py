"""NASBench-201 networks: the super-net f_ws and the stand-alone network f_proxy.

Both share one macro skeleton (stem, N cells per stage at C, 2C, 4C, ResNet reductions, head) and
one cell computation; they differ only in where a cell finds the module of an edge. That makes the
super-net's sampled path compute exactly what the stand-alone network computes, at the same cost
(the weight-sharing-overhead benchmark checks the cost, a test checks the outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

from supernet.nn.droppath import NO_DROPOUT, Dropouts, cell_drop_paths, head_dropout
from supernet.nn.ops import BNSpec, ResNetBasicBlock, count_parameters, nb201_op
from supernet.spaces.nasbench201 import EDGES, OPS

Ops = Sequence[str]
OpPlacement = Literal["edge", "node"]
# Edges grouped by target node, with their position in the arch string.
_INCOMING = {t: [(e, s) for e, (s, tt) in enumerate(EDGES) if tt == t] for t in (1, 2, 3)}


def arch_ops(arch: object) -> tuple[str, ...]:
    """Accept an ``NB201Arch`` or a plain sequence of six op names."""
    ops = getattr(arch, "ops", arch)
    return tuple(ops)  # type: ignore[arg-type]


class _Cell(nn.Module):
    """Node j = sum of op(node i) over incoming edges; ``none`` edges are skipped."""

    def module_for(self, edge: int, op: str) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, ops: Ops) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            acc: torch.Tensor | None = None
            for edge, source in _INCOMING[target]:
                op = ops[edge]
                if op == "none":
                    continue
                y = self.module_for(edge, op)(nodes[source])
                acc = y if acc is None else acc + y
            nodes.append(torch.zeros_like(x) if acc is None else acc)
        return nodes[3]


class InferCell(_Cell):
    """Stand-alone cell: only the modules of its own architecture."""

    def __init__(self, channels: int, ops: Ops, bn: BNSpec) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(
            nn.Identity() if op == "none" else nb201_op(op, channels, bn) for op in self.ops
        )

    def module_for(self, edge: int, op: str) -> nn.Module:
        return self.edges[edge]


class SearchCell(_Cell):
    """Super-net cell holding every candidate op.

    ``edge``: one op set per edge (the standard NB201 super-net). ``node``: node j owns one op set
    for its edge from the cell input and one shared by all its edges from inner nodes (the authors'
    default, SPEC 4.2), so fewer weights are shared by more paths.
    """

    def __init__(self, channels: int, bn: BNSpec, placement: OpPlacement) -> None:
        super().__init__()
        self.placement = placement
        if placement == "edge":
            owners = list(range(len(EDGES)))
        else:  # (target, 0) for the input edge, (target, 1) for the shared inner-node set
            owners = [2 * t + (s > 0) for s, t in EDGES]
        slots = sorted(set(owners))
        self._slot_of_edge = [slots.index(o) for o in owners]
        self.slots = nn.ModuleList(
            nn.ModuleDict({op: nb201_op(op, channels, bn) for op in OPS if op != "none"}) for _ in slots
        )

    def module_for(self, edge: int, op: str) -> nn.Module:
        return self.slots[self._slot_of_edge[edge]][op]


class NB201Network(nn.Module):
    """The NB201 macro skeleton around cells made by ``make_cell(channels)``."""

    def __init__(
        self,
        channels: int,
        layers: int,
        num_classes: int,
        bn: BNSpec,
        make_cell: Callable[[int], _Cell],
        dropout: Dropouts = NO_DROPOUT,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), bn(channels))
        cells: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                cells.append(ResNetBasicBlock(c, 2 * c, bn))
                c *= 2
            cells.extend(make_cell(c) for _ in range(layers))
        self.cells = nn.ModuleList(cells)
        # Drop-path on search-cell outputs, scheduled by position among all cells (the authors').
        drops = cell_drop_paths(dropout.path, range(len(cells)), len(cells), dropout.generator)
        self.drop_paths = nn.ModuleList(d if isinstance(c, _Cell) else nn.Identity() for d, c in zip(drops, cells, strict=True))
        self.lastact = nn.Sequential(bn(c), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(dropout.head, dropout.generator)
        self.classifier = nn.Linear(c, num_classes)

    def features(self, x: torch.Tensor, ops: Ops) -> torch.Tensor:
        x = self.stem(x)
        for cell, drop in zip(self.cells, self.drop_paths, strict=True):
            x = drop(cell(x, ops)) if isinstance(cell, _Cell) else cell(x)
        return self.pool(self.lastact(x)).flatten(1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))


class NB201SuperNet(NB201Network):
    """f_ws: ``forward(x, arch)`` runs exactly the sampled path."""

    def __init__(
        self,
        channels: int = 16,
        layers: int = 5,
        num_classes: int = 10,
        *,
        placement: OpPlacement = "node",
        bn: BNSpec | None = None,
        path_dropout: float = 0.0,
        global_dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        bn = bn or BNSpec()
        dropout = Dropouts(path_dropout, global_dropout, generator)
        super().__init__(channels, layers, num_classes, bn, lambda c: SearchCell(c, bn, placement), dropout)
        self.generator = generator  # reseeded per epoch by the trainer: dropout masks resume exactly
        self.hparams = dict(channels=channels, layers=layers, num_classes=num_classes)

    def forward(self, x: torch.Tensor, arch: object) -> torch.Tensor:
        return self.head(self.features(x, arch_ops(arch)))


class NB201Standalone(NB201Network):
    """f_proxy: the stand-alone network of one architecture, NASBench-201's exact shapes."""

    def __init__(
        self, arch: object, channels: int = 16, layers: int = 5, num_classes: int = 10, bn: BNSpec | None = None
    ) -> None:
        bn = bn or BNSpec()
        ops = arch_ops(arch)
        super().__init__(channels, layers, num_classes, bn, lambda c: InferCell(c, ops, bn))
        self.arch_ops = ops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x, self.arch_ops))



@lru_cache(maxsize=64)
def _param_table(channels: int, layers: int, num_classes: int, affine: bool) -> tuple[int, dict[str, tuple[int, ...]]]:
    bn = BNSpec(affine=affine)
    with torch.device("meta"):
        skeleton = NB201Standalone(("none",) * len(EDGES), channels, layers, num_classes, bn)
        per_op = {
            op: tuple(count_parameters(nb201_op(op, c, bn)) if op != "none" else 0 for c in (channels, 2 * channels, 4 * channels))
            for op in OPS
        }
    return count_parameters(skeleton), per_op


def nb201_param_count(
    arch: object, channels: int = 16, layers: int = 5, num_classes: int = 10, affine: bool = True
) -> int:
    """Trainable parameters of the stand-alone network, without building it (fast for whole pools)."""
    base, per_op = _param_table(channels, layers, num_classes, affine)
    return base + layers * sum(sum(per_op[op]) for op in arch_ops(arch))
