"""A Ray worker that dies mid-run: the driver keeps what it stored, marks the run failed, and a re-run
resumes it. Its own module because the workers need a setup hook for the whole (local) Ray session."""

from __future__ import annotations

from pathlib import Path

import pytest

from supernet.experiments.sweep import plan_sweep, run_sweep
from supernet.factors import get_factor
from supernet.store import ResultStore

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"


@pytest.fixture(scope="module")
def crashing_ray():
    ray = pytest.importorskip("ray", reason="the Ray executor needs ray (installed by the dev extra)")
    if ray.is_initialized():
        ray.shutdown()
    hook_dir = str(Path(__file__).resolve().parent)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": hook_dir}, "worker_process_setup_hook": "ray_crash_hook.install"})
    yield ray
    ray.shutdown()


def test_a_dead_worker_leaves_a_failed_run_that_resumes(crashing_ray, tiny_overrides):
    factor = get_factor("op_placement")
    items = plan_sweep(RECIPE, factor, [0], tiny_overrides)
    db = Path(items[0].config.out_dir) / "supernet.db"
    outcomes = run_sweep("crash", factor, items, db, executor="ray")
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all("died" in o.message for o in outcomes), [o.message for o in outcomes]
    store = ResultStore(db)
    for o in outcomes:
        run = store.get_run(o.run_id)
        assert run.status == "failed" and "died" in (run.message or "")  # never left "running"
        assert [e["epoch"] for e in store.epochs(o.run_id)] == [0]  # what the worker stored before it died
    crashing_ray.shutdown()  # the same sweep, locally: each run resumes after its stored epoch
    again = run_sweep("crash", factor, items, db, executor="local")
    assert [o.status for o in again] == ["completed", "completed"]
    assert all([e["epoch"] for e in store.epochs(o.run_id)] == [0, 1] for o in again)
