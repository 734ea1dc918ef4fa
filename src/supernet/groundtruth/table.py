"""Stand-alone accuracies of every architecture, stored as one small `.npz` per search space.

Arrays: `keys` (unicode, the space's `key(arch)`), `official_index` (int32, the benchmark's own
index, used to break ties so ranks are deterministic), `column_names` (unicode, "dataset/split")
and `values` (float32, rows x columns, percent). Pickle is never allowed, so a table can't run code.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from supernet.errors import SupernetError

FORMAT_VERSION = 1
_ARRAYS = ("format_version", "keys", "official_index", "column_names", "values")


def write_table(
    path: str | Path,
    keys: Sequence[str],
    official_index: Sequence[int],
    columns: Mapping[str, Sequence[float]],
) -> None:
    """Rows are written in official-index order so tables from different sources diff cleanly."""
    order = np.argsort(np.asarray(official_index, dtype=np.int64), kind="stable")
    values = np.stack([np.asarray(v, dtype=np.float32) for v in columns.values()], axis=1)
    if len(set(keys)) != len(keys) or values.shape[0] != len(keys) or len(order) != len(keys):
        raise SupernetError(
            f"cannot write {path}: keys must be unique and every column must have {len(keys)} rows"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(
            f,
            format_version=np.int32(FORMAT_VERSION),
            keys=np.asarray(keys, dtype=np.str_)[order],
            official_index=np.asarray(official_index, dtype=np.int32)[order],
            column_names=np.asarray(list(columns), dtype=np.str_),
            values=values[order],
        )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    def corrupt(why: str) -> SupernetError:
        return SupernetError(f"ground-truth table {path} is corrupt or not a supernet table: {why}")

    if not path.is_file():
        raise SupernetError(f"ground-truth table {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [name for name in _ARRAYS if name not in z.files]
            if missing:
                raise corrupt(f"missing arrays {missing}")
            arrays = {name: z[name] for name in _ARRAYS}
        n = arrays["keys"].shape
        if arrays["format_version"].shape != () or int(arrays["format_version"]) != FORMAT_VERSION:
            raise corrupt(f"format version {arrays['format_version']}, this supernet reads {FORMAT_VERSION}")
        if (
            len(n) != 1
            or arrays["keys"].dtype.kind != "U"
            or arrays["column_names"].dtype.kind != "U"
            or arrays["official_index"].shape != n
        ):
            raise corrupt("keys must be a vector of strings with one official_index each")
        if arrays["values"].shape != n + arrays["column_names"].shape or arrays["values"].dtype.kind != "f":
            raise corrupt("values must be a float matrix of rows x columns")
    except SupernetError:
        raise
    except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise corrupt(f"{type(e).__name__}: {e}") from e
    return arrays


class GroundTruth:
    """Lookup of benchmark accuracies and ranks by architecture key."""

    default = ("cifar10", "test")

    def __init__(self, arrays: Mapping[str, np.ndarray], source: str = "<memory>") -> None:
        self.source = source
        self._keys: list[str] = arrays["keys"].tolist()
        self._official = arrays["official_index"].astype(np.int64)
        self._columns: tuple[str, ...] = tuple(arrays["column_names"].tolist())
        self._values = arrays["values"]
        self._row: dict[str, int] | None = None
        self._ranks: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        return cls(_read_arrays(Path(path)), source=str(path))

    @classmethod
    def nasbench201(cls) -> GroundTruth:
        with resources.as_file(resources.files("supernet.groundtruth") / "tables" / "nb201.npz") as p:
            return cls.load(p)

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._rows()

    def keys(self) -> list[str]:
        return list(self._keys)

    def _rows(self) -> dict[str, int]:
        # Built on first lookup: most callers load the table once and query many keys.
        if self._row is None:
            self._row = {k: i for i, k in enumerate(self._keys)}
            if len(self._row) != len(self._keys):
                raise SupernetError(
                    f"ground-truth table {self.source} is corrupt: duplicate architecture keys"
                )
        return self._row

    def _index(self, keys: Sequence[str] | str) -> np.ndarray | int:
        rows = self._rows()
        try:
            if isinstance(keys, str):
                return rows[keys]
            return np.fromiter((rows[k] for k in keys), dtype=np.int64, count=len(keys))
        except KeyError as e:
            raise SupernetError(
                f"architecture {e.args[0]!r} is not in ground-truth table {self.source}"
            ) from None

    def _column(self, split: str, dataset: str) -> int:
        name = f"{dataset}/{split}"
        if name not in self._columns:
            datasets = sorted({c.split("/")[0] for c in self._columns})
            splits = sorted({c.split("/")[-1] for c in self._columns})
            raise SupernetError(
                f"no ground truth for dataset {dataset!r} split {split!r} in {self.source}; "
                f"datasets: {', '.join(datasets)}; splits: {', '.join(splits)}"
            )
        return self._columns.index(name)

    def accuracy(
        self, keys: Sequence[str] | str, split: str = "test", dataset: str = "cifar10"
    ) -> np.ndarray | float:
        col = self._column(split, dataset)
        rows = self._index(keys)
        if isinstance(rows, int):
            return float(self._values[rows, col])
        return self._values[rows, col]

    def _rank_array(self, split: str, dataset: str) -> np.ndarray:
        name = self._columns[self._column(split, dataset)]
        if name not in self._ranks:
            order = np.lexsort((self._official, self._values[:, self._columns.index(name)]))
            ranks = np.empty(len(order), dtype=np.int64)
            ranks[order] = np.arange(len(order))
            self._ranks[name] = ranks
        return self._ranks[name]

    def rank(self, key: str, split: str = "test", dataset: str = "cifar10") -> int:
        """0-based ascending: the number of archs that rank below `key` (best arch = len - 1)."""
        return int(self._rank_array(split, dataset)[self._index(key)])

    def ranks(self, keys: Sequence[str], split: str = "test", dataset: str = "cifar10") -> np.ndarray:
        return self._rank_array(split, dataset)[self._index(list(keys))]

    def official_index(self, key: str) -> int:
        return int(self._official[self._index(key)])


def append_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Add arrays to an existing .npz (a zip of .npy members), leaving the table's own ones as written.

    ``write_table`` knows only the shared table arrays; appending keeps it the one writer of
    those, and ``GroundTruth`` reads members by name, so it never touches these. Space-specific
    readers (NB101 cells, NDS widths) read them.
    """
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        present = set(zf.namelist())
        for name, value in arrays.items():
            member = f"{name}.npy"
            if member in present:
                raise SupernetError(f"cannot add array {name!r} to {path}: the table already has one")
            with zf.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)


@dataclass
class ExtendedTable:
    """A table whose rows carry space-specific arrays beside the accuracy columns, row-aligned with ``keys``."""

    keys: list[str]
    columns: dict[str, np.ndarray]
    extras: dict[str, np.ndarray]

    def write(self, path: str | Path) -> None:
        """Write next to `path` and rename, so a failed conversion never leaves a half table."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        try:
            # official_index = row order, so write_table keeps the rows (and the extras) in place.
            write_table(partial, self.keys, range(len(self.keys)), self.columns)
            append_arrays(partial, self.extras)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def ground_truth(self, source: str) -> GroundTruth:
        return GroundTruth(
            {
                "format_version": np.int32(FORMAT_VERSION),
                "keys": np.asarray(self.keys, dtype=np.str_),
                "official_index": np.arange(len(self.keys), dtype=np.int32),
                "column_names": np.asarray(list(self.columns), dtype=np.str_),
                "values": np.stack([np.asarray(v, np.float32) for v in self.columns.values()], axis=1),
            },
            source=source,
        )

    def finish(self, out: str | Path | None, source: str) -> GroundTruth:
        if out is None:
            return self.ground_truth(source)
        self.write(out)
        return GroundTruth.load(out)
