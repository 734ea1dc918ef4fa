"""What ``supernet arch`` prints: one row of facts per architecture.

Separate from the CLI so notebooks get the same rows as dictionaries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from supernet.builders import gt_path
from supernet.errors import SupernetError
from supernet.groundtruth.table import GroundTruth


def _nasbench201(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    from supernet.spaces.nasbench201 import NB201Space
    from supernet.supernets.nasbench201 import nb201_param_count

    space, gt = NB201Space(), GroundTruth.load(gt_path(table, "nb201"))
    rows = []
    for text in texts:
        a = space.parse(text)
        key = space.key(a)
        row: dict[str, Any] = {
            "key": key,
            "index": gt.official_index(key),
            "params": nb201_param_count(a),
            "params_c100": nb201_param_count(a, num_classes=100),
        }
        row.update(_truth(gt, key))
        row["unique_key"] = space.unique_key(a)
        rows.append(row)
    return rows


def _nasbench101(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    from supernet.spaces.nasbench101 import NB101Space
    from supernet.supernets.nasbench101 import nb101_param_count

    space = NB101Space()
    names = [table] if table else ["nb101-records30", "nb101-val500"]
    tables = [GroundTruth.load(gt_path(name, "")) for name in names]
    rows = []
    for text in texts:
        cell = space.parse(text)
        key = space.key(cell)
        row: dict[str, Any] = {
            "key": key,
            "vertices": cell.num_vertices,
            "edges": cell.num_edges,
            "output_inputs": cell.output_inputs,
            "params": nb101_param_count(cell),
        }
        for gt in tables:  # the shipped subsets; a converted full table covers all cells
            if key in gt:
                row.update(_truth(gt, key))
        row["cell"] = str(cell)  # the pruned cell as JSON
        rows.append(row)
    return rows


def _darts_nds(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    from supernet.groundtruth.nds_convert import load_nds_details
    from supernet.spaces.darts import DartsSpace
    from supernet.supernets.darts import darts_param_count

    space = DartsSpace()
    path = gt_path(table, "") if table else None  # NDS ground truth is not shipped
    gt = GroundTruth.load(path) if path else None
    details = load_nds_details(path) if path else None
    rows_of = {k: i for i, k in enumerate(details.keys.tolist())} if details is not None else {}
    rows = []
    for text in texts:
        a = space.parse(text)
        key = space.key(a)
        row: dict[str, Any] = {
            "key": key,
            "params_c16_l8": darts_param_count(a, 16, 8),  # the authors' super-net size
            "params_c36_l20": darts_param_count(a, 36, 20),  # DARTS' CIFAR-10 evaluation network
        }
        if key in rows_of:
            assert gt is not None and details is not None
            r = rows_of[key]
            row.update(nds_width=int(details.width[r]), nds_depth=int(details.depth[r]),
                       nds_params=int(details.params[r]), rank=gt.rank(key), **_truth(gt, key))
        row.update(unique_key=space.unique_key(a), genotype=json.dumps(a.genotype()))
        rows.append(row)
    return rows


def _truth(gt: GroundTruth, key: str) -> dict[str, float]:
    out = {}
    for col in gt.columns:
        dataset, split = col.split("/")
        out[col] = round(float(gt.accuracy(key, split=split, dataset=dataset)), 4)
    return out


SPACES: dict[str, Callable[[list[str], str | None], list[dict[str, Any]]]] = {
    "nasbench201": _nasbench201,
    "nasbench101": _nasbench101,
    "darts_nds": _darts_nds,
}


def describe(space: str, texts: list[str], table: str | None = None) -> list[dict[str, Any]]:
    """``table``: a converted ground-truth table to look the architectures up in (darts_nds has no
    shipped one; for the others it replaces the shipped tables)."""
    if space not in SPACES:
        raise SupernetError(f"unknown space '{space}'; available: {', '.join(SPACES)}")
    if not texts:
        raise SupernetError("no architecture given (pass architectures, or '-' to read them from stdin)")
    return SPACES[space](texts, table)
