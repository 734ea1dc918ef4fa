"""Convert NDS' ``DARTS.json`` (Radosavovic et al. 2019) into a supernet ground-truth table.

The release is plain JSON (a list of trained models, or ``{"top": [...], "mid": [...]}``); each
record has ``net`` (``genotype``, ``width``, ``depth``, ``aux``), ``params`` and ``test_ep_top1``
(test error in percent per epoch). Ground truth is 100 - the last epoch's error, averaged over the
records of a genotype that was trained more than once (SPEC 3.3).

Beside the ``cifar10/test`` column the table stores each row's ``width``, ``depth``, ``aux``,
``params`` and ``runs``: NDS trained every architecture at its own width and depth, so f_proxy and
the parameter-count baseline need them. Conversion rebuilds the stand-alone network of a sample of
rows and refuses the file when a parameter count differs from the benchmark's (as NNI's validator
refuses a model space that does not match its benchmark): ranking against a benchmark whose
networks are not the ones built here would be meaningless. The caller passes that parameter count
in (``param_count``, e.g. ``darts_param_count`` of the DARTS network module): ground truth builds
no network itself.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from supernet.errors import SupernetError
from supernet.groundtruth.table import ExtendedTable, GroundTruth
from supernet.spaces.darts import DartsArch, from_genotype, parse_arch

COLUMN = "cifar10/test"
EXTRAS = ("width", "depth", "aux", "params", "runs")
# f_proxy's trainable parameters: (arch, width C, depth L, classes, auxiliary head) -> count.
ParamCount = Callable[[DartsArch, int, int, int, bool], int]


@dataclass(frozen=True)
class _Record:
    arch: DartsArch
    width: int
    depth: int
    aux: bool
    params: int
    accuracy: float
    epochs: int

    @property
    def size(self) -> tuple[int, int, bool]:
        return self.width, self.depth, self.aux


def _records(data: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "top" in data and "mid" in data:
        data = list(data["top"]) + list(data["mid"])  # some NDS files split models into two lists
    if not isinstance(data, list) or not data:
        raise SupernetError(f"{source} is not an NDS file: expected a non-empty JSON list of trained models")
    return data


def _record(i: int, r: Any, source: str) -> _Record:
    try:
        net = r["net"]
        errors = r["test_ep_top1"]
        if not errors:
            raise ValueError("test_ep_top1 is empty")
        if not math.isfinite(float(errors[-1])):
            raise SupernetError(f"its final test error is {errors[-1]}; a table cannot rank it")
        return _Record(
            from_genotype(net["genotype"]), int(net["width"]), int(net["depth"]), bool(net.get("aux", False)),
            int(r["params"]), 100.0 - float(errors[-1]), len(errors),
        )
    except SupernetError as e:
        raise SupernetError(f"{source}: record {i}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise SupernetError(
            f"{source}: record {i} lacks the NDS fields net.genotype/width/depth, params, test_ep_top1 ({e!r})"
        ) from None


def _verify_params(table: ExtendedTable, rows: Sequence[int], source: str, param_count: ParamCount) -> None:
    e = table.extras
    for row in rows:
        arch = parse_arch(table.keys[row])
        ours = param_count(arch, int(e["width"][row]), int(e["depth"][row]), 10, bool(e["aux"][row]))
        if ours != int(e["params"][row]):
            raise SupernetError(
                f"{source}: the stand-alone network built here does not match the benchmark: {table.keys[row]} at "
                f"width {e['width'][row]}, depth {e['depth'][row]}, aux {bool(e['aux'][row])} has {ours} parameters, "
                f"the file says {int(e['params'][row])}. Convert with verify_params=0 (--no-verify) only if you "
                "know why they differ."
            )


def convert_nds_darts(
    src: str | Path, out: str | Path | None = None, *, param_count: ParamCount, verify_params: int = 16
) -> GroundTruth:
    """Read ``DARTS.json``; write the table to ``out`` (or keep it in memory); check ``verify_params``
    rows spread over the table against f_proxy's parameter count ``param_count`` (0: no check), e.g.
    ``darts_param_count`` of the DARTS network module."""
    path = Path(src)
    if not path.is_file():
        raise SupernetError(f"NDS file {path} does not exist (download data.zip of the NDS release; use DARTS.json)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SupernetError(f"{path} is not valid JSON: {e}") from None
    first: dict[str, tuple[int, _Record]] = {}  # key -> (row, the record that defines its network)
    acc_sum: list[float] = []
    runs: list[int] = []
    other_sizes = 0
    for i, raw in enumerate(_records(data, str(path))):
        r = _record(i, raw, str(path))
        key = str(r.arch)
        if first and r.epochs != (epochs := next(iter(first.values()))[1].epochs):
            raise SupernetError(
                f"{path}: record {i} was trained {r.epochs} epochs, record 0 {epochs}: "
                "final accuracies of different budgets are not one ground truth"
            )
        row, defining = first.setdefault(key, (len(first), r))
        if row == len(acc_sum):
            acc_sum.append(0.0)
            runs.append(0)
        elif r.size != defining.size:  # another network of the same cells: not a repeat of this one
            other_sizes += 1
            continue
        acc_sum[row] += r.accuracy
        runs[row] += 1
    if other_sizes:
        warnings.warn(
            f"{path}: {other_sizes} records train a genotype at another width, depth or aux than its first "
            "record; they were left out (a table row is one network)",
            stacklevel=2,
        )
    counts = np.asarray(runs, dtype=np.int32)
    defining = [r for _, r in first.values()]
    table = ExtendedTable(
        list(first),
        {COLUMN: np.asarray(acc_sum) / counts},
        {
            "width": np.asarray([r.width for r in defining], dtype=np.int32),
            "depth": np.asarray([r.depth for r in defining], dtype=np.int32),
            "aux": np.asarray([r.aux for r in defining], dtype=np.bool_),
            "params": np.asarray([r.params for r in defining], dtype=np.int64),
            "runs": counts,
        },
    )
    if verify_params > 0:
        n = len(first)
        rows = np.linspace(0, n - 1, min(verify_params, n)).astype(int).tolist()
        _verify_params(table, rows, str(path), param_count)
    return table.finish(out, str(path))


@dataclass(frozen=True)
class NDSDetails:
    """The per-architecture arrays stored beside an NDS table's column, row-aligned with ``keys``."""

    keys: np.ndarray
    width: np.ndarray
    depth: np.ndarray
    aux: np.ndarray
    params: np.ndarray
    runs: np.ndarray

    def param_counts(self) -> dict[str, int]:
        return dict(zip(self.keys.tolist(), self.params.tolist(), strict=True))


def load_nds_details(path: str | Path) -> NDSDetails:
    """Read the extra arrays of a table written by this module (GroundTruth skips them)."""
    path = Path(path)
    if not path.is_file():
        raise SupernetError(f"ground-truth table {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("keys", *EXTRAS) if k not in z.files]
            if missing:
                raise SupernetError(
                    f"{path} is not a DARTS-NDS table (no {', '.join(missing)} arrays): convert NDS' DARTS.json "
                    "with `supernet convert darts_nds DARTS.json OUT.npz`"
                )
            return NDSDetails(**{k: z[k] for k in ("keys", *EXTRAS)})
    except SupernetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise SupernetError(f"ground-truth table {path} is corrupt: {e}") from e
