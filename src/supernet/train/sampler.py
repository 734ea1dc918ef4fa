"""Path samplers of P_ws: which architecture trains on the next mini-batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from supernet.spaces.base import SearchSpace

Sampler = Callable[[np.random.Generator], Any]


def make_sampler(space: SearchSpace, kind: str) -> Sampler:
    """``uniform``: uniform over architectures (the authors' default); ``encoding``: Random-NAS."""
    if kind == "uniform":
        return space.sample
    if kind == "encoding":
        return space.sample_encoding
    raise ValueError(f"unknown sampler {kind!r}")


def epoch_rng(seed: int, stream: int, epoch: int) -> np.random.Generator:
    """An independent generator per (seed, purpose, epoch), so a resumed run replays the same paths."""
    return np.random.default_rng([seed, stream, epoch])
