"""A sweep's table: per level, metrics as mean ± sample std (ddof=1) over seeds, next to the baseline.

The paper reports means over (at least) three seeds; its "±" convention is not stated, so the table
says which std it shows.

Read from the store only (each run's latest evaluation of the training protocol), so a report can be
made while a sweep is still running: unfinished runs are counted, never averaged in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from supernet.config import supervised
from supernet.evaluate import catalogue
from supernet.store import ResultStore


def columns() -> list[tuple[str, str, int]]:
    """(stored metric name, column title, digits): the catalogue's ``report`` metrics, then each
    baseline's ``report_baselines`` metrics (e.g. "params s-KdT", the parameter-count baseline)."""
    cols = [(m.name, m.title, m.digits) for m in catalogue.METRICS if m.report]
    cols += [(b.prefix + m.name, f"{b.title} {m.title}", m.digits)
             for b in catalogue.BASELINES for m in catalogue.METRICS if m.report_baselines]
    return cols


@dataclass
class LevelRow:
    factor: str
    level: str
    runs: list[str] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)
    supervised: bool = False  # a run of the level trained on benchmark labels (config.supervised)

    def finite(self, metric: str) -> list[float]:
        return [x for x in self.values.get(metric, []) if x is not None and np.isfinite(x)]  # None: a stored nan

    def mean_std(self, metric: str) -> tuple[float, float] | None:
        """Mean and sample std (ddof=1; 0 for a single seed) over the completed seeds."""
        v = self.finite(metric)
        if not v:
            return None
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    @property
    def completed(self) -> int:
        return self.status.get("completed", 0)


def sweep_rows(store: ResultStore, sweep: str) -> list[LevelRow]:
    """One row per level, in plan order; only completed runs contribute metrics."""
    rows: dict[str, LevelRow] = {}
    known = {r.id: r for r in store.runs()}
    for factor, level, _seed, run_id in store.sweep(sweep):
        row = rows.setdefault(level, LevelRow(factor, level))
        row.runs.append(run_id)
        status = known[run_id].status if run_id in known else "pending"
        row.status[status] = row.status.get(status, 0) + 1
        if run_id in known and supervised(known[run_id].config):
            row.supervised = True
        if status != "completed":
            continue
        metrics = store.latest_metrics(run_id)
        for name, _, _ in columns():
            if name in metrics:
                row.values.setdefault(name, []).append(metrics[name])
    return list(rows.values())


def _cell(row: LevelRow, metric: str, digits: int) -> str:
    ms = row.mean_std(metric)
    if ms is None:
        return "-"
    mean, std = ms
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(row.finite(metric)) > 1 else f"{mean:.{digits}f}"


def markdown_table(rows: list[LevelRow]) -> str:
    cols = columns()
    head = ["level", "runs", *(title for _, title, _ in cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        others = {k: v for k, v in r.status.items() if k != "completed"}
        runs = f"{r.completed}/{len(r.runs)}" + (" (" + ", ".join(f"{v} {k}" for k, v in sorted(others.items())) + ")"
                                                  if others else "")
        level = r.level + (" (supervised)" if r.supervised else "")
        lines.append("| " + " | ".join([level, runs, *(_cell(r, m, d) for m, _, d in cols)]) + " |")
    return "\n".join(lines)
