"""Fig. 8 curves (issue 12.7) from a store with known per-epoch metrics."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from supernet import cli
from supernet.errors import SupernetError
from supernet.report.curves import markdown_curves, sweep_curves
from supernet.store import ResultStore

# level -> seed -> epoch -> (skdt, final_acc)
KNOWN = {
    "0.01": {1: {10: (0.2, 90.0), 20: (0.4, 91.0)}, 2: {10: (0.4, 92.0), 20: (0.6, 93.0)}},
    "0.1": {1: {10: (0.1, 89.0), 20: (0.3, 90.0)}, 2: {10: (0.3, 91.0)}},  # seed 2 evaluated epoch 10 only
}


def _store(tmp_path) -> ResultStore:
    store = ResultStore(tmp_path / "supernet.db")
    plan = []
    for level, seeds in KNOWN.items():
        for seed, epochs in seeds.items():
            run_id = f"lr{level}-s{seed}"
            store.upsert_run(run_id, name="lr", space="nasbench201", seed=seed, config={}, run_dir=str(tmp_path / run_id))
            for epoch, (skdt, final) in epochs.items():
                store.add_evaluation(run_id, epoch=epoch, bn="batch", split="test", n_images=10, batch_size=10,
                                     settings={}, seconds=1.0, archs=[], metrics={"skdt": skdt, "final_acc": final})
            store.add_evaluation(run_id, epoch=20, bn="running", split="test", n_images=10, batch_size=10,
                                 settings={"x": 1}, seconds=1.0, archs=[], metrics={"skdt": -1.0}, kind="manual")
            store.set_status(run_id, "completed")
            plan.append(("lr", level, seed, run_id))
    store.upsert_run("pending-run", name="lr", space="nasbench201", seed=3, config={}, run_dir=str(tmp_path / "p"))
    plan.append(("lr", "0.01", 3, "pending-run"))  # running: does not count
    store.set_sweep("lr", plan)
    return store


def test_curves_average_the_seeds_per_epoch_and_keep_only_epochs_all_seeds_have(tmp_path):
    curves = sweep_curves(_store(tmp_path), "lr")
    assert [c.level for c in curves] == ["0.01", "0.1"] and [c.seeds for c in curves] == [2, 2]
    epochs, mean, lo, hi = curves[0].stats("skdt")
    np.testing.assert_array_equal(epochs, [10, 20])
    np.testing.assert_allclose(mean, [0.3, 0.5])  # manual evaluations (skdt -1) are not training curves
    np.testing.assert_allclose(lo, [0.2, 0.4])
    np.testing.assert_allclose(hi, [0.4, 0.6])
    epochs, mean, _, _ = curves[1].stats("final_acc")
    np.testing.assert_array_equal(epochs, [10])
    np.testing.assert_allclose(mean, [90.0])
    table = markdown_curves(curves)
    assert "| 0.01 | 2 | 20 | 0.500 [0.400, 0.600] | 92.00 [91.00, 93.00] |" in table.replace("%", "")


def test_report_curves_writes_the_figure_and_refuses_without_a_sweep(tmp_path, monkeypatch, capsys):
    _store(tmp_path).close()
    figure = tmp_path / "fig8.png"
    monkeypatch.setattr(sys, "argv", ["supernet", "report", "lr", "--curves", str(figure), "--out-dir", str(tmp_path)])
    cli.main()
    assert figure.stat().st_size > 1000 and "Fig. 8" in capsys.readouterr().out
    with pytest.raises(SupernetError, match="no sweep 'nope' in .*; known: lr"):
        sweep_curves(ResultStore(tmp_path / "supernet.db"), "nope")
    monkeypatch.setattr(sys, "argv", ["supernet", "report", "--curves", str(figure), "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2 and "--curves needs a sweep NAME" in capsys.readouterr().err


def test_pooled_aggregation_averages_per_architecture_and_drops_runs_below_the_floor(tmp_path, monkeypatch, capsys):
    """Issue 12.5: the authors' aggregation by hand on two seeds sharing architecture b."""
    from supernet.evaluate.measures import kendall_tau, sparse_kendall_tau
    from supernet.report.pooled import pooled_levels

    store = ResultStore(tmp_path / "supernet.db")
    pools = {  # run -> (arch, super-net acc, ground truth)
        "s1": [("a", 50.0, 90.0), ("b", 60.0, 91.0), ("c", 70.0, 92.0)],
        "s2": [("b", 80.0, 91.0), ("d", 40.0, 89.0), ("e", 75.0, 93.0)],
        "s3": [("a", 5.0, 90.0), ("f", 10.0, 94.0)],  # mean 7.5 %: not trained, dropped
    }
    for seed, (run_id, rows) in enumerate(pools.items(), 1):
        store.upsert_run(run_id, name="x", space="nasbench201", seed=seed, config={}, run_dir=str(tmp_path / run_id))
        store.add_evaluation(run_id, epoch=1, bn="batch", split="test", n_images=1, batch_size=1, settings={},
                             seconds=0.0, archs=[(k, ws, gt, 1, 1) for k, ws, gt in rows], metrics={"skdt": 0.1 * seed})
        store.set_status(run_id, "completed")
    store.set_sweep("sw", [("lr", "0.1", s, r) for s, r in enumerate(pools, 1)])
    (row,) = pooled_levels(store, "sw", floor=15.0)
    assert row.kept == ("s1", "s2") and row.dropped == ("s3",) and row.archs == 5
    ws = [50.0, 70.0, 70.0, 40.0, 75.0]  # a, b (mean of 60 and 80), c, d, e
    gt = [90.0, 91.0, 92.0, 89.0, 93.0]
    assert row.skdt == pytest.approx(sparse_kendall_tau(np.array(ws), np.array(gt)))
    assert row.kdt == pytest.approx(kendall_tau(np.array(ws), np.array(gt)))
    assert row.per_seed == pytest.approx((0.1, 0.2))
    (all_three,) = pooled_levels(store, "sw", floor=0.0)
    assert all_three.archs == 6 and not all_three.dropped
    store.close()
    monkeypatch.setattr(sys, "argv", ["supernet", "report", "sw", "--pooled", "--out-dir", str(tmp_path)])
    cli.main()
    assert "| 0.1 | 2 | s3 | 5 |" in capsys.readouterr().out
