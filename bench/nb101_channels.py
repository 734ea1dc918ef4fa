"""Dynamic channels on NASBench-101 at CPU scale (the paper's Table 3), ranked against real accuracies.

Trains ``recipes/nb101-cpu.yaml`` once per channel strategy. ``fixed``, ``shuffle`` and ``interpolate``
train on the full space and are evaluated per sub-space (Baseline-v2: a pool per sub-space of cells
with K vertices feeding the output, plus the union pool); ``disabled`` trains one super-net on
sub-space K (the paper's "Ours"). Prints s-KdT in sub-space K for all four side by side.

    python bench/nb101_channels.py --data PATH/TO/cifar10 --strategies fixed shuffle interpolate disabled --seeds 0 1 2

With several seeds it ends with Table 3 as mean ± std over them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import machine
from supernet.config import load_config
from supernet.registry import build_kit
from supernet.run import Run

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb101-cpu.yaml"


def run_strategy(args: argparse.Namespace, strategy: str, seed: int) -> tuple[dict, float]:
    """Trains (or resumes) one strategy's run on one seed; its metrics and wall minutes."""
    k = args.subspace
    base = [f"data.root={args.data}", f"seed={seed}", f"out_dir={args.out_dir}", "progress=false",
            f"supernet.channel_strategy={strategy}", f"name=nb101-{strategy}", *args.overrides]
    if strategy == "disabled":  # the whole sub-space, however many of its cells have ground truth
        sub_cfg = load_config(RECIPE, base + [f"space.subspace={k}"])
        size = min(len(build_kit(sub_cfg).candidates(k)), sub_cfg.evaluation.pool_size)
        extra = [f"space.subspace={k}", f"evaluation.pool_size={size}"]
    else:
        extra = ["evaluation.per_subspace=true"]
    start = time.perf_counter()
    m = Run(load_config(RECIPE, base + extra)).train()
    return m, (time.perf_counter() - start) / 60


def sub_metric(m: dict, k: int, name: str) -> float:
    """A metric inside sub-space K: its own prefix for Baseline-v2 evaluations, the headline for "disabled"."""
    return m.get(f"sub{k}/{name}", m[name])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--strategies", nargs="+", default=["fixed", "shuffle", "interpolate", "disabled"])
    ap.add_argument("--subspace", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out-dir", default="runs/bench-nb101")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    k = args.subspace
    results: dict[str, list[dict]] = {s: [] for s in args.strategies}
    for seed in args.seeds:
        for strategy in args.strategies:
            m, minutes = run_strategy(args, strategy, seed)
            results[strategy].append(m)
            line = (f"seed {seed} {strategy:<12} s-KdT in sub-space {k}: {sub_metric(m, k, 'skdt'):.3f}  "
                    f"(params baseline {sub_metric(m, k, 'params/skdt'):.3f})")
            if strategy != "disabled":
                line += f"  Baseline-v2 mean {m['subspace_mean/skdt']:.3f}  union pool {m['pool/skdt']:.3f}"
            print(f"{line}  acc {m['acc_mean']:.1f}±{m['acc_std']:.1f}  final {m['final_acc']:.2f}%  "
                  f"{minutes:.1f} min", flush=True)
    summary(results, k)


def summary(results: dict[str, list[dict]], k: int) -> None:
    """Table 3 as mean ± std over seeds: each training strategy in sub-space K, Baseline-v2 (the mean over
    sub-spaces of a full-space run) and the parameter count inside sub-space K."""
    def cell(values: list[float], digits: int) -> str:
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    print(f"\n| row | seeds | super-net acc | s-KdT in sub-space {k} | Baseline-v2 mean s-KdT | P>R | final searched model |"
          "\n|---|---|---|---|---|---|---|")
    for strategy, ms in results.items():
        v2 = cell([m["subspace_mean/skdt"] for m in ms], 3) if strategy != "disabled" else "-"
        print(f"| {strategy} | {len(ms)} | {cell([m['acc_mean'] for m in ms], 1)} | "
              f"{cell([sub_metric(m, k, 'skdt') for m in ms], 3)} | {v2} | "
              f"{cell([m['p_surpass_random'] for m in ms], 3)} | {cell([m['final_acc'] for m in ms], 2)} |")
        print(f"| params ({strategy}'s pools) | {len(ms)} | - | {cell([sub_metric(m, k, 'params/skdt') for m in ms], 3)}"
              f" | - | - | {cell([sub_metric(m, k, 'params/final_acc') for m in ms], 2)} |")


if __name__ == "__main__":
    main()
