"""DARTS-NDS: the DARTS cell space as benchmarked by NDS (Radosavovic et al. 2019).

A cell has two inputs (the outputs of the two previous cells, states 0 and 1) and four nodes
(states 2..5); node k sums two ``(op, input)`` pairs whose inputs are earlier states, and the cell
output concatenates the states in ``concat``. An architecture is a normal and a reduction cell.

NDS trained 5,000 such architectures; the authors train and evaluate super-nets only on those
(SPEC 3.3, 6.4), so a :class:`DartsSpace` built from a ground-truth table samples among its keys.

The canonical key (shared with the ground-truth table) keeps the pair order within a node, because
with ops on nodes the first and second pair of a node own different super-net weights; the concat
list is part of it, because NDS concatenates loose ends where DARTS' own genotypes concatenate all.
Example: ``normal=sep_conv_3x3~0+sep_conv_3x3~1|...|...|...@2,3,4,5;reduce=...@2,3,4,5``.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from supernet.errors import SupernetError

OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
NODES = 4  # intermediate nodes per cell (states 2..5)
INPUTS = 2  # the two previous cells
_OP_SET = frozenset(OPS)
# The longest arch text parsed: a Genotype(...) repr with generous spacing is under 1,000 characters, so this
# refuses only hostile input, before it is parsed (deep nesting, a million-entry concat list).
MAX_TEXT = 10_000


def _quote(value: object) -> str:
    """``value`` as a message quotes it: its repr, cut to 100 characters."""
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


@dataclass(frozen=True)
class DartsCell:
    """``ops[2k], ops[2k+1]`` and ``inputs[2k], inputs[2k+1]`` feed node k (state k + 2)."""

    ops: tuple[str, ...]
    inputs: tuple[int, ...]
    concat: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != 2 * NODES or len(self.inputs) != 2 * NODES:
            raise SupernetError(f"a DARTS cell has {NODES} nodes of 2 (op, input) pairs, got {len(self.ops)} pairs")
        for j, (op, src) in enumerate(zip(self.ops, self.inputs, strict=True)):
            if op not in _OP_SET:
                raise SupernetError(f"unknown op {_quote(op)}; valid DARTS-NDS ops: {', '.join(OPS)}")
            if not 0 <= src < INPUTS + j // 2:
                raise SupernetError(
                    f"node {j // 2} (state {INPUTS + j // 2}) reads state {src}; only states 0..{INPUTS + j // 2 - 1} exist before it"
                )
        if not self.concat or list(self.concat) != sorted(set(self.concat)):
            raise SupernetError(f"concat {list(self.concat)} must be a non-empty, increasing list of states")
        if not all(INPUTS <= c < INPUTS + NODES for c in self.concat):
            raise SupernetError(f"concat {list(self.concat)} may only name node states {INPUTS}..{INPUTS + NODES - 1}")

    def __str__(self) -> str:
        nodes = ("+".join(f"{self.ops[j]}~{self.inputs[j]}" for j in (2 * k, 2 * k + 1)) for k in range(NODES))
        return "|".join(nodes) + "@" + ",".join(map(str, self.concat))

    def pairs(self) -> list[tuple[str, int]]:
        return list(zip(self.ops, self.inputs, strict=True))


@dataclass(frozen=True)
class DartsArch:
    normal: DartsCell
    reduce: DartsCell

    def __str__(self) -> str:
        return f"normal={self.normal};reduce={self.reduce}"

    @property
    def ops(self) -> tuple[str, ...]:
        """The 16 op slots, normal cell first (FairNAS permutes these)."""
        return self.normal.ops + self.reduce.ops

    def genotype(self) -> dict[str, Any]:
        """The NDS / DARTS genotype as plain JSON data."""
        return {
            "normal": [list(p) for p in self.normal.pairs()], "normal_concat": list(self.normal.concat),
            "reduce": [list(p) for p in self.reduce.pairs()], "reduce_concat": list(self.reduce.concat),
        }


def loose_ends(inputs: Sequence[int]) -> tuple[int, ...]:
    """Node states no other node reads: what an NDS cell concatenates."""
    used = set(inputs)
    return tuple(s for s in range(INPUTS, INPUTS + NODES) if s not in used)


def _cell_from_key(text: str, what: str) -> DartsCell:
    body, sep, concat = text.partition("@")
    if not sep:
        raise SupernetError(f"{what} cell {_quote(text)} lacks '@' and its concat list, e.g. '...@2,3,4,5'")
    nodes = body.split("|")
    if len(nodes) != NODES:
        raise SupernetError(f"{what} cell {_quote(text)} has {len(nodes)} nodes separated by '|', expected {NODES}")
    ops, inputs = [], []
    for k, node in enumerate(nodes):
        tokens = node.split("+")
        if len(tokens) != 2:
            raise SupernetError(f"node {k} {_quote(node)} of the {what} cell must be 'op~i+op~j'")
        for token in tokens:
            op, tilde, src = token.partition("~")
            if not tilde or not (src.isascii() and src.isdigit()):
                raise SupernetError(f"malformed pair {_quote(token)} in node {k} of the {what} cell; expected 'op~i'")
            ops.append(op)
            inputs.append(int(src))
    items = concat.split(",")
    _check_concat_length(len(items), what)
    try:
        states = tuple(int(c) for c in items)
    except ValueError:
        raise SupernetError(f"concat {_quote(concat)} of the {what} cell must be comma-separated integers") from None
    return DartsCell(tuple(ops), tuple(inputs), states)


def _check_concat_length(n: int, what: str) -> None:
    """Before a concat list (or range) is materialised: a cell concatenates at most its NODES node states."""
    if n > NODES:
        raise SupernetError(f"the {what} cell's concat names {n} states; a cell has only {NODES} nodes to concatenate")


def _cell_from_pairs(pairs: Any, concat: Any, what: str) -> DartsCell:
    """From genotype data: ``[[op, input], ...]`` and a concat list (or range)."""
    try:
        if len(pairs) != 2 * NODES:
            raise SupernetError(f"{what}: a DARTS cell has {NODES} nodes of 2 (op, input) pairs, got {len(pairs)} pairs")
        _check_concat_length(len(concat), what.removesuffix(" cell"))
        ops = tuple(str(p[0]) for p in pairs)
        inputs = tuple(int(p[1]) for p in pairs)
        if any(len(p) != 2 for p in pairs):
            raise ValueError
        concat = tuple(int(c) for c in concat)
    except (TypeError, ValueError, IndexError):
        raise SupernetError(f"{what}: expected a list of [op, input] pairs and a list of concat states") from None
    return DartsCell(ops, inputs, concat)


def from_genotype(g: Any) -> DartsArch:
    """From an NDS record's ``net.genotype`` (a dict with normal, normal_concat, reduce, reduce_concat)."""
    if not isinstance(g, dict) or not {"normal", "normal_concat", "reduce", "reduce_concat"} <= set(g):
        raise SupernetError("a DARTS genotype needs the keys normal, normal_concat, reduce, reduce_concat")
    return DartsArch(
        _cell_from_pairs(g["normal"], g["normal_concat"], "normal cell"),
        _cell_from_pairs(g["reduce"], g["reduce_concat"], "reduction cell"),
    )


def _literal(node: ast.expr) -> Any:
    """A literal, or ``range(a, b)``: DARTS' genotype files write concat that way."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        bounds = [ast.literal_eval(a) for a in node.args]
        if not 1 <= len(bounds) <= 3 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            raise ValueError
        if not all(0 <= b <= INPUTS + NODES for b in bounds[:2]):
            raise SupernetError(f"concat range{tuple(bounds) if len(bounds) > 1 else f'({bounds[0]})'} is out of "
                                f"bounds: a cell's states are 0..{INPUTS + NODES - 1}")
        return range(*bounds)
    return ast.literal_eval(node)


def _from_repr(text: str) -> DartsArch:
    """``Genotype(normal=[...], normal_concat=..., ...)`` as DARTS logs print it; parsed, never evaluated."""
    try:
        call = ast.parse(text, mode="eval").body
        if not isinstance(call, ast.Call) or call.args:
            raise ValueError
        return from_genotype({kw.arg: _literal(kw.value) for kw in call.keywords})
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        raise SupernetError(
            "not a DARTS genotype: expected Genotype(normal=[(op, i), ...], normal_concat=[...], reduce=..., reduce_concat=...)"
        ) from None


def parse_arch(text: str) -> DartsArch:
    """The canonical key, an NDS genotype as JSON, or a DARTS ``Genotype(...)`` repr."""
    s = text.strip()
    if len(s) > MAX_TEXT:
        raise SupernetError(f"DARTS arch {_quote(s)} has {len(s):,} characters; an arch is at most {MAX_TEXT:,}")
    if s.startswith("{"):
        try:
            return from_genotype(json.loads(s))
        except ValueError as e:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise SupernetError(f"genotype JSON is malformed: {e}") from None
        except RecursionError:
            raise SupernetError("genotype JSON is nested too deeply to be a DARTS genotype") from None
    if s.startswith("Genotype("):
        return _from_repr(s)
    parts = dict(p.partition("=")[::2] for p in s.split(";"))
    if set(parts) != {"normal", "reduce"} or s.count(";") != 1:
        raise SupernetError(
            f"DARTS arch {_quote(s)} must read 'normal=<cell>;reduce=<cell>' (or be a genotype as JSON or Genotype(...))"
        )
    return DartsArch(_cell_from_key(parts["normal"], "normal"), _cell_from_key(parts["reduce"], "reduction"))


def unique_key(arch: DartsArch) -> str:
    """Pair order within a node does not change the stand-alone network's function."""
    def cell(c: DartsCell) -> str:
        nodes = ("+".join(sorted(f"{c.ops[j]}~{c.inputs[j]}" for j in (2 * k, 2 * k + 1))) for k in range(NODES))
        return "|".join(nodes) + "@" + ",".join(map(str, c.concat))

    return f"normal={cell(arch.normal)};reduce={cell(arch.reduce)}"


def _encodings_per_cell() -> int:
    """Cells ``sample`` can draw: per node an ordered pair of distinct earlier states and two ops."""
    return math.prod((INPUTS + k) * (INPUTS + k - 1) * len(OPS) ** 2 for k in range(NODES))


class DartsSpace:
    """The DARTS-NDS space; with ``candidates`` (the benchmarked keys) it samples only among them."""

    name = "darts_nds"
    ops = OPS

    def __init__(self, candidates: Sequence[str] | None = None) -> None:
        self._candidates = list(candidates) if candidates is not None else None
        self._parsed: dict[str, DartsArch] = {}

    def parse(self, text: str) -> DartsArch:
        return parse_arch(text)

    def key(self, arch: DartsArch) -> str:
        return str(arch)

    def unique_key(self, arch: DartsArch) -> str:
        return unique_key(arch)

    def _arch(self, key: str) -> DartsArch:
        if key not in self._parsed:
            self._parsed[key] = parse_arch(key)
        return self._parsed[key]

    def sample(self, rng: np.random.Generator) -> DartsArch:
        """Uniform over the candidates; without them, NDS' own distribution: each node reads two
        distinct earlier states through uniformly drawn ops, and the cell concatenates its loose ends."""
        if self._candidates is not None:
            return self._arch(self._candidates[int(rng.integers(len(self._candidates)))])
        return DartsArch(self._random_cell(rng), self._random_cell(rng))

    @staticmethod
    def _random_cell(rng: np.random.Generator) -> DartsCell:
        inputs: list[int] = []
        for k in range(NODES):
            inputs.extend(int(i) for i in rng.choice(INPUTS + k, size=2, replace=False))
        ops = tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=2 * NODES))
        return DartsCell(ops, tuple(inputs), loose_ends(inputs))

    def sample_encoding(self, rng: np.random.Generator) -> DartsArch:
        raise SupernetError(
            "DARTS-NDS has no encoding-uniform sampler: super-nets train on the benchmarked architectures "
            "(SPEC 6.4); use protocol.sampler=uniform or fairnas"
        )

    def op_slots(self, arch: DartsArch) -> int:
        return 4 * NODES

    def with_ops(self, arch: DartsArch, ops: Sequence[str]) -> DartsArch:
        n = 2 * NODES
        return DartsArch(
            DartsCell(tuple(ops[:n]), arch.normal.inputs, arch.normal.concat),
            DartsCell(tuple(ops[n:]), arch.reduce.inputs, arch.reduce.concat),
        )

    def __iter__(self) -> Iterator[DartsArch]:
        if self._candidates is None:
            raise SupernetError("the full DARTS space (~1.7e19 architectures) cannot be enumerated; build it from a table")
        return (self._arch(k) for k in self._candidates)

    @property
    def num_archs(self) -> int:
        """Architectures ``sample`` can draw (the full space has ~1.7e19: more than ``len`` can return)."""
        return len(self._candidates) if self._candidates is not None else _encodings_per_cell() ** 2

    def __len__(self) -> int:
        if self._candidates is None:
            raise SupernetError(f"the full DARTS space has {self.num_archs:.2e} architectures; see num_archs")
        return len(self._candidates)
