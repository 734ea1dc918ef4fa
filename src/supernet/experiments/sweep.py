"""One factor at a time: the recipe, plus each level of one factor, for each seed (the paper's protocol).

A sweep is a plan of ordinary runs. Each run keeps its own deterministic id, so re-running the
same sweep command skips finished runs and resumes an interrupted one; the plan itself is stored
(``sweep_runs``) so a report can tell finished, failed and pending runs apart. The runs are trained
by an executor (``executors.py``: one after another in this process, or as Ray tasks); a failing run is
recorded and the sweep goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from supernet.config import Config, absolute_paths, load_config, parse_override
from supernet.errors import SupernetError
from supernet.experiments.executors import SweepItem, SweepOutcome, run_here, run_on_ray
from supernet.factors import Factor
from supernet.store import ResultStore

__all__ = ["SweepItem", "SweepOutcome", "plan_sweep", "run_sweep"]


def plan_sweep(
    recipe: str | Path,
    factor: Factor,
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    compute_match: bool = True,
) -> list[SweepItem]:
    """Every (level, seed) as a validated config, seed-major so early results cover all levels.

    ``compute_match``: for the low-fidelity factors of Table 2, scale the epochs by the compute a level
    saves (SPEC 6.3: half the channels -> twice the epochs), as the paper does.
    """
    if not seeds:
        raise SupernetError("a sweep needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise SupernetError(f"seeds repeat: {list(seeds)}")
    base = load_config(recipe, list(overrides))
    user_keys = {parse_override(o)[0] for o in overrides}
    levels = factor.levels_for(base.space.name)
    clash = user_keys & {parse_override(o)[0] for lv in levels for o in lv.overrides}
    if clash or "seed" in user_keys:
        raise SupernetError(
            f"override of {', '.join(sorted(clash | ({'seed'} & user_keys)))} conflicts with the sweep "
            f"(factor '{factor.name}' sets it per level; seeds come from --seeds)"
        )
    extra = {lv.label: _matched_epochs(base, factor, lv.overrides) if compute_match else [] for lv in levels}
    items = []
    for seed in seeds:
        recipe_id = absolute_paths(base.model_copy(update={"seed": seed}, deep=True)).run_id()
        for level in levels:
            try:
                # Absolute paths now: the run id hashes them, and the stored plan must name the real runs.
                cfg = absolute_paths(load_config(recipe, [*overrides, *level.overrides, *extra[level.label],
                                                          f"seed={seed}"]))
            except SupernetError as exc:
                raise SupernetError(f"level '{level.label}' of factor '{factor.name}' is not valid here: {exc}") from None
            items.append(SweepItem(level.label, seed, cfg, baseline=cfg.run_id() == recipe_id))
    ids = [i.config.run_id() for i in items]
    if len(set(ids)) != len(ids):
        raise SupernetError(f"two levels of factor '{factor.name}' give the same run with these overrides")
    return items


def _matched_epochs(base: Config, factor: Factor, level_overrides: Sequence[str]) -> list[str]:
    if factor.compute_key is None:
        return []
    section, key = factor.compute_key.split(".")
    base_value = float(getattr(getattr(base, section), key))
    level_value = float(dict(parse_override(o) for o in level_overrides)[factor.compute_key])
    return [f"protocol.epochs={max(1, round(base.protocol.epochs * base_value / level_value))}"]


def run_sweep(
    name: str,
    factor: Factor,
    items: Sequence[SweepItem],
    store_path: Path,
    on_start: Callable[[int, SweepItem, str], None] | None = None,
    executor: str = "local",
    **executor_options: object,
) -> list[SweepOutcome]:
    """Train every planned run that is not complete yet; Ctrl-C stops the sweep (runs resume later).

    ``executor``: ``local`` trains one run after another in this process; ``ray`` trains them as Ray
    tasks (``executors.run_on_ray``), and this process alone writes the store.
    """
    if executor not in ("local", "ray"):
        raise SupernetError(f"unknown executor '{executor}'; expected local or ray")
    store = ResultStore(store_path)
    store.set_sweep(name, [(factor.name, i.level, i.seed, i.config.run_id()) for i in items],
                    baseline=next((i.level for i in items if i.baseline), None))
    done = [SweepOutcome(i, i.config.run_id(), "completed", "already complete") for i in items
            if _finished(store, i.config.run_id(), i.config.protocol.epochs)]
    finished = {o.run_id for o in done}
    todo = [(k, i) for k, i in enumerate(items) if i.config.run_id() not in finished]
    if executor == "local":
        return done + run_here(store, todo, on_start)
    return done + run_on_ray(store, todo, on_start, **executor_options)  # type: ignore[arg-type]


def _finished(store: ResultStore, run_id: str, epochs: int) -> bool:
    try:
        row = store.get_run(run_id)
    except SupernetError:
        return False
    return row.id == run_id and row.status == "completed" and row.epochs_done >= epochs
