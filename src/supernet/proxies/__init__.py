"""Training-free (zero-cost) proxies of an untrained stand-alone network, for ranking baselines.

``score_all(net_factory, x, y, names, seed)`` is the entry point; ``PROXIES`` maps each name to a
function ``(net, x, y) -> float`` whose higher value predicts a better architecture.
"""

from supernet.proxies.measures import flops, grad_norm, jacov, nwot, params, snip, synflow
from supernet.proxies.panel import PROXIES, PROXY_NAMES, Proxy, build_seeded, resolve_names, score_all

__all__ = [
    "PROXIES",
    "PROXY_NAMES",
    "Proxy",
    "build_seeded",
    "flops",
    "grad_norm",
    "jacov",
    "nwot",
    "params",
    "resolve_names",
    "score_all",
    "snip",
    "synflow",
]
