"""Is the super-net worth its vote? The proxies' vote with a fourth voter: the super-net, or any other proxy.

``evaluation.score=vote`` adds the super-net's accuracy to the vote of synflow, jacov and snip. A vote with
more members can rank better merely for having more of them; this control gives the same vote a fourth
voter that costs nothing instead (each other proxy of the panel, the parameter count), on the same stored
evaluations. Only what the super-net adds beyond the best of those is its own contribution.

Reads, per completed NB201 CPU run (``nb201-cpu*``) in the stores, its newest single-checkpoint evaluation with
batch statistics on 2,560 images whose panel has the voters; prints s-KdT (the clean construction, as the
baselines use) and the final searched model of each vote, per run and as the mean over runs.

    python bench/vote_control.py --out-dir /tmp/study --out-dir /tmp/bench/cpu --out-dir /tmp/heldout [--recipe-only]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ranking_study_table import method

from common import pool_evaluations
from supernet.evaluate.catalogue import VOTERS, MetricSettings, mean_rank
from supernet.evaluate.evaluator import compute_metrics
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.run import SUPERNET_LOSS
from supernet.store import ResultStore, RunRow

SETTINGS = MetricSettings(top_k=3, skdt_variant="clean")
PLAIN = {"ensemble": 1, "bn": "batch", "max_images": 2560}


def fourth_voters(store: ResultStore, ev: dict) -> tuple[list[str], dict[str, np.ndarray]]:
    """The pool and every candidate fourth voter's scores: the super-net's accuracy, params, each non-voter proxy."""
    pool = store.pool_scores(ev["id"])
    scores = {"supernet": pool.accuracy, "params": pool.params}
    scores.update({n: s for n, s in pool.scores.items() if n != SUPERNET_LOSS})
    return pool.keys, scores


def voted_evaluations(out_dirs: list[str], recipe_only: bool) -> Iterator[tuple[ResultStore, RunRow, dict]]:
    """Per completed NB201 CPU run in the stores (only the recipe's, with ``recipe_only``), its newest plain pool
    evaluation whose panel has the voters."""
    for out_dir in out_dirs:
        store = ResultStore(Path(out_dir) / "supernet.db")
        for run in store.runs():
            if run.status != "completed" or not run.name.startswith("nb201-cpu") or (
                    recipe_only and method(run.config) != "recipe"):
                continue
            evals = [e for e in pool_evaluations(store, run.id) if all(e["settings"].get(k) == v for k, v in PLAIN.items())
                     and set(VOTERS) <= set(store.arch_scores(e["id"]))]
            if evals:
                yield store, run, evals[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", action="append", required=True)
    ap.add_argument("--recipe-only", action="store_true", help="only runs trained as the CPU recipe trains")
    args = ap.parse_args()
    gt = GroundTruth.load(gt_path(None, "nb201"))
    table: dict[str, list[tuple[float, float]]] = {}
    for store, run, ev in voted_evaluations(args.out_dir, args.recipe_only):
        keys, scores = fourth_voters(store, ev)
        voters = [scores.pop(v) for v in VOTERS]
        cells = []
        for name, fourth in [("none", None), *scores.items()]:
            vote = mean_rank(*voters) if fourth is None else mean_rank(*voters, fourth)
            _, _, m = compute_metrics(vote, keys, gt, dataset="cifar10", split="test", settings=SETTINGS)
            table.setdefault(name, []).append((m["skdt"], m["final_acc"]))
            cells.append(f"{name} {m['skdt']:.3f} / {m['final_acc']:.2f}")
        print(f"{run.id}: " + ", ".join(cells))
    print("\n| fourth voter | runs | s-KdT | final searched model |\n|---|---|---|---|")
    for name, values in sorted(table.items(), key=lambda kv: -np.mean([v[0] for v in kv[1]])):
        skdt, final = np.mean(values, axis=0)
        print(f"| {name} | {len(values)} | {skdt:.3f} | {final:.2f} |")


if __name__ == "__main__":
    main()
