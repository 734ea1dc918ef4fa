"""The contract every search space fulfils.

Spaces are pure Python (no torch): they parse, validate, enumerate and sample architectures.
The super-net and the ground-truth table both refer to architectures through ``key(arch)``, so
that string is the only identity that crosses package boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

A = TypeVar("A")


@runtime_checkable
class SearchSpace(Protocol, Generic[A]):
    name: str

    def parse(self, text: str) -> A:
        """Strict: a malformed string raises SupernetError naming the problem."""

    def key(self, arch: A) -> str:
        """Canonical id shared with the ground-truth table."""

    def unique_key(self, arch: A) -> str:
        """Isomorphism-aware id: two archs computing the same function share it."""

    def sample(self, rng: np.random.Generator) -> A:
        """Uniform over architectures (the paper's default sampler)."""

    def sample_encoding(self, rng: np.random.Generator) -> A:
        """Uniform over encodings (Li & Talwalkar's Random-NAS)."""

    def __iter__(self) -> Iterator[A]: ...

    def __len__(self) -> int: ...
