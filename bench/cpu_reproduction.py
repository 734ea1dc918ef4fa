"""The paper's central finding at CPU scale: batch statistics vs tracked running statistics.

Trains ``recipes/nb201-cpu.yaml`` once per seed (with running statistics tracked), evaluates each
checkpoint with both BN modes and prints s-KdT, the final searched model, wall time and a histogram
of the pool's super-net accuracies. Runs resume, so an interrupted benchmark continues where it was.

    python bench/cpu_reproduction.py --data PATH/TO/cifar10 --seeds 0 1 2
"""

from __future__ import annotations

import time

import numpy as np

from common import cpu_recipe_runs
from supernet.run import Run
from supernet.trained import evaluate_run

BINS = np.arange(0, 101, 10)


def histogram(acc: np.ndarray) -> str:
    counts, _ = np.histogram(acc, BINS)
    return " ".join(f"{lo}-{lo + 10}:{c}" for lo, c in zip(BINS[:-1], counts, strict=True) if c)


def main() -> None:
    args, configs = cpu_recipe_runs([0, 1, 2])
    for seed, cfg in zip(args.seeds, configs, strict=True):
        run = Run(cfg)
        start = time.perf_counter()
        run.train()
        train_s = time.perf_counter() - start
        if not any(e["bn"] == "running" for e in run.store.evaluations(run.id)):
            evaluate_run(run.store, run.id, ["bn=running", "progress=false"])
        for ev in run.store.evaluations(run.id):
            m = ev["metrics"]
            acc = np.array([r[1] for r in run.store.arch_results(ev["id"])])
            print(f"seed {seed} bn={ev['bn']:<7} s-KdT {m['skdt']:.3f} KdT {m['kdt']:.3f} "
                  f"final {m['final_acc']:.2f}% acc {m['acc_mean']:.1f}±{m['acc_std']:.1f} "
                  f"(params baseline s-KdT {m['params/skdt']:.3f}) eval {ev['seconds']:.0f}s")
            print(f"    histogram {histogram(acc)}")
        print(f"seed {seed}: this call {train_s / 60:.1f} min (0 if the run was already complete)")


if __name__ == "__main__":
    main()
