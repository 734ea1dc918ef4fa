"""A trained super-net on the whole NASBench-201 space, beside the training-free rankings and the literature.

A 200-architecture pool says how a ranking does on a sample; the literature's figures for NB201 super-nets
(SPOS's released predictions, few-shot NAS) are over all 15,625 architectures, where P@top5% asks for 781
of the best. This reads a stored ``supernet search RUN --samples 15625`` evaluation and ranks the same
15,625 architectures by each scorer it holds, through the functions an evaluation ranks with: the super-net's
accuracy alone, its loss, the recipe's ``evaluation.score=vote`` (the super-net beside synflow, jacov and
snip), and every baseline (the proxies' vote, each proxy, the parameter count). Every row uses the same metric
settings (the clean s-KdT the baselines use), so rows compare; on the whole space there is no sampling of
architectures, so no interval is given (what varies is the training seed).

    python -m supernet search RUN --samples 15625 --out-dir DIR runtime.channels_last=true \\
        evaluation.proxies=synflow,jacov,snip
    python bench/fullspace.py --out-dir DIR --run RUN

The evaluation takes hours on a CPU (the super-net's forward passes, then the proxies of 15,625 networks), and
both parts resume where they stopped. ``--unfinished`` reports what is stored so far: the architectures whose
super-net scores are in and, among them, those whose voters' scores are in the proxy cache (``--score-voters N``
first computes the voters of the sample's first N architectures into that cache, as the search's proxy phase
would: the chunks done so far compare with the proxies before the whole space is through). A search scores
its sample in table order, and NB201's index order is unrelated to the architecture (in the first 1,280 rows
each operation fills 19.4-20.5 % of the edges, mean test accuracy 87.16 % against 87.06 % overall), so the
first part is close to a uniform sample; before the search's proxy phase starts, the second part is whatever
earlier pools left in the cache. Options after the flags (``key=value``) are the search's own overrides
(``data.cache_dir=...``), so the script finds the same pool, batch and cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from supernet.config import evaluation_config
from supernet.data.setup import load_dataset, proxy_batch, proxy_cache_file
from supernet.errors import SupernetError
from supernet.evaluate.catalogue import VOTERS, MetricSettings, baseline_scores, measure
from supernet.evaluate.evaluator import ranking_score
from supernet.proxies.cache import ProxyCache, batch_digest
from supernet.proxies.pool import finite_scores, score_pool
from supernet.registry import SpaceKit, build_kit
from supernet.run import SUPERNET_LOSS
from supernet.runtime import Runtime
from supernet.search import search_pool
from supernet.store import PoolScores, ResultStore

SETTINGS = MetricSettings(top_k=3, skdt_variant="clean")
COLUMNS = ("kdt", "skdt", "spearman", "p_at_top5", "p_at_top10", "kdt_top10", "final_acc")
HEADER = ("KdT", "s-KdT", "Spearman", "P@top5%", "P@top10%", "KdT top10%", "final model (top 3)")
# Full-space NB201 (CIFAR-10) figures as issue 14 quotes them: KdT, P@top5%.
LITERATURE = {"SPOS, released predictions": (0.486, 0.014), "few-shot NAS": (0.551, 0.128)}
VOTE_ROW = "super-net + vote (evaluation.score=vote)"


def scorers(pool: PoolScores) -> dict[str, np.ndarray]:
    """Each ranking the stored values allow, higher = better: what ``evaluation.score`` would rank by, and each
    baseline as every evaluation scores it."""
    loss = pool.scores.get(SUPERNET_LOSS)
    proxies = {n: s for n, s in pool.scores.items() if n != SUPERNET_LOSS}
    out = {"super-net accuracy (alone)": ranking_score(pool.accuracy, loss, "accuracy")}
    if loss is not None:
        out["super-net loss (alone)"] = ranking_score(pool.accuracy, loss, "loss")
    if all(v in proxies for v in VOTERS):
        out[VOTE_ROW] = ranking_score(pool.accuracy, loss, "vote", proxies)
    out.update(baseline_scores({"params": pool.params, **proxies}))
    return out


def full_space_rows(pool: PoolScores, kit: SpaceKit) -> dict[str, dict[str, float]]:
    """Every ranking's metrics over ``pool``, against the space's own ground truth and its size."""
    truth = np.asarray(kit.gt.accuracy(pool.keys, split=kit.gt_split, dataset=kit.gt_dataset), dtype=np.float64)
    ranks = np.asarray(kit.gt.ranks(pool.keys, split=kit.gt_split, dataset=kit.gt_dataset))
    return {name: measure(s, truth, ranks, len(kit.gt), SETTINGS, ranking_only=True)
            for name, s in scorers(pool).items()}


def search_evaluation(store: ResultStore, run_id: str, size: int) -> dict[str, Any]:
    found = [e for e in store.evaluations(run_id) if e["kind"] == "search" and len(store.arch_results(e["id"])) == size]
    if not found:
        raise SupernetError(f"run {run_id} has no search evaluation of {size} architectures: run "
                            f"`supernet search {run_id} --samples {size}` first")
    return found[-1]


def unfinished(store: ResultStore, run_id: str, size: int, seed: int | None, overrides: Sequence[str],
               score_first: int = 0) -> tuple[PoolScores, PoolScores, str]:
    """An unfinished ``supernet search RUN --samples SIZE [--seed S] [overrides]``: the architectures with
    super-net scores, those of them whose voters are in the proxy cache too (each with what it has), and a line
    saying which stored evaluation that is and how much of it is there.

    ``score_first``: first score the voters of that many architectures of the sample, in its order, into the
    cache the search reads (what its proxy phase would compute, so a later search finds them), so that the
    super-net's first chunks can be compared with the proxies before the whole space is through."""
    row = store.get_run(run_id)
    cfg = evaluation_config(row.config, list(overrides))
    pool = search_pool(cfg, size, seed)
    digest = hashlib.sha1("\n".join(pool).encode()).hexdigest()
    found = {lab: store.partial(run_id, lab) for lab in store.partial_labels(run_id)
             if (about := json.loads(lab))["kind"] == "search" and about["pool"] == digest}
    if not found:
        raise SupernetError(f"run {run_id} has no unfinished search of these {size} architectures (check --seed "
                            "and the search's overrides)")
    label = max(found, key=lambda lab: len(found[lab]))  # the furthest, named in the output
    done, about = found[label], json.loads(label)
    ev = about["settings"]
    # The voters' batch and seed as that search had them, whatever the run itself was trained with.
    cfg = evaluation_config(row.config, [*overrides, f"evaluation.proxies={','.join(VOTERS)}",
                                         f"evaluation.proxy_seed={ev['proxy_seed']}",
                                         f"evaluation.proxy_batch_size={ev['proxy_batch_size']}"])
    at = sorted(done)
    kit = build_kit(cfg)
    keys = [pool[i] for i in at]
    scored = PoolScores(keys, np.array([done[i][0] for i in at]),
                        np.asarray(kit.gt.accuracy(keys, split=kit.gt_split, dataset=kit.gt_dataset), dtype=np.float64),
                        np.array([kit.param_count(kit.arch_of(k)) for k in keys], dtype=np.float64),
                        {SUPERNET_LOSS: np.array([done[i][1] for i in at])})
    rt = Runtime.from_config(cfg.device, cfg.runtime)
    x, y = proxy_batch(cfg, load_dataset(cfg), rt)
    if score_first:
        first = pool[:score_first]
        with tqdm(total=len(first), desc="voters", unit="arch") as bar:
            score_pool(cfg.space.name, first, [kit.arch_of(k) for k in first],
                       lambda a: kit.build_standalone(a).to(rt.device), (x, y), VOTERS, ev["proxy_seed"],
                       proxy_cache_file(cfg), on_arch=bar.update)
    cache = ProxyCache(proxy_cache_file(cfg))
    try:
        have = cache.get(cfg.space.name, batch_digest(x, y), ev["proxy_seed"], int(y.numel()), keys, VOTERS)
    finally:
        cache.close()
    full = [j for j, k in enumerate(keys) if all((k, v) in have for v in VOTERS)]
    voted = PoolScores([keys[j] for j in full], scored.accuracy[full], scored.ground_truth[full], scored.params[full],
                       {SUPERNET_LOSS: scored.scores[SUPERNET_LOSS][full],  # rankable as a stored evaluation's are
                        **{v: finite_scores(np.array([have[(keys[j], v)] for j in full])) for v in VOTERS}})
    others = f"; {len(found) - 1} other unfinished search(es) of this pool" if len(found) > 1 else ""
    what = (f"unfinished search of epoch {about['epoch']}, {about['n_images']} images, bn={ev['bn']}: {len(at)} of "
            f"{size} super-net scores, {len(have)} of {len(keys) * len(VOTERS)} voter scores cached{others}")
    return scored, voted, what


def table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| ranking | " + " | ".join(HEADER) + " |", "|---" * (len(HEADER) + 1) + "|"]
    for name, m in rows.items():
        cells = [f"{m[c]:.3f}" for c in COLUMNS[:-1]] + [f"{m['final_acc']:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, (kdt, p5) in LITERATURE.items():
        lines.append(f"| {name} (whole space) | {kdt:.3f} | - | - | {p5:.3f} | - | - | - |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--size", type=int, help="architectures of the search evaluation (default: all with ground truth)")
    ap.add_argument("--unfinished", action="store_true", help="what an evaluation still running has stored so far")
    ap.add_argument("--seed", type=int, help="the search's --seed, if it had one (--unfinished)")
    ap.add_argument("--score-voters", type=int, default=0, metavar="N",
                    help="--unfinished: first put the voters' scores of the sample's first N architectures in the cache")
    ap.add_argument("overrides", nargs="*", help="the search's key=value overrides (--unfinished)")
    args = ap.parse_args()
    store = ResultStore(Path(args.out_dir) / "supernet.db")
    row = store.get_run(args.run)
    cfg = evaluation_config(row.config, list(args.overrides))
    kit = build_kit(cfg)
    size = len(kit.candidates(cfg.space.subspace)) if args.size is None else args.size
    if args.unfinished:
        scored, voted, what = unfinished(store, row.id, size, args.seed, args.overrides, args.score_voters)
        print(f"{args.run}: {what}")
        for part, pool in (("with super-net scores", scored), ("with the voters' proxies as well", voted)):
            print(f"\n{len(pool.keys)} of the {size} architectures {part}:")
            print(table(full_space_rows(pool, kit)) if len(pool.keys) > 1 else "(too few to rank)")
        return
    ev = search_evaluation(store, row.id, size)
    minutes = f"{ev['seconds'] / 60:.0f} min" if ev["seconds"] is not None else "time not stored"
    print(f"{args.run}: epoch {ev['epoch']}, {ev['n_images']} images, super-net evaluation {minutes}")
    print(table(full_space_rows(store.pool_scores(ev["id"]), kit)))


if __name__ == "__main__":
    try:
        main()
    except SupernetError as exc:  # bad input: one line and a non-zero exit, as the CLI does
        raise SystemExit(f"error: {exc}") from None
