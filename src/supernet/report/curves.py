"""Fig. 8: how a sweep's levels evolve over training, from the evaluations stored every
``evaluation.every`` epochs: s-KdT and the final searched model against the epoch, one line per level
(the mean over its seeds), the seeds' spread as a band.

A level's line only covers epochs every one of its completed seeds has evaluated, so a band never mixes
two seeds at one epoch with three at the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from supernet.errors import SupernetError
from supernet.evaluate import catalogue
from supernet.store import ResultStore

CURVE_METRICS = ("skdt", "final_acc")


@dataclass
class Curve:
    level: str
    seeds: int = 0
    # metric -> epoch -> one value per seed
    values: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def epochs(self, metric: str) -> list[int]:
        return sorted(e for e, v in self.values.get(metric, {}).items() if len(v) == self.seeds)

    def stats(self, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(epochs, mean, min, max) over the seeds, at the epochs all seeds have."""
        epochs = self.epochs(metric)
        rows = [np.asarray(self.values[metric][e], dtype=float) for e in epochs]
        mean = np.array([r.mean() for r in rows])
        return np.array(epochs), mean, np.array([r.min() for r in rows]), np.array([r.max() for r in rows])


def sweep_curves(store: ResultStore, sweep: str) -> list[Curve]:
    """One curve per level of ``sweep``, in plan order, from its completed runs' training evaluations (the
    newest evaluation of each epoch)."""
    plan = store.sweep(sweep)  # an unknown name is refused there, naming the known sweeps
    known = {r.id: r for r in store.runs()}
    curves: dict[str, Curve] = {}
    for _factor, level, _seed, run_id in plan:
        curve = curves.setdefault(level, Curve(level))
        if run_id not in known or known[run_id].status != "completed":
            continue
        by_epoch = {e["epoch"]: e["metrics"] for e in store.evaluations(run_id) if e["kind"] == "train"}
        if not by_epoch:
            continue
        curve.seeds += 1
        for metric in CURVE_METRICS:
            for epoch, m in by_epoch.items():
                value = m.get(metric)
                if value is not None and np.isfinite(value):
                    curve.values.setdefault(metric, {}).setdefault(epoch, []).append(float(value))
    out = [c for c in curves.values() if c.seeds]
    if not out:
        raise SupernetError(f"sweep '{sweep}' has no completed run with evaluations yet")
    return out


def markdown_curves(curves: list[Curve]) -> str:
    lines = ["| level | seeds | epoch | " + " | ".join(catalogue.metric(m).title + " (mean [min, max])"
                                                      for m in CURVE_METRICS) + " |",
             "|" + "---|" * (3 + len(CURVE_METRICS))]
    for c in curves:
        stats = {m: c.stats(m) for m in CURVE_METRICS}
        epochs = sorted(set().union(*(set(s[0].tolist()) for s in stats.values())))
        for epoch in epochs:
            cells = []
            for m in CURVE_METRICS:
                e, mean, lo, hi = stats[m]
                hit = np.flatnonzero(e == epoch)
                fmt = catalogue.metric(m).format
                cells.append(f"{fmt(mean[hit[0]])} [{fmt(lo[hit[0]])}, {fmt(hi[hit[0]])}]" if len(hit) else "-")
            lines.append(f"| {c.level} | {c.seeds} | {epoch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(curves: list[Curve], path: str | Path, title: str = "") -> Path:
    from supernet.report.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4.8 * len(CURVE_METRICS), 3.5), constrained_layout=True)
    for ax, metric in zip(axes, CURVE_METRICS, strict=True):
        for c in curves:
            epochs, mean, lo, hi = c.stats(metric)
            if not len(epochs):
                continue
            (line,) = ax.plot(epochs, mean, "o-", ms=3, label=f"{c.level} (n={c.seeds})")
            if c.seeds > 1:
                ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        m = catalogue.metric(metric)
        ax.set_xlabel("epoch")
        ax.set_ylabel(m.title + (f" ({m.unit})" if m.unit else ""))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path, title)
