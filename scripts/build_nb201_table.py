"""Regenerate the shipped NAS-Bench-201 table from the public copies in shared/data.

GENIUS gives 200-epoch accuracies keyed by arch string; NAS-Landscapes gives the official index
for each string. Both must cover exactly the same 15,625 valid archs, or the build fails.

Usage: python scripts/build_nb201_table.py [DATA_DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from supernet.errors import SupernetError
from supernet.groundtruth.table import GroundTruth, write_table
from supernet.spaces.nasbench201 import NB201Space

REPO = Path(__file__).resolve().parents[1]
GENIUS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}


def build(data_dir: Path, out: Path) -> None:
    nb = data_dir / "nasbench201"
    if not nb.is_dir():
        raise SupernetError(f"no NAS-Bench-201 data at {nb}; pass the shared data dir as DATA_DIR")
    with open(nb / "nas-landscapes" / "cifar10_avg.csv", newline="") as f:
        official = {row["arch_str"]: int(row["index"]) for row in csv.DictReader(f)}
    space = NB201Space()
    expected = {space.key(a) for a in space}
    if set(official) != expected or sorted(official.values()) != list(range(len(space))):
        raise SupernetError("cifar10_avg.csv does not list each NB201 arch once with indices 0..15624")
    keys = sorted(official, key=official.__getitem__)
    columns: dict[str, list[float]] = {}
    for dataset, stem in GENIUS.items():
        with open(nb / "genius" / f"nasbench201_{stem}.json") as f:
            table = json.load(f)
        if set(table) != expected:
            raise SupernetError(f"nasbench201_{stem}.json does not cover exactly the 15,625 NB201 archs")
        columns[f"{dataset}/valid"] = [table[k]["val_acc_200"] for k in keys]
        columns[f"{dataset}/test"] = [table[k]["test_acc_200"] for k in keys]
    write_table(out, keys, [official[k] for k in keys], columns)
    gt = GroundTruth.load(out)
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(gt)} archs, columns {', '.join(gt.columns)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=REPO / "src" / "supernet" / "groundtruth" / "tables" / "nb201.npz"
    )
    args = parser.parse_args()
    try:
        build(args.data_dir, args.out)
    except SupernetError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
