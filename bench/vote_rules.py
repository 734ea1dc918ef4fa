"""Can a different vote rule fix the top of the ranking? The recipe's ``score=vote`` against rules that weigh the
voters' top places more, on the stored evaluations, without new forward passes.

``evaluation.score=vote`` averages the super-net's rank with synflow's, jacov's and snip's (a Borda count). Over
the whole NB201 space that ranking is the best globally but not at the top (bench/RESULTS.md, "The best recipe
on the whole space"): an architecture that one voter puts first and another in the middle lands in the middle.
Rules from the rank-aggregation literature that favour the voters' top places, each with its published constant
(none tuned here):

- reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): the sum of 1 / (60 + rank), rank 1 = best;
- filter then select (the zero-cost "warm-up" of Abdelfattah et al., ICLR 2021, made a ranking): the vote's
  best 10 % come first, ordered by the super-net alone.

Reads the CPU runs' pools (the newest plain evaluation of each completed ``nb201-cpu*`` run in the stores, or
of the recipe's runs alone with ``--recipe-only``; seeds 0-2 chose the recipe's level, the others are held
out) and, with ``--search RUN`` (in the first ``--out-dir``), a ``supernet search RUN --samples 15625``
evaluation: finished, or as far as it got (``--unfinished``, overrides as bench/fullspace.py takes them).

    python bench/vote_rules.py --out-dir /tmp/study --out-dir /tmp/bench/cpu --out-dir /tmp/heldout --recipe-only \\
        [--search nb201-cpu-best-s3-297741ab [--unfinished data.root=... runtime.channels_last=true ...]]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fullspace import SETTINGS, search_evaluation, unfinished
from scipy.stats import rankdata
from vote_control import voted_evaluations

from supernet.errors import SupernetError
from supernet.evaluate.catalogue import VOTERS, mean_rank, measure
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.store import PoolScores, ResultStore

COLUMNS = ("kdt", "skdt", "p_at_top5", "kdt_top10", "final_acc")
HEADER = "| rule | KdT | s-KdT | P@top5% | KdT top10% | final model |"
FUSION_K = 60  # Cormack et al.'s constant
FILTER_SHARE = 0.10


def reciprocal_rank_fusion(*scores: np.ndarray) -> np.ndarray:
    """Higher = better; each voter's best place adds 1/(k + 1), its 100th about a third of that."""
    return sum(1.0 / (FUSION_K + len(s) - rankdata(s) + 1) for s in scores)


def filter_then_select(supernet: np.ndarray, voters: list[np.ndarray]) -> np.ndarray:
    """The proxies' vote keeps its best ``FILTER_SHARE``; inside it, the super-net decides the order."""
    vote = mean_rank(*voters)
    top = vote >= np.sort(vote)[-max(1, round(FILTER_SHARE * len(vote)))]
    out = vote.copy()
    out[top] = len(vote) + rankdata(supernet[top])
    return out


RULES: dict[str, Callable[[np.ndarray, list[np.ndarray]], np.ndarray]] = {
    "super-net alone": lambda sn, v: sn,
    "the proxies' vote": lambda sn, v: mean_rank(*v),
    "super-net in the vote (the recipe)": lambda sn, v: mean_rank(*v, sn),
    f"reciprocal rank fusion, k={FUSION_K}": lambda sn, v: reciprocal_rank_fusion(*v, sn),
    f"vote's top {FILTER_SHARE:.0%}, super-net orders it": filter_then_select,
}


def rule_metrics(pool: PoolScores, gt: GroundTruth) -> dict[str, dict[str, float]]:
    ranks = np.asarray(gt.ranks(pool.keys, split="test", dataset="cifar10"))
    voters = [pool.scores[v] for v in VOTERS]
    return {name: measure(rule(pool.accuracy, voters), pool.ground_truth, ranks, len(gt), SETTINGS, ranking_only=True)
            for name, rule in RULES.items()}


def recipe_pools(out_dirs: list[str], recipe_only: bool) -> list[tuple[int, PoolScores]]:
    pools = [(run.seed, store.pool_scores(ev["id"])) for store, run, ev in voted_evaluations(out_dirs, recipe_only)]
    return sorted(pools, key=lambda t: t[0])


def print_table(title: str, rows: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{title}\n\n{HEADER}\n" + "|---" * 6 + "|")
    for name, ms in rows.items():
        print(f"| {name} | " + " | ".join(f"{np.mean([m[c] for m in ms]):.{2 if c == 'final_acc' else 3}f}"
                                           for c in COLUMNS) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", action="append", required=True)
    ap.add_argument("--recipe-only", action="store_true", help="only runs trained as the CPU recipe trains")
    ap.add_argument("--search", metavar="RUN", help="also a whole-space search of this run (first --out-dir)")
    ap.add_argument("--unfinished", action="store_true", help="the search as far as it got")
    ap.add_argument("overrides", nargs="*", help="the search's key=value overrides (--unfinished)")
    args = ap.parse_args()
    gt = GroundTruth.load(gt_path(None, "nb201"))
    search = None
    if args.search:  # looked up first, so that a wrong run name fails before any table
        store = ResultStore(Path(args.out_dir[0]) / "supernet.db")
        if args.unfinished:
            _, pool, what = unfinished(store, args.search, len(gt), None, args.overrides)
        else:
            ev = search_evaluation(store, args.search, len(gt))
            pool, what = store.pool_scores(ev["id"]), f"search evaluation {ev['id']}"
        search = pool, f"{args.search}, {len(pool.keys)} architectures ({what})"
    pools = recipe_pools(args.out_dir, args.recipe_only)
    for name, chosen in (("seeds 0-2 (chose the recipe)", lambda s: s < 3), ("held-out seeds", lambda s: s >= 3)):
        picked = [(s, p) for s, p in pools if chosen(s)]
        if picked:
            per_pool = [rule_metrics(p, gt) for _, p in picked]
            print_table(f"{name}: mean over the pools of seeds {[s for s, _ in picked]}",
                        {r: [m[r] for m in per_pool] for r in RULES})
    if search is not None:
        pool, title = search
        print_table(title, {r: [m] for r, m in rule_metrics(pool, gt).items()})


if __name__ == "__main__":
    try:
        main()
    except SupernetError as exc:  # bad input: one line and a non-zero exit, as the CLI does
        raise SystemExit(f"error: {exc}") from None
