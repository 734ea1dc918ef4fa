"""Bootstrap confidence intervals over the evaluation pool, and the paired verdict super-net vs proxy.

A pool of 200 architectures is a sample; a ranking correlation measured on it has a sampling error
of several hundredths, about the size of the differences between a super-net and the best training-free
proxy. Resampling the pool (with replacement, seeded) and recomputing the metric gives that error;
resampling the super-net and a proxy on the *same* resamples gives the interval of their difference,
which is narrower than the two intervals suggest because both are scored on the same architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Verdict = Literal["beats", "ties", "loses"]
VERDICT_CODE: dict[Verdict, float] = {"beats": 1.0, "ties": 0.0, "loses": -1.0}  # stored as a float metric
PairMetric = Callable[[NDArray[np.float64], NDArray[np.float64]], float]  # (scores, truth) -> value


def resample_indices(n: int, resamples: int = 1000, seed: int = 0) -> NDArray[np.int64]:
    """``resamples`` x ``n`` pool indices drawn with replacement; the same seed gives the same resamples,
    so every scorer of one evaluation is resampled identically (the pairing)."""
    if n < 2 or resamples < 1:
        raise ValueError(f"need a pool of >= 2 and >= 1 resample, got {n} and {resamples}")
    return np.random.default_rng([seed, n]).integers(0, n, size=(resamples, n))


def replicates(metric: PairMetric, scores: ArrayLike, truth: ArrayLike, idx: NDArray[np.int64]) -> NDArray[np.float64]:
    """The metric on each resample (``nan`` where a resample is constant in one of the two)."""
    s, g = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    return np.array([metric(s[i], g[i]) for i in idx])


def interval(values: NDArray[np.float64], level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates, ignoring undefined ones."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def verdict(lo: float, hi: float) -> Verdict:
    """Beats (ties, loses) when the whole interval of the difference lies above zero (covers it, lies below)."""
    if lo > 0:
        return "beats"
    if hi < 0:
        return "loses"
    return "ties"
