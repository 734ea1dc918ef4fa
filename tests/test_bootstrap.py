"""Bootstrap intervals and the paired verdict super-net vs the best baseline, on pools with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from supernet.evaluate import catalogue
from supernet.evaluate.bootstrap import interval, replicates, resample_indices, verdict
from supernet.evaluate.catalogue import MetricSettings
from supernet.evaluate.evaluator import bootstrap_metrics
from supernet.evaluate.measures import kendall_tau


def test_resamples_are_seeded_and_within_the_pool():
    a, b = resample_indices(50, 200, seed=3), resample_indices(50, 200, seed=3)
    assert a.shape == (200, 50) and (a == b).all() and a.min() >= 0 and a.max() < 50
    assert not (a == resample_indices(50, 200, seed=4)).all()


def test_interval_of_a_perfect_ranking_is_one_and_a_reversed_one_minus_one():
    truth = np.arange(30.0)
    idx = resample_indices(30, 100)
    assert interval(replicates(kendall_tau, truth, truth, idx)) == pytest.approx((1.0, 1.0))
    assert interval(replicates(kendall_tau, -truth, truth, idx)) == pytest.approx((-1.0, -1.0))
    assert verdict(0.01, 0.2) == "beats" and verdict(-0.2, 0.01) == "ties" and verdict(-0.3, -0.01) == "loses"


def _metrics(ws, truth, baselines, settings):
    from supernet.evaluate.catalogue import measure

    m = measure(ws, truth, np.arange(len(truth)), len(truth), settings)
    for name, s in baselines.items():
        b = catalogue.baseline(name)
        m.update({b.prefix + k: v for k, v in measure(s, truth, np.arange(len(truth)), len(truth),
                                                       b.settings(settings), ranking_only=True).items()})
    return m


@pytest.mark.parametrize(("ws_sign", "expected"), [(1, "beats"), (-1, "loses")])
def test_verdict_against_the_best_baseline(ws_sign, expected):
    rng = np.random.default_rng(0)
    truth = np.round(np.linspace(80, 94, 60), 1)  # one 0.1 % bucket each: s-KdT is plain KdT here
    noisy = truth + rng.normal(0, 4, truth.size)  # a weak baseline, and a weaker one
    baselines = {"params": noisy, "nwot": truth + rng.normal(0, 8, truth.size)}
    ws = ws_sign * truth  # a perfect (or perfectly wrong) super-net
    settings = MetricSettings(skdt_variant="clean")
    m = _metrics(ws, truth, baselines, settings)
    out = bootstrap_metrics(ws, truth, m, settings, baselines, resamples=300)
    assert catalogue.best_baseline(m).name == "params"  # the stronger of the two
    assert out["vs_best_diff"] == pytest.approx(m["skdt"] - m["params/skdt"])
    assert out["vs_best_lo"] <= out["vs_best_diff"] <= out["vs_best_hi"]
    assert catalogue.VERDICTS[out["vs_best_verdict"]] == expected
    # every resample of a perfect ranking is perfect
    assert (out["kdt_lo"], out["kdt_hi"]) == pytest.approx((ws_sign * 1.0, ws_sign * 1.0))


def test_a_super_net_equal_to_the_best_baseline_ties_it():
    truth = np.round(np.linspace(80, 94, 40), 1)
    scores = truth + np.random.default_rng(1).normal(0, 3, truth.size)
    settings = MetricSettings(skdt_variant="clean")
    m = _metrics(scores, truth, {"params": scores}, settings)
    out = bootstrap_metrics(scores, truth, m, settings, {"params": scores}, resamples=200)
    assert out["vs_best_diff"] == out["vs_best_lo"] == out["vs_best_hi"] == 0.0
    assert catalogue.verdict(out) == "ties"
