"""One run, from config to stored metrics: the only place where the pieces are wired together.

Order of durable writes per epoch: epoch statistics, then the evaluation (if due), then the
checkpoint. A crash anywhere redoes at most the current epoch on resume, and evaluations of
redone epochs are dropped first, so the store never holds an epoch twice.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from supernet.builders import SpaceKit, build_kit
from supernet.config import Config
from supernet.data.cifar import ImageDataset, load_cifar10, subset
from supernet.data.loader import DeviceLoader, split_indices
from supernet.errors import SupernetError
from supernet.evaluate.evaluator import PoolEvaluation, compute_metrics, supernet_accuracies
from supernet.store import ResultStore
from supernet.train.checkpoint import load_checkpoint, save_checkpoint
from supernet.train.sampler import make_sampler
from supernet.train.trainer import Trainer

POOL_STREAM = 3
EVAL_SUBSET_SEED = 0
CHECKPOINT = "checkpoint.pt"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SupernetError("device=cuda requested but no CUDA device is available; use device=cpu")
    return torch.device(name)


def draw_pool(candidates: list[str], size: int, seed: int, stream: int = 0) -> list[str]:
    """Without replacement, from the seed alone: the same seed always evaluates the same pool."""
    if size > len(candidates):
        raise SupernetError(
            f"evaluation.pool_size={size} exceeds the {len(candidates)} architectures with ground truth"
        )
    rng = np.random.default_rng([seed, POOL_STREAM, stream])
    idx = np.sort(rng.choice(len(candidates), size=size, replace=False))
    return [candidates[int(i)] for i in idx]


def pool_groups(kit: SpaceKit, cfg: Config) -> list[tuple[str, list[str]]]:
    """(metric prefix, pool) pairs: one pool, or one per sub-space for Baseline-v2 (SPEC 6.5)."""
    ev = cfg.evaluation
    if not ev.per_subspace:
        return [("", draw_pool(kit.candidates(cfg.space.subspace), ev.pool_size, cfg.seed))]
    groups = []
    for k in kit.subspaces():
        keys = kit.candidates(k)
        if len(keys) >= 2:  # a ranking needs two architectures
            groups.append((f"sub{k}/", draw_pool(keys, min(ev.pool_size, len(keys)), cfg.seed, stream=1 + k)))
    return groups


@dataclass
class RunData:
    train: DeviceLoader
    valid: DeviceLoader | None
    eval_batches: list[tuple[torch.Tensor, torch.Tensor]]


def load_dataset(cfg: Config) -> ImageDataset:
    if cfg.data.root is None:
        raise SupernetError("no dataset given: set data.root=PATH (CIFAR-10 batches, image folder or .tar.gz)")
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else None
    ds = load_cifar10(cfg.data.root, cache_dir=cache)
    if cfg.data.max_train_images is not None and cfg.data.max_train_images < len(ds.train_y):
        ds = subset(ds, cfg.data.max_train_images, len(ds.test_y), cfg.seed)
    return ds


def eval_batches(cfg: Config, ds: ImageDataset, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The evaluation split, normalised once: every pool architecture sees the same batches."""
    ev = cfg.evaluation
    if ev.split == "test":
        ex, ey = ds.test_x, ds.test_y
    else:
        _, va = split_indices(len(ds.train_y), cfg.data.train_portion, cfg.seed)
        if not len(va):
            raise SupernetError("evaluation.split=valid needs data.train_portion < 1")
        ex, ey = ds.train_x[va], ds.train_y[va]
    if ev.max_images is not None and ev.max_images < len(ey):
        # A fixed (not per-seed) random subset: files are often sorted by class, and runs of
        # different seeds must be compared on the same images.
        pick = np.sort(np.random.default_rng(EVAL_SUBSET_SEED).permutation(len(ey))[: ev.max_images])
        ex, ey = ex[pick], ey[pick]
    bs = ev.batch_size or cfg.protocol.batch_size
    loader = DeviceLoader(ex, ey, bs, augment=False, shuffle=False, drop_last=False, seed=cfg.seed, device=device)
    return list(loader.epoch(0))


def load_data(cfg: Config, device: torch.device) -> RunData:
    ds = load_dataset(cfg)
    tr, va = split_indices(len(ds.train_y), cfg.data.train_portion, cfg.seed)
    bs = cfg.protocol.batch_size
    train = DeviceLoader(ds.train_x[tr], ds.train_y[tr], bs, augment=True, shuffle=True, drop_last=True,
                         seed=cfg.seed, device=device)
    if len(train) == 0:
        raise SupernetError(f"{len(tr)} training images do not fill one batch of {bs}; lower protocol.batch_size")
    valid = None
    if len(va) and cfg.protocol.validate_every_epoch:
        valid = DeviceLoader(ds.train_x[va], ds.train_y[va], bs, augment=False, shuffle=False, drop_last=False,
                             seed=cfg.seed, device=device)
    return RunData(train, valid, eval_batches(cfg, ds, device))


class Run:
    """A run directory plus its row in the store."""

    def __init__(self, cfg: Config, store: ResultStore | None = None, run_id: str | None = None) -> None:
        self.cfg = cfg
        self.id = run_id or cfg.run_id()
        self.dir = Path(cfg.out_dir) / self.id
        self.store = store or ResultStore(Path(cfg.out_dir) / "supernet.db")
        self.kit = build_kit(cfg)
        self.groups = pool_groups(self.kit, cfg)
        self.pool = [k for _, keys in self.groups for k in keys]

    def use_stored_pool(self) -> None:
        """Evaluate the pool the run was created with, even if pool drawing has changed since."""
        stored = self.store.pool(self.id)
        if not stored or stored == self.pool:
            return
        self.pool = stored
        if len(self.groups) > 1 and self.kit.subspace_of is not None:
            of = self.kit.subspace_of
            subs = sorted({of(self.kit.arch_of(k)) for k in stored})
            self.groups = [(f"sub{k}/", [key for key in stored if of(self.kit.arch_of(key)) == k]) for k in subs]
        else:
            self.groups = [("", stored)]

    def evaluate(self, model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                 epoch: int, bn: str | None = None) -> PoolEvaluation:
        ev, kit, pool = self.cfg.evaluation, self.kit, self.pool
        bn = bn or ev.bn
        archs = [kit.arch_of(k) for k in pool]
        start = time.perf_counter()
        bar = tqdm(total=len(archs), desc=f"evaluate ({bn} BN)", unit="arch", leave=False,
                   disable=not self.cfg.progress)
        with bar:
            acc = supernet_accuracies(model, archs, batches, bn, on_arch=lambda: bar.update())  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        params = np.array([kit.param_count(a) for a in archs])
        kw = dict(dataset=kit.gt_dataset, split=kit.gt_split, top_k=ev.top_k, threshold=ev.skdt_threshold,
                  skdt_variant=ev.skdt_variant, psr_form=ev.psr_form)
        truth, ranks, metrics = compute_metrics(acc, pool, params, kit.gt, **kw)  # type: ignore[arg-type]
        if len(self.groups) > 1:
            start_at = 0
            for prefix, keys in self.groups:
                sl = slice(start_at, start_at + len(keys))
                start_at += len(keys)
                _, _, sub = compute_metrics(acc[sl], keys, params[sl], kit.gt, **kw)  # type: ignore[arg-type]
                metrics.update({prefix + k: v for k, v in sub.items()})
            for name in ("skdt", "kdt", "params/skdt"):
                metrics[f"subspace_mean/{name}"] = float(np.mean([metrics[p + name] for p, _ in self.groups]))
        result = PoolEvaluation(pool, acc, truth, ranks, params, metrics, seconds)
        n_images = sum(y.numel() for _, y in batches)
        self.store.add_evaluation(
            self.id, epoch=epoch, bn=bn, split=ev.split, n_images=n_images,
            batch_size=int(batches[0][1].numel()), settings=ev.model_dump(),
            seconds=seconds, archs=result.rows(), metrics=metrics,
        )
        return result

    def train(self) -> dict[str, float]:
        cfg, store = self.cfg, self.store
        device = resolve_device(cfg.device)
        # Build everything that can fail on bad input before the run is marked running.
        data = load_data(cfg, device)
        torch.manual_seed(cfg.seed)
        model = self.kit.build_supernet().to(device)
        trainer = Trainer(model, make_sampler(self.kit.space, cfg.protocol.sampler), cfg.protocol, cfg.seed)
        ckpt = self.dir / CHECKPOINT
        start_epoch = 0
        if ckpt.exists() and cfg.resume:
            state = load_checkpoint(ckpt, device)
            trainer.load_state_dict(state["trainer"])
            start_epoch = int(state["epoch"])
        elif self.dir.exists() and not cfg.resume:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(_yaml(cfg))
        store.upsert_run(self.id, name=cfg.name, space=cfg.space.name, seed=cfg.seed,
                         config=cfg.model_dump(), run_dir=str(self.dir))
        try:
            if start_epoch == 0:
                store.reset_run(self.id)
            else:
                self.use_stored_pool()
            store.drop_evaluations_from(self.id, start_epoch + 1)  # labels count completed epochs
            store.set_pool(self.id, self.pool)
            self._loop(trainer, data, start_epoch)
        except KeyboardInterrupt:
            store.set_status(self.id, "interrupted", "interrupted by the user; re-run the same command to resume")
            raise
        except BaseException as exc:
            store.set_status(self.id, "failed", str(exc) or type(exc).__name__)
            raise
        store.set_status(self.id, "completed")
        return store.latest_metrics(self.id)

    def _loop(self, trainer: Trainer, data: RunData, start_epoch: int) -> None:
        cfg = self.cfg
        epochs, every = cfg.protocol.epochs, cfg.evaluation.every
        steps = len(data.train)
        bar = tqdm(total=epochs * steps, initial=start_epoch * steps, unit="step", disable=not cfg.progress,
                   dynamic_ncols=True)
        with bar:
            for epoch in range(start_epoch, epochs):
                bar.set_description(f"epoch {epoch + 1}/{epochs}")
                stats = trainer.train_epoch(epoch, data.train.epoch(epoch), on_step=lambda: bar.update())
                if data.valid is not None:
                    stats.valid_loss, stats.valid_acc = trainer.validate(epoch, data.valid.epoch(0))
                bar.set_postfix(loss=f"{stats.train_loss:.3f}", acc=f"{stats.train_acc:.1f}",
                                img_s=f"{stats.images_per_s:.0f}")
                self.store.add_epoch(self.id, epoch, asdict(stats))
                done = epoch + 1
                if done == epochs or (every and done % every == 0):
                    result = self.evaluate(trainer.model, data.eval_batches, done)
                    m = result.metrics
                    bar.write(f"epoch {done}: s-KdT {m['skdt']:.3f} (params baseline {m['params/skdt']:.3f}), "
                              f"KdT {m['kdt']:.3f}, final model {m['final_acc']:.2f}%")
                save_checkpoint(self.dir / CHECKPOINT, {"trainer": trainer.state_dict(), "epoch": done})


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)


EVAL_KEYS_ALLOWED = ("evaluation.", "device", "progress", "data.root", "data.cache_dir")


def evaluate_run(store: ResultStore, run_id: str, overrides: list[str]) -> PoolEvaluation:
    """Re-evaluate a run's last checkpoint, e.g. with ``bn=running`` for the Fig. 6 comparison."""
    from supernet.config import build_config, parse_override

    row = store.get_run(run_id)
    fields = set(Config.model_fields["evaluation"].annotation.model_fields)  # type: ignore[union-attr]
    expanded = []
    for text in overrides:
        key, _ = parse_override(text)
        if key in fields:  # shorthand: bn=running means evaluation.bn=running
            text, key = f"evaluation.{text}", f"evaluation.{key}"
        if not key.startswith(EVAL_KEYS_ALLOWED):
            raise SupernetError(
                f"'{key}' cannot change at evaluation (it would not match the trained checkpoint); "
                "allowed: evaluation.* (or its short form, e.g. bn=running), device, data.root"
            )
        expanded.append(text)
    cfg = build_config(row.config, expanded)
    run = Run(cfg, store, run_id=row.id)
    run.dir = Path(row.run_dir)
    run.use_stored_pool()
    ckpt = run.dir / CHECKPOINT
    if not ckpt.exists():
        raise SupernetError(f"run {row.id} has no checkpoint at {ckpt}; train it first")
    device = resolve_device(cfg.device)
    state = load_checkpoint(ckpt, device)
    model = run.kit.build_supernet().to(device)
    model.load_state_dict(state["trainer"]["model"])
    batches = eval_batches(cfg, load_dataset(cfg), device)
    return run.evaluate(model, batches, int(state["epoch"]))
