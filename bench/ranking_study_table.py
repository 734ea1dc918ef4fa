"""The table of the ranking-methods study (issue 14) from stored evaluations, one row per (run, evaluation).

Reads one or more stores (``--out-dir``, repeatable) and prints, for every evaluation of the NB201 CPU-recipe
runs in them, the method (training overrides beyond the recipe), the evaluation level (BN mode, score,
ensemble), s-KdT with its 95 % interval, KdT, P@top5%, KdT in the true top 10 %, the final searched model,
the strongest training-free baseline (the proxies' vote included) and the verdict against it. Evaluations that
ranked by accuracy also get a ``loss`` and a ``vote`` row: the same stored evaluation re-ranked by the
super-net's stored mean cross-entropy (``supernet_loss``), or by the vote of its accuracy with the stored
synflow, jacov and snip scores, through the code an ``evaluation.score=loss|vote`` evaluation runs (its forward
passes would be identical). A summary gives the mean over seeds per (method, level).

    python bench/ranking_study_table.py --out-dir /tmp/study --out-dir /tmp/bench/cpu
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from common import CPU_RECIPE, pool_evaluations
from supernet.config import load_config
from supernet.evaluate import catalogue
from supernet.evaluate.catalogue import VOTERS, MetricSettings, baseline_scores
from supernet.evaluate.evaluator import bootstrap_metrics, compute_metrics, ranking_score
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.run import SUPERNET_LOSS
from supernet.store import ResultStore

COLUMNS = ("skdt", "kdt", "p_at_top5", "kdt_top10", "final_acc")
TRAINING_KEYS = {("supernet", "channels"): "channels", ("supernet", "layers"): "layers",
                 ("protocol", "epochs"): "epochs", ("protocol", "landmarks"): "landmarks",
                 ("protocol", "landmark_every"): "every",
                 ("protocol", "sampler"): "sampler", ("supernet", "few_shot"): "few_shot",
                 ("supernet", "few_shot_compute"): "compute"}
# a method is what a run changed from the CPU recipe (and the config defaults it leaves alone)
_RECIPE = load_config(CPU_RECIPE, []).model_dump()
DEFAULTS = {name: _RECIPE[section][key] for (section, key), name in TRAINING_KEYS.items()}


def method(config: dict) -> str:
    parts = []
    for (section, key), name in TRAINING_KEYS.items():
        value = config.get(section, {}).get(key, DEFAULTS[name])
        unused = (name == "compute" and config["supernet"].get("few_shot", 1) == 1) or (
            name == "every" and not config["protocol"].get("landmarks", 0))
        if value != DEFAULTS[name] and not unused:
            parts.append(f"{name}={value}")
    return ", ".join(parts) or "recipe"


def level(settings: dict) -> str:
    parts = [f"bn={settings.get('bn', 'batch')}"]
    if settings.get("ensemble", 1) > 1:
        parts.append(f"ensemble={settings['ensemble']}")
    if settings.get("score", "accuracy") != "accuracy":
        parts.append(f"score={settings['score']}")
    if settings.get("max_images", 0) is None:
        parts.append("all test images")
    return ", ".join(parts)


def rescored(store: ResultStore, ev: dict, gt: GroundTruth, score: str) -> dict | None:
    """A stored evaluation ranked by ``score`` (accuracy, loss or vote) from its stored per-architecture values,
    through the code an evaluation with that ``evaluation.score`` runs (its forward passes would be identical),
    with every baseline those values allow: evaluations stored before the ``vote`` baseline existed get it too,
    so every row is judged against the same bar. None where the evaluation lacks what ``score`` needs."""
    pool = store.pool_scores(ev["id"])
    per_arch = dict(pool.scores)
    loss = per_arch.pop(SUPERNET_LOSS, None)
    if (score == "loss" and loss is None) or (score == "vote" and not set(VOTERS) <= set(per_arch)):
        return None
    ranked = ranking_score(pool.accuracy, loss, score, per_arch)
    baselines = baseline_scores({"params": pool.params, **per_arch})
    settings = MetricSettings(top_k=ev["settings"].get("top_k", 3))
    truth, _, m = compute_metrics(ranked, pool.keys, gt, dataset="cifar10", split="test", settings=settings,
                                  baselines=baselines, supernet_accuracy=pool.accuracy)
    m.update(bootstrap_metrics(ranked, truth, m, settings, baselines, 1000))
    return m


def cells(m: dict) -> list[str]:
    fmt = lambda name, v: catalogue.metric(name).format(v)  # noqa: E731
    out = [f"{fmt('skdt', m.get('skdt'))} [{fmt('skdt', m.get('skdt_lo'))}, {fmt('skdt', m.get('skdt_hi'))}]",
           *(fmt(c, m.get(c)) for c in COLUMNS[1:])]
    best = catalogue.best_baseline(m)
    if best is None:
        return out + ["-", "-", "-"]
    return out + [f"{best.name} {fmt('skdt', m.get(best.prefix + 'skdt'))}",
                  f"{catalogue.verdict(m)} {m['vs_best_diff']:+.3f} [{m['vs_best_lo']:+.3f}, {m['vs_best_hi']:+.3f}]",
                  fmt("final_acc", m.get(best.prefix + "final_acc"))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", action="append", required=True)
    args = ap.parse_args()
    gt = GroundTruth.load(gt_path(None, "nb201"))
    print("| method | seed | evaluation | s-KdT [95 %] | KdT | P@top5% | KdT top 10% | final | best proxy s-KdT | "
          "verdict, diff [95 %] | best proxy final | train min |\n|" + "---|" * 12)
    summary: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for out_dir in args.out_dir:
        store = ResultStore(Path(out_dir) / "supernet.db")
        for run in store.runs():
            if run.status != "completed" or not run.name.startswith("nb201-cpu"):
                continue
            minutes = sum(e["seconds"] or 0 for e in store.epochs(run.id)) / 60
            seen = set()
            for ev in reversed(pool_evaluations(store, run.id)):  # the newest of identical evaluations
                if not ev["settings"].get("proxies", "all") or ev["settings"].get("proxies") == "none":
                    continue
                lv = level(ev["settings"])
                if lv in seen:
                    continue
                seen.add(lv)
                own = ev["settings"].get("score", "accuracy")
                rows = []
                for score in ("accuracy", "loss", "vote"):  # its own score first, then the others it stored
                    label = level({**ev["settings"], "score": score}) + ("" if score == own else " (stored scores)")
                    m = rescored(store, ev, gt, score)
                    if m is not None:
                        rows.insert(0 if score == own else len(rows), (label, m))
                for label, m in rows:
                    summary[(method(run.config), label)].append(m)
                    print(f"| {method(run.config)} | {run.seed} | {label} | " + " | ".join(cells(m))
                          + f" | {minutes:.1f} |")
    print("\nMean over seeds\n\n| method | evaluation | seeds | s-KdT | KdT | P@top5% | KdT top 10% | final | "
          "s-KdT - best proxy | verdicts | best proxy final |\n|" + "---|" * 11)
    for (meth, label), ms in sorted(summary.items()):
        mean = {c: np.mean([m[c] for m in ms]) for c in (*COLUMNS, "vs_best_diff")}
        verdicts = ",".join(catalogue.verdict(m) or "-" for m in ms)
        proxy_final = np.mean([m[catalogue.best_baseline(m).prefix + "final_acc"] for m in ms])
        print(f"| {meth} | {label} | {len(ms)} | " + " | ".join(catalogue.metric(c).format(mean[c]) for c in COLUMNS)
              + f" | {mean['vs_best_diff']:+.3f} | {verdicts} | {proxy_final:.2f} |")


if __name__ == "__main__":
    main()
