"""DARTS-NDS networks: the super-net f_ws and the stand-alone network f_proxy.

Both share DARTS' ``NetworkCIFAR`` skeleton (stem conv3x3 to 3C + BN; ``layers`` cells, reductions
at ``layers // 3`` and ``2 * layers // 3`` doubling the width; global pool; linear) and one cell
computation; they differ in where a cell finds an op's module and in how wide a cell's output is.
A stand-alone cell outputs ``len(concat) * C`` channels; the super-net's next layer is built for
all four nodes and reads only the channels of the concatenated ones (``cols``, see nn/darts_ops.py),
so the sampled path computes what the stand-alone network computes, at its cost (tests check both).
Parameter counts equal DARTS' (a test checks a published count).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

from supernet.nn.darts_ops import (
    OFA_FAMILIES,
    AuxiliaryHead,
    FactorizedReduce,
    KernelView,
    OFAConvOp,
    Preprocess,
    SlicedConv1x1,
    SlicedLinear,
    darts_op,
)
from supernet.nn.droppath import NO_DROPOUT, Dropouts, DropPath, head_dropout, node_drop_paths
from supernet.nn.ops import BNSpec, count_parameters
from supernet.nn.wsbn import with_own_batchnorms
from supernet.spaces.darts import INPUTS, NODES, OPS, DartsArch, DartsCell

OpPlacement = Literal["edge", "node"]
STEM_MULTIPLIER = 3


def reduction_layers(layers: int) -> tuple[int, int]:
    return layers // 3, 2 * layers // 3


class _Cell(nn.Module):
    """State k + 2 = op(state i) + op(state j); the output concatenates ``concat`` states."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, bn: BNSpec) -> None:
        super().__init__()
        self.reduction, self.channels = reduction, c
        self.pre0 = FactorizedReduce(c_pp, c, bn) if reduction_prev else Preprocess(c_pp, c, bn)
        self.pre1 = Preprocess(c_p, c, bn)
        self._cols: dict[tuple[tuple[int, ...], torch.device], torch.Tensor | None] = {}
        self.node_drops = nn.ModuleList(nn.Identity() for _ in range(NODES))  # set_drop_path schedules them

    def module_for(self, pair: int, op: str, source: int) -> nn.Module:
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Output channels the next layer's weights are built for."""
        raise NotImplementedError

    def out_cols(self, concat: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        """The channels of the concatenated nodes within ``width`` (None: all of them)."""
        if len(concat) * self.channels == self.width:
            return None
        key = (concat, device)
        if key not in self._cols:
            c = self.channels
            # Built outside inference mode: an index made while evaluating is later saved for backward.
            with torch.inference_mode(False):
                self._cols[key] = torch.cat([torch.arange((s - INPUTS) * c, (s - INPUTS + 1) * c) for s in concat]).to(device)
        return self._cols[key]

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, cell: DartsCell, cols0: torch.Tensor | None, cols1: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        states = [self.pre0(s0, cols0), self.pre1(s1, cols1)]
        for k in range(NODES):
            total = 0
            for pair in (2 * k, 2 * k + 1):
                op = self.module_for(pair, cell.ops[pair], cell.inputs[pair])
                out = op(states[cell.inputs[pair]])
                # Drop-path per op, as the authors' (and DARTS') cells do; an identity is never dropped.
                total = total + (out if isinstance(op, nn.Identity) else self.node_drops[k](out))
            states.append(total)
        return torch.cat([states[s] for s in cell.concat], dim=1), self.out_cols(cell.concat, s1.device)

    def set_drop_path(self, rate: float, layer: int, layers: int, generator: torch.Generator | None) -> None:
        self.node_drops = nn.ModuleList(node_drop_paths(rate, layer, layers, NODES, generator))


class InferCell(_Cell):
    """Stand-alone cell: the eight ops of its genotype, output exactly ``len(concat) * C`` wide."""

    def __init__(self, cell: DartsCell, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, bn: BNSpec,
                 pool_bn: bool = False) -> None:
        super().__init__(c_pp, c_p, c, reduction, reduction_prev, bn)
        self.concat = cell.concat
        self.ops = nn.ModuleList(
            darts_op(op, c, 2 if reduction and src < INPUTS else 1, bn, pool_bn) for op, src in cell.pairs()
        )

    def module_for(self, pair: int, op: str, source: int) -> nn.Module:
        return self.ops[pair]

    @property
    def width(self) -> int:
        return len(self.concat) * self.channels


class SearchCell(_Cell):
    """Super-net cell with every candidate op.

    ``node`` (the authors' default, SPEC 4.3): each of a node's two pairs owns one op set whatever
    state it reads; in a reduction cell it also owns a stride-2 set for reading the cell inputs.
    ``edge``: one op set per (source state, node), stride 2 where a reduction cell's input is read.
    """

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, bn: BNSpec,
                 placement: OpPlacement, ofa_kernel: bool = False, wsbn: bool = False, pool_bn: bool = True) -> None:
        super().__init__(c_pp, c_p, c, reduction, reduction_prev, bn)
        if wsbn and placement != "node":
            raise ValueError("WSBN separates the sources of a node's op; with ops on edges each op has one source")
        self.placement, self.bn, self.wsbn = placement, bn, wsbn

        def op_set(stride: int) -> nn.ModuleDict:
            if not ofa_kernel:
                return nn.ModuleDict({op: darts_op(op, c, stride, bn, pool_bn) for op in OPS})
            plain = {op: darts_op(op, c, stride, bn, pool_bn) for op in OPS if op.rsplit("_", 1)[0] not in OFA_FAMILIES}
            return nn.ModuleDict(plain | {f: OFAConvOp(f, c, stride, bn) for f in OFA_FAMILIES})

        self.sets = nn.ModuleDict()
        # Ops on edges: both pairs of a node share the node's edges, so the even pairs name them.
        for pair in range(0, 2 * NODES, 2 if placement == "edge" else 1):
            node = pair // 2
            for src in range(INPUTS + node) if placement == "edge" else (None,):
                for stride in self._strides(node, src):
                    name, ops = self._name(pair, src, stride), op_set(stride)
                    if not wsbn:
                        self.sets[name] = ops
                    for state in self._states(node, stride) if wsbn else ():  # a twin per source, own BNs
                        self.sets[f"{name}_from{state}"] = nn.ModuleDict({k: with_own_batchnorms(m) for k, m in ops.items()})
        # (pair, source state) -> its op set, resolved once here rather than on every forward.
        self._lookup: dict[tuple[int, int], nn.ModuleDict] = {}
        for pair in range(2 * NODES):
            for source in range(INPUTS + pair // 2):
                stride = 2 if reduction and source < INPUTS else 1
                name = self._name(pair, source if placement == "edge" else None, stride)
                self._lookup[pair, source] = self.sets[f"{name}_from{source}" if wsbn else name]

    def _strides(self, node: int, src: int | None) -> tuple[int, ...]:
        if not self.reduction:
            return (1,)
        if src is None:  # a node slot: stride 2 from the cell inputs, stride 1 from nodes (none for node 0)
            return (2,) if node == 0 else (2, 1)
        return (2,) if src < INPUTS else (1,)

    def _states(self, node: int, stride: int) -> range:
        """States a node's pair reads with ops of ``stride``: the cell inputs at stride 2, nodes after."""
        if stride == 2:
            return range(INPUTS)
        return range(INPUTS if self.reduction else 0, INPUTS + node)

    def _name(self, pair: int, src: int | None, stride: int) -> str:
        if self.placement == "edge":
            return f"e{src}_{pair // 2}"
        return f"p{pair}_s{stride}"

    def module_for(self, pair: int, op: str, source: int) -> nn.Module:
        ops = self._lookup[pair, source]
        if op in ops:
            return ops[op]
        family, size = op.rsplit("_", 1)  # an OFA op: sep_conv_5x5 -> the sep_conv op read at 5
        return KernelView(ops[family], int(size.split("x")[0]), self.bn)  # type: ignore[return-value]

    @property
    def width(self) -> int:
        return NODES * self.channels


class DartsNetwork(nn.Module):
    """DARTS' CIFAR skeleton around cells made by ``make_cell(c_pp, c_p, c, reduction, reduction_prev)``."""

    def __init__(
        self,
        channels: int,
        layers: int,
        num_classes: int,
        bn: BNSpec,
        make_cell: Callable[[int, int, int, bool, bool], _Cell],
        dropout: Dropouts = NO_DROPOUT,
        auxiliary: bool = False,
    ) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"a DARTS network needs at least 3 cells (two of them reductions), got {layers}")
        c = STEM_MULTIPLIER * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), bn(c))
        c_pp, c_p, c = c, c, channels
        cells: list[_Cell] = []
        reduction_prev = False
        self.aux_cell = reduction_layers(layers)[1]
        aux_width = 0
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c *= 2
            cell = make_cell(c_pp, c_p, c, reduction, reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.width
            if i == self.aux_cell:
                aux_width = c_p
        self.cells = nn.ModuleList(cells)
        for i, cell in enumerate(cells):  # per op inside the cells (SPEC 6.8), not on cell outputs
            cell.set_drop_path(dropout.path, i, layers, dropout.generator)
        self.aux_head = AuxiliaryHead(aux_width, num_classes) if auxiliary else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(dropout.head, dropout.generator)
        self.classifier = SlicedLinear(c_p, num_classes)

    def features(self, x: torch.Tensor, arch: DartsArch) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, cols, _ = self._run(x, arch, aux=False)
        return pooled, cols

    def _run(self, x: torch.Tensor, arch: DartsArch, aux: bool
             ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Pooled features, their channel columns and, with ``aux``, the auxiliary head's input (the output of
        the cell after the second reduction, as DARTS taps it)."""
        s0 = s1 = self.stem(x)
        c0 = c1 = None
        tapped = None
        for i, cell in enumerate(self.cells):
            out, cols = cell(s0, s1, arch.reduce if cell.reduction else arch.normal, c0, c1)
            s0, c0, s1, c1 = s1, c1, out, cols
            if aux and i == self.aux_cell:
                tapped = s1
        return self.pool(s1).flatten(1), c1, tapped

    def head(self, features: torch.Tensor, cols: torch.Tensor | None) -> torch.Tensor:
        return self.classifier(self.dropout(features), cols)


class DartsSuperNet(DartsNetwork):
    """f_ws: ``forward(x, arch)`` runs exactly the sampled path."""

    def __init__(
        self,
        channels: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        *,
        placement: OpPlacement = "node",
        bn: BNSpec | None = None,
        path_dropout: float = 0.0,
        global_dropout: float = 0.0,
        generator: torch.Generator | None = None,
        ofa_kernel: bool = False,
        wsbn: bool = False,
        pool_bn: bool = True,
    ) -> None:
        """``pool_bn``: a parameter-free BN after each pooling op, as the authors' super-net ops have
        (see ``darts_op``); False keeps the ops exactly the stand-alone network's."""
        bn = bn or BNSpec()
        dropout = Dropouts(path_dropout, global_dropout, generator)

        def make(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> _Cell:
            return SearchCell(c_pp, c_p, c, reduction, reduction_prev, bn, placement, ofa_kernel, wsbn, pool_bn)

        super().__init__(channels, layers, num_classes, bn, make, dropout)
        self.bn, self.pool_bn = bn, pool_bn
        self.generator = generator  # reseeded per epoch by the trainer: dropout masks resume exactly
        self.hparams = dict(channels=channels, layers=layers, num_classes=num_classes)

    def forward(self, x: torch.Tensor, arch: DartsArch) -> torch.Tensor:
        return self.head(*self.features(x, arch))

    @torch.no_grad()
    def extract(self, arch: DartsArch) -> DartsStandalone:
        """The stand-alone network of ``arch`` with the weights this super-net trained for it
        (weight inheritance: fine-tune a searched model instead of training it from scratch)."""
        h = self.hparams
        net = DartsStandalone(arch, h["channels"], h["layers"], h["num_classes"], bn=self.bn, pool_bn=self.pool_bn)
        net = net.to(self.stem[0].weight.device)
        net.stem.load_state_dict(self.stem.state_dict())
        cols: list[torch.Tensor | None] = [None, None]  # the stem feeds the first cell twice
        for src, dst in zip(self.cells, net.cells, strict=True):
            cell = arch.reduce if src.reduction else arch.normal
            _sliced_copy(src.pre0, dst.pre0, cols[-2])
            _sliced_copy(src.pre1, dst.pre1, cols[-1])
            for pair, (op, source) in enumerate(cell.pairs()):
                dst.ops[pair].load_state_dict(src.module_for(pair, op, source).state_dict())
            cols.append(src.out_cols(cell.concat, self.stem[0].weight.device))
        _sliced_copy(self.classifier, net.classifier, cols[-1])
        return net


class DartsStandalone(DartsNetwork):
    """f_proxy: DARTS' ``NetworkCIFAR`` of one genotype (NDS trains it at its own width and depth)."""

    def __init__(
        self, arch: DartsArch, channels: int = 16, layers: int = 8, num_classes: int = 10, auxiliary: bool = False,
        bn: BNSpec | None = None, pool_bn: bool = False,
    ) -> None:
        """``pool_bn``: the super-net's variant (a BN without parameters after each pool; see
        ``darts_op``), which ``DartsSuperNet.extract`` builds; NDS and DARTS trained networks without."""
        bn = bn or BNSpec()

        def make(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> _Cell:
            cell = arch.reduce if reduction else arch.normal
            return InferCell(cell, c_pp, c_p, c, reduction, reduction_prev, bn, pool_bn)

        super().__init__(channels, layers, num_classes, bn, make, auxiliary=auxiliary)
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(*self.features(x, self.arch))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and, in training with an auxiliary head, the head's logits: DARTS' final training adds their
        loss with a weight (``final.auxiliary_weight``); evaluation uses the main logits alone."""
        pooled, cols, tapped = self._run(x, self.arch, aux=self.aux_head is not None and self.training)
        logits = self.head(pooled, cols)
        return logits, (self.aux_head(tapped) if tapped is not None and self.aux_head is not None else None)

    def set_drop_path(self, prob: float, generator: torch.Generator | None) -> None:
        """DARTS' final training: every non-identity op of every cell dropped with one probability (the
        caller raises it linearly over the epochs), unlike the super-net's per-layer schedule."""
        for cell in self.cells:
            cell.node_drops = nn.ModuleList(
                DropPath(1.0 - prob, generator) if prob > 0 else nn.Identity() for _ in range(NODES))


def _sliced_copy(src: nn.Module, dst: nn.Module, cols: torch.Tensor | None) -> None:
    """Copy a module that reads a previous cell's output, keeping only the input channels ``cols``."""
    sliced = {id(m.weight) for m in src.modules() if isinstance(m, (SlicedConv1x1, SlicedLinear))}
    state = {
        k: (p.index_select(1, cols) if cols is not None and id(p) in sliced else p)
        for k, p in src.state_dict(keep_vars=True).items()
    }
    dst.load_state_dict(state)


@lru_cache(maxsize=4096)
def darts_param_count(arch: DartsArch, channels: int, layers: int, num_classes: int = 10, auxiliary: bool = False) -> int:
    """Trainable parameters of the stand-alone network (built on the meta device: no memory, ~ms)."""
    with torch.device("meta"):
        return count_parameters(DartsStandalone(arch, channels, layers, num_classes, auxiliary))
