"""The metric catalogue: its invariants, the settings object, the baselines table, and that a new metric
is one function plus one row (it then reaches the computed metrics, the store and the report table)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from supernet.config import build_config
from supernet.evaluate import catalogue
from supernet.evaluate.catalogue import BASELINES, METRICS, Baseline, Metric, MetricSettings
from supernet.evaluate.evaluator import compute_metrics
from supernet.evaluate.metrics import pool_metrics, ranking_metrics
from supernet.groundtruth.table import GroundTruth
from supernet.report.tables import columns, markdown_table, sweep_rows
from supernet.store import ResultStore

WS, GT, RANKS = [80.0, 85.0, 70.0, 90.0, 60.0], [93.0, 91.0, 94.0, 92.0, 95.0], [60, 20, 80, 40, 99]


# --- invariants ---------------------------------------------------------------------------------------------


def test_every_computed_metric_has_a_row_and_every_row_is_computed():
    names = [m.name for m in METRICS]
    assert len(set(names)) == len(names)
    per_scorer = {m.name for m in METRICS if m.compute is not None}
    assert set(pool_metrics(WS, GT, RANKS, 100)) == per_scorer
    assert set(ranking_metrics(WS, GT, RANKS, 100)) == {m.name for m in METRICS if m.ranking}
    assert {m.name for m in METRICS if not m.ranking and m.compute} == {"acc_mean", "acc_std"}  # super-net only
    # Rows the evaluator derives from resamples of several scorers (bootstrap intervals, the verdict).
    derived = {f"{m}_{e}" for m in ("kdt", "skdt") for e in ("lo", "hi")} | {
        f"vs_best_{e}" for e in ("diff", "lo", "hi", "verdict")}
    assert set(names) - per_scorer == derived


def test_rows_are_consistent():
    names = {m.name for m in METRICS}
    for m in METRICS:
        assert m.title and m.short and m.digits >= 0 and "/" not in m.name
        assert m.std is None or m.std in names, m.name
        assert not m.report_baselines or m.ranking, m.name  # baselines only have ranking metrics
        assert not m.subspace_mean or m.ranking, m.name
    assert catalogue.metric(catalogue.HEADLINE).ranking
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        catalogue.metric("nope")


def test_baselines_table():
    assert [b.name for b in BASELINES] == ["params", "flops", "synflow", "nwot", "jacov", "snip", "grad_norm", "vote"]
    assert catalogue.PROXIES == ("flops", "synflow", "nwot", "jacov", "snip", "grad_norm")  # the vote is no proxy
    params = BASELINES[0]
    assert params.prefix == "params/" and params.skdt_variant == "clean" and params.source == "params"
    assert len({b.prefix for b in BASELINES}) == len(BASELINES)
    assert all(b.prefix.endswith("/") for b in BASELINES)
    assert Baseline("flops", "FLOPs", "FLOPs", source="flops").prefix == "flops/"
    scores = catalogue.baseline_scores({"params": np.array([3, 1, 2]), "other": np.zeros(3)})
    assert list(scores) == ["params"] and scores["params"].dtype == np.float64
    with pytest.raises(KeyError, match="unknown baseline"):
        catalogue.baseline("nope")


def test_the_vote_is_the_mean_rank_of_its_three_voters_and_needs_all_of_them():
    # ranks (1 = worst; ties share): synflow 3 1 2, jacov 1 2 3, snip 2.5 1 2.5 -> mean 6.5/3, 4/3, 7.5/3
    per_arch = {"params": [1, 1, 2], "synflow": [0.9, 0.1, 0.5], "jacov": [-3.0, -2.0, -1.0], "snip": [7, 5, 7],
                "nwot": [1.0, 2.0, 3.0]}
    scores = catalogue.baseline_scores(per_arch)
    assert list(scores) == ["params", "synflow", "nwot", "jacov", "snip", "vote"]
    np.testing.assert_allclose(scores["vote"], [6.5 / 3, 4 / 3, 7.5 / 3])
    np.testing.assert_array_equal(scores["nwot"], [1.0, 2.0, 3.0])  # a proxy's scores are its own, by name
    del per_arch["snip"]
    assert "vote" not in catalogue.baseline_scores(per_arch)
    np.testing.assert_allclose(catalogue.mean_rank([10, 20], [2, 1]), [1.5, 1.5])


def test_consumers_see_the_catalogue_rows():
    from supernet.experiments.tune import metrics as tunable
    from supernet.report.meta import TITLES

    assert columns() == [
        ("acc_mean", "super-net acc", 2), ("skdt", "s-KdT", 3), ("kdt", "KdT", 3), ("spearman", "Spearman", 3),
        ("p_surpass_random", "P>R", 3), ("final_acc", "final model", 2), ("p_at_top5", "P@top5%", 3),
        ("p_at_top10", "P@top10%", 3), ("kdt_top10", "KdT top10%", 3),
    ] + [(f"{b}/skdt", f"{b} s-KdT", 3) for b in ("params", "flops", "synflow", "nwot", "jacov", "snip", "grad_norm", "vote")]
    assert tunable() == ("acc_mean", "skdt", "kdt", "spearman", "p_surpass_random", "final_acc", "p_at_top5",
                         "p_at_top10", "kdt_top10")
    assert TITLES == {"acc_mean": "super-net acc", "final_acc": "final model", "skdt": "s-KdT"}
    every = {f"{p}{n}" for p in ("", "params/") for n in ("skdt", "kdt", "spearman", "final_acc")}
    assert catalogue.subspace_mean_names(every) == [  # issue 12.2: the final model too, no union figure
        "skdt", "kdt", "spearman", "final_acc", "params/skdt", "params/kdt", "params/spearman", "params/final_acc"]
    assert all(m.subspace_mean for m in METRICS if m.ranking)
    assert [m.name for m in METRICS if m.runs] == ["acc_mean", "skdt", "kdt", "final_acc"]
    line = catalogue.summary({"skdt": 0.5, "params/skdt": 0.25, "acc_mean": 50.0, "acc_std": 1.0})
    assert "s-KdT 0.500 (params baseline 0.250)" in line and "super-net acc 50.00±1.00%" in line


# --- settings -----------------------------------------------------------------------------------------------


def test_settings_from_a_config():
    default = build_config({})
    assert MetricSettings.from_config(default.evaluation) == MetricSettings()  # same defaults as the config
    cfg = build_config({}, ["evaluation.top_k=5", "evaluation.skdt_threshold=0.01", "evaluation.skdt_variant=clean",
                            "evaluation.psr_form=paper"])
    s = MetricSettings.from_config(cfg.evaluation)
    assert s == MetricSettings(top_k=5, threshold=0.01, skdt_variant="clean", psr_form="paper")
    assert MetricSettings.from_config(cfg) == s  # the whole config works too
    assert s.replace(top_k=2).top_k == 2 and s.top_k == 5  # frozen
    with pytest.raises(AttributeError):
        s.top_k = 1  # type: ignore[misc]


def test_settings_reach_the_metrics():
    s = MetricSettings(top_k=1, psr_form="paper")
    m = catalogue.measure(WS, GT, RANKS, 100, s)
    ranking = ranking_metrics(WS, GT, RANKS, 100, k=1, psr_form="paper")
    assert {k: m[k] for k in ranking} == ranking and m["acc_mean"] == pytest.approx(77.0)
    assert m["best_rank"] == 40.0 and m["p_surpass_random"] == pytest.approx(1 - 0.6)


# --- compute_metrics with baselines on a hand-computed pool ------------------------------------------------------

KEYS = ["a", "b", "c", "d", "e"]
TRUTH = [91.01, 91.05, 92.0, 93.0, 90.0]  # a and b share the 0.1 % bucket 910: sparse GT ranks 0, 0, 1, 2
POOL = KEYS[:4]  # e (the worst) is in the table only: ranks a=1, b=2, c=3, d=4 of 5


def _table() -> GroundTruth:
    return GroundTruth({"keys": np.array(KEYS), "official_index": np.arange(5), "column_names": np.array(["cifar10/test"]),
                        "values": np.array(TRUTH)[:, None]})


def _rev() -> Baseline:
    return Baseline("rev", "rev", "reverse order", source="rev")  # s-KdT variant not forced


def test_compute_metrics_with_two_baselines(monkeypatch):
    monkeypatch.setattr(catalogue, "BASELINES", (*BASELINES, _rev()))
    ws = np.array([2.0, 1.0, 4.0, 3.0])  # the worked example of docs/metrics.md
    truth, ranks, m = compute_metrics(ws, POOL, _table(), dataset="cifar10", split="test", settings=MetricSettings(top_k=1),
                                      baselines={"params": np.array([2, 1, 4, 3]), "rev": np.array([4.0, 3, 2, 1])})
    assert truth.tolist() == TRUTH[:4] and ranks.tolist() == [1, 2, 3, 4]
    assert set(m) == {m.name for m in METRICS if m.compute} | {f"{p}/{r.name}" for p in ("params", "rev") for r in METRICS if r.ranking}
    # super-net: pairs (a,b) and (c,d) discordant, the other four concordant
    assert m["kdt"] == pytest.approx(1 / 3)
    assert m["skdt"] == pytest.approx(0.6)  # the authors' construction (evaluation.skdt_variant=code)
    assert m["spearman"] == pytest.approx(0.6)  # d^2 = 1 + 1 + 1 + 1: 1 - 6 * 4 / (4 * 15)
    assert m["best_rank"] == 3 and m["p_surpass_random"] == pytest.approx(3 / 5)  # top-1 is c, rank 3 of 5
    assert m["final_acc"] == pytest.approx(92.0) and m["final_acc_std"] == 0.0
    assert m["acc_mean"] == pytest.approx(2.5) and m["acc_std"] == pytest.approx(math.sqrt(1.25))
    # params: the same scores, but the clean s-KdT is forced (tau_b(ws, [0, 0, 1, 2]) = 3 / sqrt(30))
    assert m["params/kdt"] == pytest.approx(1 / 3) and m["params/skdt"] == pytest.approx(3 / math.sqrt(30))
    assert m["params/p_surpass_random"] == pytest.approx(3 / 5) and "params/acc_mean" not in m
    # rev: exactly reversed; its s-KdT follows the settings (code): tau_b([0,0,1,2], [2,1,0,0]) = -4/5
    assert m["rev/kdt"] == pytest.approx(-1.0) and m["rev/spearman"] == pytest.approx(-1.0)
    assert m["rev/skdt"] == pytest.approx(-0.8)
    assert m["rev/best_rank"] == 1 and m["rev/p_surpass_random"] == pytest.approx(1 / 5)
    assert m["rev/final_acc"] == pytest.approx(91.01)
    assert [n for n in catalogue.subspace_mean_names(m) if n.startswith("rev/")][:5] == [
        "rev/skdt", "rev/kdt", "rev/spearman", "rev/p_surpass_random", "rev/final_acc"]
    assert [b.name for b in catalogue.baselines_in(m)] == ["params", "rev"]
    assert catalogue.headline(m) == "s-KdT 0.600 (params baseline 0.548)"  # params and the best proxy only


def test_compute_metrics_refuses_an_unknown_baseline():
    with pytest.raises(KeyError, match="unknown baseline 'rev'"):
        compute_metrics(np.arange(4.0), POOL, _table(), dataset="cifar10", split="test", settings=MetricSettings(),
                        baselines={"rev": np.arange(4.0)})


# --- a new metric: one function plus one row ----------------------------------------------------------------------


def top1_truth(scores, truth, ranks, space_size, settings) -> float:  # noqa: ANN001 - the catalogue's signature
    """Ground truth of the single best-scored architecture."""
    return float(truth[int(np.argmax(scores))])


def test_a_new_metric_is_one_function_plus_one_row(monkeypatch, tmp_path):
    from supernet.experiments.tune import metrics as tunable

    row = Metric("top1_acc", "top-1 model", 2, True, True, top1_truth, report=True, report_baselines=True)
    monkeypatch.setattr(catalogue, "METRICS", (*METRICS, row))

    assert ranking_metrics(WS, GT, RANKS, 100)["top1_acc"] == 92.0
    assert pool_metrics(WS, GT, RANKS, 100)["top1_acc"] == 92.0
    _, _, m = compute_metrics(np.array([2.0, 1.0, 4.0, 3.0]), POOL, _table(), dataset="cifar10", split="test",
                              settings=MetricSettings(), baselines={"params": np.array([4, 3, 2, 1])})
    assert m["top1_acc"] == pytest.approx(92.0) and m["params/top1_acc"] == pytest.approx(91.01)
    assert "top1_acc" in tunable()

    store = ResultStore(tmp_path / "supernet.db")
    for seed, value in ((0, 90.0), (1, 92.0)):
        run_id = f"toy-s{seed}"
        store.upsert_run(run_id, name="toy", space="nasbench201", seed=seed, config={}, run_dir=str(tmp_path))
        store.add_evaluation(run_id, epoch=1, bn="batch", split="test", n_images=10, batch_size=10, settings={},
                             seconds=0.0, archs=[], metrics={**m, "top1_acc": value})
        store.set_status(run_id, "completed")
    store.set_sweep("toy", [("lr", "0.1", 0, "toy-s0"), ("lr", "0.1", 1, "toy-s1")])
    table = markdown_table(sweep_rows(store, "toy"))
    head, _, line = table.splitlines()
    titles = [c.strip() for c in head.strip("|").split("|")]
    cells = dict(zip(titles, (c.strip() for c in line.strip("|").split("|")), strict=True))
    assert cells["top-1 model"] == "91.00 ± 1.41"
    assert cells["params top-1 model"] == "91.01 ± 0.00"
    assert cells["s-KdT"] == "0.600 ± 0.000" and cells["runs"] == "2/2"


def test_runs_names_the_best_baseline_and_show_gives_each_baseline_a_column(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from supernet.cli import cli

    monkeypatch.setattr(catalogue, "BASELINES", (*BASELINES, _rev()))
    _, _, m = compute_metrics(np.array([2.0, 1.0, 4.0, 3.0]), POOL, _table(), dataset="cifar10", split="test",
                              settings=MetricSettings(top_k=1),
                              baselines={"params": np.array([2, 1, 4, 3]), "rev": np.array([4.0, 3, 2, 1])})
    m |= {f"sub1/{k}": v for k, v in m.items()}  # as Baseline-v2 stores a sub-space's metrics
    store = ResultStore(tmp_path / "supernet.db")
    store.upsert_run("toy-s0", name="toy", space="nasbench201", seed=0, config={"protocol": {"epochs": 1}},
                     run_dir=str(tmp_path))
    store.add_evaluation("toy-s0", epoch=1, bn="batch", split="test", n_images=10, batch_size=10, settings={},
                         seconds=0.0, archs=[], metrics=m)
    store.set_status("toy-s0", "completed")
    runner = CliRunner()
    listing = runner.invoke(cli, ["runs", "--out-dir", str(tmp_path)], catch_exceptions=False).output.splitlines()
    assert listing[0].split()[-5:] == ["params", "s-KdT", "best", "baseline", "verdict"]
    # params (0.548) is the best baseline; no bootstrap was stored, so no verdict
    assert listing[1].split()[3:] == ["2.50", "0.600", "0.333", "92.00", "0.548", "params", "0.548", "-"]
    shown = runner.invoke(cli, ["show", "toy-s0", "--out-dir", str(tmp_path)], catch_exceptions=False).output
    lines = {ln[:20].strip(): ln[20:].split() for ln in shown.splitlines() if ln.startswith("  ")}
    assert lines["metric"] == ["super-net", "params", "rev"]
    assert lines["kdt"] == ["0.333", "0.333", "-1.000"]
    assert lines["sub1 s-KdT"] == ["0.600", "0.548", "-0.800"]
    assert lines["acc_mean"] == ["2.50", "(std", "1.12)"]


def test_pool_scores_gives_each_stored_value_in_pool_order_and_drops_scorers_that_miss_an_architecture(tmp_path):
    store = ResultStore(tmp_path / "supernet.db")
    store.upsert_run("toy-s0", name="toy", space="nasbench201", seed=0, config={}, run_dir=str(tmp_path))
    archs = [("b", 60.0, 91.0, 2, 300), ("a", 70.0, 93.0, 1, 100), ("c", 50.0, 89.0, 3, 200)]
    eid = store.add_evaluation("toy-s0", epoch=1, bn="batch", split="test", n_images=10, batch_size=10, settings={},
                               seconds=0.0, archs=archs, metrics={},
                               scores={"synflow": [3.0, 1.0, 2.0], "supernet_loss": [0.5, 0.4, 0.6]})
    with store._tx() as db:  # a scorer stored for only part of the pool cannot rank it
        db.execute("INSERT INTO arch_scores VALUES (?, 'a', 'partial', 1.0)", (eid,))
    pool = store.pool_scores(eid)
    assert pool.keys == ["b", "a", "c"]
    assert pool.accuracy.tolist() == [60.0, 70.0, 50.0] and pool.ground_truth.tolist() == [91.0, 93.0, 89.0]
    assert pool.params.tolist() == [300.0, 100.0, 200.0]
    assert {n: v.tolist() for n, v in pool.scores.items()} == {"synflow": [3.0, 1.0, 2.0],
                                                                "supernet_loss": [0.5, 0.4, 0.6]}
