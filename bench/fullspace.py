"""A trained super-net on the whole NASBench-201 space, beside the training-free rankings and the literature.

A 200-architecture pool says how a ranking does on a sample; the literature's figures for NB201 super-nets
(SPOS's released predictions, few-shot NAS) are over all 15,625 architectures, where P@top5% asks for 781
of the best. This reads a stored ``supernet search RUN --samples 15625`` evaluation and ranks the same
15,625 architectures by each scorer it holds: the super-net's accuracy alone, its loss, the recipe's
``evaluation.score=vote`` (the super-net beside synflow, jacov and snip), the proxies' own vote, each proxy
and the parameter count. Every row uses the same metric settings (the clean s-KdT the baselines use), so
rows compare; on the whole space there is no sampling of architectures, so no interval is given (what
varies is the training seed).

    python -m supernet search RUN --samples 15625 --out-dir DIR runtime.channels_last=true \\
        evaluation.proxies=synflow,jacov,snip
    python bench/fullspace.py --out-dir DIR --run RUN [--unfinished]

The evaluation takes hours on a CPU (the super-net's forward passes, then the proxies of 15,625 networks), and
both parts resume where they stopped. ``--unfinished`` reports what is stored so far: the architectures whose
super-net scores are in (a uniform sample of the space, since the search draws its order at random), and among
them those whose voters' proxy scores are in the proxy cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from supernet.config import evaluation_config
from supernet.data.setup import load_dataset, proxy_batch, proxy_cache_file
from supernet.errors import SupernetError
from supernet.evaluate.catalogue import VOTERS, MetricSettings, mean_rank, measure
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.proxies.cache import ProxyCache, batch_digest
from supernet.registry import build_kit
from supernet.run import SUPERNET_LOSS
from supernet.runtime import CPU
from supernet.search import search_pool
from supernet.store import PoolScores, ResultStore

SETTINGS = MetricSettings(top_k=3, skdt_variant="clean")
COLUMNS = ("kdt", "skdt", "spearman", "p_at_top5", "p_at_top10", "kdt_top10", "final_acc")
HEADER = ("KdT", "s-KdT", "Spearman", "P@top5%", "P@top10%", "KdT top10%", "final model (top 3)")
# Full-space NB201 (CIFAR-10) figures as issue 14 quotes them: KdT, P@top5%.
LITERATURE = {"SPOS, released predictions": (0.486, 0.014), "few-shot NAS": (0.551, 0.128)}


def scorers(pool: PoolScores) -> dict[str, np.ndarray]:
    """Each ranking the stored evaluation allows, higher = better, named as the table shows it."""
    out = {"super-net accuracy (alone)": pool.accuracy}
    if SUPERNET_LOSS in pool.scores:
        out["super-net loss (alone)"] = -pool.scores[SUPERNET_LOSS]
    if all(v in pool.scores for v in VOTERS):
        out["super-net + vote (evaluation.score=vote)"] = mean_rank(pool.accuracy, *(pool.scores[v] for v in VOTERS))
        out["vote of " + ", ".join(VOTERS)] = mean_rank(*(pool.scores[v] for v in VOTERS))
    out.update({name: s for name, s in sorted(pool.scores.items()) if name != SUPERNET_LOSS})
    out["params"] = pool.params
    return out


def full_space_rows(pool: PoolScores, gt: GroundTruth) -> dict[str, dict[str, float]]:
    truth = np.asarray(gt.accuracy(pool.keys, split="test", dataset="cifar10"), dtype=np.float64)
    ranks = np.asarray(gt.ranks(pool.keys, split="test", dataset="cifar10"))
    return {name: measure(s, truth, ranks, len(gt), SETTINGS, ranking_only=True) for name, s in scorers(pool).items()}


def search_evaluation(store: ResultStore, run_id: str, size: int) -> dict:
    found = [e for e in store.evaluations(run_id) if e["kind"] == "search" and len(store.arch_results(e["id"])) == size]
    if not found:
        raise SupernetError(f"run {run_id} has no search evaluation of {size} architectures: run "
                            f"`supernet search {run_id} --samples {size}` first")
    return found[-1]


def unfinished(store: ResultStore, run_id: str, size: int) -> tuple[PoolScores, PoolScores]:
    """An unfinished ``supernet search RUN --samples SIZE``: (the architectures with super-net scores, those of
    them whose voters are in the proxy cache too), each with what it has."""
    cfg = evaluation_config(store.get_run(run_id).config, [])
    pool = search_pool(cfg, size)
    digest = hashlib.sha1("\n".join(pool).encode()).hexdigest()
    labels = [lab for lab in store.partial_labels(run_id) if json.loads(lab)["kind"] == "search"
              and json.loads(lab)["pool"] == digest]
    if not labels:
        raise SupernetError(f"run {run_id} has no unfinished search of {size} architectures")
    done = max((store.partial(run_id, lab) for lab in labels), key=len)
    at = sorted(done)
    kit = build_kit(cfg)
    keys = [pool[i] for i in at]
    scored = PoolScores(keys, np.array([done[i][0] for i in at]), np.asarray(kit.gt.accuracy(keys, split="test",
                        dataset="cifar10"), dtype=np.float64),
                        np.array([kit.param_count(kit.arch_of(k)) for k in keys], dtype=np.float64),
                        {SUPERNET_LOSS: np.array([done[i][1] for i in at])})
    x, y = proxy_batch(cfg, load_dataset(cfg), CPU)
    cache = ProxyCache(proxy_cache_file(cfg))
    have = cache.get(cfg.space.name, batch_digest(x, y), cfg.evaluation.proxy_seed, int(y.numel()), keys, VOTERS)
    cache.close()
    full = [j for j, k in enumerate(keys) if all((k, v) in have for v in VOTERS)]
    voted = PoolScores([keys[j] for j in full], scored.accuracy[full], scored.ground_truth[full], scored.params[full],
                       {SUPERNET_LOSS: scored.scores[SUPERNET_LOSS][full],
                        **{v: np.array([have[(keys[j], v)] for j in full]) for v in VOTERS}})
    return scored, voted


def table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| ranking | " + " | ".join(HEADER) + " |", "|---" * (len(HEADER) + 1) + "|"]
    for name, m in rows.items():
        cells = [f"{m[c]:.3f}" for c in COLUMNS[:-1]] + [f"{m['final_acc']:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, (kdt, p5) in LITERATURE.items():
        lines.append(f"| {name} | {kdt:.3f} | - | - | {p5:.3f} | - | - | - |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--size", type=int, help="architectures of the search evaluation (default: the whole table)")
    ap.add_argument("--unfinished", action="store_true", help="what an evaluation still running has stored so far")
    args = ap.parse_args()
    gt = GroundTruth.load(gt_path(None, "nb201"))
    store = ResultStore(Path(args.out_dir) / "supernet.db")
    run_id, size = store.get_run(args.run).id, args.size or len(gt)
    if args.unfinished:
        for what, pool in zip(("with super-net scores", "with the voters' proxies as well"), unfinished(store, run_id, size),
                              strict=True):
            print(f"\n{len(pool.keys)} of the {size} architectures {what}:")
            print(table(full_space_rows(pool, gt)) if len(pool.keys) > 1 else "(too few to rank)")
        return
    ev = search_evaluation(store, run_id, size)
    print(f"{args.run}: epoch {ev['epoch']}, {ev['n_images']} images, super-net evaluation {ev['seconds'] / 60:.0f} min")
    print(table(full_space_rows(store.pool_scores(ev["id"]), gt)))


if __name__ == "__main__":
    main()
