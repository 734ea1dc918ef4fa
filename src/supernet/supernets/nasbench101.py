"""NASBench-101 networks: the stand-alone network f_proxy and the super-net f_ws.

Both share one macro skeleton (stem conv3x3-BN-ReLU, stacks of cells separated by 2x2 max-pools
with channel doubling, global average pool, dense) and one cell computation (``_Cell.run``); they
differ only in where a cell finds the module of a vertex and whether it slices it. So the
super-net's sampled path computes what the stand-alone network computes (a test checks it for the
``fixed`` strategy) at about the same cost.

A cell is a pruned ``matrix`` (square, upper-triangular 0/1, at most 7 vertices) with ``ops``
(``input``, interior ops from ``OPS``, ``output``), given as any object with ``.matrix`` and ``.ops``
or as a ``(matrix, ops)`` pair; that vocabulary (``OPS``, ``CellSpec``, ``as_cell``, ``validate_cell``)
is the search space's, ``supernet.spaces.nasbench101``. Shapes follow google-research/nasbench
``model_builder.py``:
* vertex widths: ``vertex_channels`` (the official ``compute_vertex_channels`` rule);
* a vertex sums its inputs, then applies its op: inputs from the cell input go through a 1x1
  conv-BN-ReLU projection to the vertex width, inputs from other vertices are truncated to their
  first C channels (vertices come first, the projection last, as ``tf.add_n`` there);
* the cell output concatenates the vertices feeding the output (in vertex order), plus a 1x1
  projection of the cell input when the input feeds the output directly (alone if nothing else does);
* conv ops are conv(no bias)-BN-ReLU with "same" padding; maxpool3x3 is stride 1, padding 1.
Parameter counts equal the benchmark's ``trainable_parameters`` (BN affine counted; tests check 32 cells).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from supernet.nn.channels import (
    ChannelStrategy,
    ChannelStrategyName,
    DynamicBatchNorm,
    DynamicConvBNReLU,
    make_channel_strategy,
)
from supernet.nn.droppath import NO_DROPOUT, Dropouts, cell_drop_paths, head_dropout
from supernet.nn.ops import BNSpec, count_parameters
from supernet.nn.wsbn import WSBatchNorm, incoming_index
from supernet.spaces.nasbench101 import MAX_VERTICES, CellSpec, as_cell, validate_cell

KERNEL_SIZE = {"conv1x1-bn-relu": 1, "conv3x3-bn-relu": 3}
WidthRule = Literal["nasbench", "doubling"]


# --------------------------------------------------------------------------------------------- cells
def vertex_channels(matrix: Sequence[Sequence[int]], c_in: int, c_out: int) -> tuple[int, ...]:
    """NASBench's width rule: the output width is split among the vertices feeding the output.

    Those get ``c_out // k`` channels, the first ``c_out % k`` of them one more; every other interior
    vertex takes the max width of its successors, so a truncation never has to widen.
    """
    n = len(matrix)
    widths = [0] * n
    widths[0], widths[-1] = c_in, c_out
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    if n == 2:
        return tuple(widths)
    if len(feeders) > c_out:
        raise ValueError(f"{c_out} output channels cannot be split among {len(feeders)} vertices")
    base, extra = divmod(c_out, len(feeders))
    for i, v in enumerate(feeders):
        widths[v] = base + (i < extra)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            widths[v] = max(widths[d] for d in range(v + 1, n - 1) if matrix[v][d])
    return tuple(widths)


@dataclass(frozen=True)
class CellPlan:
    """What one forward of a cell needs, computed once per (cell, C_in, C_out)."""

    ops: tuple[str, ...]
    widths: tuple[int, ...]
    vertex_sources: tuple[tuple[int, ...], ...]  # per vertex: interior vertices feeding it
    from_input: tuple[bool, ...]  # per vertex: fed by the cell input (through a projection)
    incoming: tuple[int, ...]  # per vertex: WSBN index of its set of inputs
    to_output: tuple[int, ...]  # vertices concatenated into the output
    input_to_output: bool  # the cell input is projected and added to the output

    @property
    def num_vertices(self) -> int:
        return len(self.ops)


@lru_cache(maxsize=8192)
def cell_plan(spec: CellSpec, c_in: int, c_out: int) -> CellPlan:
    validate_cell(spec)
    m, n = spec.matrix, spec.num_vertices
    sources = tuple(tuple(s for s in range(1, t) if m[s][t]) for t in range(n))
    incoming = tuple(
        incoming_index([s for s in range(t) if m[s][t]]) if 0 < t < n - 1 else -1 for t in range(n)
    )
    return CellPlan(
        ops=spec.ops,
        widths=vertex_channels(m, c_in, c_out),
        vertex_sources=sources,
        from_input=tuple(bool(m[0][t]) for t in range(n)),
        incoming=incoming,
        to_output=tuple(v for v in range(1, n - 1) if m[v][n - 1]),
        input_to_output=bool(m[0][n - 1]),
    )


def conv_bn_relu(c_in: int, c_out: int, kernel: int, bn: BNSpec) -> nn.Sequential:
    """NASBench's conv-BN-ReLU: no conv bias, "same" padding."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), bn(c_out), nn.ReLU()
    )


class _Cell(nn.Module):
    """The NB101 cell computation; subclasses say where a vertex's modules live."""

    c_in: int
    c_out: int

    def project(self, t: int, x: torch.Tensor, c: int) -> torch.Tensor:
        raise NotImplementedError

    def vertex_op(self, t: int, op: str, x: torch.Tensor, c: int, incoming: int) -> torch.Tensor:
        raise NotImplementedError

    def project_output(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run(self, x: torch.Tensor, plan: CellPlan) -> torch.Tensor:
        nodes = [x]
        for t in range(1, plan.num_vertices - 1):
            c = plan.widths[t]
            acc: torch.Tensor | None = None
            for s in plan.vertex_sources[t]:
                y = nodes[s][:, :c]
                acc = y if acc is None else acc + y
            if plan.from_input[t]:
                y = self.project(t, x, c)
                acc = y if acc is None else acc + y
            assert acc is not None, "validated cells feed every vertex"
            nodes.append(self.vertex_op(t, plan.ops[t], acc, c, plan.incoming[t]))
        if not plan.to_output:
            return self.project_output(x)
        out = (
            torch.cat([nodes[v] for v in plan.to_output], 1)
            if len(plan.to_output) > 1
            else nodes[plan.to_output[0]]
        )
        return out + self.project_output(x) if plan.input_to_output else out


class InferCell(_Cell):
    """Stand-alone cell: only its own modules, each at its exact width."""

    def __init__(self, spec: CellSpec, c_in: int, c_out: int, bn: BNSpec) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        plan = cell_plan(spec, c_in, c_out)
        self.proj = nn.ModuleDict()
        self.ops = nn.ModuleDict()
        for t in range(1, plan.num_vertices - 1):
            c, op = plan.widths[t], plan.ops[t]
            if plan.from_input[t]:
                self.proj[str(t)] = conv_bn_relu(c_in, c, 1, bn)
            self.ops[str(t)] = (
                conv_bn_relu(c, c, KERNEL_SIZE[op], bn) if op in KERNEL_SIZE else nn.MaxPool2d(3, 1, 1)
            )
        self.out_proj = conv_bn_relu(c_in, c_out, 1, bn) if plan.input_to_output else None

    def project(self, t: int, x: torch.Tensor, c: int) -> torch.Tensor:
        return self.proj[str(t)](x)

    def vertex_op(self, t: int, op: str, x: torch.Tensor, c: int, incoming: int) -> torch.Tensor:
        return self.ops[str(t)](x)

    def project_output(self, x: torch.Tensor) -> torch.Tensor:
        assert self.out_proj is not None
        return self.out_proj(x)


# -------------------------------------------------------------------------------------- macro skeleton
def stack_widths(stem_channels: int, stacks: int, rule: WidthRule = "nasbench") -> list[int]:
    """Cell output width per stack. ``nasbench``: stem, 2x, 4x (NB101's 128/256/512). ``doubling``:
    the authors' super-net quirk (SPEC 4.1/10), doubling at the first stack too: 2x, 4x, 8x."""
    first = {"nasbench": 0, "doubling": 1}[rule]
    return [stem_channels * 2 ** (s + first) for s in range(stacks)]


class NB101Network(nn.Module):
    """Stem, ``cells_per_stack`` cells per stack made by ``make_cell(c_in, c_out)``, pooling, dense."""

    def __init__(
        self,
        stem_channels: int,
        widths: Sequence[int],
        cells_per_stack: int,
        num_classes: int,
        bn: BNSpec,
        make_cell: Callable[[int, int], _Cell],
        dropout: Dropouts = NO_DROPOUT,
    ) -> None:
        super().__init__()
        self.stem = conv_bn_relu(3, stem_channels, 3, bn)
        cells: list[_Cell] = []
        c = stem_channels
        for width in widths:
            for _ in range(cells_per_stack):
                cells.append(make_cell(c, width))
                c = width
        self.cells = nn.ModuleList(cells)
        # Drop-path scheduled by stack (every cell of stack s keeps 1 - (s+1)/stacks * rate): the authors'
        # schedule at their 3 cells per stack, and valid at any other count.
        stack_of = [i // cells_per_stack for i in range(len(cells))]
        self.drop_paths = nn.ModuleList(cell_drop_paths(dropout.path, stack_of, len(widths), dropout.generator))
        # Max-pool before the first cell of every stack but the first ("same" padding: ceil_mode).
        self._downsample_before = frozenset(s * cells_per_stack for s in range(1, len(widths)))
        self.dropout = head_dropout(dropout.head, dropout.generator)
        self.classifier = nn.Linear(c, num_classes)

    def features(self, x: torch.Tensor, spec: CellSpec) -> torch.Tensor:
        x = self.stem(x)
        for i, (cell, drop) in enumerate(zip(self.cells, self.drop_paths, strict=True)):
            if i in self._downsample_before:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            x = drop(cell.run(x, cell_plan(spec, cell.c_in, cell.c_out)))
        return x.mean((2, 3))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))


class NB101Standalone(NB101Network):
    """f_proxy: the stand-alone NASBench-101 network of one cell (128/256/512 wide at stem 128)."""

    def __init__(
        self,
        cell: object,
        stem_channels: int = 128,
        stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        bn: BNSpec | None = None,
    ) -> None:
        bn = bn or BNSpec()
        spec = as_cell(cell)
        widths = stack_widths(stem_channels, stacks)
        super().__init__(
            stem_channels, widths, cells_per_stack, num_classes, bn, lambda i, o: InferCell(spec, i, o, bn)
        )
        self.cell = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x, self.cell))


# ------------------------------------------------------------------------------------------ super-net
class _Slot(nn.Module):
    """One interior vertex position of the super-net cell: input projection + candidate ops at C_max."""

    def __init__(
        self, vertex: int, c_in: int, c_max: int, bn: BNSpec, strategy: ChannelStrategy, wsbn: bool, ofa: bool
    ) -> None:
        super().__init__()
        self.proj = DynamicConvBNReLU(c_in, c_max, (1,), DynamicBatchNorm.from_spec(bn, c_max), strategy)

        def norm() -> DynamicBatchNorm | WSBatchNorm:
            # Vertex v's inputs are a non-empty subset of vertices 0..v-1: 2**v - 1 WSBN slots.
            return WSBatchNorm(2**vertex - 1, c_max, bn) if wsbn else DynamicBatchNorm.from_spec(bn, c_max)

        if ofa:
            self.ops = nn.ModuleDict({"conv": DynamicConvBNReLU(c_max, c_max, (1, 3), norm(), strategy)})
        else:
            self.ops = nn.ModuleDict(
                {op: DynamicConvBNReLU(c_max, c_max, (k,), norm(), strategy) for op, k in KERNEL_SIZE.items()}
            )
        self.ofa, self.wsbn = ofa, wsbn

    def conv(self, op: str) -> DynamicConvBNReLU:
        """The module running conv op ``op`` (with OFA, both kernel sizes share one)."""
        return self.ops["conv" if self.ofa else op]  # type: ignore[return-value]

    def run_op(self, op: str, x: torch.Tensor, c: int, incoming: int) -> torch.Tensor:
        if op == "maxpool3x3":
            return F.max_pool2d(x, 3, 1, 1)
        return self.conv(op)(x, c, KERNEL_SIZE[op], incoming if self.wsbn else None)


class SearchCell(_Cell):
    """Super-net cell: vertex t of a pruned cell uses slot t - 1; the cell output is the output."""

    def __init__(
        self, c_in: int, c_out: int, bn: BNSpec, strategy: ChannelStrategy, wsbn: bool, ofa: bool, slots: int
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.slots = nn.ModuleList(_Slot(s + 1, c_in, c_out, bn, strategy, wsbn, ofa) for s in range(slots))
        self.out_proj = conv_bn_relu(c_in, c_out, 1, bn)

    def project(self, t: int, x: torch.Tensor, c: int) -> torch.Tensor:
        return self.slots[t - 1].proj(x, c)

    def vertex_op(self, t: int, op: str, x: torch.Tensor, c: int, incoming: int) -> torch.Tensor:
        return self.slots[t - 1].run_op(op, x, c, incoming)

    def project_output(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(x)


class NB101SuperNet(NB101Network):
    """f_ws for NASBench-101: ``forward(x, cell)`` runs exactly the sampled cell, in every position.

    Slot mapping (the authors'): each of the ``max_vertices - 2`` interior slots of a cell holds a 1x1
    projection from the cell input and the candidate ops, all at C_max = the cell's output width;
    interior vertex t of the pruned matrix uses slot t - 1, so cells of fewer vertices use the first
    slots, and the matrix's last vertex is always the cell output (one shared output projection).
    Real vertex widths follow ``vertex_channels``; ``channel_strategy`` extracts them (see
    ``supernet.nn.channels``; ``shuffle`` draws from ``generator`` or torch's global RNG; ``disabled``
    slices like ``fixed``, so widths differing by one inside a sub-space still work).

    Widths: ``width_rule="nasbench"`` (default) makes cells as wide as f_proxy's (128/256/512 at stem
    128), so a super-net path and its stand-alone network agree; ``"doubling"`` reproduces the
    authors' quirk of doubling at the first stack too (SPEC 4.1).

    ``wsbn``: the conv ops' BN is chosen by the vertex's set of inputs (SPEC 6.7; projections keep one
    BN). ``ofa_kernel``: conv1x1 and conv3x3 of a vertex share one 3x3 kernel and BN, the 1x1 kernel
    being the centre tap times a learnable scalar (SPEC 6.6, ``supernet.nn.kernels``).
    """

    def __init__(
        self,
        stem_channels: int = 128,
        stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        *,
        channel_strategy: ChannelStrategyName = "fixed",
        wsbn: bool = False,
        ofa_kernel: bool = False,
        bn: BNSpec | None = None,
        width_rule: WidthRule = "nasbench",
        max_vertices: int = MAX_VERTICES,
        path_dropout: float = 0.0,
        global_dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        bn = bn or BNSpec()
        strategy = make_channel_strategy(channel_strategy, generator)
        slots = max_vertices - 2

        def make_cell(c_in: int, c_out: int) -> _Cell:
            return SearchCell(c_in, c_out, bn, strategy, wsbn, ofa_kernel, slots)

        super().__init__(
            stem_channels,
            stack_widths(stem_channels, stacks, width_rule),
            cells_per_stack,
            num_classes,
            bn,
            make_cell,
            Dropouts(path_dropout, global_dropout, generator),
        )
        self.max_vertices = max_vertices
        self.generator = generator  # reseeded per epoch by the trainer: shuffle and dropout resume exactly
        self.hparams = dict(
            stem_channels=stem_channels,
            stacks=stacks,
            cells_per_stack=cells_per_stack,
            num_classes=num_classes,
            channel_strategy=channel_strategy,
            wsbn=wsbn,
            ofa_kernel=ofa_kernel,
            width_rule=width_rule,
            max_vertices=max_vertices,
        )

    def forward(self, x: torch.Tensor, cell: object) -> torch.Tensor:
        spec = as_cell(cell)
        if spec.num_vertices > self.max_vertices:
            raise ValueError(
                f"cell has {spec.num_vertices} vertices; this super-net holds at most {self.max_vertices}"
            )
        return self.head(self.features(x, spec))


# ----------------------------------------------------------------------------------- parameter count

@lru_cache(maxsize=1024)
def _conv_bn_relu_count(c_in: int, c_out: int, kernel: int, affine: bool) -> int:
    with torch.device("meta"):
        return count_parameters(conv_bn_relu(c_in, c_out, kernel, BNSpec(affine=affine)))


@lru_cache(maxsize=4096)
def _cell_count(spec: CellSpec, c_in: int, c_out: int, affine: bool) -> int:
    plan = cell_plan(spec, c_in, c_out)
    total = _conv_bn_relu_count(c_in, c_out, 1, affine) if plan.input_to_output else 0
    for t in range(1, plan.num_vertices - 1):
        c, op = plan.widths[t], plan.ops[t]
        total += _conv_bn_relu_count(c_in, c, 1, affine) if plan.from_input[t] else 0
        total += _conv_bn_relu_count(c, c, KERNEL_SIZE[op], affine) if op in KERNEL_SIZE else 0
    return total


def nb101_param_count(
    cell: object,
    stem_channels: int = 128,
    stacks: int = 3,
    cells_per_stack: int = 3,
    num_classes: int = 10,
    affine: bool = True,
) -> int:
    """Trainable parameters of ``NB101Standalone(cell, ...)`` without building it (fast for pools).

    Sums cached counts of the very modules the stand-alone network builds (made on the meta device).
    """
    spec = as_cell(cell)
    widths = stack_widths(stem_channels, stacks)
    total = _conv_bn_relu_count(3, stem_channels, 3, affine) + widths[-1] * num_classes + num_classes
    c = stem_channels
    for width in widths:
        for _ in range(cells_per_stack):
            total += _cell_count(spec, c, width, affine)
            c = width
    return total
