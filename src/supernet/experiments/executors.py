"""The Ray executor of a sweep: each run is a Ray task; only the driver writes the results store.

A task trains into its own small store (``OUT_DIR/.workers/RUN_ID.db``, beside the run directories,
so a resumed task finds its earlier rows) and returns the run's exported rows; the driver imports
them into ``supernet.db`` as each task finishes. On a multi-node cluster ``out_dir`` must therefore be
a filesystem every node shares (checkpoints live there too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from supernet.errors import SupernetError
from supernet.experiments.sweep import SweepItem, SweepOutcome
from supernet.store import ResultStore

WORKERS = ".workers"


def train_task(config: dict[str, Any]) -> tuple[str, str, str, dict]:
    """Runs inside a Ray worker: (run id, status, message, exported rows)."""
    from supernet.config import build_config
    from supernet.run import Run

    cfg = build_config(config)
    store = ResultStore(Path(cfg.out_dir) / WORKERS / f"{cfg.run_id()}.db")
    run = Run(cfg, store)
    status, message = "completed", ""
    try:
        run.train()
    except SupernetError as exc:
        status, message = "failed", str(exc)
    return run.id, status, message, store.export_run(run.id)


def run_on_ray(
    store: ResultStore,
    todo: Sequence[tuple[int, SweepItem]],
    on_start: Callable[[int, SweepItem, str], None] | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
) -> list[SweepOutcome]:
    try:
        import ray
    except ImportError:
        raise SupernetError("the ray executor needs Ray: pip install 'supernet[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(train_task)
    pending = {}
    for k, item in todo:
        pending[task.remote(item.config.model_dump())] = item
        if on_start is not None:
            on_start(k, item, item.config.run_id())
    outcomes = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(ready[0])
            try:
                run_id, status, message, rows = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # a crash, not a training result: keep what the task stored
                run_id, status, message = item.config.run_id(), "failed", str(exc).splitlines()[0]
                rows = _rows_left_by(item)
            if rows is not None:
                store.import_run(rows)
            outcomes.append(SweepOutcome(item, run_id, status, message))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return outcomes


def _rows_left_by(item: SweepItem) -> dict | None:
    path = Path(item.config.out_dir) / WORKERS / f"{item.config.run_id()}.db"
    if not path.exists():
        return None
    rows = ResultStore(path).export_run(item.config.run_id())
    return rows if rows["runs"][1] else None
