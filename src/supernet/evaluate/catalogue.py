"""The metric catalogue: one row per metric, and the table of training-free baselines.

Everything that computes, stores, prints, reports, tunes on or averages metrics reads ``METRICS``:
``ranking_metrics`` / ``pool_metrics`` and the evaluator compute its rows (:func:`measure`), ``supernet
runs / show`` and the one-line summaries print the rows their flags name, sweep reports make columns of
the ``report`` rows, ``tune`` chooses levels by one of those, and Baseline-v2 averages the
``subspace_mean`` rows over sub-spaces. Nothing else lists metrics.

**A new metric** is one function (in ``evaluate/measures.py``, unit-tested on hand-computed cases) plus
one row here: the row's ``compute`` receives ``(scores, truth, ranks, space_size, settings)`` of one
validated pool and returns a float; its flags say where it appears. A ``ranking`` metric is computed for
every scorer (the super-net and each baseline), the others for the super-net only.

**A new baseline** is one row of ``BASELINES`` plus its per-architecture scores, handed to
``evaluator.compute_metrics`` under the baseline's name; its metrics are stored as ``<prefix><metric>``.

Imports numpy, scipy's ranks and the metric functions only, so readers of the catalogue never pay for torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from supernet.evaluate.measures import (
    PsrForm,
    SkdtVariant,
    checked_pool,
    final_searched_model,
    kendall_tau,
    kendall_tau_top,
    precision_at_top,
    prob_surpass_random,
    sparse_kendall_tau,
    spearman,
    supernet_accuracy,
    top_k,
)


@dataclass(frozen=True)
class MetricSettings:
    """The metrics' parameters: config keys ``evaluation.top_k``, ``skdt_threshold``, ``skdt_variant``,
    ``psr_form`` (none of them changes a run's id)."""

    top_k: int = 3  # architectures making the final searched model; P>R's n
    threshold: float = 1e-3  # s-KdT bucket width (fraction)
    skdt_variant: SkdtVariant = "code"  # the authors' construction, or the clean one
    psr_form: PsrForm = "code"  # P>R as in the authors' code, or as printed

    @classmethod
    def from_config(cls, evaluation: Any) -> MetricSettings:
        """From a config's ``evaluation`` section (a whole ``Config`` is accepted too)."""
        ev = getattr(evaluation, "evaluation", evaluation)
        return cls(top_k=ev.top_k, threshold=ev.skdt_threshold, skdt_variant=ev.skdt_variant, psr_form=ev.psr_form)

    def replace(self, **changes: Any) -> MetricSettings:
        return dataclasses.replace(self, **changes)


# (scores, truth, ranks, space_size, settings) -> value; scores and truth are validated float vectors of the
# pool, ranks its integer ranks in the whole space (0 = worst), scores are "higher = predicted better".
MetricFn = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.integer], int, MetricSettings], float]


@dataclass(frozen=True)
class Metric:
    """One row of the catalogue: what a metric is called, how it is computed, and where it appears."""

    name: str  # the stored key (a baseline's: ``<prefix><name>``; a sub-space's: ``sub<K>/<name>``)
    title: str  # column title in reports and summaries
    digits: int  # decimals printed
    higher_is_better: bool | None  # None: a spread, not a quality (nothing can be tuned on it)
    ranking: bool  # computed for any scorer from its ranking (super-net and baselines); False: super-net only
    compute: MetricFn | None  # None: derived by the evaluator from several scorers (bootstrap intervals, verdict)
    short: str = ""  # narrow column title (``supernet runs``); default: title
    unit: str = ""
    std: str | None = None  # the metric holding this one's spread, printed as ± in summaries
    runs: bool = False  # a column of ``supernet runs``
    show: bool = False  # a line of ``supernet show``
    summary: bool = False  # in the one-line summary (train, evaluate, each evaluated epoch)
    report: bool = False  # a column of sweep reports (mean ± std over seeds); ``tune`` can choose levels by it
    report_baselines: bool = False  # also one report column per baseline
    # Baseline-v2: the headline value is the mean over sub-spaces (baselines too); every ranking metric is, so
    # no headline figure comes from the union of the sub-space pools (that one is kept as ``pool/<name>``)
    subspace_mean: bool = False

    def __post_init__(self) -> None:
        if not self.short:
            object.__setattr__(self, "short", self.title)

    def format(self, value: float | None) -> str:
        return "-" if value is None else f"{value:.{self.digits}f}"


def _best_rank(scores: NDArray, truth: NDArray, ranks: NDArray, space_size: int, s: MetricSettings) -> float:
    """As in the authors' ``tool.py``: the best found architecture is the highest-ranked of the top-k."""
    return float(ranks[top_k(scores, s.top_k)].max())


def _p_surpass_random(scores: NDArray, truth: NDArray, ranks: NDArray, space_size: int, s: MetricSettings) -> float:
    return prob_surpass_random(int(_best_rank(scores, truth, ranks, space_size, s)), space_size, s.top_k, s.psr_form)


# Order: the column order of reports, summaries and ``supernet runs``.
METRICS: tuple[Metric, ...] = (
    Metric("acc_mean", "super-net acc", 2, True, False, lambda s, g, r, n, c: supernet_accuracy(s)[0],
           short="acc", unit="%", std="acc_std", runs=True, show=True, summary=True, report=True),
    Metric("acc_std", "super-net acc std", 2, None, False, lambda s, g, r, n, c: supernet_accuracy(s)[1], unit="%"),
    Metric("skdt", "s-KdT", 3, True, True, lambda s, g, r, n, c: sparse_kendall_tau(s, g, c.threshold, c.skdt_variant),
           runs=True, show=True, summary=True, report=True, report_baselines=True, subspace_mean=True),
    Metric("kdt", "KdT", 3, True, True, lambda s, g, r, n, c: kendall_tau(s, g),
           runs=True, show=True, summary=True, report=True, subspace_mean=True),
    Metric("spearman", "Spearman", 3, True, True, lambda s, g, r, n, c: spearman(s, g),
           show=True, summary=True, report=True, subspace_mean=True),
    Metric("p_surpass_random", "P>R", 3, True, True, _p_surpass_random, show=True, summary=True, report=True,
           subspace_mean=True),
    Metric("final_acc", "final model", 2, True, True, lambda s, g, r, n, c: final_searched_model(s, g, c.top_k)[0],
           short="final", unit="%", std="final_acc_std", runs=True, show=True, summary=True, report=True,
           subspace_mean=True),
    Metric("final_acc_std", "final model std", 2, None, True,
           lambda s, g, r, n, c: final_searched_model(s, g, c.top_k)[1], unit="%", subspace_mean=True),
    Metric("best_rank", "best rank", 0, True, True, _best_rank, subspace_mean=True),
    # Top-heavy: what a search keeping the best few gets (issue 11).
    Metric("p_at_top5", "P@top5%", 3, True, True, lambda s, g, r, n, c: precision_at_top(s, g, 0.05),
           show=True, report=True, subspace_mean=True),
    Metric("p_at_top10", "P@top10%", 3, True, True, lambda s, g, r, n, c: precision_at_top(s, g, 0.10),
           show=True, report=True, subspace_mean=True),
    Metric("kdt_top10", "KdT top10%", 3, True, True, lambda s, g, r, n, c: kendall_tau_top(s, g, 0.10),
           show=True, report=True, subspace_mean=True),
    # Derived by the evaluator (evaluate/bootstrap.py): 95 % intervals over pool resamples, and the super-net
    # minus the best baseline on the same resamples (verdict: 1 beats, 0 ties, -1 loses).
    Metric("kdt_lo", "KdT 95% low", 3, None, False, None),
    Metric("kdt_hi", "KdT 95% high", 3, None, False, None),
    Metric("skdt_lo", "s-KdT 95% low", 3, None, False, None),
    Metric("skdt_hi", "s-KdT 95% high", 3, None, False, None),
    Metric("vs_best_diff", "s-KdT minus best baseline", 3, True, False, None),
    Metric("vs_best_lo", "difference 95% low", 3, None, False, None),
    Metric("vs_best_hi", "difference 95% high", 3, None, False, None),
    Metric("vs_best_verdict", "vs best baseline", 0, True, False, None, short="verdict"),
)
HEADLINE = "skdt"
VERDICTS = {1.0: "beats", 0.0: "ties", -1.0: "loses"}  # the metric one-line views compare the super-net and the baselines on


@dataclass(frozen=True)
class Baseline:
    """A training-free scorer measured on every pool next to the super-net, by the ``ranking`` metrics."""

    name: str  # its key in ``compute_metrics(baselines=...)``
    title: str  # column title
    description: str  # what it scores by, in words (figure legends)
    source: str  # the per-architecture quantity its scores are read from (see :func:`baseline_scores`)
    skdt_variant: SkdtVariant | None = None  # forced s-KdT variant; None: ``evaluation.skdt_variant``
    prefix: str = ""  # stored keys are ``<prefix><metric>``; default ``<name>/``

    def __post_init__(self) -> None:
        if not self.prefix:
            object.__setattr__(self, "prefix", f"{self.name}/")

    def settings(self, settings: MetricSettings) -> MetricSettings:
        return settings if self.skdt_variant is None else settings.replace(skdt_variant=self.skdt_variant)


BASELINES: tuple[Baseline, ...] = (
    # Parameter counts tie a lot (about 20 distinct values in a 200-arch NB201 pool): the authors' tie
    # handling would make the baseline depend on pool order, so it always uses the clean s-KdT.
    # Scores: the stand-alone parameter count at the benchmark's size, which every evaluation stores per architecture.
    Baseline("params", "params", "parameter count", source="params", skdt_variant="clean"),
    # The zero-cost proxy panel (supernet.proxies), scored on the untrained stand-alone network from one fixed
    # batch (evaluation.proxies). FLOPs tie like parameter counts; all proxies use the clean s-KdT alike.
    Baseline("flops", "flops", "FLOPs", source="proxy", skdt_variant="clean"),
    Baseline("synflow", "synflow", "SynFlow", source="proxy", skdt_variant="clean"),
    Baseline("nwot", "nwot", "NASWOT (activation-code log-det)", source="proxy", skdt_variant="clean"),
    Baseline("jacov", "jacov", "Jacobian covariance", source="proxy", skdt_variant="clean"),
    Baseline("snip", "snip", "SNIP saliency", source="proxy", skdt_variant="clean"),
    Baseline("grad_norm", "grad_norm", "gradient norm", source="proxy", skdt_variant="clean"),
    # Proxies err in different directions, so a vote among them ranks better than any one (Abdelfattah et al., ICLR
    # 2021, vote synflow, jacov and snip); measured whenever the panel holds all three, it raises the bar a
    # super-net must clear to the strongest training-free ranking the panel can make without tuning on ground truth.
    Baseline("vote", "vote", "vote of synflow, jacov, snip (mean rank)", source="vote", skdt_variant="clean"),
)
PROXIES: tuple[str, ...] = tuple(b.name for b in BASELINES if b.source == "proxy")  # evaluation.proxies
VOTERS: tuple[str, ...] = ("synflow", "jacov", "snip")  # the vote's members, as Abdelfattah et al. chose them


def metric(name: str) -> Metric:
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(f"unknown metric '{name}'; known: {', '.join(m.name for m in METRICS)}")


def baseline(name: str) -> Baseline:
    for b in BASELINES:
        if b.name == name:
            return b
    raise KeyError(f"unknown baseline '{name}'; known: {', '.join(b.name for b in BASELINES)}")


def measure(
    scores: ArrayLike,
    truth: ArrayLike,
    ranks: ArrayLike,
    space_size: int,
    settings: MetricSettings | None = None,
    *,
    ranking_only: bool = False,
    accuracy: ArrayLike | None = None,
) -> dict[str, float]:
    """Every metric of the catalogue (``ranking_only``: the ranking metrics) of one scorer on one pool.

    ``accuracy``: what the metrics that are not about ranking describe (the super-net's accuracy), where the
    scores ranked are something else (``evaluation.score=loss`` or ``vote``); default: the scores."""
    settings = settings or MetricSettings()
    s, g, r = checked_pool(scores, truth, ranks, space_size)
    a = s if accuracy is None else checked_pool(accuracy, truth, ranks, space_size)[0]
    return {m.name: float(m.compute(s if m.ranking else a, g, r, space_size, settings)) for m in METRICS
            if m.compute is not None and (m.ranking or not ranking_only)}


def mean_rank(*scores: ArrayLike) -> NDArray[np.float64]:
    """A Borda count: the mean of each scorer's ranks (ties share their mean rank), higher = better. Ranks,
    not raw scores, so voters on different scales (log-determinants, accuracies in percent) weigh the same."""
    return np.mean([rankdata(np.asarray(s, dtype=np.float64)) for s in scores], axis=0)


def baseline_scores(per_arch: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    """Baseline name -> scores, as ``compute_metrics(baselines=...)`` takes them, for each baseline an evaluation
    can measure from its per-architecture quantities: ``params`` (the parameter counts) and each proxy's scores
    by name; the vote where all its voters are there."""
    out = {}
    for b in BASELINES:
        if b.source == "vote":
            if all(v in per_arch for v in VOTERS):
                out[b.name] = mean_rank(*(per_arch[v] for v in VOTERS))
            continue
        name = b.source if b.source == "params" else b.name
        if name in per_arch:
            out[b.name] = np.asarray(per_arch[name], dtype=np.float64)
    return out


def baselines_in(keys: Iterable[str]) -> list[Baseline]:
    """The baselines measured in a set of stored metric names, in table order."""
    keys = set(keys)
    return [b for b in BASELINES if b.prefix + HEADLINE in keys]


def best_baseline(values: Mapping[str, float]) -> Baseline | None:
    """The baseline with the highest headline metric among those measured (the bar the super-net must clear)."""
    found = [(values[b.prefix + HEADLINE], k, b) for k, b in enumerate(baselines_in(values))
             if _finite(values[b.prefix + HEADLINE])]
    return max(found, key=lambda t: (t[0], -t[1]))[2] if found else None


def verdict(values: Mapping[str, float]) -> str | None:
    """``beats``, ``ties`` or ``loses`` (the best baseline), when the evaluation has the comparison."""
    code = values.get("vs_best_verdict")
    return VERDICTS[float(code)] if _finite(code) else None


def _finite(value: float | None) -> bool:
    """Stored metrics come back as None where they were nan (SQLite has no nan)."""
    return value is not None and bool(np.isfinite(value))


def subspace_mean_names(keys: Iterable[str]) -> list[str]:
    """The metrics Baseline-v2 averages over sub-spaces, of the super-net and each baseline present."""
    keys = set(keys)
    prefixes = ["", *(b.prefix for b in BASELINES)]
    return [p + m.name for p in prefixes for m in METRICS if m.subspace_mean and p + m.name in keys]


def headline(values: Mapping[str, float]) -> str:
    """``s-KdT 0.544 (params baseline 0.566)``: the super-net's headline metric next to each baseline's."""
    h = metric(HEADLINE)
    text = f"{h.title} {h.format(values.get(HEADLINE))}"
    if "skdt_lo" in values:
        text += f" [{h.format(values['skdt_lo'])}, {h.format(values['skdt_hi'])}]"
    bases, best = baselines_in(values), best_baseline(values)
    others = [f"{b.title} baseline {h.format(values.get(b.prefix + HEADLINE))}" for b in bases if b.name == "params"]
    if best is not None and best.name != "params":
        others.append(f"best proxy {best.title} {h.format(values.get(best.prefix + HEADLINE))}")
    text += f" ({', '.join(others)})" if others else ""
    v = verdict(values)
    if v is not None:
        text += (f" {v} the best by {h.format(values['vs_best_diff'])} "
                 f"[{h.format(values['vs_best_lo'])}, {h.format(values['vs_best_hi'])}]")
    return text


def summary(values: Mapping[str, float]) -> str:
    """The ``summary`` metrics on one line, the headline with its baselines."""
    parts = []
    for m in METRICS:
        if not m.summary:
            continue
        if m.name == HEADLINE:
            parts.append(headline(values))
            continue
        text = m.format(values.get(m.name))
        if m.std is not None and m.std in values:
            text += f"±{m.format(values[m.std])}"
        parts.append(f"{m.title} {text}{m.unit}")
    return "  ".join(parts)
