"""A sweep's figure in the paper's style: s-KdT and final searched model per level, mean ± std over seeds.

matplotlib is imported lazily with the Agg backend, so reports render on headless machines and the
rest of the package never pays for the import.
"""

from __future__ import annotations

from pathlib import Path

from supernet.errors import SupernetError
from supernet.report.tables import LevelRow

PANELS = (("skdt", "sparse Kendall-Tau"), ("final_acc", "final searched model (%)"))


def plot_sweep(rows: list[LevelRow], path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(r.completed for r in rows):
        raise SupernetError("no completed run in this sweep yet: nothing to plot")
    path = Path(path)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.5 * len(PANELS), 3.4), constrained_layout=True)
    x = range(len(rows))
    for ax, (metric, label) in zip(axes, PANELS, strict=True):
        stats = [r.mean_std(metric) for r in rows]
        means = [s[0] if s else float("nan") for s in stats]
        stds = [s[1] if s else 0.0 for s in stats]
        ax.errorbar(x, means, yerr=stds, fmt="o-", capsize=4)
        if metric == "skdt":
            base = [r.mean_std("params/skdt") for r in rows]
            ax.plot(x, [b[0] if b else float("nan") for b in base], "k--", lw=1, label="parameter count")
            ax.legend(loc="best", fontsize=8)
        ax.set_xticks(list(x), [r.level for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
