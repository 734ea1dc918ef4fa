"""What ``supernet arch`` prints: one row of facts per architecture.

Separate from the CLI so notebooks get the same rows as dictionaries.
"""

from __future__ import annotations

from typing import Any

from supernet.errors import SupernetError
from supernet.groundtruth.table import GroundTruth
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import nb201_param_count

SPACES = ("nasbench201",)


def describe(space: str, texts: list[str]) -> list[dict[str, Any]]:
    if space not in SPACES:
        raise SupernetError(f"unknown space '{space}'; available: {', '.join(SPACES)}")
    if not texts:
        raise SupernetError("no architecture given (pass arch strings, or '-' to read them from stdin)")
    nb201, gt = NB201Space(), GroundTruth.nasbench201()
    rows = []
    for text in texts:
        a = nb201.parse(text)
        key = nb201.key(a)
        row: dict[str, Any] = {
            "key": key,
            "index": gt.official_index(key),
            "params": nb201_param_count(a),
            "params_c100": nb201_param_count(a, num_classes=100),
        }
        for col in gt.columns:
            dataset, split = col.split("/")
            row[col] = round(float(gt.accuracy(key, split=split, dataset=dataset)), 4)
        row["unique_key"] = nb201.unique_key(a)
        rows.append(row)
    return rows
