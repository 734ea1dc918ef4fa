"""The metric functions (SPEC §2): accuracy, (sparse) Kendall-Tau / Spearman, P>R, final searched model.

The rows of ``evaluate/catalogue.py`` compute their metrics with these; ``evaluate/metrics.py`` is the public
face (it re-exports them, next to ``ranking_metrics`` and ``pool_metrics``, which evaluate the catalogue).

Pure functions on 1-D numpy-compatible arrays, one entry per architecture of the evaluation pool (SPEC §7).
The "code" variants reproduce the authors' ``nasws`` implementation so that published numbers can be matched;
the "clean" / "paper" variants follow the paper's wording. Quirks are kept on purpose and documented where used.

Conventions:
* ``ws``: super-net accuracies of the pool (percent); ``gt``: stand-alone accuracies (percent or fractions).
* ``ranks``: 0-based ascending GT rank of each pool architecture in the whole space, i.e. the number of
  architectures that are worse (best of a space of size N has rank N-1) -- the authors' architecture ``id``.
* Standard deviations are population std (``ddof=0``), as ``np.std`` in the authors' analysis code.
* Correlations on constant input are undefined; they return ``nan`` (without scipy's warning) rather than raise,
  so that a collapsed super-net (all architectures at 10 %) still produces a table row.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

SkdtVariant = Literal["code", "clean"]
PsrForm = Literal["code", "paper"]

# How far below a cell border a value may lie and still count as on it, in float32 ulps of the value (see
# sparse_ranks): ground-truth tables store float32, and a mean over runs can be stored ~1 ulp off.
_FLOAT32_SLACK_ULPS = 1.5


def _vector(a: ArrayLike, name: str) -> NDArray[np.float64]:
    """Validate early so that a bad pool fails loudly here instead of as a silent nan in a table."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 architectures, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _pair(
    a: ArrayLike, b: ArrayLike, name_a: str, name_b: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = _vector(a, name_a), _vector(b, name_b)
    if x.shape != y.shape:
        raise ValueError(f"{name_a} and {name_b} differ in length: {x.size} vs {y.size}")
    return x, y


def _is_constant(x: NDArray[np.float64]) -> bool:
    return bool(np.all(x == x[0]))


def _tau_b(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def _rho(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def _percent_scale(acc: NDArray[np.float64]) -> float:
    """SPEC §2.2 step 1: the authors guess the unit from the mean, so a list averaging exactly 1 stays unscaled."""
    return 100.0 if 1.0 < float(np.mean(acc)) < 100.0 else 1.0


def _float32_ulp(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The float32 ulp at ``|x|`` (the spacing in the float32 binade of ``|x|``), computed in float64."""
    return np.ldexp(1.0, np.frexp(np.abs(x))[1] - 24)


def _sparse_cells(acc: NDArray[np.float64], threshold: float) -> NDArray[np.float64]:
    """The ``threshold``-wide cell of each entry, floor(fraction / threshold); see :func:`sparse_ranks`."""
    slack = _FLOAT32_SLACK_ULPS * _float32_ulp(acc)
    return np.floor((acc + slack) / (_percent_scale(acc) * threshold))


def supernet_accuracy(ws: ArrayLike) -> tuple[float, float]:
    """Mean and population std (``ddof=0``) over architectures -- the "Accuracy" column (SPEC §2.1)."""
    acc = _vector(ws, "ws")
    return float(np.mean(acc)), float(np.std(acc))


def kendall_tau(ws: ArrayLike, gt: ArrayLike) -> float:
    """Kendall tau-b; ``nan`` if either input is constant."""
    return _tau_b(*_pair(ws, gt, "ws", "gt"))


def spearman(ws: ArrayLike, gt: ArrayLike) -> float:
    """Spearman rho (average ranks for ties); ``nan`` if either input is constant."""
    return _rho(*_pair(ws, gt, "ws", "gt"))


def sparse_ranks(acc: ArrayLike, threshold: float = 1e-3) -> NDArray[np.int64]:
    """Sparse rank of each entry, in input order (SPEC §2.2 steps 1-2).

    The authors floor-bucket fractions into fixed ``threshold``-wide cells and densely rank the occupied
    cells, so ties are grid cells, not "within 0.1 % of each other": 0.9109 and 0.9111 differ, 0.9110 and
    0.9119 tie. Ranks start at 0; the authors' counter starts at -1 when the lowest cell is 0, a constant
    shift that no rank correlation sees.

    The cells are those of the exact values. Ground-truth tables store float32 (``groundtruth/table.py``):
    91.10 % is stored as 91.0999985, which the authors' float ``p * (1/threshold) // 1`` (and our former
    1e-6-cell epsilon) puts in cell 910, not 911 -- 304 of the 15,625 NB201 CIFAR-10 test values, 1.3 % of
    multiples of 1/30000. So each value is raised by 1.5 float32 ulps (of itself, in the unit it is given in)
    before flooring: a value at most 1.5 ulps below a border is read as on it. Why that is right:

    * It catches every border value. Storing as float32 moves a value by at most half an ulp; a mean of
      float32 inputs stored as float32 (NB101: three float32 runs, averaged, x 100) by up to one ulp. Float
      noise in the published files is far smaller (NB201 publishes "92.19999999999999" for the 3-seed mean
      92.2 and "40.99999992879232" for 41.0: 2e-9 and 0.02 ulps), as is float64 rounding (91.1 / 100).
    * It merges no two cells at ``threshold`` >= 1e-3. A real accuracy is a mean over s runs of
      (correct / N images), a multiple of 1/(sN); if it is not on a border (a multiple of 1/T, T =
      1/threshold) it is at least gcd(T, sN) / (sN T) away: at T = 1000, 2.7e-7 for NB101 (3 runs x 9,984
      images, gcd 8), 1.3e-5 for NB201 (3 seeds x 25,000 images of CIFAR-10-valid; more for the other
      columns), 3.3e-5 for multiples of 1/30000. Slack plus storage error, 2.5 ulps, is at most 1.9e-7 as a
      fraction for percent values <= 100 (1.5e-7 for values stored as fractions): below all of these.

    Where it could be wrong: a stored value more than 1.5 ulps below its true value (long float32
    arithmetic before the table); a threshold finer than the data allow (at 1e-4 an NB101 3-run mean can lie
    5.3e-8, under one ulp, below a border and is then read as on it); and any value, float64 included,
    within 1.5 float32 ulps below a border is read as on it, as float32 storage cannot tell the two apart --
    no accuracy of the benchmarks above lies there. A value above a border is never moved.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    cells = _sparse_cells(_vector(acc, "acc"), threshold)
    return np.unique(cells, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _sparse_pair(
    ws: ArrayLike, gt: ArrayLike, threshold: float, variant: SkdtVariant
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The two sequences the sparse correlation is computed on.

    "code": x = sparse GT ranks listed GT-ascending, y = sparse GT ranks listed ws-ascending; this pairs the
    i-th worst by GT with the i-th worst by ws instead of correlating per architecture. The authors used an
    unstable argsort; we use a stable one (SPEC §10), so ties in ``ws`` are broken by pool order -- the result is
    deterministic for a fixed pool order but can change if tied architectures are permuted.
    "clean": per-architecture pairs (ws(a), sparse_rank(gt(a))); invariant to pool order.
    """
    s, g = _pair(ws, gt, "ws", "gt")
    sr = sparse_ranks(g, threshold).astype(np.float64)
    if variant == "clean":
        return s, sr
    if variant == "code":
        return sr[np.argsort(g, kind="stable")], sr[np.argsort(s, kind="stable")]
    raise ValueError(f"variant must be 'code' or 'clean', got {variant!r}")


def sparse_kendall_tau(
    ws: ArrayLike, gt: ArrayLike, threshold: float = 1e-3, variant: SkdtVariant = "code"
) -> float:
    """s-KdT (SPEC §2.2): tau-b after sharing the rank of GT accuracies in the same ``threshold`` cell.

    Default "code" matches the authors' numbers; "clean" is ``tau_b(ws, sparse_ranks(gt))``. Both equal plain
    Kendall-Tau when no two GT values share a cell and ``ws`` has no ties. ``nan`` on constant input.
    """
    return _tau_b(*_sparse_pair(ws, gt, threshold, variant))


def sparse_spearman(
    ws: ArrayLike, gt: ArrayLike, threshold: float = 1e-3, variant: SkdtVariant = "code"
) -> float:
    """Sparse Spearman (in the authors' code, not the paper): same construction as :func:`sparse_kendall_tau`."""
    return _rho(*_sparse_pair(ws, gt, threshold, variant))


def prob_surpass_random(best_rank: int, space_size: int, n: int, form: PsrForm = "code") -> float:
    """Probability to surpass random search, P>R (SPEC §2.3), with r = ``best_rank``, r_max = ``space_size``.

    * "code" (default; ``tool.py``, matches Table 3 magnitudes): p = (r / r_max)^n. With r = number of worse
      architectures, r/r_max is the chance one uniform draw is strictly worse than the found architecture, so p is
      the probability that it strictly beats the best of n random draws. The best of the space gives
      ((N-1)/N)^n, just below 1, because a draw may hit the same architecture.
    * "paper" (as printed): p = 1 - (1 - r / r_max)^n. With the same r this is the probability that the found
      architecture beats at least one (i.e. the worst) of n random draws -- a much weaker criterion; it reads as
      "random search finds a better one" only if r counts better architectures instead.
    """
    if space_size < 1:
        raise ValueError(f"space_size must be positive, got {space_size}")
    if not 0 <= best_rank < space_size:
        raise ValueError(f"best_rank must be in [0, {space_size}), got {best_rank}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    frac = best_rank / space_size
    if form == "code":
        return frac**n
    if form == "paper":
        return 1.0 - (1.0 - frac) ** n
    raise ValueError(f"form must be 'code' or 'paper', got {form!r}")


def top_k(ws: ArrayLike, k: int) -> NDArray[np.int64]:
    """Pool indices of the ``k`` best scores, best first; ties go to the earlier pool entry for reproducibility."""
    s = _vector(ws, "ws")
    if not 1 <= k <= s.size:
        raise ValueError(f"k must be in [1, {s.size}], got {k}")
    return np.argsort(-s, kind="stable")[:k].astype(np.int64)


def final_searched_model(ws: ArrayLike, gt: ArrayLike, k: int = 3) -> tuple[float, float]:
    """Mean and population std of the GT of the top-``k`` by ``ws`` (SPEC §2.4).

    The std is the spread across the k selected models (the authors' ``perf-std``), not across seeds.
    """
    s, g = _pair(ws, gt, "ws", "gt")
    chosen = g[top_k(s, k)]
    return float(np.mean(chosen)), float(np.std(chosen))


def checked_pool(
    scores: ArrayLike, gt: ArrayLike, ranks: ArrayLike, space_size: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.integer]]:
    """``scores``, ``gt`` as validated float vectors of one length, ``ranks`` as integers in [0, space_size)."""
    s, g = _pair(scores, gt, "scores", "gt")
    r = np.asarray(ranks)
    if r.shape != s.shape:
        raise ValueError(f"ranks must have one entry per architecture ({s.size}), got shape {r.shape}")
    if not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"ranks must be integers, got dtype {r.dtype}")
    if r.min() < 0 or r.max() >= space_size:
        raise ValueError(f"ranks must lie in [0, {space_size})")
    return s, g, r


def top_share(n: int, fraction: float, minimum: int = 1) -> int:
    """How many architectures make the top ``fraction`` of a pool of ``n`` (rounded, at least ``minimum``)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return min(n, max(minimum, int(round(fraction * n))))


def precision_at_top(scores: ArrayLike, gt: ArrayLike, fraction: float) -> float:
    """P@top: of the pool's predicted top ``fraction``, the share that is in its true top ``fraction``
    (Ning et al., "Evaluating efficient performance estimators"): what a search that keeps the best few
    actually gets, which a global correlation does not show. Ties go to the earlier pool entry on both
    sides, as in :func:`top_k`."""
    s, g = _pair(scores, gt, "scores", "gt")
    k = top_share(s.size, fraction)
    return len(set(top_k(s, k).tolist()) & set(top_k(g, k).tolist())) / k


def kendall_tau_top(scores: ArrayLike, gt: ArrayLike, fraction: float) -> float:
    """Kendall-Tau among the architectures of the pool's true top ``fraction`` (at least 2): does the
    scorer order the good architectures, where the search decides."""
    s, g = _pair(scores, gt, "scores", "gt")
    best = top_k(g, top_share(s.size, fraction, minimum=2))
    return _tau_b(s[best], g[best])
