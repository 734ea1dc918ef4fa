"""The proxy panel: a registry of the proxies by name and one entry point that scores a network.

``score_all`` takes a network *factory* rather than a network because a proxy scores a network at
initialisation, and which initialisation is part of the score: the factory is called once under a
seed, inside a forked RNG so the caller's random streams are left as they were, and every requested
proxy scores that same network. The network is the panel's own, so no proxy copies it: the proxies
that read one forward pass of the batch share it (``measures.forward_proxies``), flops counts on its
tensors swapped for meta tensors (``measures.meta_flops``), and synflow, which rewrites the weights,
runs last on it (``measures.synflow_in_place``). The factory must therefore build a new network on
every call (it is called under the seed to initialise one); the scores are those of the proxy
functions of ``PROXIES`` run one by one on copies (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping, Sequence

import torch
from torch import nn

from supernet.errors import SupernetError
from supernet.proxies.measures import (
    FORWARD_PROXIES,
    flops,
    forward_proxies,
    grad_norm,
    jacov,
    make_private,
    meta_flops,
    nwot,
    params,
    snip,
    synflow,
    synflow_in_place,
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
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Each requested proxy's score of the network ``net_factory()`` builds under ``seed``, on (x, y).

    Deterministic for a seed and a batch on one machine. Scores are plain floats, in the order of
    ``names``; a degenerate network scores ``-inf`` on the proxies that are undefined for it (see
    ``measures``). ``net_factory`` must return a new network on each call: the panel scores it in
    place (see the module's docstring).

    nwot, jacov, snip and grad_norm share one forward pass, and snip and grad_norm one backward
    pass (identical results, tested). ``timings``, when given, receives the seconds (by ``clock``:
    wall time by default, ``time.process_time`` for CPU time) of ``build`` and of each proxy, a
    shared pass split between the proxies that use it (``measures.forward_proxies``).
    """
    chosen = resolve_names(names)
    if not chosen:
        return {}
    if x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise SupernetError(f"a proxy batch needs as many labels as images, got {x.shape[0]} images and {y.shape[0]} labels")
    spent: dict[str, float] = {}
    start = clock()
    net = make_private(build_seeded(net_factory, seed))
    spent["build"] = clock() - start
    scores = forward_proxies(net, x, y, chosen, clock, spent)
    # Proxies that only read the network, then synflow, which rewrites it.
    rest = [n for n in chosen if n not in FORWARD_PROXIES and n != "synflow"] + (["synflow"] if "synflow" in chosen else [])
    for name in rest:
        start = clock()
        if name == "flops":
            scores[name] = meta_flops(net, x)
        elif name == "synflow":
            scores[name] = synflow_in_place(net, x)
        else:
            scores[name] = PROXIES[name](net, x, y)
        spent[name] = spent.get(name, 0.0) + clock() - start
    if timings is not None:
        timings.update(spent)
    return {name: scores[name] for name in chosen}
