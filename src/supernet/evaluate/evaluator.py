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
from torch import nn

from supernet.evaluate.bootstrap import VERDICT_CODE, interval, replicates, resample_indices, verdict
from supernet.evaluate.catalogue import HEADLINE, MetricSettings, baseline, best_baseline, measure
from supernet.evaluate.measures import kendall_tau, sparse_kendall_tau
from supernet.groundtruth.table import GroundTruth
from supernet.nn.norm import BNMode, set_bn_mode
from supernet.runtime import CPU, Runtime


@dataclass
class PoolEvaluation:
    archs: list[str]
    accuracy: np.ndarray  # super-net accuracy, percent
    ground_truth: np.ndarray
    ranks: np.ndarray
    params: np.ndarray
    metrics: dict[str, float]
    seconds: float

    def rows(self) -> list[tuple[str, float, float, int, int]]:
        return [
            (a, float(w), float(g), int(r), int(p))
            for a, w, g, r, p in zip(self.archs, self.accuracy, self.ground_truth, self.ranks, self.params, strict=True)
        ]


@torch.inference_mode()
def supernet_accuracies(
    model: nn.Module,
    archs: Sequence[object],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    bn: BNMode,
    on_arch: Callable[[], None] | None = None,
    runtime: Runtime = CPU,
) -> np.ndarray:
    """Top-1 accuracy (percent) of each architecture on the same fixed batches."""
    model.eval()
    set_bn_mode(model, bn)
    n = sum(y.numel() for _, y in batches)
    correct = []
    for arch in archs:
        hits = torch.zeros((), dtype=torch.long, device=batches[0][1].device)
        for x, y in batches:
            with runtime.autocast():
                logits = model(x, arch)
            hits += (logits.argmax(1) == y).sum()
        correct.append(hits)
        if on_arch is not None:
            on_arch()
    return 100.0 * torch.stack(correct).cpu().numpy().astype(np.float64) / n


def compute_metrics(
    accuracy: np.ndarray,
    keys: Sequence[str],
    gt: GroundTruth,
    *,
    dataset: str,
    split: str,
    settings: MetricSettings,
    baselines: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Ground truth, ranks and metrics of one pool: every metric of the catalogue for the super-net, and
    its ranking metrics for each training-free baseline, stored as ``<prefix><metric>``.

    ``baselines``: name of a row of ``catalogue.BASELINES`` -> its score of each architecture of ``keys``
    (higher = predicted better). On NASBench-201 ranking by parameter count alone reaches a Kendall-Tau
    near 0.6, so a super-net is only worth its training where it beats that line; every evaluation
    reports both.
    """
    truth = np.asarray(gt.accuracy(list(keys), split=split, dataset=dataset), dtype=np.float64)
    ranks = np.asarray(gt.ranks(list(keys), split=split, dataset=dataset))
    metrics = measure(accuracy, truth, ranks, len(gt), settings)
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
