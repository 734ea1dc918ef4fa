"""Dynamic channels on NASBench-101 at CPU scale (the paper's Table 3), ranked against real accuracies.

Trains ``recipes/nb101-cpu.yaml`` once per channel strategy. ``fixed``, ``shuffle`` and ``interpolate``
train on the full space and are evaluated per sub-space (Baseline-v2: a pool per sub-space of cells
with K vertices feeding the output, plus the union pool); ``disabled`` trains one super-net on
sub-space K (the paper's "Ours"). Prints s-KdT in sub-space K for all four side by side.

    python bench/nb101_channels.py --data PATH/TO/cifar10 --strategies fixed shuffle interpolate disabled
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import machine
from supernet.config import load_config
from supernet.registry import build_kit
from supernet.run import Run

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb101-cpu.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--strategies", nargs="+", default=["fixed", "shuffle", "interpolate", "disabled"])
    ap.add_argument("--subspace", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default="runs/bench-nb101")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    k = args.subspace
    for strategy in args.strategies:
        base = [f"data.root={args.data}", f"seed={args.seed}", f"out_dir={args.out_dir}", "progress=false",
                f"supernet.channel_strategy={strategy}", f"name=nb101-{strategy}", *args.overrides]
        if strategy == "disabled":  # the whole sub-space, however many of its cells have ground truth
            sub_cfg = load_config(RECIPE, base + [f"space.subspace={k}"])
            size = min(len(build_kit(sub_cfg).candidates(k)), sub_cfg.evaluation.pool_size)
            extra = [f"space.subspace={k}", f"evaluation.pool_size={size}"]
        else:
            extra = ["evaluation.per_subspace=true"]
        cfg = load_config(RECIPE, base + extra)
        start = time.perf_counter()
        run = Run(cfg)
        m = run.train()
        minutes = (time.perf_counter() - start) / 60
        sub = m.get(f"sub{k}/skdt", m["skdt"])
        line = (f"{strategy:<12} s-KdT in sub-space {k}: {sub:.3f}  (params baseline "
                f"{m.get(f'sub{k}/params/skdt', m['params/skdt']):.3f})")
        if strategy != "disabled":
            line += f"  Baseline-v2 mean {m['subspace_mean/skdt']:.3f}  union pool {m['pool/skdt']:.3f}"
        print(f"{line}  acc {m['acc_mean']:.1f}±{m['acc_std']:.1f}  final {m['final_acc']:.2f}%  {minutes:.1f} min",
              flush=True)


if __name__ == "__main__":
    main()
