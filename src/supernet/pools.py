"""Which architectures a run evaluates: pools drawn from the ground-truth table, and Baseline-v2's
one pool per sub-space (SPEC 6.5)."""

from __future__ import annotations

import numpy as np

from supernet import streams
from supernet.config import Config
from supernet.errors import SupernetError
from supernet.registry import SpaceKit

MIN_GROUP = 10  # smallest per-sub-space pool that enters the Baseline-v2 mean


def draw_pool(candidates: list[str], size: int, seed: int, stream: int = streams.EVAL_POOL,
              what: str = "evaluation.pool_size") -> list[str]:
    """Without replacement, from the seed alone: the same seed always evaluates the same pool."""
    if size > len(candidates):
        raise SupernetError(f"{what}={size} exceeds the {len(candidates)} architectures with ground truth")
    rng = np.random.default_rng([seed, streams.POOL, stream])
    idx = np.sort(rng.choice(len(candidates), size=size, replace=False))
    return [candidates[int(i)] for i in idx]


def candidates(kit: SpaceKit, cfg: Config, subspace: int | None) -> list[str]:
    """The keys a pool is drawn from: those with ground truth in the (sub-)space; with
    ``evaluation.pool_unique`` only the first of each isomorphism class (table order)."""
    keys = kit.candidates(subspace)
    if not cfg.evaluation.pool_unique:
        return keys
    seen: set[str] = set()
    out = []
    for k in keys:
        u = kit.space.unique_key(kit.arch_of(k))
        if u not in seen:
            seen.add(u)
            out.append(k)
    return out


def pool_groups(kit: SpaceKit, cfg: Config) -> list[tuple[str, list[str]]]:
    """(metric prefix, pool) pairs: one pool, or one per sub-space for Baseline-v2 (SPEC 6.5)."""
    ev = cfg.evaluation
    if not ev.per_subspace:
        keys = candidates(kit, cfg, cfg.space.subspace)
        return [("", keys if ev.pool_size == "all" else draw_pool(keys, ev.pool_size, cfg.seed))]
    groups = []
    for k in kit.subspaces():
        keys = candidates(kit, cfg, k)
        if len(keys) >= MIN_GROUP:
            size = len(keys) if ev.pool_size == "all" else min(ev.pool_size, len(keys))
            groups.append((f"sub{k}/", keys if size == len(keys) and ev.pool_size == "all"
                           else draw_pool(keys, size, cfg.seed, stream=streams.subspace_pool(k))))
    if not groups:
        raise SupernetError(f"evaluation.per_subspace: no sub-space has {MIN_GROUP} architectures with ground truth")
    return groups


def draw_landmarks(kit: SpaceKit, cfg: Config, pool: list[str]) -> list[str]:
    """``protocol.landmarks`` architectures with ground truth, from their own stream and never from the
    evaluation pool: a landmark's ranking is taught, so scoring it would flatter the super-net."""
    taken = set(pool)
    candidates = [k for k in kit.candidates(cfg.space.subspace) if k not in taken]
    return draw_pool(candidates, cfg.protocol.landmarks, cfg.seed, streams.LANDMARKS, what="protocol.landmarks")
