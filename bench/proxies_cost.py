"""Cost of the zero-cost proxy panel per NASBench-201 architecture, in process CPU seconds (issue 11).

The first ``--archs`` of the architectures ``bench/proxies_nb201.py`` draws with the same ``--seed`` (so
the scores can be checked against a file it saved, ``--reference``), each stand-alone network at C=16,
N=5 initialised from its seed there, scored by ``score_all`` on the same batch of CIFAR-10 training
images. Prints a markdown table: process CPU seconds per architecture for the whole panel (building the
network included) and per proxy as ``score_all``'s ``timings`` split it (a pass shared by several proxies
is split between them), and the machine. Process CPU time (``time.process_time``), not wall time: with 1
torch thread it is the work the panel does, whatever else the machine runs (on a quiet machine wall time
would be close to it; that is not measured here). With ``--reference FILE.npz`` (a ``proxies_nb201.py
--out`` file of the same seed and batch) it also prints the largest relative difference of each proxy's
score from the saved one.

    python bench/proxies_cost.py --archs 30 --reference /tmp/proxies1000.npz
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from proxies_nb201 import DEFAULT_DATA, proxy_batch

from common import machine
from supernet.proxies import resolve_names, score_all
from supernet.spaces.nasbench201 import NUM_ARCHS, NB201Space
from supernet.supernets.nasbench201 import NB201Standalone

POOL = 1000  # proxies_nb201.py's default --archs: its draw, of which the first --archs are timed here


def relative_difference(a: float, b: float) -> float:
    """0 for equal scores (-inf included), else |a - b| / max(|a|, |b|)."""
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0, help="architectures, image batch and initialisations")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CIFAR-10 in any layout load_cifar10 reads")
    ap.add_argument("--proxies", default="nwot,jacov,synflow,flops,grad_norm,snip",
                    help="comma-separated names (default: all but params, which the panel does not recompute)")
    ap.add_argument("--reference", type=Path, default=None, help="a proxies_nb201.py --out .npz to check the scores against")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = resolve_names(args.proxies)

    space = NB201Space()
    picks = np.random.default_rng(args.seed).choice(NUM_ARCHS, max(POOL, args.archs), replace=False)[: args.archs]
    archs = [space.from_index(int(i)) for i in picks]
    init_seeds = [args.seed * NUM_ARCHS + int(i) for i in picks]
    x, y, _ = proxy_batch(args.data, args.batch, args.seed)

    def score(i: int, timings: dict) -> dict[str, float]:
        return score_all(lambda a=archs[i]: NB201Standalone(a, args.channels, args.layers), x, y, names,
                         init_seeds[i], timings, clock=time.process_time)

    score(0, {})  # warm-up: first-call costs (allocator, lazy initialisation) are not per architecture
    panel_s = np.zeros(len(archs))
    per = np.zeros((len(archs), len(names) + 1))
    results = []
    for i in range(len(archs)):
        timings: dict[str, float] = {}
        start = time.process_time()
        results.append(score(i, timings))
        panel_s[i] = time.process_time() - start
        per[i] = [timings[n] for n in names] + [timings["build"]]

    print(f"machine: {machine()}; {os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f}")
    print(f"NB201 C={args.channels} N={args.layers}, batch {args.batch}, {len(archs)} architectures (seed {args.seed}), "
          "process CPU seconds per architecture\n")
    print("| | " + " | ".join(names) + " | build | whole panel |")
    print("|---" * (len(names) + 3) + "|")
    print("| mean | " + " | ".join(f"{v:.3f}" for v in per.mean(0)) + f" | **{panel_s.mean():.3f}** |")
    print("| median | " + " | ".join(f"{v:.3f}" for v in np.median(per, 0)) + f" | {np.median(panel_s):.3f} |")
    print(f"\na fresh 200-architecture pool: {200 * panel_s.mean() / 60:.1f} min of process CPU time")

    if args.reference is not None:
        with np.load(args.reference, allow_pickle=False) as z:
            ref_names = [str(s) for s in z["names"]]
            if list(z["space_index"][: len(picks)]) != list(picks) or list(z["init_seed"][: len(picks)]) != init_seeds:
                raise SystemExit(f"{args.reference} holds other architectures or seeds")
            worst = {n: max(relative_difference(r[n], float(z["scores"][i, ref_names.index(n)]))
                            for i, r in enumerate(results)) for n in names if n in ref_names}
        print(f"\nlargest relative difference from {args.reference}: "
              + ", ".join(f"{n} {d:.1e}" for n, d in worst.items()))


if __name__ == "__main__":
    main()
