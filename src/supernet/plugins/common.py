"""Pieces the built-in plug-ins share. Plug-ins are imported wherever a space name is checked, so
torch and the networks are imported inside the functions that need them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supernet.config import Config
from supernet.groundtruth.table import GroundTruth

if TYPE_CHECKING:
    from torch import nn

    from supernet.nn.ops import BNSpec


def gt_column(cfg: Config, gt: GroundTruth, default: str) -> tuple[str, str]:
    """The (dataset, split) column ``evaluation.ground_truth`` names; checked now, with the table's message."""
    name = cfg.evaluation.ground_truth or (default if default in gt.columns else gt.columns[0])
    dataset, _, split = name.partition("/")
    gt.accuracy(gt.keys()[0], split=split, dataset=dataset)
    return dataset, split


def bn_spec(cfg: Config) -> BNSpec:
    from supernet.nn.ops import BNSpec

    return BNSpec(affine=cfg.supernet.bn_affine, track=cfg.supernet.bn_track_stats)


def cell_supernet(cls: Callable[..., nn.Module], cfg: Config, **extra: Any) -> Callable[[], nn.Module]:
    """NB201 and DARTS-NDS super-nets take the same f_ws options (plus ``extra`` of one space)."""
    import torch

    s = cfg.supernet
    return lambda: cls(
        s.channels, s.layers, s.num_classes, placement=cfg.placement(), bn=bn_spec(cfg), path_dropout=s.path_dropout,
        global_dropout=s.global_dropout, generator=torch.Generator(), **extra,
    )


def describe_each(space: Any, texts: list[str], facts: Callable[[Any, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """``supernet arch`` rows: each text parsed strictly (bad input fails with the space's message), its
    key first, then what ``facts(arch, key)`` says of it."""
    rows = []
    for text in texts:
        arch = space.parse(text)
        key = space.key(arch)
        rows.append({"key": key, **facts(arch, key)})
    return rows


def truth_row(gt: GroundTruth, key: str) -> dict[str, float]:
    """Every column of a table for one architecture, as ``supernet arch`` prints it."""
    out = {}
    for col in gt.columns:
        dataset, split = col.split("/")
        out[col] = round(float(gt.accuracy(key, split=split, dataset=dataset)), 4)
    return out


def table_spec(cfg: Config, space: str) -> str | None:
    """``space.ground_truth`` as ``gt_path`` takes it: ``official`` becomes the table ``supernet download``
    converted into the cache."""
    from supernet.data.cifar import cache_home
    from supernet.groundtruth.shipped import resolve_official

    cache = cache_home(Path(cfg.data.cache_dir) if cfg.data.cache_dir else None)
    return resolve_official(cfg.space.ground_truth, space, cache)
