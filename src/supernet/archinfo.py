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


def _nasbench201(texts: list[str]) -> list[dict[str, Any]]:
    from supernet.spaces.nasbench201 import NB201Space
    from supernet.supernets.nasbench201 import nb201_param_count

    space, gt = NB201Space(), GroundTruth.load(gt_path(None, "nb201"))
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


def _nasbench101(texts: list[str]) -> list[dict[str, Any]]:
    from supernet.spaces.nasbench101 import NB101Space
    from supernet.supernets.nasbench101 import nb101_param_count

    space = NB101Space()
    tables = [GroundTruth.load(gt_path(None, name)) for name in ("nb101-records30", "nb101-val500")]
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


def _darts_nds(texts: list[str]) -> list[dict[str, Any]]:
    from supernet.spaces.darts import DartsSpace
    from supernet.supernets.darts import darts_param_count

    space = DartsSpace()
    rows = []
    for text in texts:  # NDS ground truth is not shipped: `supernet show` a run for its pool's accuracies
        a = space.parse(text)
        rows.append({
            "key": space.key(a),
            "params_c16_l8": darts_param_count(a, 16, 8),  # the authors' super-net size
            "params_c36_l20": darts_param_count(a, 36, 20),  # DARTS' CIFAR-10 evaluation network
            "unique_key": space.unique_key(a),
            "genotype": json.dumps(a.genotype()),
        })
    return rows


def _truth(gt: GroundTruth, key: str) -> dict[str, float]:
    out = {}
    for col in gt.columns:
        dataset, split = col.split("/")
        out[col] = round(float(gt.accuracy(key, split=split, dataset=dataset)), 4)
    return out


SPACES: dict[str, Callable[[list[str]], list[dict[str, Any]]]] = {
    "nasbench201": _nasbench201,
    "nasbench101": _nasbench101,
    "darts_nds": _darts_nds,
}


def describe(space: str, texts: list[str]) -> list[dict[str, Any]]:
    if space not in SPACES:
        raise SupernetError(f"unknown space '{space}'; available: {', '.join(SPACES)}")
    if not texts:
        raise SupernetError("no architecture given (pass architectures, or '-' to read them from stdin)")
    return SPACES[space](texts)
