"""NAS-Bench-101 space: official hashes, pruning, validation, sampling, and the full enumeration."""

from __future__ import annotations

import collections
import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_shared
from nb101_cells import (
    C1,
    C3,
    INCEPTION_MATRIX,
    INCEPTION_OPS,
    MP,
    NB101_DATA,
    README_HASH,
    README_MATRIX,
    README_OPS,
    shipped_records30,
)
from supernet.errors import SupernetError
from supernet.groundtruth.nb101_convert import load_nb101_details
from supernet.spaces import nasbench101 as nb101
from supernet.spaces import nb101_graph as graph
from supernet.spaces.base import SearchSpace
from supernet.spaces.nasbench101 import OPS, NB101Cell, NB101Space, make_cell, module_hash


def _load(name: str) -> Any:
    """A NASLib file from ../shared/data (a skip without it, a failure under CI=true)."""
    return json.loads(require_shared(NB101_DATA / name, "NAS-Bench-101 sample data").read_text())


def _labeling(ops: list[str]) -> list[int]:
    return [-1, *(OPS.index(op) for op in ops[1:-1]), -2]


@pytest.fixture(scope="module")
def small_cells() -> list[NB101Cell]:
    """A few hundred distinct valid cells, so sampling/sub-space tests need no enumeration."""
    rng = np.random.default_rng(0)
    space = NB101Space(cells=[])
    return [space.sample_encoding(rng) for _ in range(400)]


# -------------------------------------------------------------------------------------------
# Official hashes and pruning against the benchmark's own data
# -------------------------------------------------------------------------------------------


def test_official_hashes_of_the_30_benchmark_records() -> None:
    records = shipped_records30()  # nb101_dummy.json's records, shipped: runs without ../shared
    assert len(records) == 30
    matrices = np.array([r["module_adjacency"] for r in records if len(r["module_operations"]) == 7])
    labels = np.array(
        [_labeling(r["module_operations"]) for r in records if len(r["module_operations"]) == 7]
    )
    batch = [h.decode() for h in graph.hash_modules(matrices, labels)]
    assert batch == [r["hash"] for r in records if len(r["module_operations"]) == 7]
    for r in records:
        cell = make_cell(r["module_adjacency"], r["module_operations"])
        assert cell.as_json() == {"matrix": r["module_adjacency"], "ops": r["module_operations"]}
        assert module_hash(cell) == r["hash"]


def test_readme_cells() -> None:
    cell = make_cell(README_MATRIX, README_OPS)
    assert module_hash(cell) == README_HASH
    assert NB101Space().key(cell) == README_HASH
    inception = make_cell(INCEPTION_MATRIX, INCEPTION_OPS)
    assert (inception.num_vertices, inception.num_edges, inception.output_inputs) == (7, 9, 4)
    assert (cell.num_vertices, cell.num_edges, cell.output_inputs) == (7, 9, 2)


def test_500_unpruned_specs_prune_to_valid_cells() -> None:
    records = _load("nb101_500_val.json")
    by_hash: dict[str, set[float]] = collections.defaultdict(set)
    for r in records:
        cell = make_cell(r["matrix"], r["ops"])
        assert cell.num_vertices <= 7 and cell.num_edges <= 9
        assert make_cell(cell.matrix, cell.ops) == cell  # pruning is idempotent
        by_hash[module_hash(cell)].add(r["val_accuracy"])
    assert len(by_hash) == 292
    # Each record reports one of its cell's 3 training runs: a shared hash never shows more
    # than 3 distinct accuracies, which confirms that pruning identified the right cell.
    assert max(len(accs) for accs in by_hash.values()) <= 3


# -------------------------------------------------------------------------------------------
# Pruning, validation, isomorphism
# -------------------------------------------------------------------------------------------


def test_dangling_vertex_is_pruned() -> None:
    # vertex 2 is fed by the input but feeds nothing: it cannot affect the output
    matrix = [
        [0, 1, 1, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    cell = make_cell(matrix, ["input", C3, MP, "output"])
    assert cell.matrix == ((0, 1, 0), (0, 0, 1), (0, 0, 0))
    assert cell.ops == ("input", C3, "output")


def test_vertex_unreachable_from_input_is_pruned() -> None:
    # vertex 1 feeds the output but nothing feeds vertex 1
    matrix = [
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    cell = make_cell(matrix, ["input", MP, C1, C3, "output"])
    assert cell.matrix == ((0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 0, 0))
    assert cell.ops == ("input", C1, C3, "output")
    assert cell.output_inputs == 1


def test_edge_limit_applies_after_pruning() -> None:
    # chain 0-1-2-3-4-6 plus five edges into vertex 5, which feeds nothing: 10 edges, 5 after pruning
    matrix = [[0] * 7 for _ in range(7)]
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (0, 5), (1, 5), (2, 5), (3, 5), (4, 5)]:
        matrix[i][j] = 1
    cell = make_cell(matrix, ["input", C3, C1, MP, C3, C1, "output"])
    assert (cell.num_vertices, cell.num_edges, cell.output_inputs) == (6, 5, 1)
    assert cell.ops == ("input", C3, C1, MP, C3, "output")
    full = [[1 if j > i else 0 for j in range(7)] for i in range(7)]
    for i in range(7):
        full[i][3] = full[3][i] = 0  # vertex 3 isolated: 15 edges remain among 6 live vertices
    with pytest.raises(SupernetError, match="15 edges after pruning"):
        make_cell(full, ["input", C3, C3, C3, C3, C3, "output"])


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        ([], [], "non-empty list of rows"),
        ([[0, 1], [0]], ["input", "output"], "must be square: row 1 has 1 entries"),
        ([[0, 2], [0, 0]], ["input", "output"], r"entry \[0\]\[1\] is 2"),
        ([[0, 1], [1, 0]], ["input", "output"], r"upper triangular.*\[1\]\[0\]"),
        ([[1, 1], [0, 0]], ["input", "output"], r"upper triangular.*\[0\]\[0\]"),
        ([[0, 1], [0, 0]], ["input", C3, "output"], "ops has 3 labels but the matrix has 2 vertices"),
        ([[0, 1], [0, 0]], [C3, "output"], "must start with 'input' and end with 'output'"),
        ([[0, 1], [0, 0]], ["input", "out"], "must start with 'input' and end with 'output'"),
        (
            [[0, 1, 0], [0, 0, 1], [0, 0, 0]],
            ["input", "conv5x5", "output"],
            "unknown op 'conv5x5' at vertex 1",
        ),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"], "output vertex is not reachable"),
        ([[0]], ["input"], "at least an input and an output"),
        (
            [[1 if j == i + 1 else 0 for j in range(8)] for i in range(8)],
            ["input", C3, C3, C3, C3, C3, C3, "output"],
            "8 vertices after pruning; NAS-Bench-101 allows at most 7",
        ),
        (
            [[1 if j > i else 0 for j in range(5)] for i in range(5)],
            ["input", C3, C1, MP, "output"],
            "10 edges after pruning; NAS-Bench-101 allows at most 9",
        ),
    ],
)
def test_validation_errors_name_the_problem(matrix: Any, ops: Any, message: str) -> None:
    with pytest.raises(SupernetError, match=message):
        make_cell(matrix, ops)


def test_cell_constructor_rejects_unpruned_matrices() -> None:
    with pytest.raises(SupernetError, match="not on an input->output path.*make_cell"):
        NB101Cell(((0, 1, 1), (0, 0, 0), (0, 0, 0)), ("input", C3, "output"))
    with pytest.raises(SupernetError, match="tuple of tuples"):
        NB101Cell([[0, 1], [0, 0]], ("input", "output"))  # type: ignore[arg-type]
    assert NB101Cell(((0, 1), (0, 0)), ("input", "output")).num_edges == 1


def _topological_relabelings(cell: NB101Cell) -> list[NB101Cell]:
    """Every interior-vertex permutation that keeps the matrix upper triangular."""
    n = cell.num_vertices
    out = []
    for perm in itertools.permutations(range(1, n - 1)):
        p = (0, *perm, n - 1)  # new position of old vertex v is p[v]
        m = [[0] * n for _ in range(n)]
        for i in range(n):
            for j in range(n):
                if cell.matrix[i][j]:
                    m[p[i]][p[j]] = 1
        if all(m[i][j] == 0 for i in range(n) for j in range(i + 1)):
            ops = [""] * n
            for v in range(n):
                ops[p[v]] = cell.ops[v]
            out.append(make_cell(m, ops))
    return out


def test_isomorphic_cells_share_a_hash() -> None:
    cell = make_cell(INCEPTION_MATRIX, INCEPTION_OPS)
    variants = _topological_relabelings(cell)
    assert len({(v.matrix, v.ops) for v in variants}) >= 10  # really different encodings
    assert {module_hash(v) for v in variants} == {module_hash(cell)}
    swapped = list(INCEPTION_OPS)
    swapped[1] = C3  # a different function: the hash must change
    assert module_hash(make_cell(INCEPTION_MATRIX, swapped)) != module_hash(cell)


def test_vectorised_hash_matches_reference(small_cells: list[NB101Cell]) -> None:
    for v in range(2, 8):
        cells = [c for c in small_cells if c.num_vertices == v][:50]
        if not cells:
            continue
        batch = graph.hash_modules(np.array([c.matrix for c in cells]), np.array([c.labeling for c in cells]))
        assert [h.decode() for h in batch] == [module_hash(c) for c in cells]


# -------------------------------------------------------------------------------------------
# Parsing and the space API (injected cells: no enumeration)
# -------------------------------------------------------------------------------------------


def test_parse_json_pruned_and_unpruned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb101, "_load_table", lambda path: pytest.fail("JSON parsing must not enumerate"))
    space = NB101Space()
    cell = space.parse(json.dumps({"matrix": README_MATRIX, "ops": README_OPS}))
    assert space.key(cell) == space.unique_key(cell) == README_HASH
    assert space.parse(str(cell)) == cell
    unpruned = [row[:] for row in README_MATRIX]
    unpruned[2][3] = 0  # vertex 3 loses its only input, so it is pruned
    parsed = space.parse(json.dumps({"matrix": unpruned, "ops": README_OPS}))
    assert parsed.num_vertices == 6 and parsed.ops == ("input", C3, MP, C3, C1, "output")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv3x3", "neither a 32-hex module hash nor a JSON object"),
        ("{not json", "not valid JSON"),
        ('{"matrix": [[0, 1], [0, 0]]}', "exactly the keys 'matrix' and 'ops'"),
        ('{"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"], "x": 1}', "exactly the keys"),
        ('{"matrix": [[0, 1], [0, 0]], "ops": ["input", "conv"]}', "must start with 'input'"),
        ('{"matrix": [[0, "1"], [0, 0]], "ops": ["input", "output"]}', "entries must be 0 or 1"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SupernetError, match=message):
        NB101Space(cells=[]).parse(text)


def test_parse_hash_looks_up_the_enumeration(small_cells: list[NB101Cell]) -> None:
    space = NB101Space(cells=small_cells)
    cell = small_cells[3]
    h = module_hash(cell)
    assert module_hash(space.parse(h)) == h
    assert space.parse(h.upper()) == space.parse(h)
    with pytest.raises(SupernetError, match="unknown NAS-Bench-101 module hash"):
        space.parse("0" * 32)


def test_space_is_a_search_space() -> None:
    assert isinstance(NB101Space(), SearchSpace)
    assert NB101Space().name == "nasbench101"


def test_enumeration_order_index_and_iteration(small_cells: list[NB101Cell]) -> None:
    space = NB101Space(cells=small_cells + small_cells[:10])  # duplicates collapse
    assert len(space) == len({module_hash(c) for c in small_cells})
    listed = list(space)
    hashes = [module_hash(c) for c in listed]
    assert hashes == sorted(hashes)
    for i in (0, 7, len(space) - 1):
        assert space.index_of(space.from_index(i)) == i
    for cell in small_cells[:20]:
        assert module_hash(space.from_index(space.index_of(cell))) == module_hash(cell)
        assert cell in space
    with pytest.raises(SupernetError, match=r"index must be in \[0, "):
        space.from_index(len(space))
    outsider = make_cell(INCEPTION_MATRIX, INCEPTION_OPS)
    if module_hash(outsider) not in hashes:
        assert outsider not in space
        with pytest.raises(SupernetError, match="is not in the NAS-Bench-101 space"):
            space.index_of(outsider)


def test_uniform_sampling_is_deterministic_and_covers(small_cells: list[NB101Cell]) -> None:
    space = NB101Space(cells=small_cells)
    a = [space.key(space.sample(np.random.default_rng(42))) for _ in range(3)]
    assert len(set(a)) == 1
    rng1, rng2 = np.random.default_rng(7), np.random.default_rng(7)
    seq1 = [space.sample(rng1) for _ in range(200)]
    seq2 = [space.sample(rng2) for _ in range(200)]
    assert seq1 == seq2
    rng = np.random.default_rng(1)
    counts = collections.Counter(space.index_of(space.sample(rng)) for _ in range(20 * len(space)))
    assert len(counts) > 0.99 * len(space)


def test_subspaces(small_cells: list[NB101Cell]) -> None:
    space = NB101Space(cells=small_cells)
    sizes = space.subspace_sizes()
    assert sum(sizes.values()) == len(space)
    assert set(sizes) == {0, 1, 2, 3, 4, 5}
    rng = np.random.default_rng(0)
    for k, size in sizes.items():
        sub = space.subspace(k)
        assert len(sub) == size and sub.subspace_sizes() == {k: size}
        assert all(c.output_inputs == k for c in sub)
        if size:
            assert all(sub.sample(rng).output_inputs == k for _ in range(20))
            assert sub.index_of(sub.from_index(size - 1)) == size - 1
    assert sizes[2] > 0
    two = space.subspace(2)
    assert all(two.sample_encoding(rng).output_inputs == 2 for _ in range(20))
    outside = next(c for c in small_cells if c.output_inputs != 2)
    assert outside not in two
    assert two.parse(str(outside)) == outside  # parsing stays permissive: GT tables span everything
    with pytest.raises(SupernetError, match="output_inputs must be in"):
        space.subspace(6)
    with pytest.raises(SupernetError, match="sub-space output_inputs=5: it has no cells"):
        space.subspace(5).sample(rng)


def test_encoding_sampler_is_valid_and_deterministic() -> None:
    space = NB101Space(cells=[])
    rng = np.random.default_rng(3)
    cells = [space.sample_encoding(rng) for _ in range(500)]
    for cell in cells:
        assert make_cell(cell.matrix, cell.ops) == cell  # valid and already pruned
        assert cell.num_vertices <= 7 and cell.num_edges <= 9
    again = [space.sample_encoding(r) for r in [np.random.default_rng(3)] for _ in range(500)]
    assert again == cells
    assert len({module_hash(c) for c in cells}) > 200
    # Encoding-uniform draws rarely keep all 7 vertices (85% of unique cells have 7): the bias
    # that distinguishes Random-NAS sampling from the architecture-uniform default.
    assert sum(c.num_vertices == 7 for c in cells) < 0.05 * len(cells)


def test_space_construction_is_lazy(tmp_path: Path) -> None:
    space = NB101Space(cache_file=tmp_path / "cells.npz")
    cell = space.parse(json.dumps({"matrix": README_MATRIX, "ops": README_OPS}))
    space.key(cell)
    space.sample_encoding(np.random.default_rng(0))
    space.subspace(2)
    assert not (tmp_path / "cells.npz").exists()


# -------------------------------------------------------------------------------------------
# The full enumeration
# -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_enumeration_and_cache(tmp_path: Path) -> None:
    path = tmp_path / "nb101" / graph.CACHE_NAME
    space = NB101Space(cache_file=path)
    assert len(space) == 423_624
    assert path.exists()
    # Speed of build and load is measured by bench/groundtruth.py, not asserted here.
    arrays = graph.load_or_build(path, build=lambda: pytest.fail("a valid cache must not be rebuilt"))
    assert len(arrays["hashes"]) == 423_624

    sizes = space.subspace_sizes()
    assert sum(sizes.values()) == 423_624
    assert sizes == {0: 1, 1: 120_933, 2: 201_441, 3: 90_782, 4: 10_467, 5: 0}
    assert collections.Counter(space.table.num_vertices.tolist()) == {
        2: 1,
        3: 6,
        4: 84,
        5: 2_441,
        6: 62_010,
        7: 359_082,
    }

    # decoded rows re-hash to their key, and cells round-trip through their index
    rng = np.random.default_rng(0)
    for i in rng.integers(len(space), size=300).tolist():
        cell = space.from_index(i)
        assert module_hash(cell) == space.table.hashes[i].decode()
        assert space.index_of(cell) == i
    assert space.parse(README_HASH) == make_cell(README_MATRIX, README_OPS)
    sampled = [space.sample_encoding(rng) for _ in range(200)]
    assert all(c in space for c in sampled)

    for r in shipped_records30():  # the benchmark stores exactly our representatives
        assert space.parse(r["hash"]).as_json() == {
            "matrix": r["module_adjacency"],
            "ops": r["module_operations"],
        }
    # The shipped val500 table's cells (NASLib's 500 specs, pruned) are all in the space, under their keys.
    val500 = load_nb101_details(Path(str(resources.files("supernet.groundtruth") / "tables" / "nb101-val500.npz")))
    for i, key in enumerate(val500.keys.tolist()):
        n = int(val500.num_vertices[i])
        ops = ["input", *(val500.op_names[int(c)] for c in val500.ops[i, : n - 2]), "output"]
        cell = make_cell(val500.matrix[i, :n, :n].tolist(), ops)
        assert cell in space and space.key(cell) == key

    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="rebuilding corrupt"):
        rebuilt = graph.load_or_build(path, build=lambda: arrays)
    assert np.array_equal(rebuilt["hashes"], arrays["hashes"])
    assert np.array_equal(graph.load_or_build(path)["bits"], arrays["bits"])  # rewritten, loads


def test_hostile_specs_are_bounded_before_they_are_walked():
    space = NB101Space(cells=[])
    with pytest.raises(SupernetError, match="at most 64 vertices before pruning"):
        make_cell([[0] * 65 for _ in range(65)], ["input"] + ["maxpool3x3"] * 63 + ["output"])
    with pytest.raises(SupernetError, match="a cell is at most 10,000"):
        space.parse('{"matrix": [' + ",".join(["[]"] * 1_000_000) + '], "ops": []}')
    with pytest.raises(SupernetError, match="nested too deeply") as err:
        space.parse('{"matrix": ' + "[" * 4000 + "]" * 4000 + "}")
    assert len(str(err.value)) < 200  # quotes at most ~100 characters of the input
