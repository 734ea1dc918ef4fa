"""The space registry: one :class:`SpacePlugin` per search space is the whole plug-in.

Config validation, the CLI's space choices, the factors' per-space levels, ``supernet arch``,
``supernet convert`` and the reports all read spaces from here, so nothing else in the package lists
them. A plug-in holds only callables and data; the heavy modules it builds from (networks, converters)
are imported when those callables run, so importing the registry stays cheap.

The three built-in spaces live in ``supernet.plugins``; other packages add theirs with
:func:`register`, or declare an entry point in the ``supernet.spaces`` group whose object is a
``SpacePlugin`` (loaded on first use, like the built-ins).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from supernet.errors import SupernetError

if TYPE_CHECKING:  # the registry is read by config validation: it must not import torch
    from torch import nn

    from supernet.config import Config
    from supernet.factors import Level
    from supernet.groundtruth.table import GroundTruth

BUILTIN = ("supernet.plugins.nasbench201", "supernet.plugins.nasbench101", "supernet.plugins.darts_nds")
ENTRY_POINTS = "supernet.spaces"


@dataclass
class SpaceKit:
    """What one run needs of its space, built from its config: the runtime half of a plug-in."""

    space: Any  # a supernet.spaces.base.SearchSpace
    gt: GroundTruth
    gt_dataset: str
    gt_split: str
    build_supernet: Callable[[], nn.Module]
    param_count: Callable[[Any], int]  # the benchmark's stand-alone size, for the training-free baselines
    arch_of: Callable[[str], Any]  # ground-truth key -> architecture
    # f_proxy at the benchmark's size (the network the ground truth trained), untrained; None: not available.
    build_standalone: Callable[[Any], nn.Module] | None = None
    # The network `supernet retrain` trains from scratch: (architecture, the config's FinalConfig) -> network, BN with
    # running statistics; None: the space offers no final training. NB201/NB101: the benchmark's own network;
    # DARTS-NDS: DARTS' evaluation network at final.channels/layers.
    build_final: Callable[[Any, Any], nn.Module] | None = None
    subspace_of: Callable[[Any], int] | None = None  # NB101: vertices feeding the output
    # The same for every table row at once, from stored arrays: a full NB101 table has 423,624 rows.
    row_subspaces: Callable[[], np.ndarray] | None = None
    _labels_cache: list[np.ndarray] = field(default_factory=list, repr=False)

    def _labels(self) -> np.ndarray:
        if not self._labels_cache:
            if self.row_subspaces is not None:
                self._labels_cache.append(self.row_subspaces())
            else:
                assert self.subspace_of is not None
                self._labels_cache.append(np.array([self.subspace_of(self.arch_of(k)) for k in self.gt.keys()]))
        return self._labels_cache[0]

    def candidates(self, subspace: int | None = None) -> list[str]:
        """Keys a pool may be drawn from: those with ground truth, in the (sub-)space, in table order."""
        keys = self.gt.keys()
        if subspace is None or self.subspace_of is None:
            return keys
        return [k for k, label in zip(keys, self._labels(), strict=True) if label == subspace]

    def subspaces(self) -> list[int]:
        if self.subspace_of is None:
            raise SupernetError("this space has no sub-spaces")
        return sorted(int(x) for x in np.unique(self._labels()))


@dataclass(frozen=True)
class ConvertFlags:
    """Options of ``supernet convert``; a plug-in names the ones it reads in ``convert_flags``."""

    full: bool = False  # NB101: the file holds all four epoch budgets
    verify: bool = True  # DARTS-NDS: check parameter counts against f_proxy


@dataclass(frozen=True)
class SpacePlugin:
    """Everything the package knows about one search space.

    ``options`` are the space-specific config keys (those marked ``space_option`` in ``config.py``) the
    space supports; any other such key must stay at its default, so the config validator is a loop over
    plug-ins rather than a list of space names. ``refused`` names values of general keys a space cannot
    take, with the reason. ``validate`` holds the few rules that involve several keys of one space.
    """

    name: str
    title: str
    build: Callable[[Config], SpaceKit]
    describe: Callable[[list[str], str | None], list[dict[str, Any]]]  # rows of `supernet arch`
    options: frozenset[str] = frozenset()
    refused: Mapping[str, Mapping[Any, str]] = field(default_factory=dict)  # key -> {value: reason}
    validate: Callable[[Config], None] | None = None  # raises ValueError
    convert: Callable[[str, str, ConvertFlags], str] | None = None  # official file -> table; returns a summary
    convert_source: str = ""  # what `supernet convert` reads, for its help
    convert_flags: tuple[str, ...] = ()
    factor_levels: Mapping[str, tuple[Level, ...]] = field(default_factory=dict)  # per-space levels of factors
    paper: Mapping[str, Any] = field(default_factory=dict)  # the paper's reference figures, e.g. "meta"
    # The benchmark's final training protocol as values of FinalConfig's keys (``supernet retrain``).
    final: Mapping[str, Any] = field(default_factory=dict)

    def refuses(self, key: str, value: Any) -> str | None:
        """The reason this space cannot take ``key=value``, or None."""
        return self.refused.get(key, {}).get(value)


_PLUGINS: dict[str, SpacePlugin] = {}
_loaded: list[bool] = []


def _load() -> None:
    """Built-ins and entry points, once: registering them at import time would import every plug-in
    (and its converters' dependencies) wherever a space name is checked."""
    if _loaded:
        return
    _loaded.append(True)
    for module in BUILTIN:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        plugin = ep.load()
        if not isinstance(plugin, SpacePlugin):
            raise SupernetError(f"entry point {ep.name} = {ep.value} is not a SpacePlugin")
        if plugin.name not in _PLUGINS:
            register(plugin)


def register(plugin: SpacePlugin, *, replace: bool = False) -> SpacePlugin:
    """``replace``: swap a registered plug-in of the same name (e.g. a test's variant of a built-in)."""
    if plugin.name in _PLUGINS and _PLUGINS[plugin.name] is not plugin and not replace:
        raise SupernetError(f"space '{plugin.name}' is registered twice")
    _PLUGINS[plugin.name] = plugin
    return plugin


def unregister(name: str) -> None:
    _PLUGINS.pop(name, None)


@contextmanager
def registered(plugin: SpacePlugin) -> Iterator[SpacePlugin]:
    """A plug-in for the duration of a block (tests, notebooks)."""
    _load()
    register(plugin)
    try:
        yield plugin
    finally:
        unregister(plugin.name)


def space_names() -> tuple[str, ...]:
    _load()
    return tuple(_PLUGINS)


def get_space(name: str) -> SpacePlugin:
    _load()
    try:
        return _PLUGINS[name]
    except KeyError:
        raise SupernetError(f"unknown space '{name}'; available: {', '.join(_PLUGINS)}") from None


def build_kit(cfg: Config) -> SpaceKit:
    return get_space(cfg.space.name).build(cfg)


def describe(space: str, texts: list[str], table: str | None = None) -> list[dict[str, Any]]:
    """The rows ``supernet arch`` prints. ``table``: a converted ground-truth table to look the
    architectures up in (darts_nds has no shipped one; for the others it replaces the shipped tables)."""
    plugin = get_space(space)
    if not texts:
        raise SupernetError("no architecture given (pass architectures, or '-' to read them from stdin)")
    return plugin.describe(texts, table)
