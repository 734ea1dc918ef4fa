"""Sequential tuning of P_ws, the paper's protocol (SPEC 1): batch-norm mode, then learning rate, then
epochs, then weight decay; each factor is swept from the best levels found so far, and the level with
the best final searched model (mean over seeds) is kept for the next.

Every stage is an ordinary sweep (``<name>-<factor>`` in the store), so an interrupted tuning resumes
by running the same command: finished stages re-read their runs and choose the same level. The tuned
result is a plain list of overrides (and, on request, a recipe file) from which the other factors are
then swept one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from supernet.errors import SupernetError
from supernet.evaluate import catalogue
from supernet.experiments.sweep import SweepItem, plan_sweep, run_sweep
from supernet.factors import Level, get_factor
from supernet.report.tables import LevelRow, sweep_rows
from supernet.store import ResultStore

PAPER_ORDER = ("bn", "lr", "epochs", "weight_decay")  # Table 1's P_ws hyper-parameters, in tuning order


def metrics() -> tuple[str, ...]:
    """The metrics a level can be chosen by: the super-net's report columns that have a direction."""
    return tuple(m.name for m in catalogue.METRICS if m.report and m.higher_is_better is not None)


@dataclass(frozen=True)
class TuneStage:
    factor: str
    sweep: str
    rows: list[LevelRow]
    chosen: Level
    score: float


def choose_level(rows: Sequence[LevelRow], levels: Sequence[Level], metric: str, seeds: int) -> tuple[Level, float]:
    """The level with the best mean ``metric`` among those whose every seed completed (a level that
    diverged in one seed is not a safe choice); ties go to the earlier level. "Best" follows the
    catalogue's direction of ``metric`` (highest, unless lower is better)."""
    by_label = {lv.label: lv for lv in levels}
    sign = 1.0 if catalogue.metric(metric).higher_is_better is not False else -1.0
    best: tuple[Level, float] | None = None
    for row in rows:
        ms = row.mean_std(metric)
        if row.completed < seeds or ms is None or len(row.finite(metric)) < seeds:
            continue
        if best is None or sign * ms[0] > sign * best[1]:
            best = (by_label[row.level], ms[0])
    if best is None:
        raise SupernetError(f"no level of '{rows[0].factor}' completed every seed with a finite {metric}; tuning stops")
    return best


def tune(
    recipe: str | Path,
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    *,
    name: str,
    factors: Sequence[str] = PAPER_ORDER,
    metric: str = "final_acc",
    on_stage: Callable[[str, list[SweepItem]], None] | None = None,
    executor: str = "local",
    **executor_options: object,
) -> list[TuneStage]:
    if metric not in metrics():
        raise SupernetError(f"unknown metric '{metric}'; choose from {', '.join(metrics())}")
    if len(set(factors)) != len(factors) or not factors:
        raise SupernetError(f"factors must be a non-empty list without repeats, got {list(factors)}")
    stages: list[TuneStage] = []
    for factor in (get_factor(f) for f in factors):
        items = plan_sweep(recipe, factor, seeds, [*overrides, *tuned_overrides(stages)])
        if on_stage is not None:
            on_stage(factor.name, items)
        store_path = Path(items[0].config.out_dir) / "supernet.db"
        sweep = f"{name}-{factor.name}"
        run_sweep(sweep, factor, items, store_path, executor=executor, **executor_options)
        rows = sweep_rows(ResultStore(store_path), sweep)
        level, score = choose_level(rows, factor.levels_for(items[0].config.space.name), metric, len(seeds))
        stages.append(TuneStage(factor.name, sweep, rows, level, score))
    return stages


def tuned_overrides(stages: Sequence[TuneStage]) -> list[str]:
    return [o for s in stages for o in s.chosen.overrides]


def write_recipe(recipe: str | Path, overrides: Sequence[str], stages: Sequence[TuneStage], path: str | Path) -> None:
    """A recipe file with the tuned levels applied: the starting point of the one-factor sweeps."""
    from supernet.config import load_config

    cfg = load_config(recipe, [*overrides, *tuned_overrides(stages)])
    tree = cfg.model_dump(exclude={"seed", "resume", "progress"})
    header = "".join(f"# {s.factor}: {s.chosen.label} ({s.score:.3f})\n" for s in stages)
    Path(path).write_text(f"# tuned from {recipe} (sequential tuning, supernet tune)\n{header}"
                          + yaml.safe_dump(tree, sort_keys=False))
