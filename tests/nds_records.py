"""Fake NDS ``DARTS.json`` records in the release's format, for converter and end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from supernet.spaces.darts import DartsArch, DartsSpace
from supernet.supernets.darts import darts_param_count


def record(arch: DartsArch, width: int, depth: int, error: float, *, aux: bool = False,
           params: int | None = None, epochs: int = 3) -> dict[str, Any]:
    """One trained model as NDS stores it: ``test_ep_top1`` is the test error (%) per epoch."""
    return {
        "net": {"genotype": arch.genotype(), "width": width, "depth": depth, "aux": aux, "drop_prob": 0.0},
        "params": darts_param_count(arch, width, depth, 10, aux) if params is None else params,
        "flops": 0.0,
        "rng_seed": 0,
        "test_ep_top1": [60.0 + i for i in range(epochs - 1)] + [error],
        "train_ep_top1": [50.0] * epochs,
    }


def write_nds(path: Path, n: int, seed: int = 0) -> list[DartsArch]:
    """``n`` architectures at small NDS-like widths and depths; errors spread so ranks are distinct."""
    rng = np.random.default_rng(seed)
    space = DartsSpace()
    archs = [space.sample(rng) for _ in range(n)]
    records = [record(a, int(rng.choice([8, 12, 16])), int(rng.choice([3, 5])), 5.0 + 0.25 * i, aux=bool(i % 2))
               for i, a in enumerate(archs)]
    path.write_text(json.dumps(records))
    return archs
