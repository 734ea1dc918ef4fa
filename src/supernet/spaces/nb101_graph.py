"""NAS-Bench-101 graph machinery: pruning, the official module hash, and the full enumeration.

Everything here works on plain adjacency data (no op names), so the cell/space module can stay
about validation and user-facing behaviour. The hash must reproduce NAS-Bench-101's
``graph_util.hash_module`` bit for bit, because the ground-truth table is keyed by it; the
enumeration must reproduce the benchmark's 423,624 unique cells, because uniform sampling is
defined over exactly that list; it takes tens of seconds, so it is cached on disk as arrays.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MAX_VERTICES = 7
MAX_EDGES = 9
NUM_OPS = 3
INPUT_LABEL = -1
OUTPUT_LABEL = -2
NO_OP = 255  # ops-array padding for the interior slots a smaller cell does not have

Matrix = tuple[tuple[int, ...], ...]


# --------------------------------------------------------------------------------------------
# Single cells
# --------------------------------------------------------------------------------------------


def edge_bit(src: int, dst: int) -> int:
    """Column-major upper-triangle index, as the official generator numbers edges.

    Using the same order means a bitmask denotes the same edges whatever the matrix size, so
    one uint32 column stores cells of every vertex count.
    """
    return src + dst * (dst - 1) // 2


def matrix_to_bits(matrix: Matrix) -> int:
    n = len(matrix)
    return sum(1 << edge_bit(i, j) for j in range(n) for i in range(j) if matrix[i][j])


def bits_to_matrix(bits: int, num_vertices: int) -> Matrix:
    return tuple(
        tuple(1 if i < j and (bits >> edge_bit(i, j)) & 1 else 0 for j in range(num_vertices))
        for i in range(num_vertices)
    )


def live_vertices(matrix: Sequence[Sequence[int]]) -> list[int] | None:
    """Vertices on some input->output path, or None when the output is unreachable.

    Same rule as the official ``ModelSpec._prune``: a vertex survives only if it is reachable
    from the input and can reach the output; everything else cannot influence the result.
    """
    n = len(matrix)
    forward = [False] * n
    forward[0] = True
    for j in range(1, n):
        forward[j] = any(forward[i] and matrix[i][j] for i in range(j))
    backward = [False] * n
    backward[n - 1] = True
    for i in range(n - 2, -1, -1):
        backward[i] = any(backward[j] and matrix[i][j] for j in range(i + 1, n))
    live = [v for v in range(n) if forward[v] and backward[v]]
    return live if len(live) >= 2 else None


def submatrix(matrix: Sequence[Sequence[int]], keep: Sequence[int]) -> Matrix:
    return tuple(tuple(int(matrix[i][j]) for j in keep) for i in keep)


def _md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hash_module(matrix: Matrix, labeling: Sequence[int]) -> str:
    """NAS-Bench-101's isomorphism-invariant hash (Weisfeiler-Lehman refinement over md5).

    Each vertex starts from md5 of ``str((out_degree, in_degree, label))``; then, as many times
    as there are vertices, it is rehashed from its sorted in-neighbour hashes, its sorted
    out-neighbour hashes and itself, '|'-separated; the graph hash is md5 of ``str`` of the
    sorted vertex hashes. The exact string formats matter: they are what the benchmark keys on.
    """
    n = len(matrix)
    preds = [[w for w in range(n) if matrix[w][v]] for v in range(n)]
    succs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    hashes = [_md5_hex(str((len(succs[v]), len(preds[v]), int(labeling[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5_hex(
                "".join(sorted(hashes[w] for w in preds[v]))
                + "|"
                + "".join(sorted(hashes[w] for w in succs[v]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5_hex(str(sorted(hashes)))


# --------------------------------------------------------------------------------------------
# Vectorised hashing: the same function over many cells of one vertex count
# --------------------------------------------------------------------------------------------

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SENTINEL = np.iinfo(np.int32).max  # sorts after every real id: marks "no neighbour here"


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index of each distinct row, inverse), rows ordered arbitrarily but consistently.

    ``np.unique(axis=0)`` on millions of 15-wide rows is slow, so rows are folded into one
    random 64-bit linear hash first; the result is then checked exactly and only a (never yet
    observed) collision falls back to the slow path.
    """
    mult = np.random.default_rng(0x5EED).integers(1, 2**63, size=rows.shape[1], dtype=np.uint64) | 1
    folded = np.zeros(len(rows), dtype=np.uint64)
    for c in range(rows.shape[1]):
        folded += rows[:, c].astype(np.uint64) * mult[c]
    _, first, inverse = np.unique(folded, return_index=True, return_inverse=True)
    owner = first[inverse]
    if all(np.array_equal(rows[owner, c], rows[:, c]) for c in range(rows.shape[1])):
        return first, inverse
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _md5_rows(messages: np.ndarray) -> np.ndarray:
    """Raw md5 digests (uint8, shape (U, 16)) of each row of a uint8 array."""
    count, width = messages.shape
    buf = np.ascontiguousarray(messages).tobytes()
    md5 = hashlib.md5
    raw = b"".join([md5(buf[k : k + width]).digest() for k in range(0, count * width, width)])
    return np.frombuffer(raw, dtype=np.uint8).reshape(count, 16)


def _to_hex(digests: np.ndarray) -> np.ndarray:
    """Lower-case ASCII hex (uint8, shape (U, 32)) of raw digests, as ``hexdigest`` spells them."""
    out = np.empty((len(digests), 32), dtype=np.uint8)
    out[:, 0::2] = _HEX_DIGITS[digests >> 4]
    out[:, 1::2] = _HEX_DIGITS[digests & 15]
    return out


def _rank_digests(digests: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hex strings in ascending order, and each item's id (= rank) in that order.

    The official hash sorts neighbour hashes as strings; with rank ids a plain integer sort
    along an axis reproduces that order for every vertex of every cell at once. Lower-case hex
    sorts like the big-endian number it spells, so ranking on the leading 8 digest bytes (with
    an exact tie-break when they collide) avoids sorting 32-byte strings.
    """
    digests = np.ascontiguousarray(digests)
    lead = digests[:, :8].copy().view(">u8").reshape(-1)
    order = np.argsort(lead)
    sorted_lead = lead[order]
    if len(order) > 1 and not np.all(sorted_lead[1:] > sorted_lead[:-1]):
        tail = digests[:, 8:].copy().view(">u8").reshape(-1)
        order = np.lexsort((tail, lead))
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return _to_hex(digests[order]), rank[inverse]


def _refine_messages(keys: np.ndarray, hexes: np.ndarray, num_vertices: int) -> np.ndarray:
    """Raw md5 of '<sorted in-hexes>|<sorted out-hexes>|<own hex>' for each distinct key row.

    Message length depends on the two neighbour counts, so rows are grouped by them and each
    group is assembled as one fixed-width uint8 block.
    """
    v = num_vertices
    n_in = (keys[:, :v] != _SENTINEL).sum(axis=1)
    n_out = (keys[:, v : 2 * v] != _SENTINEL).sum(axis=1)
    result = np.empty((len(keys), 16), dtype=np.uint8)
    bar = np.full((1, 1), ord("|"), dtype=np.uint8)
    group = n_in * (v + 1) + n_out
    by_group = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[by_group], np.arange((v + 1) ** 2 + 1))
    for g in range((v + 1) ** 2):
        idx = by_group[bounds[g] : bounds[g + 1]]
        if len(idx) == 0:
            continue
        a, b = divmod(g, v + 1)
        for chunk in np.array_split(idx, max(1, len(idx) // 200_000)):
            k = keys[chunk]
            parts = [
                hexes[k[:, :a]].reshape(len(k), 32 * a),
                np.broadcast_to(bar, (len(k), 1)),
                hexes[k[:, v : v + b]].reshape(len(k), 32 * b),
                np.broadcast_to(bar, (len(k), 1)),
                hexes[k[:, 2 * v]],
            ]
            result[chunk] = _md5_rows(np.concatenate(parts, axis=1))
    return result


def _fingerprint_messages(sorted_ids: np.ndarray, hexes: np.ndarray) -> np.ndarray:
    """Raw md5 of ``str(sorted(hashes))``, i.e. "['h1', 'h2', ...]", built as fixed-width rows."""
    count, v = sorted_ids.shape
    quote = np.full((count, 1), ord("'"), dtype=np.uint8)
    sep = np.frombuffer(b", ", dtype=np.uint8)[None, :].repeat(count, axis=0)
    parts: list[np.ndarray] = [np.full((count, 1), ord("["), dtype=np.uint8)]
    for i in range(v):
        if i:
            parts.append(sep)
        parts += [quote, hexes[sorted_ids[:, i]], quote]
    parts.append(np.full((count, 1), ord("]"), dtype=np.uint8))
    return _md5_rows(np.concatenate(parts, axis=1))


def hash_modules(adjacency: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Official module hashes ('S32') of N cells that all have the same vertex count.

    Vertex hashes are replaced by integer ids (ranked by hex string) so that neighbour
    gathering and sorting run in numpy; md5 is computed once per distinct (neighbourhood, self)
    key rather than once per vertex per cell, which is where the enumeration saves its time.
    """
    count, v, _ = adjacency.shape
    if count == 0:
        return np.empty(0, dtype="S32")
    if labels.shape != (count, v) or labels.min() < OUTPUT_LABEL or labels.max() > 5:
        raise ValueError(f"labels must have shape {(count, v)} and values in [-2, 5]")
    adj = adjacency.astype(bool)
    out_deg = adj.sum(axis=2)
    in_deg = adj.sum(axis=1)
    code = (out_deg * (v + 1) + in_deg) * 8 + (labels.astype(np.int64) + 2)
    uniq_code, inverse = np.unique(code.reshape(-1), return_inverse=True)
    texts = []
    for c in uniq_code.tolist():
        rest, label = divmod(c, 8)
        out_d, in_d = divmod(rest, v + 1)
        texts.append(_md5_hex(str((out_d, in_d, label - 2))))
    digests0 = np.frombuffer(bytes.fromhex("".join(texts)), dtype=np.uint8).reshape(-1, 16)
    hexes, ids = _rank_digests(digests0, inverse.reshape(-1))
    ids = ids.reshape(count, v)
    preds = adj.transpose(0, 2, 1)
    for _ in range(v):
        spread = np.broadcast_to(ids[:, None, :], (count, v, v))
        in_keys = np.sort(np.where(preds, spread, _SENTINEL), axis=2)
        out_keys = np.sort(np.where(adj, spread, _SENTINEL), axis=2)
        keys = np.concatenate([in_keys, out_keys, ids[:, :, None]], axis=2).reshape(count * v, -1)
        first, inverse = _unique_rows(keys)
        hexes, ids = _rank_digests(_refine_messages(keys[first], hexes, v), inverse)
        ids = ids.reshape(count, v)
    final = np.sort(ids, axis=1)
    first, inverse = _unique_rows(final)
    prints = _to_hex(_fingerprint_messages(final[first], hexes))
    return prints.view("S32").reshape(-1)[inverse]


# --------------------------------------------------------------------------------------------
# Enumeration
# --------------------------------------------------------------------------------------------


def _edge_list(num_vertices: int) -> list[tuple[int, int]]:
    """Edges in bit order, so column e of a bit matrix is edge ``_edge_list(v)[e]``."""
    return [(i, j) for j in range(num_vertices) for i in range(j)]


def full_dag_bits(num_vertices: int, max_edges: int = MAX_EDGES) -> np.ndarray:
    """Bitmasks (ascending) of DAGs where every vertex lies on an input->output path.

    A graph with a hanging vertex prunes to a smaller one that is enumerated at its own size,
    so (as the official generator does) only already-pruned graphs are kept. In an
    upper-triangular graph "every non-output row and every non-input column is non-zero" is
    equivalent to that.
    """
    edges = _edge_list(num_vertices)
    bits = np.arange(1 << len(edges), dtype=np.uint32)
    bits = bits[np.bitwise_count(bits) <= max_edges]
    ok = np.ones(len(bits), dtype=bool)
    for v in range(num_vertices):
        row = sum(1 << e for e, (i, _) in enumerate(edges) if i == v)
        col = sum(1 << e for e, (_, j) in enumerate(edges) if j == v)
        if v < num_vertices - 1:
            ok &= (bits & np.uint32(row)) != 0
        if v > 0:
            ok &= (bits & np.uint32(col)) != 0
    return bits[ok]


def structure_representatives(bits: np.ndarray, num_vertices: int) -> np.ndarray:
    """One bitmask per unlabelled isomorphism class: the smallest, as the official run meets it first.

    Labelling only isomorphism-class representatives loses no labelled cell (any labelled
    graph maps onto its representative with permuted labels) and cuts the work to hash.
    The canonical form is the minimum over interior-vertex permutations of the full V*V bit
    code; codes stay below 2**49, so a float64 matrix product computes them exactly.
    """
    edges = _edge_list(num_vertices)
    edge_bits = ((bits[:, None] >> np.arange(len(edges), dtype=np.uint32)) & 1).astype(np.float64)
    weights = []
    for perm in itertools.permutations(range(1, num_vertices - 1)):
        p = (0, *perm, num_vertices - 1)
        weights.append([float(1 << (p[i] * num_vertices + p[j])) for i, j in edges])
    codes = (edge_bits @ np.array(weights, dtype=np.float64).T).min(axis=1)
    _, first = np.unique(codes, return_index=True)
    return bits[np.sort(first)]


def _bits_to_adjacency(bits: np.ndarray, num_vertices: int) -> np.ndarray:
    adj = np.zeros((len(bits), num_vertices, num_vertices), dtype=bool)
    for e, (i, j) in enumerate(_edge_list(num_vertices)):
        adj[:, i, j] = (bits >> np.uint32(e)) & 1
    return adj


def enumerate_cells() -> dict[str, np.ndarray]:
    """All unique NAS-Bench-101 cells as arrays, ordered by module hash.

    Keys: ``hashes`` ('S32'), ``bits`` (uint32 edge bitmask, see :func:`edge_bit`),
    ``num_vertices`` (uint8), ``ops`` (uint8 (N, 5), op indices, ``NO_OP`` padding) and
    ``output_inputs`` (uint8, interior vertices feeding the output). Each hash keeps its first
    (bitmask, labelling) in the official generator's order, so the matrices are the ones the
    benchmark itself stores.
    """
    hashes, bits, verts, ops = [], [], [], []
    for v in range(2, MAX_VERTICES + 1):
        reps = structure_representatives(full_dag_bits(v), v)
        product = list(itertools.product(range(NUM_OPS), repeat=v - 2))
        labelings = np.array(product, dtype=np.int8).reshape(len(product), v - 2)
        cell_bits = np.repeat(reps, len(labelings))
        cell_ops = np.tile(labelings, (len(reps), 1))
        labels = np.concatenate(
            [
                np.full((len(cell_bits), 1), INPUT_LABEL, np.int8),
                cell_ops,
                np.full((len(cell_bits), 1), OUTPUT_LABEL, np.int8),
            ],
            axis=1,
        )
        h = hash_modules(_bits_to_adjacency(cell_bits, v), labels)
        _, first = np.unique(h, return_index=True)
        first = np.sort(first)
        padded = np.full((len(first), MAX_VERTICES - 2), NO_OP, dtype=np.uint8)
        padded[:, : v - 2] = cell_ops[first]
        hashes.append(h[first])
        bits.append(cell_bits[first])
        verts.append(np.full(len(first), v, dtype=np.uint8))
        ops.append(padded)
    all_hashes = np.concatenate(hashes)
    order = np.argsort(all_hashes, kind="stable")
    all_bits = np.concatenate(bits)[order].astype(np.uint32)
    all_verts = np.concatenate(verts)[order]
    return {
        "hashes": all_hashes[order],
        "bits": all_bits,
        "num_vertices": all_verts,
        "ops": np.concatenate(ops)[order],
        "output_inputs": output_inputs_of(all_bits, all_verts),
    }


def output_inputs_of(bits: np.ndarray, num_vertices: np.ndarray) -> np.ndarray:
    """Vectorised ``sum(matrix[1:-1, -1])`` over bitmask-encoded cells of mixed sizes."""
    result = np.zeros(len(bits), dtype=np.uint8)
    for v in np.unique(num_vertices).tolist():
        mask = num_vertices == v
        out = v - 1
        column = sum(1 << edge_bit(i, out) for i in range(1, out))
        result[mask] = np.bitwise_count(bits[mask] & np.uint32(column)).astype(np.uint8)
    return result


# --------------------------------------------------------------------------------------------
# On-disk cache of the enumeration
# --------------------------------------------------------------------------------------------

NUM_CELLS = 423_624
CACHE_NAME = "cells-v1.npz"
_FIELDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "hashes": ("S32", ()),
    "bits": ("uint32", ()),
    "num_vertices": ("uint8", ()),
    "ops": ("uint8", (MAX_VERTICES - 2,)),
    "output_inputs": ("uint8", ()),
}


def default_cache_file() -> Path:
    """``$SUPERNET_CACHE/nb101/cells-v1.npz``, else under ``~/.cache/supernet`` (as the datasets)."""
    env = os.environ.get("SUPERNET_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "supernet"
    return root / "nb101" / CACHE_NAME


def check_arrays(arrays: dict[str, np.ndarray], expected: int | None = NUM_CELLS) -> None:
    """Raise ValueError unless ``arrays`` is a well-formed cell table (hash-sorted, in range).

    A truncated or stale cache must never be trusted silently: a wrong row would mean a wrong
    architecture behind a benchmark key, which no later check would catch.
    """
    missing = set(_FIELDS) - set(arrays)
    if missing:
        raise ValueError(f"missing arrays {sorted(missing)}")
    n = len(arrays["hashes"])
    if expected is not None and n != expected:
        raise ValueError(f"{n} cells, expected {expected}")
    for name, (dtype, tail) in _FIELDS.items():
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or a.shape != (n, *tail):
            raise ValueError(f"array {name!r} has dtype {a.dtype} shape {a.shape}")
    h = arrays["hashes"]
    if n > 1 and not bool(np.all(h[1:] > h[:-1])):
        raise ValueError("hashes are not strictly increasing")
    v = arrays["num_vertices"]
    if n and (v.min() < 2 or v.max() > MAX_VERTICES):
        raise ValueError("vertex counts out of range")
    ops = arrays["ops"]
    if not bool(np.all((ops < NUM_OPS) | (ops == NO_OP))):
        raise ValueError("op codes out of range")


def load_or_build(
    path: Path, build: Callable[[], dict[str, np.ndarray]] = enumerate_cells
) -> dict[str, np.ndarray]:
    """The cached cell table, (re)building and atomically rewriting it when absent or corrupt.

    Writing to a temporary file and ``os.replace``-ing it means concurrent runs never see a
    half-written cache; an unwritable cache directory only costs the rebuild next time.
    """
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in _FIELDS}
            check_arrays(arrays)
            return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"rebuilding corrupt NAS-Bench-101 cell cache {path}: {err}", stacklevel=2)
    arrays = build()
    check_arrays(arrays)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write NAS-Bench-101 cell cache {path}: {err}", stacklevel=2)
    return arrays
