"""Influence of each factor on the final searched model (the paper's Fig. 10), across every sweep.

A factor's effect is the difference, in accuracy points, between the searched model's mean ground
truth with the factor applied and without it. "Without" is the sweep's baseline level: the level
whose runs are the recipe itself, recorded when the sweep is planned (a sweep whose levels all change
the recipe has none, and is listed without an effect). "Applied" is every other level; the headline
is the best of them, since a factor is worth what its best setting gives (for the low-fidelity
factors this is an upper bound, as in the paper's compute-matched Table 2).

Means are over the completed seeds of each level (the paper uses at least three); the standard error
of a difference adds the two levels' squared standard errors. Read from the store only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.errors import SupernetError
from supernet.factors import BY_NAME, FACTORS
from supernet.report.tables import LevelRow, sweep_rows
from supernet.store import ResultStore

METRIC = "final_acc"
GROUPS = tuple(dict.fromkeys(f.group for f in FACTORS))  # the paper's order of factor groups


@dataclass(frozen=True)
class LevelEffect:
    level: str
    delta: float  # mean over seeds, minus the baseline's mean (accuracy points)
    stderr: float  # nan with a single seed on either side
    seeds: int


@dataclass(frozen=True)
class FactorEffect:
    space: str
    sweep: str
    factor: str
    group: str
    baseline: str | None
    baseline_mean: float | None
    levels: tuple[LevelEffect, ...]

    @property
    def best(self) -> LevelEffect | None:
        return max(self.levels, key=lambda e: e.delta, default=None)


def _stats(row: LevelRow) -> tuple[float, float, int] | None:
    v = row.finite(METRIC)
    if not v:
        return None
    sem = float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(np.mean(v)), sem, len(v)


def sweep_effect(store: ResultStore, sweep: str) -> FactorEffect | None:
    """None for a sweep with no completed run yet (its space is not known from the store)."""
    rows = sweep_rows(store, sweep)
    ids = {run for row in rows for run in row.runs}
    spaces = {r.space for r in store.runs() if r.id in ids and r.status == "completed"}
    if not spaces:
        return None
    baseline = store.sweep_baseline(sweep)
    base_row = next((r for r in rows if r.level == baseline), None)
    base = _stats(base_row) if base_row is not None else None
    levels = []
    for row in rows:
        s = _stats(row)
        if base is None or s is None or row is base_row:
            continue
        levels.append(LevelEffect(row.level, s[0] - base[0], float(np.hypot(s[1], base[1])), s[2]))
    factor = rows[0].factor
    group = BY_NAME[factor].group if factor in BY_NAME else "other"
    return FactorEffect(",".join(sorted(spaces)), sweep, factor, group, baseline,
                        base[0] if base else None, tuple(levels))


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
        others = "; ".join(f"{lv.level}: {lv.delta:+.2f}" for lv in e.levels) or "-"
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
    ax.set_xlabel("final searched model: best level minus baseline (accuracy points)")
    for s in spaces:
        ax.barh([], [], color=colours[s], label=s)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
