"""Weight-sharing super-net training and ranking evaluation (Yu, Ranftl, Salzmann).

The public API. Names load on first use (PEP 562), so ``import supernet`` and the CLI's start stay
free of torch until a network is needed::

    import supernet
    cfg = supernet.load_config("recipes/nb201-cpu.yaml", ["seed=1", "data.root=PATH"])
    metrics = supernet.Run(cfg).train()
    supernet.space_names()          # the registered search spaces
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # the space registry
    "SpacePlugin": "supernet.registry", "SpaceKit": "supernet.registry", "register": "supernet.registry",
    "registered": "supernet.registry", "get_space": "supernet.registry", "space_names": "supernet.registry",
    "build_kit": "supernet.registry",
    # configuration, runs, results, ground truth
    "Config": "supernet.config", "load_config": "supernet.config", "build_config": "supernet.config",
    "Run": "supernet.run", "evaluate_run": "supernet.trained", "ResultStore": "supernet.store",
    "GroundTruth": "supernet.groundtruth.table", "SupernetError": "supernet.errors",
    # metrics (pure functions on per-architecture arrays)
    "kendall_tau": "supernet.evaluate.metrics", "sparse_kendall_tau": "supernet.evaluate.metrics",
    "spearman": "supernet.evaluate.metrics", "prob_surpass_random": "supernet.evaluate.metrics",
    "final_searched_model": "supernet.evaluate.metrics", "ranking_metrics": "supernet.evaluate.metrics",
    "pool_metrics": "supernet.evaluate.metrics",
}
__all__ = [
    "Config",
    "GroundTruth",
    "ResultStore",
    "Run",
    "SpaceKit",
    "SpacePlugin",
    "SupernetError",
    "build_config",
    "build_kit",
    "evaluate_run",
    "final_searched_model",
    "get_space",
    "kendall_tau",
    "load_config",
    "pool_metrics",
    "prob_surpass_random",
    "ranking_metrics",
    "register",
    "registered",
    "space_names",
    "sparse_kendall_tau",
    "spearman",
]

if TYPE_CHECKING:
    from supernet.config import Config, build_config, load_config
    from supernet.errors import SupernetError
    from supernet.evaluate.metrics import (
        final_searched_model,
        kendall_tau,
        pool_metrics,
        prob_surpass_random,
        ranking_metrics,
        sparse_kendall_tau,
        spearman,
    )
    from supernet.groundtruth.table import GroundTruth
    from supernet.registry import (
        SpaceKit,
        SpacePlugin,
        build_kit,
        get_space,
        register,
        registered,
        space_names,
    )
    from supernet.run import Run
    from supernet.store import ResultStore
    from supernet.trained import evaluate_run


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'supernet' has no attribute '{name}'")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
