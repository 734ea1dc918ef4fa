"""A run's data from its config: the dataset, the train/validation split, and the fixed evaluation
batches every pool architecture sees."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from supernet import streams
from supernet.config import Config
from supernet.data.cifar import ImageDataset, cache_home, load_cifar10, subset
from supernet.data.loader import DeviceLoader, split_indices
from supernet.errors import SupernetError
from supernet.runtime import Runtime


@dataclass
class RunData:
    train: DeviceLoader
    valid: DeviceLoader | None
    eval_batches: list[tuple[torch.Tensor, torch.Tensor]]
    proxy: tuple[torch.Tensor, torch.Tensor] | None = None  # the proxies' batch; None: no proxies
    calibration: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # bn=recalibrate's batches; None: other bn


def default_root(cfg: Config) -> Path:
    """Where CIFAR-10 lives without ``data.root``: ``cifar10/`` in the cache directory, downloaded there once
    (checksum verified) and reused by every later run."""
    return cache_home(Path(cfg.data.cache_dir) if cfg.data.cache_dir else None) / "cifar10"


def load_dataset(cfg: Config) -> ImageDataset:
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else None
    ds = load_cifar10(cfg.data.root or default_root(cfg), cache_dir=cache)
    if len(ds.classes) != cfg.supernet.num_classes:  # fewer would train a head for classes that never occur and
        # rank against a benchmark trained on all of them
        raise SupernetError(
            f"the dataset at {cfg.data.root or default_root(cfg)} has {len(ds.classes)} classes but supernet.num_classes="
            f"{cfg.supernet.num_classes} (the benchmark's ground truth is for {cfg.supernet.num_classes}): give the "
            "complete dataset"
        )
    if cfg.data.max_train_images is not None and cfg.data.max_train_images < len(ds.train_y):
        ds = subset(ds, cfg.data.max_train_images, len(ds.test_y), cfg.seed)
    return ds


def _mixed(x: np.ndarray, y: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A fixed permutation (the same for every run) of un-shuffled evaluation images.

    Image folders are sorted by class; batches of one class would make batch-statistics BN
    normalise away the very signal that tells classes apart.
    """
    order = np.random.default_rng(streams.FIXED_ORDER_SEED).permutation(len(y))[:limit]
    return x[order], y[order]


def eval_batches(cfg: Config, ds: ImageDataset, rt: Runtime) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The evaluation split, normalised once: every pool architecture sees the same batches."""
    ev = cfg.evaluation
    if ev.split == "test":
        ex, ey = ds.test_x, ds.test_y
    else:
        _, va = split_indices(len(ds.train_y), cfg.data.train_portion, cfg.seed)
        if not len(va):
            raise SupernetError("evaluation.split=valid needs data.train_portion < 1")
        ex, ey = ds.train_x[va], ds.train_y[va]
    return fixed_batches(ex, ey, ev.max_images, ev.batch_size or cfg.protocol.batch_size, cfg, rt)


def fixed_batches(x: np.ndarray, y: np.ndarray, limit: int | None, batch_size: int, cfg: Config, rt: Runtime
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Up to ``limit`` images in a fixed mixed order, normalised once, on the device, not augmented."""
    x, y = _mixed(x, y, limit)
    loader = DeviceLoader(x, y, batch_size, augment=False, shuffle=False, drop_last=False, seed=cfg.seed,
                          device=rt.device, channels_last=rt.channels_last)
    return list(loader.epoch(0))


def calibration_batches(cfg: Config, ds: ImageDataset, rt: Runtime) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """``evaluation.bn=recalibrate``: ``bn_batches`` fixed batches of the super-net's own training images
    (not augmented, in the evaluation batch size), the same for every architecture. None for other BN modes."""
    ev = cfg.evaluation
    if ev.bn != "recalibrate":
        return None
    tr, _ = split_indices(len(ds.train_y), cfg.data.train_portion, cfg.seed)
    bs = ev.batch_size or cfg.protocol.batch_size
    return fixed_batches(ds.train_x[tr], ds.train_y[tr], ev.bn_batches * bs, bs, cfg, rt)


def proxy_batch(cfg: Config, ds: ImageDataset, rt: Runtime) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The proxies' one fixed batch: ``evaluation.proxy_batch_size`` training images drawn from the whole
    training set by ``evaluation.proxy_seed`` (not the run seed or split, so every run of a dataset shares
    it and its cached scores), normalised as in training, not augmented. None when no proxy is asked for."""
    ev = cfg.evaluation
    if not ev.proxy_list():
        return None
    n = len(ds.train_y)
    if ev.proxy_batch_size > n:
        raise SupernetError(f"evaluation.proxy_batch_size={ev.proxy_batch_size} exceeds the {n} training images")
    idx = np.sort(np.random.default_rng([ev.proxy_seed, streams.PROXY]).choice(n, ev.proxy_batch_size, replace=False))
    loader = DeviceLoader(ds.train_x[idx], ds.train_y[idx], len(idx), augment=False, shuffle=False, drop_last=False,
                          seed=0, device=rt.device, channels_last=False)
    return next(iter(loader.epoch(0)))


def proxy_cache_file(cfg: Config) -> Path:
    """Proxy scores live beside the decoded datasets: ``data.cache_dir``, else $SUPERNET_CACHE or ~/.cache/supernet."""
    return cache_home(Path(cfg.data.cache_dir) if cfg.data.cache_dir else None) / "proxies.sqlite"


def load_data(cfg: Config, rt: Runtime) -> RunData:
    ds = load_dataset(cfg)
    tr, va = split_indices(len(ds.train_y), cfg.data.train_portion, cfg.seed)
    bs = cfg.protocol.batch_size
    loader_kw = dict(seed=cfg.seed, device=rt.device, channels_last=rt.channels_last)
    train = DeviceLoader(ds.train_x[tr], ds.train_y[tr], bs, augment=True, shuffle=True, drop_last=True, **loader_kw)
    if len(train) == 0:
        raise SupernetError(f"{len(tr)} training images do not fill one batch of {bs}; lower protocol.batch_size")
    valid = None
    if len(va) and cfg.protocol.validate_every_epoch:
        vx, vy = _mixed(ds.train_x[va], ds.train_y[va])
        valid = DeviceLoader(vx, vy, bs, augment=False, shuffle=False, drop_last=False, **loader_kw)
    return RunData(train, valid, eval_batches(cfg, ds, rt), proxy_batch(cfg, ds, rt), calibration_batches(cfg, ds, rt))
