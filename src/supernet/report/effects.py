"""Influence of each factor on the final searched model (the paper's Fig. 10), across every sweep.

A factor's effect is the difference, in accuracy points, between the searched model's mean ground
truth with the factor applied and without it. "Without" is, as in the paper, the space's Random-NAS
baseline: the runs named with ``supernet reference SPACE random-nas RUN...`` (Table 4's first row); then
every level of the sweep, the recipe's own included, is an effect against it. A space without those runs
falls back to the sweep's baseline level (the level whose runs are the recipe itself, recorded when the
sweep is planned; a sweep whose levels all change the recipe has none). The headline is the best level,
which is biased upward (the best of several noisy levels); every level is listed with its spread.

Differences are taken per seed, over the seeds completed at both the level and the baseline (a seed
fixes the data split and the evaluation pool, so pairing removes the pool's luck from the comparison),
then averaged (the paper uses at least three seeds); ± is the standard error of that mean. Against
reference runs of other seeds the difference of the two means is taken instead, ± the standard error of
that difference. Read from the store only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.errors import SupernetError
from supernet.factors import BY_NAME, FACTORS
from supernet.store import ResultStore

METRIC = "final_acc"
GROUPS = tuple(dict.fromkeys(f.group for f in FACTORS))  # the paper's order of factor groups


@dataclass(frozen=True)
class LevelEffect:
    level: str
    delta: float  # mean over the paired seeds of (level - baseline), accuracy points
    stderr: float  # standard error of that mean; nan with a single pair
    seeds: int  # seeds completed at both this level and the baseline


@dataclass(frozen=True)
class FactorEffect:
    space: str
    sweep: str
    factor: str
    group: str
    baseline: str | None
    baseline_mean: float | None  # over the baseline's completed seeds
    levels: tuple[LevelEffect, ...]

    @property
    def best(self) -> LevelEffect | None:
        return max(self.levels, key=lambda e: e.delta, default=None)


def _paired(level: dict[int, float], base: dict[int, float]) -> tuple[float, float, int] | None:
    """Differences per seed: a seed fixes the split and the pool, so pairing removes the pool's luck."""
    diffs = np.array([level[s] - base[s] for s in sorted(level.keys() & base.keys())])
    if not len(diffs):
        return None
    sem = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
    return float(diffs.mean()), sem, len(diffs)


RANDOM_NAS = "random-nas"  # the reference role of the untuned Random-NAS baseline (Table 4's first row)
REFERENCE_LABEL = "Random-NAS reference"


def _unpaired(level: dict[int, float], base: dict[int, float]) -> tuple[float, float, int] | None:
    """Difference of means when the two sets of runs share no seed."""
    if not level or not base:
        return None
    a, b = np.array(list(level.values())), np.array(list(base.values()))
    var = (np.var(a, ddof=1) / len(a) if len(a) > 1 else np.nan) + (np.var(b, ddof=1) / len(b) if len(b) > 1 else np.nan)
    return float(a.mean() - b.mean()), float(np.sqrt(var)), min(len(a), len(b))


def reference_finals(store: ResultStore, space: str, role: str = RANDOM_NAS) -> dict[int, float]:
    """seed -> final searched model of the space's reference runs of ``role`` that completed."""
    runs = {r.id: r for r in store.runs()}
    out = {}
    for run_id in store.references(space, role):
        run = runs.get(run_id)
        value = store.latest_metrics(run_id).get(METRIC) if run is not None and run.status == "completed" else None
        if value is not None and np.isfinite(value):
            out[run.seed] = value
    return out


def sweep_effect(store: ResultStore, sweep: str) -> FactorEffect | None:
    """None for a sweep with no completed run yet (its space is not known from the store)."""
    runs = {r.id: r for r in store.runs()}
    finals: dict[str, dict[int, float]] = {}  # level -> seed -> final searched model, completed runs only
    plan = store.sweep(sweep)
    spaces = set()
    for _, level, seed, run_id in plan:
        finals.setdefault(level, {})
        run = runs.get(run_id)
        if run is None or run.status != "completed":
            continue
        spaces.add(run.space)
        value = store.latest_metrics(run_id).get(METRIC)
        if value is not None and np.isfinite(value):
            finals[level][seed] = value
    if not spaces:
        return None
    reference = reference_finals(store, next(iter(spaces))) if len(spaces) == 1 else {}
    if reference:  # the paper's comparison: every level against the untuned Random-NAS runs of the space
        baseline, base = REFERENCE_LABEL, reference
    else:
        baseline = store.sweep_baseline(sweep)
        base = finals.get(baseline or "", {})
    levels = []
    for level, values in finals.items():
        if level == baseline:
            continue
        p = _paired(values, base) if values.keys() & base.keys() else _unpaired(values, base)
        if p is not None:
            levels.append(LevelEffect(level, *p))
    factor = plan[0][0]
    group = BY_NAME[factor].group if factor in BY_NAME else "other"
    return FactorEffect(",".join(sorted(spaces)), sweep, factor, group, baseline,
                        float(np.mean(list(base.values()))) if base else None, tuple(levels))


def factor_effects(store: ResultStore, space: str | None = None) -> list[FactorEffect]:
    """Every sweep with a completed run, ordered by space, then the paper's factor groups."""
    found = [e for name in store.sweeps() if (e := sweep_effect(store, name)) is not None]
    found = [e for e in found if space is None or e.space == space]
    order = {g: k for k, g in enumerate(GROUPS)}
    return sorted(found, key=lambda e: (e.space, order.get(e.group, len(order)), e.factor, e.sweep))


def _signed(x: float, err: float) -> str:
    return f"{x:+.2f}" + ("" if np.isnan(err) else f" ± {err:.2f}")


def markdown_effects(effects: list[FactorEffect]) -> str:
    head = ["space", "group", "factor (sweep)", "baseline level", "baseline final", "best level", "effect",
            "every level"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in effects:
        best = e.best
        others = "; ".join(f"{lv.level}: {lv.delta:+.2f} (n={lv.seeds})" for lv in e.levels) or "-"
        lines.append("| " + " | ".join([
            e.space, e.group, f"{e.factor} ({e.sweep})", e.baseline or "none recorded",
            "-" if e.baseline_mean is None else f"{e.baseline_mean:.2f}",
            best.level if best else "-", _signed(best.delta, best.stderr) if best else "-", others,
        ]) + " |")
    return "\n".join(lines)


def plot_effects(effects: list[FactorEffect], path: str) -> None:
    """Horizontal bars per factor, grouped as in Fig. 10, one colour per space; error bars are the
    standard error of the difference."""
    from supernet.report.figures import pyplot, save_figure

    shown = [e for e in effects if e.best is not None]
    if not shown:
        raise SupernetError("no sweep has completed runs at its baseline level and another level: nothing to plot")
    plt = pyplot()
    spaces = sorted({e.space for e in shown})
    colours = {s: plt.get_cmap("tab10")(k) for k, s in enumerate(spaces)}
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(shown) + 1.4), constrained_layout=True)
    y = np.arange(len(shown))[::-1]
    for yk, e in zip(y, shown, strict=True):
        best = e.best
        assert best is not None
        ax.barh(yk, best.delta, xerr=0 if np.isnan(best.stderr) else best.stderr, color=colours[e.space],
                capsize=3)
    ax.set_yticks(y, [f"{e.group}: {e.factor} ({e.best.level})" for e in shown if e.best], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("final searched model: best level - baseline (points)")
    for s in spaces:
        ax.barh([], [], color=colours[s], label=s)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
