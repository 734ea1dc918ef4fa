"""The CPU recipe's super-net against every training-free proxy, with intervals (issue 11), and the panel's cost.

Per seed: trains ``recipes/nb201-cpu.yaml`` (resumes a finished run), then evaluates its checkpoint three
times: without the proxy panel (the super-net's own cost), with it (the panel on a fresh pool, unless the
cache already holds it), and with it again (a cached pool). Prints one table per seed: the super-net and
each baseline on the same 200 architectures, s-KdT with the super-net's 95 % interval, KdT, top-heavy
metrics, and the verdict against the strongest baseline.

    python bench/proxy_panel_cpu.py --data PATH/TO/cifar10 --seeds 1 2 0
"""

from __future__ import annotations

import time

from common import cpu_recipe_runs
from supernet.evaluate import catalogue
from supernet.run import Run
from supernet.trained import evaluate_run

COLUMNS = ("skdt", "kdt", "spearman", "p_at_top5", "p_at_top10", "kdt_top10", "final_acc")


def table(m: dict) -> str:
    head = "| scorer | " + " | ".join(catalogue.metric(c).title for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    fmt = lambda name, v: catalogue.metric(name).format(v)  # noqa: E731
    sn = [fmt(c, m.get(c)) for c in COLUMNS]
    sn[0] += f" [{fmt('skdt', m.get('skdt_lo'))}, {fmt('skdt', m.get('skdt_hi'))}]"
    lines.append("| super-net | " + " | ".join(sn) + " |")
    for b in catalogue.baselines_in(m):
        lines.append(f"| {b.title} | " + " | ".join(fmt(c, m.get(b.prefix + c)) for c in COLUMNS) + " |")
    best = catalogue.best_baseline(m)
    if best is not None and catalogue.verdict(m):
        lines.append(f"\nstrongest baseline {best.title}: super-net {catalogue.verdict(m)} it, s-KdT difference "
                     f"{m['vs_best_diff']:.3f} [{m['vs_best_lo']:.3f}, {m['vs_best_hi']:.3f}]")
    return "\n".join(lines)


def timed_eval(run: Run, overrides: list[str]) -> tuple[dict, float]:
    start = time.perf_counter()
    ev = evaluate_run(run.store, run.id, ["progress=false", *overrides])
    return ev.metrics, time.perf_counter() - start


def main() -> None:
    args, configs = cpu_recipe_runs([1, 2, 0], "evaluation.proxies=none")
    for seed, cfg in zip(args.seeds, configs, strict=True):
        run = Run(cfg)
        start = time.perf_counter()
        run.train()
        train_s = time.perf_counter() - start
        print(f"seed {seed}: {run.id}, training this call {train_s / 60:.1f} min (0 if already complete)", flush=True)
        _, alone = timed_eval(run, ["evaluation.proxies=none"])
        _, fresh = timed_eval(run, ["evaluation.proxies=all"])
        m, cached = timed_eval(run, ["evaluation.proxies=all"])
        print(f"seed {seed}: evaluation without panel {alone:.0f} s; with the panel {fresh:.0f} s "
              f"(panel {fresh - alone:.0f} s = {(fresh - alone) / len(run.pool):.2f} s/arch unless cached before); "
              f"cached {cached:.0f} s (panel {cached - alone:+.0f} s)\n", flush=True)
        print(table(m) + "\n", flush=True)


if __name__ == "__main__":
    main()
