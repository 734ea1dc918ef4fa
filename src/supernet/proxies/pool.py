"""The proxy panel on an evaluation pool: every architecture's scores, from the cache where it has them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from supernet.proxies.cache import ProxyCache, batch_digest
from supernet.proxies.panel import score_all

FLUSH_EVERY = 20  # architectures between cache writes: an interrupted evaluation keeps most of its work


def finite_scores(values: np.ndarray) -> np.ndarray:
    """Rankable scores: a proxy is ``-inf`` (or undefined) on degenerate networks (e.g. NB201 cells with no
    path to the output), which rank below every real score; ties among them stay ties."""
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.all():
        return np.zeros_like(v)
    v = v.copy()
    v[bad] = v[~bad].min() - 1.0
    return v


def score_pool(
    space: str,
    keys: Sequence[str],
    archs: Sequence[Any],
    build_standalone: Callable[[Any], nn.Module],
    batch: tuple[torch.Tensor, torch.Tensor],
    names: Sequence[str],
    seed: int,
    cache_file: Path | None,
    on_arch: Callable[[], None] | None = None,
) -> dict[str, np.ndarray]:
    """Proxy name -> the pool's raw scores in ``keys`` order (``-inf`` where a proxy is undefined; rank them
    with :func:`finite_scores`)."""
    x, y = batch
    cache = ProxyCache(cache_file) if cache_file is not None else None
    data, size = batch_digest(x, y), int(y.numel())
    have = cache.get(space, data, seed, size, keys, names) if cache is not None else {}
    pending: dict[str, dict[str, float]] = {}
    try:
        for key, arch in zip(keys, archs, strict=True):
            missing = [n for n in names if (key, n) not in have]
            if missing:
                got = score_all(lambda a=arch: build_standalone(a), x, y, missing, seed)
                have.update(((key, n), v) for n, v in got.items())
                pending[key] = got
            if cache is not None and len(pending) >= FLUSH_EVERY:
                cache.put(space, data, seed, size, pending)
                pending = {}
            if on_arch is not None:
                on_arch()
    finally:
        if cache is not None:
            if pending:
                cache.put(space, data, seed, size, pending)
            cache.close()
    return {n: np.array([have[(k, n)] for k in keys], dtype=np.float64) for n in names}
