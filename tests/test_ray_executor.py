"""Moving runs between stores, and sweeps as Ray tasks with the driver as the only store writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from supernet.config import load_config
from supernet.experiments.sweep import plan_sweep, run_sweep
from supernet.factors import get_factor
from supernet.report.tables import sweep_rows
from supernet.run import Run
from supernet.store import ResultStore

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"


def _content(store: ResultStore, run_id: str) -> tuple:
    evals = store.evaluations(run_id)
    return (
        store.get_run(run_id).status,
        store.epochs(run_id),
        store.pool(run_id),
        [(e["epoch"], e["bn"], e["kind"], e["metrics"]) for e in evals],
        [store.arch_results(e["id"]) for e in evals],
    )


def test_a_run_exported_and_imported_is_the_same_run(tiny_overrides, tmp_path):
    run = Run(load_config(RECIPE, tiny_overrides))
    run.train()
    other = ResultStore(tmp_path / "other.db")
    other.set_sweep("keep", [("lr", "0.1", 0, "unrelated")])
    assert other.import_run(run.store.export_run(run.id)) == run.id
    other.import_run(run.store.export_run(run.id))  # importing again replaces, never duplicates
    assert _content(other, run.id) == _content(run.store, run.id)
    assert other.latest_metrics(run.id) == run.store.latest_metrics(run.id)
    assert other.sweep("keep")  # other rows untouched


def test_sweep_on_ray_trains_in_tasks_and_the_driver_stores_the_results(tiny_overrides):
    ray = pytest.importorskip("ray", reason="the Ray executor needs ray (installed by the dev extra)")
    items = plan_sweep(RECIPE, get_factor("op_placement"), [0], tiny_overrides)
    out = Path(items[0].config.out_dir)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcomes = run_sweep("placement", get_factor("op_placement"), items, out / "supernet.db", executor="ray")
    finally:
        ray.shutdown()
    assert sorted(o.status for o in outcomes) == ["completed", "completed"]
    store = ResultStore(out / "supernet.db")
    rows = sweep_rows(store, "placement")
    assert [r.completed for r in rows] == [1, 1] and all(r.mean_std("skdt") for r in rows)
    for item in items:
        run_id = item.config.run_id()
        assert store.get_run(run_id).epochs_done == item.config.protocol.epochs
        assert (out / ".workers" / f"{run_id}.db").exists() and (out / run_id / "checkpoint.pt").exists()
    again = run_sweep("placement", get_factor("op_placement"), items, out / "supernet.db", executor="ray")
    assert all(o.message == "already complete" for o in again)  # nothing resubmitted, Ray not even started
