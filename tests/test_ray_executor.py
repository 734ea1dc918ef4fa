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


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray executor needs ray (installed by the dev extra)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_sweep_on_ray_trains_in_tasks_and_the_driver_stores_the_results(ray_cluster, tiny_overrides):
    # The tiny train split (150 images) cannot fill a batch of 256: that level fails before its run has
    # a row; the others train in tasks.
    overrides = [o for o in tiny_overrides if not o.startswith("protocol.batch_size=")]
    items = plan_sweep(RECIPE, get_factor("batch_size"), [0], overrides)
    out = Path(items[0].config.out_dir)
    outcomes = run_sweep("batch", get_factor("batch_size"), items, out / "supernet.db", executor="ray")
    assert {o.item.level: o.status for o in outcomes} == {"256": "failed", "128": "completed", "64": "completed"}
    store = ResultStore(out / "supernet.db")
    rows = sweep_rows(store, "batch")
    assert [r.completed for r in rows] == [0, 1, 1] and rows[0].status == {"failed": 1}
    assert "do not fill one batch" in store.get_run(items[0].config.run_id()).message
    for item in items[1:]:
        run_id = item.config.run_id()
        assert store.get_run(run_id).epochs_done == item.config.protocol.epochs
        assert (out / run_id / "checkpoint.pt").exists()
    done = run_sweep("batch", get_factor("batch_size"), items[1:], out / "supernet.db", executor="ray")
    assert all(o.message == "already complete" for o in done)  # nothing resubmitted


def test_a_run_interrupted_locally_finishes_on_ray_with_its_history(ray_cluster, tiny_overrides,
                                                                   interrupt_second_epoch):
    items = plan_sweep(RECIPE, get_factor("op_placement"), [0], tiny_overrides)[:1]
    out = Path(items[0].config.out_dir)
    undo = interrupt_second_epoch()
    with pytest.raises(KeyboardInterrupt):
        run_sweep("resume", get_factor("op_placement"), items, out / "supernet.db")
    undo()
    store = ResultStore(out / "supernet.db")
    run_id = items[0].config.run_id()
    assert store.get_run(run_id).status == "interrupted" and len(store.epochs(run_id)) == 1

    outcomes = run_sweep("resume", get_factor("op_placement"), items, out / "supernet.db", executor="ray")
    assert [o.status for o in outcomes] == ["completed"]
    assert [e["epoch"] for e in store.epochs(run_id)] == [0, 1]  # the local epoch kept, the rest from Ray
    assert [e["epoch"] for e in store.evaluations(run_id)] == [1, 2]
