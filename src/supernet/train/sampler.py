"""Path samplers of P_ws: which architectures train on the next mini-batch.

A sampler returns the list of paths one optimiser step trains on: one path for single-path
sampling, ``|ops|`` paths for FairNAS. Uniform and encoding samplers draw exactly what they drew
when they returned a single path, so runs stay reproducible across that change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from supernet.spaces.base import SearchSpace

Sampler = Callable[[np.random.Generator], list[Any]]
SAMPLERS = ("uniform", "encoding", "fairnas", "unique")


def make_sampler(space: SearchSpace, kind: str) -> Sampler:
    """``uniform``: uniform over architectures (the authors' default); ``encoding``: Random-NAS
    (Li & Talwalkar); ``fairnas``: FairNAS strict fairness (Chu et al., SPEC 6.4); ``unique``: uniform over
    isomorphism classes (Ning et al. 2021), so a function with many encodings is not trained more often."""
    if kind == "uniform":
        return lambda rng: [space.sample(rng)]
    if kind == "encoding":
        return lambda rng: [space.sample_encoding(rng)]
    if kind == "fairnas":
        return lambda rng: fair_paths(space, rng)
    if kind == "unique":
        sample_unique = getattr(space, "sample_unique", None)
        if sample_unique is None:
            raise ValueError(f"space {space.name} has no sampler over isomorphism classes")
        return lambda rng: [sample_unique(rng)]
    raise ValueError(f"unknown sampler {kind!r}; expected one of {', '.join(SAMPLERS)}")


def slot_sampler(space: Any, base: Sampler, slot: int, ops: tuple[str, ...]) -> Sampler:
    """A few-shot super-net's paper mode: per step, one path of ``base`` for each op of ``slot`` with that op
    forced there (on NB201, uniform within each sub-super-net's slice of the space)."""
    return lambda rng: [space.with_slot_op(a, slot, op) for op in ops for a in base(rng)]


def fixed_sampler(archs: list[Any]) -> Sampler:
    """Uniform over a fixed list (``space.subsample``): a super-net of n architectures, or with one, the
    stand-alone network trained through the super-net (its path computes exactly that network)."""
    if not archs:
        raise ValueError("a fixed sampler needs at least one architecture")
    return lambda rng: [archs[int(rng.integers(len(archs)))]]


def fair_paths(space: Any, rng: np.random.Generator) -> list[Any]:
    """The topology of a uniformly drawn architecture and ``|ops|`` children of it in which every op
    slot (NB201 edge, NB101 interior vertex) takes each candidate op exactly once: per-slot random
    permutations. A topology without op slots (NB101's input->output cell) is its only child."""
    base = space.sample(rng)
    if space.op_slots(base) == 0:
        return [base]
    ops = space.ops
    perms = [rng.permutation(len(ops)) for _ in range(space.op_slots(base))]
    return [space.with_ops(base, [ops[int(p[j])] for p in perms]) for j in range(len(ops))]


def epoch_rng(seed: int, stream: int, epoch: int) -> np.random.Generator:
    """An independent generator per (seed, purpose, epoch), so a resumed run replays the same paths."""
    return np.random.default_rng([seed, stream, epoch])
