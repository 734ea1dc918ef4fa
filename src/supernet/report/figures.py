"""Figures in the paper's style: a sweep's s-KdT and final searched model per level (mean ± std over
seeds), one run's pool (Fig. 6: super-net accuracies per BN mode, and against the ground truth), and
loss landscapes side by side (Fig. 7).

matplotlib is imported lazily with the Agg backend, so reports render on headless machines and the
rest of the package never pays for the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from supernet.errors import SupernetError
from supernet.evaluate import catalogue
from supernet.report.tables import LevelRow

if TYPE_CHECKING:
    from supernet.evaluate.landscape import Landscape

PANELS = ("skdt", "final_acc")  # metrics of the catalogue; each baseline measured on one is drawn beside it


def pyplot():  # noqa: ANN202 - matplotlib stays a lazy, headless import
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, title: str = "") -> Path:  # noqa: ANN001 - a matplotlib Figure
    path = Path(path)
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


def plot_pool(evaluations: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path, title: str = "",
              baseline: tuple[str, np.ndarray, np.ndarray] | None = None) -> Path:
    """``(label, super-net accuracies, ground truth)`` per evaluation of one pool: a histogram of the
    super-net accuracies (with tracked running statistics many sit near chance, Fig. 6) and a scatter
    against the ground truth; ``baseline`` ``(label, scores, ground truth)`` adds the strongest training-free
    baseline's scatter beside it, the comparison every evaluation is judged by."""
    if not evaluations:
        raise SupernetError("no evaluation to plot")
    plt = pyplot()
    panels = 3 if baseline is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.4), constrained_layout=True)
    hist, scatter = axes[0], axes[1]
    bins = np.linspace(0, 100, 41)
    for label, ws, gt in evaluations:
        hist.hist(ws, bins=bins, alpha=0.55, label=label)
        scatter.scatter(gt, ws, s=10, alpha=0.7, label=label)
    hist.set_xlabel("super-net accuracy (%)")
    hist.set_ylabel("architectures")
    scatter.set_xlabel("ground-truth accuracy (%)")
    scatter.set_ylabel("super-net accuracy (%)")
    if baseline is not None:
        label, scores, gt = baseline
        axes[2].scatter(gt, scores, s=10, alpha=0.7, color="tab:gray", label=label)
        axes[2].set_xlabel("ground-truth accuracy (%)")
        axes[2].set_ylabel("baseline score")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path, title)


def plot_sweep(rows: list[LevelRow], path: str | Path, title: str = "") -> Path:
    plt = pyplot()
    if not any(r.completed for r in rows):
        raise SupernetError("no completed run in this sweep yet: nothing to plot")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.5 * len(PANELS), 3.4), constrained_layout=True)
    x = range(len(rows))
    for ax, metric in zip(axes, PANELS, strict=True):
        stats = [r.mean_std(metric) for r in rows]
        means = [s[0] if s else float("nan") for s in stats]
        stds = [s[1] if s else 0.0 for s in stats]
        ax.errorbar(x, means, yerr=stds, fmt="o-", capsize=4)
        styles = iter(("--", ":", "-.") * len(catalogue.BASELINES))
        for b in catalogue.BASELINES:
            base = [r.mean_std(b.prefix + metric) for r in rows]
            if any(base):
                ax.plot(x, [v[0] if v else float("nan") for v in base], "k" + next(styles), lw=1, label=b.description)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
        ax.set_xticks(list(x), [r.level for r in rows], rotation=20, ha="right", fontsize=8)
        m = catalogue.metric(metric)
        ax.set_ylabel(m.title + (f" ({m.unit})" if m.unit else ""))
        ax.grid(alpha=0.3)
    return save_figure(fig, path, title)


def plot_landscapes(panels: Sequence[tuple[str, Landscape]], path: str | Path, title: str = "") -> Path:
    """Contours of each landscape side by side, on the same loss levels so their shapes compare."""
    plt = pyplot()
    lo = min(float(ls.loss.min()) for _, ls in panels)
    hi = max(float(ls.loss.max()) for _, ls in panels)
    levels = np.geomspace(max(lo, 1e-3), max(hi, lo * 1.01, 1e-3 * 1.01), 25)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), constrained_layout=True,
                             squeeze=False)
    for ax, (label, ls) in zip(axes[0], panels, strict=True):
        cs = ax.contour(ls.coords, ls.coords, ls.loss.T, levels=levels, cmap="viridis")
        ax.clabel(cs, fontsize=6, fmt="%.2f")
        ax.plot(0, 0, "k+")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("direction 1")
        ax.set_ylabel("direction 2")
    return save_figure(fig, path, title)
