"""Load time and memory of the ground-truth tables (NB201 target: <= 0.2 s and <= 50 MB).

Each measurement runs in a fresh interpreter, so nothing is cached; memory is the resident-set growth
from before the load to after the first lookup.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, time
import numpy as np
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
from supernet.groundtruth.table import GroundTruth
before = rss(); start = time.perf_counter()
gt = GroundTruth.nasbench201()
gt.accuracy(gt.keys()[0]); gt.rank(gt.keys()[0])
print(json.dumps({"seconds": time.perf_counter() - start, "mb": rss() - before, "rows": len(gt)}))
"""


def main() -> None:
    runs = [json.loads(subprocess.check_output([sys.executable, "-c", PROBE], text=True)) for _ in range(5)]
    runs.sort(key=lambda r: r["seconds"])
    mid = runs[len(runs) // 2]
    print(f"NB201 table ({mid['rows']} rows): load + first lookup {mid['seconds'] * 1e3:.1f} ms (median of 5), "
          f"+{mid['mb']:.1f} MB resident")


if __name__ == "__main__":
    main()
