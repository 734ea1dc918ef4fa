"""Convert the official NAS-Bench-101 TFRecord release into a supernet ground-truth table.

Usage: python scripts/convert_nb101.py SRC.tfrecord OUT.npz [--full] [--no-verify-crc] [--quiet]

SRC is nasbench_only108.tfrecord (default) or nasbench_full.tfrecord (with --full, which also
requires the 4-, 12- and 36-epoch runs of every cell). The library function behind it is
supernet.groundtruth.nb101_convert.convert_official_nb101.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from supernet.errors import SupernetError
from supernet.groundtruth.nb101_convert import convert_official_nb101

NUM_CELLS = 423_624


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="nasbench_only108.tfrecord or nasbench_full.tfrecord")
    parser.add_argument("out", type=Path, help="table to write (.npz)")
    parser.add_argument("--full", action="store_true", help="SRC is nasbench_full.tfrecord (4 budgets)")
    parser.add_argument(
        "--no-verify-crc", dest="verify_crc", action="store_false", help="skip data checksums (faster)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        s = convert_official_nb101(
            args.src, args.out, full=args.full, verify_crc=args.verify_crc, progress=not args.quiet
        )
    except SupernetError as e:
        raise SystemExit(f"error: {e}") from None
    print(
        f"wrote {s.out}: {s.cells} cells from {s.records} records, budgets {list(s.budgets)}, "
        f"{s.seconds:.1f} s"
    )
    if s.cells != NUM_CELLS:
        print(f"note: the official release has {NUM_CELLS} cells; this file has {s.cells}")


if __name__ == "__main__":
    main()
