"""Sweeps of one factor and their reports, at tiny scale through the real runs and store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from supernet.errors import SupernetError
from supernet.experiments.sweep import plan_sweep, run_sweep
from supernet.factors import get_factor
from supernet.report.tables import markdown_table, sweep_rows
from supernet.store import ResultStore

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"


def test_plan_is_seed_major_with_one_run_per_level_and_seed():
    items = plan_sweep(RECIPE, get_factor("lr"), [1, 2], ["protocol.epochs=3"])
    assert [(i.seed, i.level) for i in items[:6]] == [(1, "0.005"), (1, "0.01"), (1, "0.025"), (1, "0.05"),
                                                       (1, "0.15"), (2, "0.005")]
    assert len({i.config.run_id() for i in items}) == 10
    assert all(i.config.protocol.epochs == 3 for i in items)
    assert items[3].config.protocol.lr == 0.05 and items[3].config.seed == 1


def test_low_fidelity_levels_are_compute_matched_unless_asked_not_to():
    items = plan_sweep(RECIPE, get_factor("channels"), [0], ["protocol.epochs=10"])
    assert [(i.config.supernet.channels, i.config.protocol.epochs) for i in items] == [(16, 10), (8, 20), (4, 40)]
    portion = plan_sweep(RECIPE, get_factor("train_portion"), [0], ["protocol.epochs=10"])
    assert [i.config.protocol.epochs for i in portion] == [7, 10, 20]  # recipe portion 0.5
    plain = plan_sweep(RECIPE, get_factor("channels"), [0], ["protocol.epochs=10"], compute_match=False)
    assert {i.config.protocol.epochs for i in plain} == {10}
    assert {i.config.protocol.epochs for i in plan_sweep(RECIPE, get_factor("batch_size"), [0])} == {400}


@pytest.mark.parametrize("overrides, seeds, message", [
    (["protocol.lr=0.1"], [0], "conflicts with the sweep"),
    (["seed=3"], [0], "conflicts with the sweep"),
    ([], [1, 1], "seeds repeat"),
    ([], [], "at least one seed"),
])
def test_plan_refuses_conflicting_input(overrides, seeds, message):
    with pytest.raises(SupernetError, match=message):
        plan_sweep(RECIPE, get_factor("lr"), seeds, overrides)


def test_plan_refuses_a_factor_of_another_space():
    with pytest.raises(SupernetError, match="does not apply to nasbench201"):
        plan_sweep(RECIPE, get_factor("wsbn"), [0])


def test_sweep_and_report_through_the_cli(tiny_overrides, tmp_path):
    out = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("out_dir="))
    cmd = [sys.executable, "-m", "supernet", "sweep", str(RECIPE), "--factor", "op_placement", "--seeds", "0,1",
           *tiny_overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "4/4 runs completed" in res.stdout

    figure = tmp_path / "op.png"
    assert "supernet report nb201-op_placement" in res.stdout
    rep = subprocess.run([sys.executable, "-m", "supernet", "report", "nb201-op_placement", "--out-dir", out,
                          "--figure", str(figure)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    lines = [ln for ln in rep.stdout.splitlines() if ln.startswith("| node") or ln.startswith("| edge")]
    assert len(lines) == 2 and all("| 2/2 |" in ln and " ± " in ln for ln in lines)
    assert figure.read_bytes()[:4] == b"\x89PNG"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # finished runs are skipped
    assert again.returncode == 0 and "4/4 runs completed" in again.stdout and "[1/4]" not in again.stderr


def test_planned_run_ids_are_the_ids_the_runs_get_with_relative_paths(tiny_overrides, tmp_path, monkeypatch):
    from supernet.run import Run

    monkeypatch.chdir(tmp_path)
    relative = [o for o in tiny_overrides if not o.startswith(("out_dir=", "data.root="))]
    data = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("data.root="))
    (tmp_path / "data").symlink_to(data)
    items = plan_sweep(RECIPE, get_factor("op_placement"), [0], [*relative, "data.root=data", "out_dir=runs"])
    planned = [item.config.run_id() for item in items]  # before Run resolves anything in place
    assert [Run(item.config).id for item in items] == planned


def test_a_failing_level_is_recorded_and_the_sweep_goes_on(tiny_overrides, monkeypatch):
    import supernet.run as run_module

    items = plan_sweep(RECIPE, get_factor("op_placement"), [0], tiny_overrides)
    original = run_module.load_data

    def fail_on_edge(cfg, rt):  # fails inside Run.train before the run has a row in the store
        if cfg.supernet.op_placement == "edge":
            raise SupernetError("dataset unreadable")
        return original(cfg, rt)

    monkeypatch.setattr(run_module, "load_data", fail_on_edge)
    store_path = Path(items[0].config.out_dir) / "supernet.db"
    outcomes = run_sweep("placement", get_factor("op_placement"), items, store_path)
    assert [o.status for o in outcomes] == ["completed", "failed"]
    store = ResultStore(store_path)
    rows = sweep_rows(store, "placement")
    assert rows[0].completed == 1 and rows[1].status == {"failed": 1}
    assert store.get_run(items[1].config.run_id()).message == "dataset unreadable"
    table = markdown_table(rows)
    assert "| edge | 0/1 (1 failed) | - |" in table


def test_report_of_an_unknown_sweep_names_the_known_ones(tmp_path):
    store = ResultStore(tmp_path / "supernet.db")
    store.set_sweep("lr", [("lr", "0.01", 0, "nb201-s0-00000000")])
    with pytest.raises(SupernetError, match="no sweep 'lrr'.*known: lr"):
        store.sweep("lrr")
    assert sweep_rows(store, "lr")[0].status == {"pending": 1}


def test_meta_evaluation_correlates_metrics_across_super_nets(tiny_overrides, tmp_path):
    from supernet.report.meta import PAIRS, meta_evaluation

    out = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("out_dir="))
    cmd = [sys.executable, "-m", "supernet", "sweep", str(RECIPE), "--factor", "op_placement", "--seeds", "0,1",
           *tiny_overrides]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600).returncode == 0
    (meta,) = meta_evaluation(ResultStore(Path(out) / "supernet.db"))
    assert meta.space == "nasbench201" and meta.runs == 4
    for a, b in PAIRS:
        rho = meta.spearman(a, b)
        assert rho is None or -1 <= rho <= 1
    figure = tmp_path / "meta.png"
    rep = subprocess.run([sys.executable, "-m", "supernet", "report", "--meta", "--out-dir", out, "--figure",
                          str(figure)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert "| nasbench201 | 4 |" in rep.stdout and "(paper 0.52)" in rep.stdout
    assert figure.read_bytes()[:4] == b"\x89PNG"
