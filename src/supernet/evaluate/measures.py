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

# Tolerance in bucket units: p / threshold can land just below an integer (91.10 % -> 0.9109999... -> 910.999...). Real
# accuracies are multiples of 1/30000 at best (3 repeats x 10k test images), i.e. >= 0.03 bucket widths apart,
# so absorbing 1e-6 bucket widths can never merge two genuinely different buckets.
_BUCKET_EPS = 1e-6


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


def _to_fraction(acc: NDArray[np.float64]) -> NDArray[np.float64]:
    """SPEC §2.2 step 1: the authors guess the unit from the mean, so a list averaging exactly 1 stays unscaled."""
    return acc / 100.0 if 1.0 < float(np.mean(acc)) < 100.0 else acc


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

    The authors floor-bucket fractions into fixed ``threshold``-wide cells and densely rank the occupied cells,
    so ties are grid cells, not "within 0.1 % of each other": 0.9109 and 0.9111 differ, 0.9110 and 0.9119 tie.
    Their float ``p * (1/threshold) // 1`` puts 91.10 % (scaled to 0.9109999...) in cell 910; we add a tiny
    epsilon so cell borders are exact (0.9110 and 91.10 % both land in cell 911). Ranks start at 0; the authors' counter starts at -1 when the
    lowest cell is 0, a constant shift that no rank correlation sees.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    frac = _to_fraction(_vector(acc, "acc"))
    buckets = np.floor(frac / threshold + _BUCKET_EPS)
    return np.unique(buckets, return_inverse=True)[1].astype(np.int64).reshape(-1)


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
