"""Rebuild the NASBench-101 tables shipped with the package from the public NASLib subsets.

    python scripts/build_nb101_tables.py [DATA_DIR]     (default: ../shared/data beside the repo)

``nb101-val500.npz``: 500 NASLib validation accuracies (292 distinct cells), the default NB101 ground
truth until the official file is converted; ``nb101-records30.npz``: 30 official records.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from supernet.groundtruth.nb101_convert import nb101_from_naslib_dummy, nb101_from_val500

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "src" / "supernet" / "groundtruth" / "tables"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    src = args.data_dir / "nasbench101" / "naslib"
    val = nb101_from_val500(src / "nb101_500_val.json", TABLES / "nb101-val500.npz")
    rec = nb101_from_naslib_dummy(src / "nb101_dummy.json", TABLES / "nb101-records30.npz")
    print(f"wrote {len(val)} cells to nb101-val500.npz, {len(rec)} to nb101-records30.npz in {TABLES}")


if __name__ == "__main__":
    main()
