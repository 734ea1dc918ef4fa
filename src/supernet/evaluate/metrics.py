"""Super-net quality metrics (SPEC §2): accuracy, (sparse) Kendall-Tau / Spearman, P>R, final searched model.

The public face of the metrics: the metric functions (defined in ``evaluate/measures.py``, which documents the
conventions and the authors' quirks kept) and the two aggregates that evaluate the metric catalogue
(``evaluate/catalogue.py``) on one pool. Layers: measures (functions) <- catalogue (rows) <- metrics (this).
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from supernet.evaluate.catalogue import MetricSettings, measure
from supernet.evaluate.measures import (
    PsrForm,
    SkdtVariant,
    final_searched_model,
    kendall_tau,
    prob_surpass_random,
    sparse_kendall_tau,
    sparse_ranks,
    sparse_spearman,
    spearman,
    supernet_accuracy,
    top_k,
)

__all__ = [
    "PsrForm", "SkdtVariant", "final_searched_model", "kendall_tau", "pool_metrics", "prob_surpass_random",
    "ranking_metrics", "sparse_kendall_tau", "sparse_ranks", "sparse_spearman", "spearman", "supernet_accuracy",
    "top_k",
]


def ranking_metrics(
    scores: ArrayLike,
    gt: ArrayLike,
    ranks: ArrayLike,
    space_size: int,
    *,
    k: int = 3,
    threshold: float = 1e-3,
    skdt_variant: SkdtVariant = "code",
    psr_form: PsrForm = "code",
) -> dict[str, float]:
    """All ranking metrics of the catalogue for one scorer on one pool; ``scores`` is anything where higher =
    predicted better.

    Shared by the super-net (scores = ws) and training-free baselines (e.g. parameter count) so both are
    measured identically. As in ``tool.py``, the "best found" architecture is the highest-ranked of the
    top-``k`` by score and P>R uses n = k. Keys: ``kdt``, ``skdt``, ``spearman``, ``p_surpass_random``,
    ``final_acc``, ``final_acc_std``, ``best_rank`` (and any ranking row added to the catalogue).
    """
    settings = MetricSettings(top_k=k, threshold=threshold, skdt_variant=skdt_variant, psr_form=psr_form)
    return measure(scores, gt, ranks, space_size, settings, ranking_only=True)


def pool_metrics(
    ws: ArrayLike,
    gt: ArrayLike,
    ranks: ArrayLike,
    space_size: int,
    *,
    k: int = 3,
    threshold: float = 1e-3,
    skdt_variant: SkdtVariant = "code",
    psr_form: PsrForm = "code",
) -> dict[str, float]:
    """Every metric of the catalogue for the super-net: :func:`ranking_metrics` plus its accuracy
    (``acc_mean``, ``acc_std``): one table row."""
    settings = MetricSettings(top_k=k, threshold=threshold, skdt_variant=skdt_variant, psr_form=psr_form)
    return measure(ws, gt, ranks, space_size, settings)
