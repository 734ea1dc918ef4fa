"""Random-NAS with a trained super-net (the paper's final search): sample architectures, rank them by
super-net accuracy, keep the best.

The sample is drawn from the architectures that have ground truth, so the searched model's real
accuracy is known at once; it is stored as an evaluation of kind ``search`` next to the run's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet import streams
from supernet.config import Config, evaluation_config
from supernet.errors import SupernetError
from supernet.evaluate.evaluator import PoolEvaluation
from supernet.pools import draw_pool
from supernet.registry import build_kit
from supernet.store import ResultStore
from supernet.trained import evaluate_run


@dataclass
class SearchResult:
    evaluation: PoolEvaluation
    order: np.ndarray  # sample positions, best super-net score (evaluation.score) first
    top_k: int  # how many of the best make the searched model's reported accuracy

    def best(self, k: int) -> list[tuple[str, float, float]]:
        """(architecture, super-net accuracy, ground truth) of the k best by the super-net's score."""
        ev = self.evaluation
        return [(ev.archs[i], float(ev.accuracy[i]), float(ev.ground_truth[i])) for i in self.order[:k]]


def search_pool(cfg: Config, samples: int, seed: int | None = None) -> list[str]:
    """The architectures ``supernet search`` ranks: a sample of those with ground truth, drawn from the run's
    seed (or ``seed``) on a stream of its own, so a search never reuses the training pool's draw."""
    candidates = build_kit(cfg).candidates(cfg.space.subspace)
    if samples > len(candidates):
        raise SupernetError(f"--samples {samples} exceeds the {len(candidates)} architectures with ground truth")
    return draw_pool(candidates, samples, cfg.seed if seed is None else seed, streams.SEARCH)


def search_run(
    store: ResultStore, run_id: str, samples: int, seed: int | None = None, overrides: list[str] | None = None
) -> SearchResult:
    row = store.get_run(run_id)
    cfg = evaluation_config(row.config, list(overrides or []))
    top_k = cfg.evaluation.top_k
    if samples < top_k:
        raise SupernetError(f"--samples {samples} is fewer than evaluation.top_k={top_k}")
    pool = search_pool(cfg, samples, seed)
    ev = evaluate_run(store, row.id, list(overrides or []), pool=pool, kind="search")
    # Stable order: ties in the super-net's score (evaluation.score) keep sample order, so the result is reproducible.
    return SearchResult(ev, np.argsort(-np.asarray(ev.score), kind="stable"), top_k)
