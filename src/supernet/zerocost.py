"""``supernet proxies``: the training-free proxy panel for architectures given by hand, with the same
batch, seed and cache an evaluation uses, so its numbers are the ones a run's evaluation stores."""

from __future__ import annotations

import math
from typing import Any

from supernet.config import load_config
from supernet.data.setup import load_dataset, proxy_batch, proxy_cache_file
from supernet.errors import SupernetError
from supernet.proxies.pool import score_pool
from supernet.registry import build_kit
from supernet.runtime import Runtime


def proxy_rows(space: str, texts: list[str], overrides: list[str]) -> list[dict[str, Any]]:
    """One row per architecture: its key, its parameter count at the benchmark's size and each proxy's score
    (None where the proxy is undefined for the network, e.g. no path from input to output).

    ``overrides``: config keys, e.g. ``data.root=PATH``, ``evaluation.proxies=nwot,synflow``,
    ``evaluation.proxy_batch_size=64``, ``space.ground_truth=TABLE`` (DARTS-NDS networks take their width
    and depth from the table)."""
    if not texts:
        raise SupernetError("no architecture given (pass architectures, or '-' to read them from stdin)")
    cfg = load_config(None, [f"space.name={space}", *overrides])
    names = cfg.evaluation.proxy_list()
    if not names:
        raise SupernetError("evaluation.proxies=none: no proxy to compute")
    kit = build_kit(cfg)
    if kit.build_standalone is None:
        raise SupernetError(f"space {space} has no stand-alone network to score")
    archs = [kit.space.parse(t) for t in texts]
    keys = [kit.space.key(a) for a in archs]
    rt = Runtime.from_config(cfg.device, cfg.runtime)
    batch = proxy_batch(cfg, load_dataset(cfg), rt)
    assert batch is not None
    scores = score_pool(space, keys, archs, lambda a: kit.build_standalone(a).to(rt.device), batch, names,
                        cfg.evaluation.proxy_seed, proxy_cache_file(cfg))
    return [{"key": k, "params": kit.param_count(a), **{n: _number(scores[n][i]) for n in names}}
            for i, (k, a) in enumerate(zip(keys, archs, strict=True))]


def _number(value: float) -> float | None:
    """None (JSON null) where a proxy is undefined for the network (``-inf``): JSON has no infinity."""
    return float(value) if math.isfinite(value) else None
