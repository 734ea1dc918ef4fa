"""Load time and memory of the ground-truth tables, and the NB101 enumeration.

Targets: NB201 table <= 0.2 s and <= 50 MB; NB101 full table (423,624 rows) <= 2 s; NB101 enumeration
< 2 min, cached load < 2 s. Each load runs in a fresh interpreter, so nothing is cached in memory;
memory is the resident-set growth from before the load to after the first look-up. The official NB101
file is not available here, so its table is measured on one of the same size and format: the real
423,624 module hashes with random accuracies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine

PROBE = r"""
import json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
import numpy as np
from supernet.groundtruth.table import GroundTruth
before = rss(); start = time.perf_counter()
gt = GroundTruth.load(sys.argv[1]) if len(sys.argv) > 1 else GroundTruth.nasbench201()
key = gt.keys()[len(gt) // 2]
gt.accuracy(key); gt.rank(key)
print(json.dumps({"seconds": time.perf_counter() - start, "mb": rss() - before, "rows": len(gt)}))
"""

ENUM = r"""
import json, sys, time
from supernet.spaces.nasbench101 import NB101Space
start = time.perf_counter(); n = len(NB101Space(cache_file=sys.argv[1])); t = time.perf_counter() - start
print(json.dumps({"seconds": t, "rows": n}))
"""


LABELS = r"""
import json, sys, time
from pathlib import Path
from supernet.plugins.nasbench101 import output_inputs as _nb101_output_inputs
from supernet.groundtruth.table import GroundTruth
keys = GroundTruth.load(sys.argv[1]).keys()
start = time.perf_counter(); labels = _nb101_output_inputs(Path(sys.argv[1]), keys)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(labels)}))
"""


def probe(script: str, *args: str, repeats: int = 5) -> dict:
    runs = [json.loads(subprocess.check_output([sys.executable, "-c", script, *args], text=True))
            for _ in range(repeats)]
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main() -> None:
    print(f"machine: {machine()}")
    r = probe(PROBE)
    print(f"NB201 table ({r['rows']} rows): load + first look-up {r['seconds'] * 1e3:.1f} ms (median of 5), "
          f"+{r['mb']:.1f} MB resident")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cells.npz"
        build = probe(ENUM, str(cache), repeats=1)
        load = probe(ENUM, str(cache))
        print(f"NB101 enumeration ({build['rows']} cells): build {build['seconds']:.1f} s, "
              f"cached load {load['seconds']:.2f} s (median of 5)")
        from supernet.groundtruth.table import write_table

        with np.load(cache, allow_pickle=False) as z:
            keys = [h.decode() for h in z["hashes"].tolist()]
        rng = np.random.default_rng(0)
        table = Path(tmp) / "nb101-full.npz"
        start = time.perf_counter()
        write_table(table, keys, range(len(keys)), {"cifar10/valid": rng.uniform(80, 95, len(keys)),
                                                     "cifar10/test": rng.uniform(80, 95, len(keys))})
        print(f"  (synthetic full NB101 table written in {time.perf_counter() - start:.1f} s, "
              f"{table.stat().st_size / 1e6:.1f} MB)")
        r = probe(PROBE, str(table))
        print(f"NB101 full-size table ({r['rows']} rows): load + first look-up {r['seconds']:.2f} s "
              f"(median of 5), +{r['mb']:.1f} MB resident")
        # Sub-space labels need the cell arrays a converted table carries: add random ones of that layout.
        from supernet.groundtruth.nb101_convert import _cell_extras
        from supernet.groundtruth.table import append_arrays

        n = len(keys)
        matrix = np.triu(rng.integers(0, 2, (n, 7, 7), dtype=np.uint8), 1)
        nv = rng.integers(2, 8, n).astype(np.uint8)
        ops = rng.integers(0, 3, (n, 5)).astype(np.uint8)
        append_arrays(table, _cell_extras(matrix, nv.tobytes(), ops.tobytes()))
        r = probe(LABELS, str(table))
        print(f"NB101 sub-space labels of all {r['rows']} rows (cell arrays read + one vectorised pass): "
              f"{r['seconds']:.2f} s (median of 5)")


if __name__ == "__main__":
    main()
