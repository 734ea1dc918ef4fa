"""Metric tests against hand-computed values (SPEC §2)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from supernet.evaluate.metrics import (
    final_searched_model,
    kendall_tau,
    pool_metrics,
    prob_surpass_random,
    ranking_metrics,
    sparse_kendall_tau,
    sparse_ranks,
    sparse_spearman,
    spearman,
    supernet_accuracy,
    top_k,
)

# --- sparse_ranks -------------------------------------------------------------------------------------------


def test_sparse_ranks_spec_example() -> None:
    # buckets 911, 911, 912 -> dense ranks 0, 0, 1
    assert sparse_ranks([0.911, 0.9112, 0.912], 1e-3).tolist() == [0, 0, 1]
    # 1e-2: all three in bucket 91 (the authors' docstring claims [1, 1, 2])
    assert sparse_ranks([0.911, 0.9112, 0.912], 1e-2).tolist() == [0, 0, 0]


def test_sparse_ranks_input_order_and_dense() -> None:
    # buckets 930, 910, 920, 910, 950 -> occupied {910, 920, 930, 950}; empty 940 makes no gap
    assert sparse_ranks([0.93, 0.9105, 0.92, 0.9101, 0.95], 1e-3).tolist() == [2, 0, 1, 0, 3]


def test_sparse_ranks_exact_at_borders() -> None:
    # the float trap: the authors' formula puts 91.10 % in bucket 910
    assert 91.10 * 1e-2 * (1 / 1e-3) // 1 == 910
    # float32 tables store 91.10 as 91.0999985, below what a 1e-6-bucket epsilon absorbs; it still opens 911
    assert np.floor(float(np.float32(91.10)) / 100 / 1e-3 + 1e-6) == 910
    assert sparse_ranks(np.float32([91.09, 91.10, 91.19, 91.20]), 1e-3).tolist() == [0, 1, 1, 2]
    # 0.9110 opens bucket 911, 0.9109 stays in 910; 0.9119 still shares 911
    assert sparse_ranks([0.9109, 0.9110, 0.9119, 0.9120], 1e-3).tolist() == [0, 1, 1, 2]
    # percent input is scaled (mean in (1, 100)) and lands in the same buckets
    assert sparse_ranks([91.09, 91.10, 91.19, 91.20], 1e-3).tolist() == [0, 1, 1, 2]
    # the 0.1 % buckets of the paper: 91.10 and 91.19 tie, 91.09 and 91.10 (0.01 % apart) do not
    assert sparse_ranks([91.10, 91.20, 91.30], 1e-3).tolist() == [0, 1, 2]


def test_sparse_ranks_rejects_bad_threshold() -> None:
    with pytest.raises(ValueError):
        sparse_ranks([0.9, 0.91], 0.0)


# --- plain and sparse correlations ---------------------------------------------------------------------------


def test_plain_correlations_hand_values() -> None:
    # ws order 1<2<3<4 vs gt order: pairs (2,3) discordant, 5 concordant -> tau = (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [0.1, 0.2, 0.4, 0.3]) == pytest.approx(4 / 6)
    # d = (0, 0, 1, -1): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [0.1, 0.2, 0.4, 0.3]) == pytest.approx(0.8)


def test_sparse_equals_plain_without_ties() -> None:
    rng = np.random.default_rng(0)
    gt = 0.80 + 0.01 * rng.permutation(15)  # one GT per 1e-3 bucket and beyond -> no shared ranks
    ws = 100 * gt + rng.normal(0, 3, size=15)
    for variant in ("code", "clean"):
        assert sparse_kendall_tau(ws, gt, 1e-3, variant) == pytest.approx(kendall_tau(ws, gt))
        assert sparse_spearman(ws, gt, 1e-3, variant) == pytest.approx(spearman(ws, gt))


def test_code_and_clean_differ_with_ties() -> None:
    gt = [0.9101, 0.9105, 0.9201, 0.9301]  # sparse ranks g = [0, 0, 1, 2]
    ws = [2.0, 1.0, 4.0, 3.0]
    # code: x = g sorted = [0, 0, 1, 2]; ws-ascending order is archs 1, 0, 3, 2 -> y = [0, 0, 2, 1].
    #   Pairs: (0,1) tied in both (not counted), (2,3) discordant, the other 4 concordant:
    #   tau_b = (4 - 1) / sqrt(5 * 5) = 0.6
    assert sparse_kendall_tau(ws, gt, variant="code") == pytest.approx(0.6)
    # clean: tau_b(ws, g). Pair (0,1) tied in g only, (2,3) discordant, 4 concordant:
    #   tau_b = (4 - 1) / sqrt((4 + 1) * (4 + 1 + 1)) = 3 / sqrt(30)
    assert sparse_kendall_tau(ws, gt, variant="clean") == pytest.approx(3 / math.sqrt(30))
    # Spearman = Pearson on average ranks.
    # code: rank(x) = [1.5, 1.5, 3, 4], rank(y) = [1.5, 1.5, 4, 3]; centred dot = 3.5, norms^2 = 4.5, 4.5 -> 7/9
    assert sparse_spearman(ws, gt, variant="code") == pytest.approx(7 / 9)
    # clean: rank(ws) = [2, 1, 4, 3], rank(g) = [1.5, 1.5, 3, 4]; dot = 3.5, norms^2 = 5, 4.5 -> 3.5/sqrt(22.5)
    assert sparse_spearman(ws, gt, variant="clean") == pytest.approx(3.5 / math.sqrt(22.5))


def test_code_variant_deterministic_but_pool_order_dependent() -> None:
    gt = [0.90, 0.91, 0.92, 0.93]  # distinct buckets, ranks 0..3
    ws = [1.0, 1.0, 2.0, 3.0]  # archs 0 and 1 tie in ws
    values = {sparse_kendall_tau(ws, gt) for _ in range(5)}
    assert values == {1.0}  # stable sort: tie keeps pool order -> y = [0, 1, 2, 3] = x
    # Swap the two tied archs in the pool: y = [1, 0, 2, 3] -> tau = (5 - 1) / 6
    assert sparse_kendall_tau(ws, [0.91, 0.90, 0.92, 0.93]) == pytest.approx(4 / 6)
    # clean and plain see one ws tie in both orders: (5 - 0) / sqrt(5 * 6)
    for g in ([0.90, 0.91, 0.92, 0.93], [0.91, 0.90, 0.92, 0.93]):
        assert sparse_kendall_tau(ws, g, variant="clean") == pytest.approx(5 / math.sqrt(30))
        assert kendall_tau(ws, g) == pytest.approx(5 / math.sqrt(30))


def test_constant_scores_give_nan_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(kendall_tau([10.0, 10.0, 10.0], [0.9, 0.91, 0.92]))
        assert math.isnan(spearman([10.0, 10.0, 10.0], [0.9, 0.91, 0.92]))
        assert math.isnan(sparse_kendall_tau([1.0, 2.0, 3.0], [0.9101, 0.9102, 0.9103]))  # one GT bucket
        assert math.isnan(sparse_kendall_tau([1.0, 1.0, 1.0], [0.90, 0.91, 0.92], variant="clean"))


@pytest.mark.parametrize(
    "fn", [kendall_tau, spearman, sparse_kendall_tau, sparse_spearman, final_searched_model]
)
def test_bad_pools_raise(fn: Callable[[list[float], list[float]], object]) -> None:
    with pytest.raises(ValueError):
        fn([1.0], [0.9])
    with pytest.raises(ValueError):
        fn([1.0, 2.0, 3.0], [0.9, 0.91])
    with pytest.raises(ValueError):
        fn([1.0, float("nan")], [0.9, 0.91])


def test_unknown_variant_raises() -> None:
    with pytest.raises(ValueError):
        sparse_kendall_tau([1, 2], [0.9, 0.91], variant="paper")  # type: ignore[arg-type]


# --- P>R ---------------------------------------------------------------------------------------------------


def test_prob_surpass_random_hand_values() -> None:
    # r / r_max = 7 / 10, n = 2
    assert prob_surpass_random(7, 10, 2) == pytest.approx(0.49)
    assert prob_surpass_random(7, 10, 2, form="paper") == pytest.approx(1 - 0.3**2)
    assert prob_surpass_random(0, 10, 3) == 0.0
    assert prob_surpass_random(0, 10, 3, form="paper") == 0.0


def test_prob_surpass_random_best_of_space() -> None:
    # best id = N - 1: ((N - 1) / N)^n, i.e. 1 up to the chance a random draw hits the same arch
    assert prob_surpass_random(9, 10, 1) == pytest.approx(0.9)
    assert prob_surpass_random(15624, 15625, 3) == pytest.approx((1 - 1 / 15625) ** 3)
    assert prob_surpass_random(15624, 15625, 3) == pytest.approx(1.0, abs=2e-4)


def test_prob_surpass_random_rejects_bad_input() -> None:
    for args in ((10, 10, 3), (-1, 10, 3), (5, 10, 0), (0, 0, 1)):
        with pytest.raises(ValueError):
            prob_surpass_random(*args)


# --- top-k and final searched model -----------------------------------------------------------------------------


def test_top_k_ties_keep_pool_order() -> None:
    assert top_k([50.0, 70.0, 60.0, 70.0, 60.0], 3).tolist() == [1, 3, 2]
    assert top_k([5.0, 5.0, 5.0], 2).tolist() == [0, 1]
    with pytest.raises(ValueError):
        top_k([1.0, 2.0], 3)
    with pytest.raises(ValueError):
        top_k([1.0, 2.0], 0)


def test_final_searched_model() -> None:
    ws = [80.0, 85.0, 70.0, 90.0, 60.0]
    gt = [93.0, 91.0, 94.0, 92.0, 95.0]
    # top-3 by ws: archs 3, 1, 0 -> gt 92, 91, 93: mean 92, population std sqrt(2/3)
    mean, std = final_searched_model(ws, gt, k=3)
    assert mean == pytest.approx(92.0)
    assert std == pytest.approx(math.sqrt(2 / 3))


def test_supernet_accuracy_population_std() -> None:
    assert supernet_accuracy([60.0, 70.0, 80.0]) == pytest.approx((70.0, math.sqrt(200 / 3)))


# --- aggregate ----------------------------------------------------------------------------------------------


def test_pool_metrics_hand_example() -> None:
    ws = [80.0, 85.0, 70.0, 90.0, 60.0]
    gt = [93.0, 91.0, 94.0, 92.0, 95.0]
    ranks = [60, 20, 80, 40, 99]  # consistent with gt order, space of 100
    m = pool_metrics(ws, gt, ranks, 100, k=3)
    assert set(m) == {
        "kdt",
        "skdt",
        "spearman",
        "p_surpass_random",
        "final_acc",
        "final_acc_std",
        "best_rank",
        "acc_mean",
        "acc_std",
        "p_at_top5",
        "p_at_top10",
        "kdt_top10",
    }
    # Top 5 % and 10 % of 5 architectures are one: predicted best arch 3 (ws 90), true best arch 4 (gt 95).
    assert m["p_at_top5"] == m["p_at_top10"] == 0.0
    # The true top two (archs 4, 2: gt 95 > 94) are ordered the other way by ws (60 < 70).
    assert m["kdt_top10"] == -1.0
    # ws is exactly reversed vs gt except pair (1,3): ws 85<90 and gt 91<92 concordant -> (1 - 9) / 10
    assert m["kdt"] == pytest.approx(-0.8)
    assert m["skdt"] == pytest.approx(-0.8)  # percent GT, one per 0.1 % bucket -> no ties
    assert m["best_rank"] == 60.0  # top-3 by ws = archs 3, 1, 0 with ranks 40, 20, 60
    assert m["p_surpass_random"] == pytest.approx(0.6**3)
    assert m["final_acc"] == pytest.approx(92.0)
    assert m["acc_mean"] == pytest.approx(77.0)


def test_ranking_metrics_param_count_baseline() -> None:
    params = [1.2e6, 0.3e6, 2.5e6, 0.9e6]  # higher params = predicted better
    gt = [0.93, 0.88, 0.94, 0.90]
    m = ranking_metrics(params, gt, [2, 0, 3, 1], 4, k=1)
    assert m["kdt"] == pytest.approx(1.0)
    assert m["best_rank"] == 3.0
    assert m["p_surpass_random"] == pytest.approx(0.75)
    assert m["final_acc"] == pytest.approx(0.94) and m["final_acc_std"] == 0.0


def test_ranking_metrics_rejects_bad_ranks() -> None:
    with pytest.raises(ValueError):
        ranking_metrics([1.0, 2.0], [0.9, 0.91], [0, 5], 5)
    with pytest.raises(ValueError):
        ranking_metrics([1.0, 2.0], [0.9, 0.91], [0], 5)
    with pytest.raises(ValueError):
        ranking_metrics([1.0, 2.0], [0.9, 0.91], [0.0, 1.0], 5)


def test_top_heavy_metrics_hand_examples() -> None:
    from supernet.evaluate.measures import kendall_tau_top, precision_at_top, top_share

    gt = np.arange(40.0)  # arch i has ground truth i: the true top 10 % are 36..39, the top 5 % 38, 39
    ws = gt.copy()
    ws[[39, 0]] = ws[[0, 39]]  # the best and the worst swap places in the prediction
    assert top_share(40, 0.05) == 2 and top_share(40, 0.10) == 4 and top_share(5, 0.10, minimum=2) == 2
    assert precision_at_top(ws, gt, 0.05) == 0.5  # predicted top 2: 0 (scored 39) and 38
    assert precision_at_top(ws, gt, 0.10) == 0.75  # predicted 0, 38, 37, 36 vs true 36..39
    # Among 36..39: scores 36, 37, 38, 0 -> 3 concordant pairs, 3 discordant: tau 0.
    assert kendall_tau_top(ws, gt, 0.10) == 0.0
    assert precision_at_top(gt, gt, 0.10) == 1.0 and kendall_tau_top(gt, gt, 0.10) == 1.0
    with pytest.raises(ValueError):
        precision_at_top(ws, gt, 0.0)
