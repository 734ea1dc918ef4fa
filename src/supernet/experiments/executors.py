"""The executors of a sweep, and the types they share with it (``sweep.py`` plans, these train).

``run_here`` (``--executor local``) trains the planned runs one after another in this process.

``run_on_ray`` makes each run a Ray task; only the driver writes the results store. A task starts a
small store of its own (``OUT_DIR/.workers/RUN_ID.db``) from the rows the driver holds for that run (so
a run begun locally, or by an earlier task, keeps its history), trains, and returns the run's rows; the
driver imports them into ``supernet.db`` as tasks finish. Checkpoints and these stores live under
``out_dir``, so on a multi-node cluster it must be a filesystem every node shares, and every node
needs ``supernet`` installed (Ray sends the task by reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernet.config import Config
from supernet.errors import SupernetError
from supernet.store import ResultStore

WORKERS = ".workers"
Rows = dict[str, tuple[list[str], list[list[Any]]]]


@dataclass(frozen=True)
class SweepItem:
    level: str
    seed: int
    config: Config
    baseline: bool = False  # this level leaves the recipe unchanged: the "without" of the factor's effect


@dataclass
class SweepOutcome:
    item: SweepItem
    run_id: str
    status: str  # completed | failed
    message: str = ""


OnStart = Callable[[int, SweepItem, str], None]


def record_failure(store: ResultStore, item: SweepItem, message: str) -> None:
    """Mark the run failed in the store, creating its row if it failed before it had one, so a report
    never shows a failed run as pending (nor a crashed one as running)."""
    cfg, run_id = item.config, item.config.run_id()
    try:
        exists = store.get_run(run_id).id == run_id
    except SupernetError:
        exists = False
    if not exists:
        store.upsert_run(run_id, name=cfg.name, space=cfg.space.name, seed=cfg.seed, config=cfg.model_dump(),
                         run_dir=str(Path(cfg.out_dir) / run_id))
    store.set_status(run_id, "failed", message)


def run_here(
    store: ResultStore, todo: Sequence[tuple[int, SweepItem]], on_start: OnStart | None = None
) -> list[SweepOutcome]:
    """The local executor: train each run in this process, one after another."""
    return [_train_here(store, k, item, on_start) for k, item in todo]


def _train_here(store: ResultStore, k: int, item: SweepItem, on_start: OnStart | None) -> SweepOutcome:
    from supernet.run import Run

    if on_start is not None:
        on_start(k, item, item.config.run_id())
    try:
        Run(item.config, store).train()
        return SweepOutcome(item, item.config.run_id(), "completed")
    except Exception as exc:  # a diverging learning rate, a bad level, an OOM: a result, the sweep goes on
        message = str(exc) or type(exc).__name__
        record_failure(store, item, message)
        return SweepOutcome(item, item.config.run_id(), "failed", message)


def worker_store_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / WORKERS / f"{run_id}.db"


def train_task(config: dict[str, Any], planned_id: str, history: Rows | None) -> tuple[str, str, Rows | None]:
    """Runs inside a Ray worker: (status, message, the run's rows or None if it never got a row)."""
    from supernet.config import build_config
    from supernet.run import Run

    cfg = build_config(config)
    if cfg.run_id() != planned_id:
        return "failed", f"this node resolves the run as {cfg.run_id()}, not {planned_id}: paths differ", None
    path = worker_store_path(cfg.out_dir, planned_id)
    path.unlink(missing_ok=True)  # always start from the driver's rows, never from a stale copy
    store = ResultStore(path)
    if history is not None:
        store.import_run(history)
    status, message = "completed", ""
    try:
        Run(cfg, store).train()
    except Exception as exc:
        status, message = "failed", str(exc) or type(exc).__name__
    rows = store.export_run(planned_id)
    return status, message, rows if rows["runs"][1] else None


def run_on_ray(
    store: ResultStore,
    todo: Sequence[tuple[int, SweepItem]],
    on_start: OnStart | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
) -> list[SweepOutcome]:
    try:
        import ray
    except ImportError:
        raise SupernetError("the ray executor needs Ray: pip install 'supernet[ray]' (or pip install ray)") from None
    if not todo:
        return []
    configs = _task_configs([item for _, item in todo], gpus_per_run)
    _warm_data_cache(todo[0][1])
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    if gpus_per_run > 0 and ray.cluster_resources().get("GPU", 0) < gpus_per_run:
        raise SupernetError(f"--gpus-per-run {gpus_per_run}, but the Ray cluster has "
                            f"{ray.cluster_resources().get('GPU', 0)} GPUs")
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(train_task)
    pending = {}
    for (k, item), config in zip(todo, configs, strict=True):
        run_id = item.config.run_id()
        history = store.export_run(run_id)
        pending[task.remote(config, run_id, history if history["runs"][1] else None)] = item
        if on_start is not None:
            on_start(k, item, run_id)
    outcomes = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(ready[0])
            try:
                status, message, rows = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # the worker died: keep what it stored, mark it failed
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                status, message = "failed", lines[-1] if lines else type(exc).__name__
                rows = _rows_left_by(item)
            if rows is not None:
                store.import_run(rows)
            if status != "completed":
                record_failure(store, item, message)
            outcomes.append(SweepOutcome(item, item.config.run_id(), status, message))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return outcomes


def _task_configs(items: list[SweepItem], gpus_per_run: float) -> list[dict[str, Any]]:
    """Without GPUs per task, Ray may hide every GPU or show all of them to every task: train on the CPU."""
    configs = []
    for item in items:
        config = item.config.model_dump()
        if gpus_per_run == 0:
            if config["device"] == "cuda":
                raise SupernetError("device=cuda in a Ray sweep needs --gpus-per-run (e.g. 1)")
            config["device"] = "cpu"  # not part of the run id
        configs.append(config)
    return configs


def _warm_data_cache(item: SweepItem) -> None:
    """Decode (or download) the dataset once here, so tasks read the cache instead of racing to write it."""
    from supernet.data.setup import load_dataset

    load_dataset(item.config)


def _rows_left_by(item: SweepItem) -> Rows | None:
    path = worker_store_path(item.config.out_dir, item.config.run_id())
    if not path.exists():
        return None
    rows = ResultStore(path).export_run(item.config.run_id())
    return rows if rows["runs"][1] else None
