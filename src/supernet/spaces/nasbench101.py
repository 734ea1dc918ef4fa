"""NAS-Bench-101: cells of at most 7 vertices and 9 edges, 3 ops, 423,624 unique graphs.

A cell is identified by NAS-Bench-101's own module hash, so ground-truth lookups need no
translation. Cells are always held pruned (vertices off every input->output path removed), which
is what the benchmark trains and hashes; unpruned specs are accepted as input and pruned on entry.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from supernet.errors import SupernetError
from supernet.spaces import nb101_graph as graph

# The NAS-Bench-101 vocabulary, defined here once: the NB101 networks and the ground-truth converter
# (``groundtruth/nb101_convert.py``) import it. ``OPS`` is in the official config's order: op codes
# stored in ground-truth tables index it.
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT = "input"
OUTPUT = "output"
MAX_VERTICES = graph.MAX_VERTICES
MAX_EDGES = graph.MAX_EDGES
NUM_CELLS = graph.NUM_CELLS
NO_OP = graph.NO_OP  # op-code padding for the interior slots a smaller cell does not have
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_HASH = re.compile(r"[0-9a-fA-F]{32}")
# Bounds on input, checked before it is walked: an unpruned spec may carry vertices pruning removes, but a
# matrix this large is not a cell; a cell's JSON with generous spacing is far below MAX_TEXT characters.
MAX_SPEC_VERTICES = 64
MAX_TEXT = 10_000


def _quote(value: object) -> str:
    """``value`` as a message quotes it: its repr, cut to 100 characters."""
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


@dataclass(frozen=True)
class NB101Cell:
    """A pruned, valid cell. Equality is on the encoding; use :func:`module_hash` for isomorphism."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        reason = _check_pruned(self.matrix, self.ops)
        if reason:
            raise SupernetError(f"invalid NB101Cell ({reason}); build cells with make_cell()")

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    @property
    def output_inputs(self) -> int:
        """Interior vertices feeding the output: it fixes each vertex's channel share (SPEC §6.5)."""
        return sum(row[-1] for row in self.matrix[1:-1])

    @property
    def labeling(self) -> tuple[int, ...]:
        """Integer labels as the official hash sees them: -1 input, op index, -2 output."""
        return (graph.INPUT_LABEL, *(_OP_INDEX[op] for op in self.ops[1:-1]), graph.OUTPUT_LABEL)

    def as_json(self) -> dict[str, Any]:
        return {"matrix": [list(row) for row in self.matrix], "ops": list(self.ops)}

    def __str__(self) -> str:
        """Compact JSON, so that ``space.parse(str(cell))`` round-trips."""
        return json.dumps(self.as_json(), separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Plain cell specs, for the networks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellSpec:
    """A hashable (matrix, ops) cell, so per-cell facts can be cached.

    Unlike :class:`NB101Cell` it carries no benchmark limits (a network may hold more vertices);
    :func:`validate_cell` checks what a network needs.
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)


def as_cell(cell: object) -> CellSpec:
    """Accept a ``CellSpec``, any object with ``.matrix``/``.ops``, or a ``(matrix, ops)`` pair."""
    if isinstance(cell, CellSpec):
        return cell
    if hasattr(cell, "matrix") and hasattr(cell, "ops"):
        matrix, ops = cell.matrix, cell.ops  # type: ignore[attr-defined]
    else:
        matrix, ops = cell  # type: ignore[misc]
    rows = tuple(tuple(int(v) for v in row) for row in np.asarray(matrix, dtype=np.int64))
    return CellSpec(rows, tuple(str(op) for op in ops))


def validate_cell(spec: CellSpec) -> None:
    """Reject (ValueError) what a network's channel rule cannot handle: malformed or unpruned cells."""
    m, ops, n = spec.matrix, spec.ops, spec.num_vertices
    if n < 2 or any(len(row) != n for row in m) or len(m) != n:
        raise ValueError(f"matrix must be square with one row per op ({n} ops), got {len(m)} rows")
    if any(v not in (0, 1) for row in m for v in row):
        raise ValueError("matrix entries must be 0 or 1")
    if any(m[i][j] for i in range(n) for j in range(i + 1)):
        raise ValueError("matrix must be strictly upper-triangular (a DAG in topological order)")
    if ops[0] != INPUT or ops[-1] != OUTPUT or any(op not in OPS for op in ops[1:-1]):
        raise ValueError(f"ops must be {INPUT!r}, interior ops from {OPS}, {OUTPUT!r}; got {list(ops)}")
    from_input, to_output = {0}, {n - 1}
    for v in range(1, n):
        if any(m[u][v] for u in from_input):
            from_input.add(v)
    for v in range(n - 2, -1, -1):
        if any(m[v][w] for w in to_output):
            to_output.add(v)
    if from_input & to_output != set(range(n)):
        raise ValueError("cell is not pruned: every vertex must lie on a path from input to output")


def _trusted_cell(matrix: tuple[tuple[int, ...], ...], ops: tuple[str, ...]) -> NB101Cell:
    """Skip re-validation for cells that come from the enumeration or were just validated.

    Decoding all 423,624 cells would otherwise spend most of its time re-proving what the
    enumeration already guarantees.
    """
    cell = object.__new__(NB101Cell)
    object.__setattr__(cell, "matrix", matrix)
    object.__setattr__(cell, "ops", ops)
    return cell


# --------------------------------------------------------------------------------------------
# Validation and pruning
# --------------------------------------------------------------------------------------------


def _as_rows(matrix: Any) -> list[list[int]]:
    """Square 0/1 rows from lists, tuples or an array; raise naming the first defect."""
    if isinstance(matrix, np.ndarray):
        matrix = matrix.tolist()
    if not isinstance(matrix, Sequence) or isinstance(matrix, str) or len(matrix) == 0:
        raise SupernetError("matrix must be a non-empty list of rows")
    n = len(matrix)
    if n > MAX_SPEC_VERTICES:
        raise SupernetError(f"matrix has {n} rows; a NAS-Bench-101 spec has at most {MAX_SPEC_VERTICES} vertices "
                            f"before pruning ({MAX_VERTICES} after)")
    rows: list[list[int]] = []
    for i, row in enumerate(matrix):
        if not isinstance(row, Sequence) or isinstance(row, str):
            raise SupernetError(f"matrix row {i} is not a list")
        if len(row) != n:
            raise SupernetError(f"matrix must be square: row {i} has {len(row)} entries, expected {n}")
        clean = []
        for j, x in enumerate(row):
            if isinstance(x, (bool, int, np.integer)) and int(x) in (0, 1):
                clean.append(int(x))
            else:
                raise SupernetError(f"matrix entry [{i}][{j}] is {_quote(x)}; entries must be 0 or 1")
        rows.append(clean)
    for i in range(n):
        for j in range(i + 1):
            if rows[i][j]:
                raise SupernetError(
                    f"matrix must be upper triangular with a zero diagonal, but entry [{i}][{j}] is 1"
                )
    return rows


def _check_ops(ops: Any, n: int) -> tuple[str, ...]:
    if not isinstance(ops, Sequence) or isinstance(ops, str):
        raise SupernetError("ops must be a list of op names")
    if len(ops) != n:
        raise SupernetError(f"ops has {len(ops)} labels but the matrix has {n} vertices")
    if n < 2:
        raise SupernetError("a cell needs at least an input and an output vertex")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise SupernetError(
            f"ops must start with {INPUT!r} and end with {OUTPUT!r}, got {_quote(ops[0])} ... {_quote(ops[-1])}"
        )
    for i, op in enumerate(ops[1:-1], start=1):
        if not isinstance(op, str) or op not in _OP_INDEX:
            raise SupernetError(f"unknown op {_quote(op)} at vertex {i}; valid ops: {', '.join(OPS)}")
    return tuple(ops)


def _prune_or_reason(rows: Sequence[Sequence[int]], ops: tuple[str, ...]) -> NB101Cell | str:
    """The pruned cell, or why the spec is not a NAS-Bench-101 cell (no exception, for samplers)."""
    live = graph.live_vertices(rows)
    if live is None:
        return "the output vertex is not reachable from the input vertex"
    if len(live) > MAX_VERTICES:
        return f"the cell has {len(live)} vertices after pruning; NAS-Bench-101 allows at most {MAX_VERTICES}"
    matrix = graph.submatrix(rows, live)
    edges = sum(map(sum, matrix))
    if edges > MAX_EDGES:
        return f"the cell has {edges} edges after pruning; NAS-Bench-101 allows at most {MAX_EDGES}"
    return _trusted_cell(matrix, tuple(ops[v] for v in live))


def _check_pruned(matrix: Any, ops: Any) -> str:
    """Empty string when (matrix, ops) is already a valid pruned cell, else the reason."""
    try:
        rows = _as_rows(matrix)
        checked = _check_ops(ops, len(rows))
    except SupernetError as err:
        return str(err)
    if not isinstance(matrix, tuple) or not all(isinstance(r, tuple) for r in matrix):
        return "matrix must be a tuple of tuples"
    if not isinstance(ops, tuple):
        return "ops must be a tuple"
    pruned = _prune_or_reason(rows, checked)
    if isinstance(pruned, str):
        return pruned
    if pruned.num_vertices != len(rows):
        return "the matrix has vertices that are not on an input->output path"
    return ""


def make_cell(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> NB101Cell:
    """Validate a (possibly unpruned) spec and return its pruned cell.

    As in the official ``ModelSpec``/``is_valid``, the vertex and edge limits apply after
    pruning, so an unpruned 7-vertex spec with 10+ edges is fine if pruning brings it to 9.
    Op names are checked on every vertex, pruned or not: a typo is a mistake either way.
    """
    rows = _as_rows(matrix)
    checked = _check_ops(ops, len(rows))
    pruned = _prune_or_reason(rows, checked)
    if isinstance(pruned, str):
        raise SupernetError(f"invalid NAS-Bench-101 cell: {pruned}")
    return pruned


@functools.lru_cache(maxsize=1 << 16)
def module_hash(cell: NB101Cell) -> str:
    """The official NAS-Bench-101 module hash; cached because training loops ask repeatedly."""
    return graph.hash_module(cell.matrix, cell.labeling)


# --------------------------------------------------------------------------------------------
# The enumeration as a table of arrays
# --------------------------------------------------------------------------------------------


class CellTable:
    """Hash-sorted arrays describing a set of unique cells (normally all 423,624).

    Kept as arrays rather than objects so that the full space costs ~20 MB and loads in
    milliseconds; cells are decoded one at a time on demand.
    """

    def __init__(self, arrays: dict[str, np.ndarray], expected: int | None = NUM_CELLS) -> None:
        graph.check_arrays(arrays, expected)
        self.hashes: np.ndarray = arrays["hashes"]
        self.bits: np.ndarray = arrays["bits"]
        self.num_vertices: np.ndarray = arrays["num_vertices"]
        self.ops: np.ndarray = arrays["ops"]
        self.output_inputs: np.ndarray = arrays["output_inputs"]

    @classmethod
    def from_cells(cls, cells: Iterable[NB101Cell]) -> CellTable:
        """A table over an explicit (small) list of cells, deduplicated by module hash."""
        unique = {module_hash(c): c for c in cells}
        order = sorted(unique)
        rows = [unique[h] for h in order]
        ops = np.full((len(rows), MAX_VERTICES - 2), graph.NO_OP, dtype=np.uint8)
        for r, cell in enumerate(rows):
            ops[r, : cell.num_vertices - 2] = cell.labeling[1:-1]
        return cls(
            {
                "hashes": np.array(order, dtype="S32"),
                "bits": np.array([graph.matrix_to_bits(c.matrix) for c in rows], dtype=np.uint32),
                "num_vertices": np.array([c.num_vertices for c in rows], dtype=np.uint8),
                "ops": ops,
                "output_inputs": np.array([c.output_inputs for c in rows], dtype=np.uint8),
            },
            expected=None,
        )

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, module_hash: str) -> int | None:
        key = module_hash.lower().encode("ascii")
        i = int(np.searchsorted(self.hashes, key))
        return i if i < len(self.hashes) and self.hashes[i] == key else None

    def cell(self, i: int) -> NB101Cell:
        v = int(self.num_vertices[i])
        interior = tuple(OPS[o] for o in self.ops[i, : v - 2].tolist())
        return _trusted_cell(graph.bits_to_matrix(int(self.bits[i]), v), (INPUT, *interior, OUTPUT))


@functools.lru_cache(maxsize=4)
def _load_table(path: Path) -> CellTable:
    return CellTable(graph.load_or_build(path))


# --------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------


class _TableSource:
    """Loads the table on first use and shares it between a space and its sub-spaces."""

    def __init__(self, table: CellTable | None, cache_file: Path | None) -> None:
        self._table = table
        self._cache_file = cache_file

    def get(self) -> CellTable:
        if self._table is None:
            path = self._cache_file or graph.default_cache_file()
            self._table = _load_table(path.expanduser().resolve())
        return self._table


class NB101Space:
    """NAS-Bench-101 as a :class:`~supernet.spaces.base.SearchSpace` of :class:`NB101Cell`.

    ``cells`` replaces the enumeration with an explicit list (for tests and hand-built spaces);
    otherwise the enumeration is loaded, or built and cached, the first time something needs
    it (hash parsing, uniform sampling, iteration, indexing), never on construction.
    ``output_inputs=k`` restricts the space to the sub-space of SPEC §6.5.
    """

    name = "nasbench101"
    ops = OPS

    def __init__(
        self,
        cells: Iterable[NB101Cell] | None = None,
        *,
        cache_file: str | Path | None = None,
        output_inputs: int | None = None,
        _source: _TableSource | None = None,
    ) -> None:
        if _source is None:
            table = CellTable.from_cells(cells) if cells is not None else None
            _source = _TableSource(table, Path(cache_file) if cache_file is not None else None)
        if output_inputs is not None and not 0 <= output_inputs <= MAX_VERTICES - 2:
            raise SupernetError(
                f"output_inputs must be in [0, {MAX_VERTICES - 2}] (interior vertices feeding the output), "
                f"got {output_inputs}"
            )
        self._source = _source
        self.output_inputs = output_inputs
        self._rows: np.ndarray | None = None

    # -- the enumeration ---------------------------------------------------------------------

    @property
    def table(self) -> CellTable:
        return self._source.get()

    def _members(self) -> np.ndarray | None:
        """Table rows of this sub-space (ascending), or None for the whole table."""
        if self.output_inputs is None:
            return None
        if self._rows is None:
            self._rows = np.flatnonzero(self.table.output_inputs == self.output_inputs)
        return self._rows

    def __len__(self) -> int:
        rows = self._members()
        return len(self.table) if rows is None else len(rows)

    def from_index(self, index: int) -> NB101Cell:
        n = len(self)
        if not 0 <= index < n:
            raise SupernetError(f"NAS-Bench-101 enumeration index must be in [0, {n}), got {index}")
        rows = self._members()
        return self.table.cell(index if rows is None else int(rows[index]))

    def index_of(self, cell: NB101Cell) -> int:
        row = self.table.find(module_hash(cell))
        rows = self._members()
        if row is not None and rows is not None:
            pos = int(np.searchsorted(rows, row))
            row = pos if pos < len(rows) and rows[pos] == row else None
        if row is None:
            raise SupernetError(f"cell {cell} (hash {module_hash(cell)}) is not in {self.describe()}")
        return row

    def __contains__(self, cell: object) -> bool:
        if not isinstance(cell, NB101Cell):
            return False
        try:
            self.index_of(cell)
        except SupernetError:
            return False
        return True

    def __iter__(self) -> Iterator[NB101Cell]:
        return (self.from_index(i) for i in range(len(self)))

    def describe(self) -> str:
        base = "the NAS-Bench-101 space"
        return base if self.output_inputs is None else f"{base} sub-space output_inputs={self.output_inputs}"

    def subspace(self, k: int) -> NB101Space:
        """Cells whose output is fed by exactly k interior vertices (one super-net each, SPEC §6.5)."""
        return NB101Space(output_inputs=k, _source=self._source)

    def subspace_sizes(self) -> dict[int, int]:
        counts = np.bincount(self.table.output_inputs, minlength=MAX_VERTICES - 1)
        return {k: int(n) for k, n in enumerate(counts.tolist()) if self.output_inputs in (None, k)}

    # -- SearchSpace protocol ----------------------------------------------------------------

    def parse(self, text: str) -> NB101Cell:
        """A JSON ``{"matrix": [[...]], "ops": [...]}`` (unpruned is fine) or a 32-hex module hash.

        Sub-spaces parse any valid cell (ground-truth tables cover the whole benchmark); use
        ``cell in space`` to test membership.
        """
        s = text.strip()
        if len(s) > MAX_TEXT:
            raise SupernetError(f"NAS-Bench-101 cell {_quote(s)} has {len(s):,} characters; a cell is at most "
                                f"{MAX_TEXT:,}")
        if _HASH.fullmatch(s):
            row = self.table.find(s)
            if row is None:
                raise SupernetError(
                    f"unknown NAS-Bench-101 module hash {_quote(s)}: not one of the {len(self.table)} cells"
                )
            return self.table.cell(row)
        if not s.startswith("{"):
            raise SupernetError(
                f"NAS-Bench-101 cell {_quote(s)} is neither a 32-hex module hash nor a JSON object "
                '{"matrix": [[...]], "ops": [...]}'
            )
        try:
            obj = json.loads(s)
        except ValueError as err:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise SupernetError(f"NAS-Bench-101 cell {_quote(s)} is not valid JSON: {err}") from None
        except RecursionError:
            raise SupernetError(f"NAS-Bench-101 cell {_quote(s)} is nested too deeply to be a cell's JSON") from None
        if not isinstance(obj, dict) or set(obj) != {"matrix", "ops"}:
            keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise SupernetError(
                f"NAS-Bench-101 cell JSON must have exactly the keys 'matrix' and 'ops', got {keys}"
            )
        return make_cell(obj["matrix"], obj["ops"])

    def key(self, arch: NB101Cell) -> str:
        return module_hash(arch)

    def unique_key(self, arch: NB101Cell) -> str:
        """Same as :meth:`key`: the module hash already identifies isomorphic cells."""
        return module_hash(arch)

    def sample(self, rng: np.random.Generator) -> NB101Cell:
        """Uniform over unique cells (the paper's default sampler); needs the enumeration."""
        n = len(self)
        if n == 0:
            raise SupernetError(f"cannot sample from {self.describe()}: it has no cells")
        return self.from_index(int(rng.integers(n)))

    def sample_unique(self, rng: np.random.Generator) -> NB101Cell:
        """The enumeration holds one cell per isomorphism class already: the same as :meth:`sample`."""
        return self.sample(rng)

    def op_slots(self, arch: NB101Cell) -> int:
        """Positions that carry a choice of op: the interior vertices."""
        return arch.num_vertices - 2

    def with_ops(self, arch: NB101Cell, ops: Sequence[str]) -> NB101Cell:
        """The same graph with other interior ops (always a valid cell: pruning depends on the graph)."""
        return make_cell(arch.matrix, (INPUT, *ops, OUTPUT))

    def sample_encoding(self, rng: np.random.Generator) -> NB101Cell:
        """Li & Talwalkar's Random-NAS: random 7x7 upper-triangular matrix and ops until valid.

        Biased towards cells with many encodings, which is the point of offering it. Needs no
        enumeration; in a sub-space, draws are rejected until they fall inside it.
        """
        n = MAX_VERTICES
        while True:
            upper = np.triu(rng.random((n, n)) < 0.5, k=1).astype(int).tolist()
            interior = [OPS[o] for o in rng.integers(len(OPS), size=n - 2).tolist()]
            cell = _prune_or_reason(upper, (INPUT, *interior, OUTPUT))
            if isinstance(cell, NB101Cell) and self.output_inputs in (None, cell.output_inputs):
                return cell
