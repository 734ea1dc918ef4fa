"""The authors' aggregation over seeds (SPEC 2.6, ``spares_kdt_compute_mean_std``), offered beside ours.

Ours: a metric per seed, then mean ± std over seeds. Theirs: pool the evaluated architectures of every seed
of a setting, average the super-net accuracy per architecture over the seeds that evaluated it, and compute
one s-KdT (and KdT) on the union; runs whose mean super-net accuracy is below a floor are dropped first as
"not trained" (their plotting tool: 15 %, their analysis script: 40 %). Reading a paper figure made this
way against a table made the other way compares two different statistics, hence both are offered, named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.evaluate.measures import kendall_tau, sparse_kendall_tau
from supernet.store import ResultStore

DEFAULT_FLOOR = 15.0  # percent: the authors' tool.py (analysis.py uses 40)


@dataclass(frozen=True)
class PooledLevel:
    level: str
    kept: tuple[str, ...]  # runs pooled
    dropped: tuple[str, ...]  # completed runs below the floor
    archs: int  # architectures in the union
    skdt: float
    kdt: float
    per_seed: tuple[float, ...]  # our statistic, for comparison: the kept runs' own s-KdT


def pooled_levels(store: ResultStore, sweep: str, floor: float = DEFAULT_FLOOR, threshold: float = 1e-3
                  ) -> list[PooledLevel]:
    runs = {r.id: r for r in store.runs()}
    plan: dict[str, list[str]] = {}
    for _factor, level, _seed, run_id in store.sweep(sweep):
        plan.setdefault(level, [])
        if run_id in runs and runs[run_id].status == "completed":
            plan[level].append(run_id)
    out = []
    for level, run_ids in plan.items():
        sums: dict[str, list[float]] = {}
        truth: dict[str, float] = {}
        kept, dropped, per_seed = [], [], []
        for run_id in run_ids:
            train = [e for e in store.evaluations(run_id) if e["kind"] == "train"]
            if not train:
                continue
            last = train[-1]
            rows = store.arch_results(last["id"])
            if not rows or np.mean([r[1] for r in rows]) < floor:
                dropped.append(run_id)
                continue
            kept.append(run_id)
            per_seed.append(float(last["metrics"].get("skdt", np.nan)))
            for key, ws, gt, _rank, _params in rows:
                sums.setdefault(key, []).append(ws)
                truth[key] = gt
        keys = sorted(sums)
        if len(keys) < 2:
            out.append(PooledLevel(level, tuple(kept), tuple(dropped), len(keys), np.nan, np.nan, tuple(per_seed)))
            continue
        ws = np.array([np.mean(sums[k]) for k in keys])
        gt = np.array([truth[k] for k in keys])
        out.append(PooledLevel(level, tuple(kept), tuple(dropped), len(keys),
                               float(sparse_kendall_tau(ws, gt, threshold)), float(kendall_tau(ws, gt)),
                               tuple(per_seed)))
    return out


def markdown_pooled(rows: list[PooledLevel], floor: float) -> str:
    lines = [f"| level | runs pooled | dropped (< {floor:g} % super-net acc) | archs | pooled s-KdT | pooled KdT | "
             "per-seed s-KdT (mean ± std) |", "|" + "---|" * 7]
    for r in rows:
        seeds = [v for v in r.per_seed if np.isfinite(v)]
        ours = (f"{np.mean(seeds):.3f} ± {np.std(seeds, ddof=1):.3f}" if len(seeds) > 1
                else f"{seeds[0]:.3f}" if seeds else "-")
        lines.append(f"| {r.level} | {len(r.kept)} | {', '.join(r.dropped) or '-'} | {r.archs} | "
                     f"{r.skdt:.3f} | {r.kdt:.3f} | {ours} |")
    return "\n".join(lines)
