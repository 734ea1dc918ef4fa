"""Sweeps of one factor and their reports, at tiny scale through the real runs and store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
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

    effects = subprocess.run([sys.executable, "-m", "supernet", "report", "--factors", "--out-dir", out],
                             capture_output=True, text=True, timeout=120)
    assert effects.returncode == 0, effects.stderr
    (line,) = [ln for ln in effects.stdout.splitlines() if "(nb201-op_placement)" in ln]
    assert "| nasbench201 | f_ws implementation | op_placement (nb201-op_placement) | node |" in line
    assert "| edge | " in line and " ± " in line
    both = subprocess.run([sys.executable, "-m", "supernet", "report", "nb201-op_placement", "--factors",
                           "--out-dir", out], capture_output=True, text=True, timeout=120)
    assert both.returncode == 2 and "give one of" in both.stderr

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


def _spearman_by_hand(x: list[float], y: list[float]) -> float:
    """Pearson correlation of average ranks (ties share the mean of their positions)."""

    def ranks(v: list[float]) -> np.ndarray:
        order = sorted(v)
        return np.array([np.mean([i for i, w in enumerate(order) if w == u]) for u in v])

    rx, ry = ranks(x) - ranks(x).mean(), ranks(y) - ranks(y).mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def test_spearman_by_hand_is_right():
    assert _spearman_by_hand([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)  # 1 - 6 * 2 / 60
    assert _spearman_by_hand([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)


def test_meta_evaluation_correlates_metrics_across_super_nets(tiny_overrides, tmp_path):
    from supernet.report.meta import PAIRS, meta_evaluation

    out = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("out_dir="))
    cmd = [sys.executable, "-m", "supernet", "sweep", str(RECIPE), "--factor", "op_placement", "--seeds", "0,1",
           *tiny_overrides]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600).returncode == 0
    store = ResultStore(Path(out) / "supernet.db")
    (meta,) = meta_evaluation(store)
    assert meta.space == "nasbench201" and meta.runs == 4
    # Expected by hand from what the store holds: each completed run's newest training evaluation.
    runs = [r for r in store.runs() if r.status == "completed"]
    assert len(runs) == 4
    latest = [store.latest_metrics(r.id) for r in runs]
    expected = {}
    for a, b in PAIRS:
        x, y = [m[a] for m in latest], [m[b] for m in latest]
        expected[(a, b)] = None if len(set(x)) == 1 or len(set(y)) == 1 else _spearman_by_hand(x, y)
        rho = meta.spearman(a, b)
        if expected[(a, b)] is None:
            assert rho is None, (a, b)
        else:
            assert rho == pytest.approx(expected[(a, b)], abs=1e-12), (a, b)
    assert any(v is not None for v in expected.values())  # at least one correlation is really checked
    figure = tmp_path / "meta.png"
    rep = subprocess.run([sys.executable, "-m", "supernet", "report", "--meta", "--out-dir", out, "--figure",
                          str(figure)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert "| nasbench201 | 4 |" in rep.stdout and "(paper 0.52)" in rep.stdout
    cells = [c.strip() for c in next(ln for ln in rep.stdout.splitlines() if ln.startswith("| nasbench201")).split("|")]
    shown = [c.split(" (paper")[0] for c in cells[3:6]]
    assert shown == ["-" if expected[p] is None else f"{expected[p]:.2f}" for p in PAIRS]
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_meta_evaluation_reads_each_completed_runs_headline(tmp_path):
    """Known metrics in a hand-made store: only completed runs count, each with its newest training
    evaluation (not a later re-evaluation, not an earlier epoch)."""
    from supernet.report.meta import meta_evaluation

    store = ResultStore(tmp_path / "supernet.db")

    def evaluation(run_id: str, epoch: int, metrics: dict[str, float], kind: str = "train") -> None:
        store.add_evaluation(run_id, epoch=epoch, bn="batch", split="test", n_images=1, batch_size=1, settings={},
                             seconds=0.0, archs=[], metrics=metrics, kind=kind)

    # acc_mean, skdt, final_acc: rank orders 1234, 4321, 1324, not linear (Pearson would differ).
    headline = [(1.0, 0.9, 10.0), (2.0, 0.5, 35.0), (3.0, 0.4, 20.0), (4.0, 0.0, 90.0)]
    for i, (acc, skdt, final) in enumerate(headline):
        run_id = f"r{i}"
        store.upsert_run(run_id, name="t", space="nasbench201", seed=i, config={}, run_dir="/nowhere")
        evaluation(run_id, 1, {"acc_mean": 99.0 - i, "skdt": 0.0, "final_acc": 0.0})  # an earlier epoch
        evaluation(run_id, 2, {"acc_mean": acc, "skdt": skdt, "final_acc": final})
        evaluation(run_id, 2, {"acc_mean": -acc, "skdt": -skdt, "final_acc": 50.0 - final}, kind="manual")
        store.set_status(run_id, "completed")
    store.upsert_run("failed", name="t", space="nasbench201", seed=9, config={}, run_dir="/nowhere")
    evaluation("failed", 1, {"acc_mean": 100.0, "skdt": 100.0, "final_acc": 0.0})
    store.set_status("failed", "failed", "diverged")

    (meta,) = meta_evaluation(store)
    assert meta.runs == 4
    assert meta.spearman("acc_mean", "final_acc") == pytest.approx(0.8)  # ranks 1234 vs 1324: 1 - 6 * 2 / 60
    assert meta.spearman("skdt", "final_acc") == pytest.approx(-0.8)
    assert meta.spearman("acc_mean", "skdt") == pytest.approx(-1.0)


def test_plan_marks_the_level_that_is_the_recipe_itself():
    lr = plan_sweep(RECIPE, get_factor("lr"), [1, 2], ["protocol.epochs=3"])
    assert [(i.seed, i.level) for i in lr if i.baseline] == [(1, "0.025"), (2, "0.025")]
    channels = plan_sweep(RECIPE, get_factor("channels"), [0], ["protocol.epochs=10"])  # compute-matched
    assert [i.level for i in channels if i.baseline] == ["16"]
    # The recipe tracks running statistics but evaluates with batch statistics: no level is the recipe.
    assert not any(i.baseline for i in plan_sweep(RECIPE, get_factor("bn"), [0]))


def _completed_run(store: ResultStore, run_id: str, space: str, final_acc: float) -> None:
    store.upsert_run(run_id, name="t", space=space, seed=0, config={}, run_dir="/nowhere")
    store.add_evaluation(run_id, epoch=1, bn="batch", split="test", n_images=1, batch_size=1, settings={},
                         seconds=0.0, archs=[], metrics={"final_acc": final_acc})
    store.set_status(run_id, "completed")


def test_factor_effects_are_per_seed_differences_to_the_baseline(tmp_path):
    from supernet.report.effects import factor_effects, markdown_effects, plot_effects

    store = ResultStore(tmp_path / "supernet.db")
    finals = {("0.01", 0): 90.0, ("0.01", 1): 92.0, ("0.025", 0): 93.0, ("0.025", 1): 93.5, ("0.05", 0): 93.5}
    for (level, seed), acc in finals.items():
        _completed_run(store, f"lr-{level}-{seed}", "nasbench201", acc)
    store.upsert_run("lr-0.05-1", name="t", space="nasbench201", seed=1, config={}, run_dir="/nowhere")  # running
    store.set_sweep("nb201-lr", [("lr", lv, s, f"lr-{lv}-{s}") for lv in ("0.01", "0.025", "0.05") for s in (0, 1)],
                    baseline="0.025")
    _completed_run(store, "bn-a", "nasbench201", 80.0)
    store.set_sweep("nb201-bn", [("bn", "tracked running statistics", 0, "bn-a")])  # no level is the recipe
    store.set_sweep("nb101-lr", [("lr", "0.025", 0, "never-trained")], baseline="0.025")  # no completed run

    bn, lr = factor_effects(store)  # by factor within the P_ws group; the sweep without a run is left out
    assert (bn.factor, bn.baseline, bn.levels, bn.best) == ("bn", None, (), None)
    assert lr.space == "nasbench201" and lr.baseline == "0.025" and lr.baseline_mean == 93.25
    low, high = lr.levels
    assert (low.level, low.delta, low.seeds) == ("0.01", -2.25, 2)
    assert low.stderr == pytest.approx(0.75)  # paired by seed: differences -3 and -1.5
    assert (high.level, high.delta, high.seeds) == ("0.05", 0.5, 1) and np.isnan(high.stderr)  # seed 0 only
    assert lr.best == high
    table = markdown_effects([bn, lr])
    assert "| lr (nb201-lr) | 0.025 | 93.25 | 0.05 | +0.50 | 0.01: -2.25 (n=2); 0.05: +0.50 (n=1) |" in table
    assert "| bn (nb201-bn) | none recorded | - | - | - | - |" in table
    assert factor_effects(store, "nasbench101") == []
    figure = tmp_path / "effects.png"
    plot_effects([bn, lr], str(figure))
    assert figure.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SupernetError, match="nothing to plot"):
        plot_effects([bn], str(figure))


def test_factor_effects_against_the_random_nas_reference_and_table4(tmp_path, monkeypatch, capsys):
    """Issue 12.3 / 12.8: every level (the recipe's too) against the space's named Random-NAS runs."""
    import sys

    from supernet import cli
    from supernet.report.effects import REFERENCE_LABEL, factor_effects
    from supernet.report.table4 import markdown_table4, table4_rows

    store = ResultStore(tmp_path / "supernet.db")
    for (level, seed), acc in {("0.01", 0): 90.0, ("0.01", 1): 92.0, ("0.025", 0): 93.0, ("0.025", 1): 93.5}.items():
        _completed_run(store, f"lr-{level}-{seed}", "nasbench201", acc)
    store.set_sweep("nb201-lr", [("lr", lv, s, f"lr-{lv}-{s}") for lv in ("0.01", "0.025") for s in (0, 1)],
                    baseline="0.025")
    for seed, acc, skdt in ((0, 91.0, 0.4), (1, 92.0, 0.5)):
        store.upsert_run(f"rn-{seed}", name="rn", space="nasbench201", seed=seed, config={}, run_dir="/nowhere")
        store.add_evaluation(f"rn-{seed}", epoch=1, bn="batch", split="test", n_images=1, batch_size=1, settings={},
                             seconds=0.0, archs=[], metrics={"final_acc": acc, "skdt": skdt, "p_surpass_random": 0.9})
        store.set_status(f"rn-{seed}", "completed")
    store.set_references("nasbench201", "random-nas", ["rn-0", "rn-1"])
    (lr,) = factor_effects(store)
    assert lr.baseline == REFERENCE_LABEL and lr.baseline_mean == 91.5
    low, recipe = lr.levels  # the recipe's level is an effect too
    assert (low.level, low.delta, low.seeds) == ("0.01", -0.5, 2)  # paired: 90 - 91, 92 - 92
    assert (recipe.level, recipe.delta) == ("0.025", 1.75)
    # reference runs of other seeds: difference of the means
    store.upsert_run("rn-7", name="rn", space="nasbench201", seed=7, config={}, run_dir="/nowhere")
    store.add_evaluation("rn-7", epoch=1, bn="batch", split="test", n_images=1, batch_size=1, settings={},
                         seconds=0.0, archs=[], metrics={"final_acc": 92.0})
    store.set_status("rn-7", "completed")
    store.set_references("nasbench201", "random-nas", ["rn-7"])
    (lr,) = factor_effects(store)
    assert lr.levels[0].delta == pytest.approx((90.0 + 92.0) / 2 - 92.0)

    store.set_references("nasbench201", "random-nas", ["rn-0", "rn-1"])
    store.set_references("nasbench201", "tuned", ["lr-0.025-0", "lr-0.025-1"])
    rows = table4_rows(store)
    assert [(r.role, r.runs) for r in rows] == [("random-nas", 2), ("tuned", 2)]
    assert rows[0].values["final_acc"] == pytest.approx((91.5, np.std([91.0, 92.0], ddof=1)))
    assert rows[1].paper == (92.71, 0.15)
    table = markdown_table4(rows)
    assert "| NASBench-201 | Random-NAS baseline | 2/2 | 91.50 ± 0.71 | 0.450 ± 0.071 | 0.900 ± 0.000 | 87.66 ± 1.69 |" in table
    store.close()
    monkeypatch.setattr(sys, "argv", ["supernet", "reference", "nasbench101", "tuned", "rn-0", "--out-dir",
                                      str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2 and "run rn-0 is not a nasbench101 run" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["supernet", "report", "--table4", "--out-dir", str(tmp_path)])
    cli.main()
    assert "Table 4" in capsys.readouterr().out
