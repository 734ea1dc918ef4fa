"""Is a CPU super-net's ranking error noise or bias? Averages the rankings of independently trained super-nets.

Reads the plain evaluations (one checkpoint, batch statistics, accuracy as the score, 2,560 images) of every
completed NB201 CPU-recipe run of one seed in the given stores: all of them rank the same 200-architecture pool
(the pool depends on the seed only), whatever training method each run used. If their errors were independent
noise, the mean of their ranks would rank far better than any one of them; if they share a bias, it stays
where they are. Prints s-KdT and the final searched model of each run, of the rank-mean of every subset of
each size, of the parameter count, and how the rank error (super-net rank - true rank, higher = over-ranked)
correlates with each op's count per architecture.

    python bench/bias_or_variance.py --seed 0 --out-dir /tmp/study --out-dir /tmp/bench/cpu
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

from common import pool_evaluations
from supernet.evaluate.catalogue import MetricSettings
from supernet.evaluate.evaluator import compute_metrics
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.spaces.nasbench201 import OPS, parse_arch
from supernet.store import ResultStore

PLAIN = {"ensemble": 1, "score": "accuracy", "bn": "batch", "max_images": 2560}


def plain_scores(out_dirs: list[str], seed: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """run id -> {arch: super-net accuracy} of each run's newest plain evaluation; the pool's parameter counts."""
    runs: dict[str, dict[str, float]] = {}
    params: dict[str, float] = {}
    for out_dir in out_dirs:
        store = ResultStore(Path(out_dir) / "supernet.db")
        for run in store.runs():
            if run.status != "completed" or run.name != "nb201-cpu" or run.seed != seed:
                continue
            for ev in pool_evaluations(store, run.id):
                if all(ev["settings"].get(k, v) == v for k, v in PLAIN.items()):
                    rows = store.arch_results(ev["id"])
                    runs[run.id] = {r[0]: r[1] for r in rows}
                    params = {r[0]: float(r[4]) for r in rows}
    pools = {frozenset(s) for s in runs.values()}
    if len(pools) > 1:
        raise SystemExit("the runs of this seed ranked different pools; they cannot be averaged")
    return runs, params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", action="append", required=True)
    args = ap.parse_args()
    runs, params = plain_scores(args.out_dir, args.seed)
    if len(runs) < 2:
        raise SystemExit(f"need at least two completed runs of seed {args.seed} with a plain evaluation")
    gt = GroundTruth.load(gt_path(None, "nb201"))
    keys = list(params)  # the pool's stored order, so ties in the top 3 break as in the stored evaluations
    true_rank = rankdata(gt.accuracy(keys, split="test", dataset="cifar10"))
    counts = {op: np.array([parse_arch(k).ops.count(op) for k in keys]) for op in OPS}

    def report(label: str, score: np.ndarray, baseline: str | None = None) -> None:
        """``baseline``: score is that training-free baseline's, measured as evaluations measure it."""
        _, _, m = compute_metrics(score, keys, gt, dataset="cifar10", split="test", settings=MetricSettings(top_k=3),
                                  baselines={baseline: score} if baseline else None)
        if baseline:
            m = {k.split("/", 1)[1]: v for k, v in m.items() if k.startswith(f"{baseline}/")}
        error = rankdata(score) - true_rank
        corr = "  ".join(f"{op} {spearmanr(error, c)[0]:+.2f}" for op, c in counts.items())
        print(f"| {label} | {m['skdt']:.3f} | {m['final_acc']:.2f} | {corr} |")

    print(f"seed {args.seed}: {len(runs)} runs, {len(keys)} architectures\n\n| ranking | s-KdT | final searched model | "
          "Spearman of rank error with each op's count |\n|---|---|---|---|")
    ids = sorted(runs)
    scores = {r: np.array([runs[r][k] for k in keys]) for r in ids}
    ranks = {r: rankdata(scores[r]) for r in ids}
    for r in ids:  # its own accuracies, so ties break as in its stored evaluation
        report(r, scores[r])
    for n in range(2, len(ids) + 1):
        for combo in itertools.combinations(ids, n):
            report(f"rank mean of {' + '.join(c.rsplit('-', 1)[-1] for c in combo)}",
                   np.mean([ranks[c] for c in combo], axis=0))
    report("parameter count", np.array([params[k] for k in keys]), baseline="params")


if __name__ == "__main__":
    main()
