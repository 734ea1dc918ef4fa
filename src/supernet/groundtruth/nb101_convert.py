"""NAS-Bench-101 ground truth: official TFRecord files and the public subsets -> supernet tables.

Sources:
* the official ``nasbench_only108.tfrecord`` (108 epochs) and ``nasbench_full.tfrecord``
  (4, 12, 36 and 108 epochs); each record is the JSON list
  ``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]`` of one training run
  (one cell, one epoch budget, one of 3 repeats), ``raw_metrics`` being a base64
  ``nasbench.ModelMetrics`` protobuf, decoded here without the protobuf package;
* NASLib's 30-cell ``nb101_dummy.json`` (official records, as the API returns them);
* NASLib's ``nb101_500_val.json`` (500 unpruned specs, validation accuracy only).

Table layout (see ``table.py`` for the shared arrays). Keys are the official module hashes
(MD5 of the pruned cell). ``official_index`` is the order in which a hash first appears in the
source (record order for the TFRecord files, list order for the JSON files): NAS-Bench-101 has
no index of its own, and the file order is the one thing every copy of the release agrees on.
Columns, all averaged over the 3 repeats at 108 epochs as the paper's ground truth is:

* ``cifar10/valid``, ``cifar10/test``: accuracy in PERCENT (the release stores fractions; they
  are multiplied by 100 to match the NAS-Bench-201 table),
* ``cifar10/params``: trainable parameters (float32, so exact only up to 2**24; the exact count
  is in the ``trainable_parameters`` array).

Extra arrays, one row per key, which ``GroundTruth`` ignores (read them with
``load_nb101_details``): ``matrix`` (uint8 (N, 7, 7), pruned adjacency zero-padded to 7x7),
``num_vertices`` (uint8), ``ops`` (uint8 (N, 5), interior ops as indices into ``op_names``,
255 padding), ``op_names``; and where the source has runs: ``trainable_parameters`` (int64),
``budgets`` (int32 epochs), ``final_validation_accuracy`` / ``final_test_accuracy`` (float32
(N, budgets, 3), percent) and ``final_training_time`` (float32 (N, budgets, 3), seconds), all
taken at each run's final evaluation point; NaN where a run is absent.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import time
import zipfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from supernet.errors import SupernetError
from supernet.groundtruth.table import ExtendedTable, GroundTruth
from supernet.groundtruth.tfrecord import iter_records
from supernet.spaces.nasbench101 import INPUT, MAX_VERTICES, NO_OP, OPS, OUTPUT, make_cell, module_hash

BUDGETS = (4, 12, 36, 108)
GT_EPOCHS = 108
NUM_REPEATS = 3
COLUMNS = ("cifar10/valid", "cifar10/test", "cifar10/params")
_OP_CODE = {name: i for i, name in enumerate(OPS)}  # OPS is in the official config's order
_DIGITS = bytes.maketrans(b"01", b"\x00\x01")


# --------------------------------------------------------------------------------------------
# Protobuf wire format, for exactly nasbench/lib/model_metrics.proto
# --------------------------------------------------------------------------------------------


class ProtobufError(ValueError):
    """Malformed wire data; callers wrap it in a SupernetError that names the file and record."""


@dataclass(frozen=True)
class EvaluationData:
    current_epoch: float = 0.0
    training_time: float = 0.0
    train_accuracy: float = 0.0
    validation_accuracy: float = 0.0
    test_accuracy: float = 0.0
    checkpoint_path: str = ""


@dataclass(frozen=True)
class ModelMetrics:
    evaluation_data: tuple[EvaluationData, ...]
    trainable_parameters: int = 0
    total_time: float = 0.0


_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
# field number -> (attribute, wire type); every double is wire type 1 (fixed 64-bit).
_EVAL_FIELDS = {
    1: ("current_epoch", _I64),
    2: ("training_time", _I64),
    3: ("train_accuracy", _I64),
    4: ("validation_accuracy", _I64),
    5: ("test_accuracy", _I64),
    6: ("checkpoint_path", _LEN),
}
_DOUBLE = struct.Struct("<d")
# Fields 1..5 in order, each a one-byte tag then a double: how every writer lays out the doubles.
_EVAL_PREFIX = struct.Struct("<BdBdBdBdBd")
_EVAL_PREFIX_TAGS = tuple(f << 3 | _I64 for f in range(1, 6))
_EVAL_DOUBLES = tuple(_EVAL_FIELDS[f][0] for f in range(1, 6))


def _fields(buf: bytes, start: int = 0) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value): ints for varints, raw bytes for everything else.

    Unknown fields are yielded too (and skipped by the callers), as proto2 parsers do, so a
    newer writer adding fields does not break reading.
    """
    i, n = start, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtobufError(f"field number 0 at byte {i}")
        if wire == _VARINT:
            value, i = _varint(buf, i)
        elif wire == _I64:
            value, i = buf[i : i + 8], i + 8
        elif wire == _LEN:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire == _I32:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire} for field {field}")
        if i > n:
            raise ProtobufError(f"field {field} runs past the end of the message")
        yield field, wire, value


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    b = buf[i] if i < len(buf) else -1
    if 0 <= b < 0x80:  # fast path: one-byte varints are almost all of them
        return b, i + 1
    value, shift = 0, 0
    while True:
        if i >= len(buf):
            raise ProtobufError("varint runs past the end of the message")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint longer than 10 bytes")


def _expect(field: int, wire: int, want: int, message: str) -> None:
    if wire != want:
        raise ProtobufError(f"{message} field {field} has wire type {wire}, the schema says {want}")


def decode_evaluation_data(buf: bytes) -> EvaluationData:
    """Decode one EvaluationData; a fast path takes the usual 45-byte prefix in one unpack.

    The fast path gives exactly what the field loop would (the loop still reads whatever
    follows, and later occurrences of a field win, as in protobuf), it is just 5 times faster,
    which matters for the 5 million runs of the full release.
    """
    values: dict[str, Any] = {}
    start = 0
    if len(buf) >= _EVAL_PREFIX.size:
        prefix = _EVAL_PREFIX.unpack_from(buf)
        if prefix[0::2] == _EVAL_PREFIX_TAGS:
            values = dict(zip(_EVAL_DOUBLES, prefix[1::2], strict=True))
            start = _EVAL_PREFIX.size
    for field, wire, value in _fields(buf, start):
        spec = _EVAL_FIELDS.get(field)
        if spec is None:
            continue
        name, want = spec
        _expect(field, wire, want, "EvaluationData")
        if want == _I64:
            values[name] = _DOUBLE.unpack(value)[0]
        else:
            try:
                values[name] = value.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ProtobufError(f"checkpoint_path is not UTF-8: {e}") from None
    return EvaluationData(**values)


def _top_level(buf: bytes) -> tuple[list[bytes], int, float]:
    """ModelMetrics with the evaluation points left encoded, so callers decode only those they use."""
    points: list[bytes] = []
    params, total = 0, 0.0
    for field, wire, value in _fields(buf):
        if field == 1:
            _expect(field, wire, _LEN, "ModelMetrics")
            points.append(value)
        elif field == 2:
            _expect(field, wire, _VARINT, "ModelMetrics")
            params = value - (1 << 64) if value >= 1 << 63 else value  # int32: negatives sign-extend
        elif field == 3:
            _expect(field, wire, _I64, "ModelMetrics")
            total = _DOUBLE.unpack(value)[0]
    return points, params, total


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Decode a serialized ``nasbench.ModelMetrics`` message (raises ProtobufError)."""
    points, params, total = _top_level(buf)
    return ModelMetrics(tuple(decode_evaluation_data(p) for p in points), params, total)


# --------------------------------------------------------------------------------------------
# Official records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialRecord:
    """One training run, as stored in the official TFRecord files."""

    module_hash: str
    epochs: int
    adjacency: str  # flattened pruned matrix, '0'/'1' digits, row-major
    operations: tuple[str, ...]
    metrics: bytes  # serialized ModelMetrics


def parse_official_record(data: bytes) -> OfficialRecord:
    """Split one record's JSON payload (raises ValueError/ProtobufError on malformed data)."""
    row = json.loads(data.decode("utf-8"))
    if not isinstance(row, list) or len(row) != 5:
        raise ValueError("record is not a JSON list of 5 items")
    module_hash, epochs, adjacency, operations, metrics = row
    if not (isinstance(module_hash, str) and isinstance(adjacency, str) and isinstance(operations, str)):
        raise ValueError("hash, adjacency and operations must be strings")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs <= 0:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    try:
        raw = base64.b64decode(metrics, validate=True)
    except (binascii.Error, TypeError, ValueError) as e:
        raise ValueError(f"metrics are not base64: {e}") from None
    return OfficialRecord(module_hash, epochs, adjacency, tuple(operations.split(",")), raw)


def _final_run(metrics: bytes) -> tuple[EvaluationData, int]:
    """The last evaluation point (the end of training) and the parameter count of one run."""
    points, params, _ = _top_level(metrics)
    if not points:
        raise ProtobufError("ModelMetrics has no evaluation_data")
    return decode_evaluation_data(points[-1]), params


# --------------------------------------------------------------------------------------------
# Building tables
# --------------------------------------------------------------------------------------------


def _cell_bytes(flat: bytes, ops: Sequence[str]) -> tuple[bytes, bytes]:
    """(49 bytes of 0/1 padded matrix, 5 op codes); raises ValueError if not a valid NB101 cell."""
    n = len(ops)
    if not 2 <= n <= MAX_VERTICES or len(flat) != n * n:
        raise ValueError(
            f"a cell needs 2..7 vertices and an n x n matrix, got {n} ops and {len(flat)} entries"
        )
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ValueError(f"ops must start with {INPUT!r} and end with {OUTPUT!r}, got {list(ops)}")
    try:
        codes = bytes(_OP_CODE[o] for o in ops[1:-1]) + bytes([NO_OP]) * (MAX_VERTICES - n)
    except KeyError as e:
        raise ValueError(f"unknown op {e.args[0]!r}; NAS-Bench-101 ops are {', '.join(OPS)}") from None
    matrix = bytearray(MAX_VERTICES * MAX_VERTICES)
    for i in range(n):
        matrix[i * MAX_VERTICES : i * MAX_VERTICES + n] = flat[i * n : (i + 1) * n]
    return bytes(matrix), codes


class _Builder:
    """Collects cells and runs in compact arrays: the full release has 5 million runs."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.keys: list[str] = []
        self.matrices = bytearray()
        self.ops = bytearray()
        self.num_vertices = bytearray()
        self.params = array("q")
        self.run_row = array("q")
        self.run_epochs = array("q")
        self.run_valid = array("d")
        self.run_test = array("d")
        self.run_time = array("d")

    def cell(self, key: str, flat: bytes, ops: Sequence[str], params: int) -> int:
        """Row of `key`, added on first sight (later runs' cell data is ignored, as the API does)."""
        row = self.rows.get(key)
        if row is None:
            matrix, codes = _cell_bytes(flat, ops)
            row = self.rows[key] = len(self.keys)
            self.keys.append(key)
            self.matrices += matrix
            self.ops += codes
            self.num_vertices.append(len(ops))
            self.params.append(params)
        return row

    def run(self, row: int, epochs: int, valid: float, test: float, seconds: float) -> None:
        self.run_row.append(row)
        self.run_epochs.append(epochs)
        self.run_valid.append(valid)
        self.run_test.append(test)
        self.run_time.append(seconds)

    def build(self, required: Sequence[int], source: str) -> ExtendedTable:
        n = len(self.keys)
        if n == 0:
            raise SupernetError(f"{source} has no NAS-Bench-101 records")
        matrix = np.frombuffer(bytes(self.matrices), np.uint8).reshape(n, MAX_VERTICES, MAX_VERTICES)
        _check_matrices(matrix, self.keys, source)
        rows = np.frombuffer(self.run_row, np.int64)
        epochs = np.frombuffer(self.run_epochs, np.int64)
        budgets = np.unique(epochs)
        b = np.searchsorted(budgets, epochs)
        slot = rows * len(budgets) + b
        order = np.argsort(slot, kind="stable")  # stable: repeats keep their record order
        sorted_slot = slot[order]
        repeat = np.empty_like(slot)
        repeat[order] = np.arange(len(slot)) - np.searchsorted(sorted_slot, sorted_slot, side="left")
        counts = np.bincount(slot, minlength=n * len(budgets)).reshape(n, len(budgets))
        for e in sorted(set(required) | {GT_EPOCHS}):
            j = int(np.searchsorted(budgets, e))
            have = counts[:, j] if j < len(budgets) and budgets[j] == e else np.zeros(n, np.int64)
            if (have != NUM_REPEATS).any():
                i = int(np.argmax(have != NUM_REPEATS))
                raise SupernetError(
                    f"{source}: cell {self.keys[i]} has {have[i]} runs at {e} epochs, expected "
                    f"{NUM_REPEATS} (is this the right file? --full needs nasbench_full.tfrecord)"
                )
        if counts.max() > NUM_REPEATS:
            i, j = np.unravel_index(int(np.argmax(counts)), counts.shape)
            raise SupernetError(
                f"{source}: cell {self.keys[i]} has {counts[i, j]} runs at {budgets[j]} epochs, "
                f"at most {NUM_REPEATS} expected"
            )
        per_run = {}
        for name, values, scale in (
            ("final_validation_accuracy", self.run_valid, 100.0),
            ("final_test_accuracy", self.run_test, 100.0),
            ("final_training_time", self.run_time, 1.0),
        ):
            full = np.full((n, len(budgets), NUM_REPEATS), np.nan)
            full[rows, b, repeat] = np.frombuffer(values, np.float64) * scale
            per_run[name] = full
        gt = int(np.searchsorted(budgets, GT_EPOCHS))
        params = np.frombuffer(self.params, np.int64).copy()
        columns = {
            "cifar10/valid": per_run["final_validation_accuracy"][:, gt].mean(axis=1),
            "cifar10/test": per_run["final_test_accuracy"][:, gt].mean(axis=1),
            "cifar10/params": params.astype(np.float64),
        }
        extras: dict[str, np.ndarray] = {
            **_cell_extras(matrix, self.num_vertices, self.ops),
            "trainable_parameters": params,
            "budgets": budgets.astype(np.int32),
            **{k: v.astype(np.float32) for k, v in per_run.items()},
        }
        return ExtendedTable(list(self.keys), columns, extras)


def _cell_extras(
    matrix: np.ndarray, num_vertices: bytes | bytearray, ops: bytes | bytearray
) -> dict[str, np.ndarray]:
    n = len(matrix)
    return {
        "matrix": matrix,
        "num_vertices": np.frombuffer(bytes(num_vertices), np.uint8),
        "ops": np.frombuffer(bytes(ops), np.uint8).reshape(n, MAX_VERTICES - 2),
        "op_names": np.asarray(OPS, dtype=np.str_),
    }


def _check_matrices(matrix: np.ndarray, keys: Sequence[str], source: str) -> None:
    """Cells must be DAGs in topological order: the strict upper triangle only."""
    flat = matrix.reshape(len(matrix), -1)
    bad = np.tril(matrix).reshape(len(matrix), -1).any(axis=1) | (flat > 1).any(axis=1)
    if bad.any():
        raise SupernetError(
            f"{source}: cell {keys[int(np.argmax(bad))]} is not a 0/1 upper-triangular adjacency matrix"
        )


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversionSummary:
    """What a conversion produced, so a CLI can report it without reloading the table."""

    out: Path
    cells: int
    records: int
    budgets: tuple[int, ...]
    seconds: float


def convert_official_nb101(
    src: str | Path,
    out: str | Path,
    *,
    full: bool = False,
    verify_crc: bool = True,
    progress: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ConversionSummary:
    """Convert ``nasbench_only108.tfrecord`` (or, with ``full``, ``nasbench_full.tfrecord``).

    Every cell must have 3 runs at 108 epochs, and with ``full`` also at 4, 12 and 36, so a
    wrong or partial file fails loudly instead of producing a table with holes. Runs at budgets
    present but not required are kept too. ``on_progress`` receives the byte offset reached,
    for callers with their own progress display; ``progress`` shows a tqdm bar instead.
    """
    src, out = Path(src), Path(out)
    start = time.perf_counter()
    builder = _Builder()
    records = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=src.stat().st_size if src.is_file() else None, unit="B", unit_scale=True, desc=src.name
        )
    shown = 0
    try:
        for offset, data in iter_records(src, verify_crc=verify_crc):
            try:
                rec = parse_official_record(data)
                final, params = _final_run(rec.metrics)
                row = builder.cell(
                    rec.module_hash, rec.adjacency.encode("ascii").translate(_DIGITS), rec.operations, params
                )
            except (ValueError, UnicodeError) as e:
                raise SupernetError(
                    f"{src}: record {records} at byte offset {offset} is not a NAS-Bench-101 record: {e}"
                ) from None
            builder.run(row, rec.epochs, final.validation_accuracy, final.test_accuracy, final.training_time)
            records += 1
            if records % 8192 == 0:
                if bar is not None:
                    bar.update(offset - shown)
                    shown = offset
                if on_progress is not None:
                    on_progress(offset)
        if bar is not None and bar.total is not None:
            bar.update(bar.total - shown)
    finally:
        if bar is not None:
            bar.close()
    table = builder.build(BUDGETS if full else (GT_EPOCHS,), str(src))
    table.write(out)
    return ConversionSummary(
        out,
        len(table.keys),
        records,
        tuple(int(b) for b in table.extras["budgets"]),
        time.perf_counter() - start,
    )


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise SupernetError(f"{what} file {path} does not exist")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SupernetError(f"{what} file {path} is not readable JSON: {e}") from None


def _flat_bits(matrix: Any) -> bytes:
    """Nested 0/1 lists -> row-major bytes, rejecting anything else (bools, 2s, ragged rows)."""
    if not isinstance(matrix, list) or not all(isinstance(r, list) and len(r) == len(matrix) for r in matrix):
        raise ValueError("matrix must be a square list of lists")
    flat = [v for r in matrix for v in r]
    if any(type(v) is not int or v not in (0, 1) for v in flat):
        raise ValueError("matrix entries must be 0 or 1")
    return bytes(flat)


def nb101_from_naslib_dummy(path_json: str | Path, out: str | Path | None = None) -> GroundTruth:
    """Table of NASLib's 30 official NB101 records (``nb101_dummy.json``).

    Writes the table to ``out`` when given (extras included) and returns it loaded from there;
    otherwise returns an in-memory GroundTruth.
    """
    path = Path(path_json)
    entries = _read_json(path, "NAS-Bench-101 dummy")
    if not isinstance(entries, list):
        raise SupernetError(f"{path} must hold a JSON list of cells")
    builder = _Builder()
    for i, e in enumerate(entries):
        try:
            key = str(e["hash"])
            if key in builder.rows:
                raise ValueError(f"hash {key} appears twice")
            row = builder.cell(
                key,
                _flat_bits(e["module_adjacency"]),
                list(e["module_operations"]),
                int(e["trainable_parameters"]),
            )
            for epochs, runs in e["epochs"].items():
                for run in runs:
                    builder.run(
                        row,
                        int(epochs),
                        float(run["final_validation_accuracy"]),
                        float(run["final_test_accuracy"]),
                        float(run["final_training_time"]),
                    )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SupernetError(f"{path}: entry {i} is not a NAS-Bench-101 cell record: {err!r}") from None
    return builder.build((GT_EPOCHS,), str(path)).finish(out, str(path))


def nb101_from_val500(path_json: str | Path, out: str | Path | None = None) -> GroundTruth:
    """Table of NASLib's 500 cells with one 108-epoch validation accuracy each (no test split).

    The specs are unpruned, so each is pruned and hashed like the official API does; the 500
    specs are only 292 distinct cells. Each ``val_accuracy`` is one of the cell's 3 official
    108-epoch runs (NASLib drew a run per spec), so duplicates repeat those runs: a row holds
    the mean of the DISTINCT values seen, which is exactly the official 3-run mean whenever all
    three runs were drawn, where a plain mean would weight runs by how often they were drawn.
    Only ``cifar10/valid`` exists: asking for test accuracy raises.
    """
    path = Path(path_json)
    entries = _read_json(path, "NAS-Bench-101 validation")
    if not isinstance(entries, list):
        raise SupernetError(f"{path} must hold a JSON list of cells")
    rows: dict[str, int] = {}
    runs: list[set[float]] = []
    matrices = bytearray()
    ops = bytearray()
    num_vertices = bytearray()
    for i, e in enumerate(entries):
        try:
            cell = make_cell(e["matrix"], e["ops"])
            key = module_hash(cell)
            acc = float(e["val_accuracy"])
            if not np.isfinite(acc):
                raise ValueError(f"val_accuracy {acc} is not finite")
            row = rows.get(key)
            if row is None:
                row = rows[key] = len(runs)
                runs.append(set())
                c_ops = [str(o) for o in cell.ops]
                m, codes = _cell_bytes(_flat_bits([[int(v) for v in r] for r in cell.matrix]), c_ops)
                matrices += m
                ops += codes
                num_vertices.append(len(c_ops))
        except SupernetError as err:
            raise SupernetError(f"{path}: entry {i}: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SupernetError(
                f"{path}: entry {i} is not a {{matrix, ops, val_accuracy}} record: {err!r}"
            ) from None
        runs[row].add(acc)
    if not rows:
        raise SupernetError(f"{path} has no cells")
    keys = list(rows)
    matrix = np.frombuffer(bytes(matrices), np.uint8).reshape(len(keys), MAX_VERTICES, MAX_VERTICES)
    columns = {"cifar10/valid": np.array([np.mean(sorted(r)) for r in runs])}
    table = ExtendedTable(keys, columns, _cell_extras(matrix, num_vertices, ops))
    return table.finish(out, str(path))


@dataclass(frozen=True)
class NB101Details:
    """The per-cell arrays stored beside a NB101 table's columns, row-aligned with ``keys``."""

    keys: np.ndarray
    matrix: np.ndarray
    num_vertices: np.ndarray
    ops: np.ndarray
    op_names: tuple[str, ...]
    trainable_parameters: np.ndarray | None = None
    budgets: tuple[int, ...] = ()
    final_validation_accuracy: np.ndarray | None = None
    final_test_accuracy: np.ndarray | None = None
    final_training_time: np.ndarray | None = None

    def row(self, key: str) -> int:
        """Linear search on purpose: building a dict of 423k keys costs more than a few look-ups."""
        hits = np.flatnonzero(self.keys == key)
        if len(hits) == 0:
            raise SupernetError(f"architecture {key!r} is not in this NAS-Bench-101 table")
        return int(hits[0])


def load_nb101_details(path: str | Path) -> NB101Details:
    """Read the extra arrays of a table written by this module (GroundTruth skips them)."""
    path = Path(path)
    if not path.is_file():
        raise SupernetError(f"ground-truth table {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            required = ("keys", "matrix", "num_vertices", "ops", "op_names")
            missing = [k for k in required if k not in z.files]
            if missing:
                raise SupernetError(f"{path} is not a NAS-Bench-101 table: no {', '.join(missing)} arrays")
            got = {k: z[k] for k in z.files if k in NB101Details.__dataclass_fields__}
    except SupernetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise SupernetError(f"ground-truth table {path} is corrupt: {e}") from e
    got["op_names"] = tuple(got["op_names"].tolist())
    if "budgets" in got:
        got["budgets"] = tuple(int(b) for b in got["budgets"])
    return NB101Details(**got)
