"""Meta-evaluation (the paper's Fig. 4): across every trained super-net of a space, how well do its
metrics predict each other? Spearman correlation of (super-net accuracy, final searched model),
(s-KdT, final searched model) and (super-net accuracy, s-KdT).

The paper's point: super-net accuracy is a poor proxy of what a super-net is for (finding good
architectures), s-KdT a better one. Read from the store only: each completed run's latest evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from supernet.evaluate import catalogue
from supernet.store import ResultStore

PAIRS = (("acc_mean", "final_acc"), ("skdt", "final_acc"), ("acc_mean", "skdt"))
TITLES = {name: catalogue.metric(name).title for name in dict.fromkeys(n for pair in PAIRS for n in pair)}
MIN_RUNS = 3  # fewer points make a rank correlation meaningless


@dataclass
class SpaceMeta:
    space: str
    values: dict[str, list[float]] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return len(self.values.get("final_acc", []))

    def points(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(self.values.get(a, []), float), np.asarray(self.values.get(b, []), float)
        keep = np.isfinite(x) & np.isfinite(y)
        return x[keep], y[keep]

    def spearman(self, a: str, b: str) -> float | None:
        x, y = self.points(a, b)
        if len(x) < MIN_RUNS or np.ptp(x) == 0 or np.ptp(y) == 0:
            return None
        return float(stats.spearmanr(x, y).statistic)


def meta_evaluation(store: ResultStore) -> list[SpaceMeta]:
    spaces: dict[str, SpaceMeta] = {}
    for run in store.runs():
        if run.status != "completed":
            continue
        metrics = store.latest_metrics(run.id)
        if not all(k in metrics for k in TITLES):
            continue
        meta = spaces.setdefault(run.space, SpaceMeta(run.space))
        for k in TITLES:
            meta.values.setdefault(k, []).append(metrics[k])
    return sorted(spaces.values(), key=lambda m: m.space)


def _paper(space: str) -> tuple[float, ...] | None:
    """Fig. 4 of the paper for the same three pairs, as the space's plug-in records it."""
    from supernet.errors import SupernetError
    from supernet.registry import get_space

    try:
        return get_space(space).paper.get("meta")
    except SupernetError:  # a run of a space whose plug-in is not registered now
        return None


def markdown_meta(rows: list[SpaceMeta]) -> str:
    head = ["space", "super-nets", *(f"{TITLES[a]} vs {TITLES[b]}" for a, b in PAIRS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in rows:
        paper = _paper(m.space)
        cells = []
        for k, (a, b) in enumerate(PAIRS):
            rho = m.spearman(a, b)
            ours = "-" if rho is None else f"{rho:.2f}"
            cells.append(f"{ours} (paper {paper[k]:.2f})" if paper else ours)
        lines.append("| " + " | ".join([m.space, str(m.runs), *cells]) + " |")
    return "\n".join(lines)


def plot_meta(rows: list[SpaceMeta], path: str) -> None:
    from supernet.report.figures import pyplot, save_figure

    fig, axes = pyplot().subplots(1, len(PAIRS), figsize=(4.2 * len(PAIRS), 3.4), constrained_layout=True)
    for ax, (a, b) in zip(axes, PAIRS, strict=True):
        for m in rows:
            x, y = m.points(a, b)
            rho = m.spearman(a, b)
            ax.scatter(x, y, s=14, label=f"{m.space} (ρ={'-' if rho is None else f'{rho:.2f}'})")
        ax.set_xlabel(TITLES[a])
        ax.set_ylabel(TITLES[b])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)
