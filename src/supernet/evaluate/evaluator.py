"""Super-net evaluation of an architecture pool, and the metrics of one evaluation.

Evaluation batches are prepared once and reused for every architecture, and correct counts stay on
the device until the pool is done, so the cost is the forward passes themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from supernet.errors import SupernetError
from supernet.evaluate.bootstrap import VERDICT_CODE, interval, replicates, resample_indices, verdict
from supernet.evaluate.catalogue import (
    HEADLINE,
    VOTERS,
    MetricSettings,
    baseline,
    best_baseline,
    mean_rank,
    measure,
)
from supernet.evaluate.measures import kendall_tau, sparse_kendall_tau
from supernet.groundtruth.table import GroundTruth
from supernet.nn.norm import BNMode, recalibrate, set_bn_mode
from supernet.runtime import CPU, Runtime


@dataclass
class PoolEvaluation:
    archs: list[str]
    accuracy: np.ndarray  # super-net accuracy, percent (the mean over the ensemble's weights)
    ground_truth: np.ndarray
    ranks: np.ndarray
    params: np.ndarray
    metrics: dict[str, float]
    seconds: float
    score: np.ndarray | None = None  # what the metrics ranked by (evaluation.score); None: accuracy

    def __post_init__(self) -> None:
        if self.score is None:
            self.score = self.accuracy

    def rows(self) -> list[tuple[str, float, float, int, int]]:
        return [
            (a, float(w), float(g), int(r), int(p))
            for a, w, g, r, p in zip(self.archs, self.accuracy, self.ground_truth, self.ranks, self.params, strict=True)
        ]


Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


@torch.inference_mode()
def supernet_scores(
    model: nn.Module,
    archs: Sequence[object],
    batches: Batches,
    bn: BNMode,
    on_arch: Callable[[], None] | None = None,
    runtime: Runtime = CPU,
    calibration: Batches | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 accuracy (percent) and mean cross-entropy of each architecture on the same fixed batches.

    ``bn="recalibrate"``: before its evaluation each architecture's BN statistics are re-estimated on
    ``calibration`` (fixed training batches), as SPOS does: the shared statistics of a super-net belong to
    no single path.
    """
    model.eval()
    set_bn_mode(model, bn)
    if bn == "recalibrate" and not calibration:
        raise SupernetError("evaluation.bn=recalibrate needs calibration batches (evaluation.bn_batches)")
    n = sum(y.numel() for _, y in batches)
    correct, losses = [], []
    for arch in archs:
        if bn == "recalibrate":
            recalibrate(model, arch, calibration, runtime)
        hits = torch.zeros((), dtype=torch.long, device=batches[0][1].device)
        loss = torch.zeros((), dtype=torch.float64, device=batches[0][1].device)
        for x, y in batches:
            with runtime.autocast():
                logits = model(x, arch)
            hits += (logits.argmax(1) == y).sum()
            loss += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct.append(hits)
        losses.append(loss)
        if on_arch is not None:
            on_arch()
    accuracy = 100.0 * torch.stack(correct).cpu().numpy().astype(np.float64) / n
    return accuracy, torch.stack(losses).cpu().numpy() / n


def supernet_accuracies(model: nn.Module, archs: Sequence[object], batches: Batches, bn: BNMode,
                        on_arch: Callable[[], None] | None = None, runtime: Runtime = CPU) -> np.ndarray:
    """Top-1 accuracy (percent) of each architecture on the same fixed batches."""
    return supernet_scores(model, archs, batches, bn, on_arch, runtime)[0]


def ranking_score(accuracy: np.ndarray, loss: np.ndarray, score: str,
                  proxies: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """What ``evaluation.score`` ranks by, higher = better: accuracy; the negated mean loss (a continuous
    score: on a small evaluation set many architectures tie in accuracy, never in loss); or ``vote``, the
    super-net's accuracy as one more voter beside the zero-cost vote's (``catalogue.VOTERS``, scores in
    ``proxies``), all ranks weighing the same. The vote exists because the super-net's errors and the proxies'
    lie in different directions (bench/RESULTS.md), so each corrects part of the other's."""
    if score == "accuracy":
        return accuracy
    if score == "loss":
        return -loss
    if score == "vote":
        missing = [v for v in VOTERS if v not in (proxies or {})]
        if missing:
            raise SupernetError(f"evaluation.score=vote needs the proxies {', '.join(VOTERS)} (missing: "
                                f"{', '.join(missing)}); add them to evaluation.proxies")
        return mean_rank(accuracy, *(proxies[v] for v in VOTERS))
    raise ValueError(f"unknown evaluation.score {score!r}")


def compute_metrics(
    accuracy: np.ndarray,
    keys: Sequence[str],
    gt: GroundTruth,
    *,
    dataset: str,
    split: str,
    settings: MetricSettings,
    baselines: Mapping[str, np.ndarray] | None = None,
    supernet_accuracy: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Ground truth, ranks and metrics of one pool: every metric of the catalogue for the super-net, and
    its ranking metrics for each training-free baseline, stored as ``<prefix><metric>``.

    ``baselines``: name of a row of ``catalogue.BASELINES`` -> its score of each architecture of ``keys``
    (higher = predicted better). On NASBench-201 ranking by parameter count alone reaches a Kendall-Tau
    near 0.6, so a super-net is only worth its training where it beats that line; every evaluation
    reports both. ``supernet_accuracy``: the super-net's accuracies, where the first argument (what is ranked)
    is another score (``evaluation.score=loss`` or ``vote``), so that the accuracy metrics stay accuracies.
    """
    truth = np.asarray(gt.accuracy(list(keys), split=split, dataset=dataset), dtype=np.float64)
    ranks = np.asarray(gt.ranks(list(keys), split=split, dataset=dataset))
    metrics = measure(accuracy, truth, ranks, len(gt), settings, accuracy=supernet_accuracy)
    for name, scores in (baselines or {}).items():
        b = baseline(name)
        values = measure(np.asarray(scores, dtype=np.float64), truth, ranks, len(gt), b.settings(settings),
                         ranking_only=True)
        metrics.update({b.prefix + k: v for k, v in values.items()})
    return truth, ranks, {k: float(v) for k, v in metrics.items()}


def bootstrap_metrics(
    accuracy: np.ndarray,
    truth: np.ndarray,
    metrics: Mapping[str, float],
    settings: MetricSettings,
    baselines: Mapping[str, np.ndarray],
    resamples: int,
    seed: int = 0,
) -> dict[str, float]:
    """95 % intervals of the super-net's KdT and s-KdT over pool resamples, and its s-KdT minus the best
    baseline's on the same resamples (the derived rows of the catalogue). Each side keeps its own s-KdT
    construction (the baseline's forced variant), so the difference is the one the stored values show."""
    idx = resample_indices(len(truth), resamples, seed)
    skdt = partial(sparse_kendall_tau, threshold=settings.threshold, variant=settings.skdt_variant)
    ours = {"kdt": replicates(kendall_tau, accuracy, truth, idx), "skdt": replicates(skdt, accuracy, truth, idx)}
    out: dict[str, float] = {}
    for name, values in ours.items():
        out[f"{name}_lo"], out[f"{name}_hi"] = interval(values)
    best = best_baseline(metrics)
    if best is not None and best.name in baselines:
        theirs = best.settings(settings)
        diff = ours["skdt"] - replicates(partial(sparse_kendall_tau, threshold=theirs.threshold,
                                                 variant=theirs.skdt_variant),
                                         np.asarray(baselines[best.name], dtype=np.float64), truth, idx)
        lo, hi = interval(diff)
        out.update(vs_best_diff=metrics[HEADLINE] - metrics[best.prefix + HEADLINE], vs_best_lo=lo, vs_best_hi=hi,
                   vs_best_verdict=VERDICT_CODE[verdict(lo, hi)])
    return out
