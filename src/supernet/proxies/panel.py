"""The proxy panel: a registry of the proxies by name and one entry point that scores a network.

``score_all`` takes a network *factory* rather than a network because a proxy scores a network at
initialisation, and which initialisation is part of the score: the factory is called once under a
seed, inside a forked RNG so the caller's random streams are left as they were, and every requested
proxy sees that same network (none modifies it, see ``measures``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping, Sequence

import torch
from torch import nn

from supernet.errors import SupernetError
from supernet.proxies.measures import (
    flops,
    grad_norm,
    grad_norm_from_gradients,
    jacov,
    loss_gradients,
    nwot,
    params,
    snip,
    snip_from_gradients,
    synflow,
)

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

# Higher score = predicted better for every entry (see ``measures``); order = the order of reports.
PROXIES: dict[str, Proxy] = {
    "nwot": nwot,
    "jacov": jacov,
    "synflow": synflow,
    "params": params,
    "flops": flops,
    "grad_norm": grad_norm,
    "snip": snip,
}
PROXY_NAMES: tuple[str, ...] = tuple(PROXIES)


def resolve_names(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """``None`` or ``"all"``: every proxy; ``"none"``: none; otherwise the listed names, checked."""
    if names is None or names == "all":
        return PROXY_NAMES
    if names == "none":
        return ()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise SupernetError(f"unknown proxy {unknown[0]!r}; valid proxies: {', '.join(PROXY_NAMES)} (or all, none)")
    return tuple(dict.fromkeys(names))


def build_seeded(net_factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """The factory's network initialised from ``seed``, without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return net_factory()


def score_all(
    net_factory: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    names: Sequence[str] | str | None = None,
    seed: int = 0,
    timings: MutableMapping[str, float] | None = None,
) -> dict[str, float]:
    """Each requested proxy's score of the network ``net_factory()`` builds under ``seed``, on (x, y).

    Deterministic for a seed and a batch on one machine. Scores are plain floats; a degenerate
    network scores ``-inf`` on the proxies that are undefined for it (see ``measures``).

    snip and grad_norm are two reductions of the same loss gradient, so when both are requested the
    backward pass runs once (identical results, tested). ``timings``, when given, receives the
    seconds of each proxy (the shared backward split evenly between the two) and of ``build``.
    """
    chosen = resolve_names(names)
    if not chosen:
        return {}
    if x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise SupernetError(f"a proxy batch needs as many labels as images, got {x.shape[0]} images and {y.shape[0]} labels")
    clock = time.perf_counter
    spent: dict[str, float] = {}
    start = clock()
    net = build_seeded(net_factory, seed)
    spent["build"] = clock() - start
    fused = {"snip", "grad_norm"} <= set(chosen)
    if fused:
        start = clock()
        weights, grads = loss_gradients(net, x, y)
        spent["snip"] = spent["grad_norm"] = (clock() - start) / 2
    scores: dict[str, float] = {}
    for name in chosen:
        start = clock()
        if fused and name == "snip":
            scores[name] = snip_from_gradients(weights, grads)
        elif fused and name == "grad_norm":
            scores[name] = grad_norm_from_gradients(grads)
        else:
            scores[name] = PROXIES[name](net, x, y)
        spent[name] = spent.get(name, 0.0) + clock() - start
    if timings is not None:
        timings.update(spent)
    return scores
