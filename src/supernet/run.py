"""One run, from config to stored metrics: the only place where the pieces are wired together.

Order of durable writes per epoch: epoch statistics, then the evaluation (if due), then the
checkpoint. A crash anywhere redoes at most the current epoch; on resume the store is rewound to the
checkpoint first, so it never holds an epoch twice.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from supernet.builders import SHIPPED, SpaceKit, build_kit
from supernet.config import RUN_IDENTITY_EVAL_KEYS, Config, build_config, parse_override
from supernet.data.cifar import ImageDataset, load_cifar10, subset
from supernet.data.loader import DeviceLoader, split_indices
from supernet.errors import SupernetError
from supernet.evaluate.evaluator import PoolEvaluation, compute_metrics, supernet_accuracies
from supernet.evaluate.landscape import Landscape, loss_landscape
from supernet.nn.norm import set_bn_mode
from supernet.runtime import Runtime
from supernet.store import ResultStore
from supernet.train.checkpoint import load_checkpoint, save_checkpoint
from supernet.train.sampler import Sampler, fixed_sampler, make_sampler
from supernet.train.trainer import Trainer, reseed

POOL_STREAM, EVAL_STREAM = 3, 4
SUBSAMPLE_STREAM, LANDSCAPE_STREAM = 100, 101  # draw_pool's stream for space.subsample (sub-space pools use 1 + K)
FIXED_ORDER_SEED = 0  # orders evaluation images identically for every run and seed
MIN_GROUP = 10  # smallest per-sub-space pool that enters the Baseline-v2 mean
CHECKPOINT = "checkpoint.pt"
TRAIN_ARCHS = "train_archs.txt"  # the keys of space.subsample, one per line


def draw_pool(candidates: list[str], size: int, seed: int, stream: int = 0, what: str = "evaluation.pool_size"
              ) -> list[str]:
    """Without replacement, from the seed alone: the same seed always evaluates the same pool."""
    if size > len(candidates):
        raise SupernetError(f"{what}={size} exceeds the {len(candidates)} architectures with ground truth")
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
        if len(keys) >= MIN_GROUP:
            groups.append((f"sub{k}/", draw_pool(keys, min(ev.pool_size, len(keys)), cfg.seed, stream=1 + k)))
    if not groups:
        raise SupernetError(f"evaluation.per_subspace: no sub-space has {MIN_GROUP} architectures with ground truth")
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
    if len(ds.classes) > cfg.supernet.num_classes:
        raise SupernetError(
            f"the dataset has {len(ds.classes)} classes but supernet.num_classes={cfg.supernet.num_classes}"
        )
    if cfg.data.max_train_images is not None and cfg.data.max_train_images < len(ds.train_y):
        ds = subset(ds, cfg.data.max_train_images, len(ds.test_y), cfg.seed)
    return ds


def _mixed(x: np.ndarray, y: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A fixed permutation (the same for every run) of un-shuffled evaluation images.

    Image folders are sorted by class; batches of one class would make batch-statistics BN
    normalise away the very signal that tells classes apart.
    """
    order = np.random.default_rng(FIXED_ORDER_SEED).permutation(len(y))[:limit]
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
    return RunData(train, valid, eval_batches(cfg, ds, rt))


def absolute_paths(cfg: Config) -> Config:
    """Stored configs must work from any directory: resolve every path the user gave."""
    if cfg.data.root is not None:
        cfg.data.root = str(Path(cfg.data.root).expanduser().resolve())
    if cfg.data.cache_dir is not None:
        cfg.data.cache_dir = str(Path(cfg.data.cache_dir).expanduser().resolve())
    if cfg.space.ground_truth is not None and cfg.space.ground_truth not in SHIPPED:
        cfg.space.ground_truth = str(Path(cfg.space.ground_truth).expanduser().resolve())
    cfg.out_dir = str(Path(cfg.out_dir).expanduser().resolve())
    return cfg


class Run:
    """A run directory plus its row in the store."""

    def __init__(self, cfg: Config, store: ResultStore | None = None, run_id: str | None = None) -> None:
        self.cfg = absolute_paths(cfg)
        self.id = run_id or cfg.run_id()
        self.dir = Path(cfg.out_dir) / self.id
        self.store = store or ResultStore(Path(cfg.out_dir) / "supernet.db")
        self.kit = build_kit(cfg)
        self.set_pool(pool_groups(self.kit, cfg))

    def set_pool(self, groups: list[tuple[str, list[str]]]) -> None:
        """Parse the pool up front: a table that does not fit the space fails before training."""
        self.groups = groups
        self.pool = [k for _, keys in groups for k in keys]
        self.archs = [self.kit.arch_of(k) for k in self.pool]
        self.params = np.array([self.kit.param_count(a) for a in self.archs])

    def use_stored_pool(self) -> None:
        """Evaluate the pool the run was created with, even if pool drawing has changed since."""
        stored = self.store.pool(self.id)
        if stored and stored != self.groups:
            self.set_pool(stored)

    def evaluate(self, model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], epoch: int,
                 rt: Runtime, kind: str = "train") -> PoolEvaluation:
        ev, kit = self.cfg.evaluation, self.kit
        reseed(model, self.cfg.seed, EVAL_STREAM, epoch)
        start = time.perf_counter()
        bar = tqdm(total=len(self.archs), desc=f"evaluate ({ev.bn} BN)", unit="arch", leave=False,
                   disable=not self.cfg.progress)
        with bar:
            acc = supernet_accuracies(model, self.archs, batches, ev.bn, on_arch=lambda: bar.update(), runtime=rt)
        seconds = time.perf_counter() - start
        kw = dict(dataset=kit.gt_dataset, split=kit.gt_split, top_k=ev.top_k, threshold=ev.skdt_threshold,
                  skdt_variant=ev.skdt_variant, psr_form=ev.psr_form)
        truth, ranks, metrics = compute_metrics(acc, self.pool, self.params, kit.gt, **kw)  # type: ignore[arg-type]
        if len(self.groups) > 1 or self.groups[0][0]:
            metrics.update(self._per_group(acc, kw))
            self._headline_from_groups(metrics, [p for p, _ in self.groups])
        result = PoolEvaluation(self.pool, acc, truth, ranks, self.params, metrics, seconds)
        self.store.add_evaluation(
            self.id, epoch=epoch, bn=ev.bn, split=ev.split, n_images=sum(y.numel() for _, y in batches),
            batch_size=int(batches[0][1].numel()), settings={**ev.model_dump(), "precision": self.cfg.runtime.precision},
            seconds=seconds,
            archs=result.rows(), metrics=metrics, kind=kind,
        )
        return result

    def _per_group(self, acc: np.ndarray, kw: dict) -> dict[str, float]:
        """Baseline-v2: rankings inside each sub-space; the headline ranking metrics are their mean."""
        out: dict[str, float] = {}
        start = 0
        for prefix, keys in self.groups:
            sl = slice(start, start + len(keys))
            start += len(keys)
            _, _, sub = compute_metrics(acc[sl], keys, self.params[sl], self.kit.gt,
                                        **{**kw, "top_k": min(kw["top_k"], len(keys))})
            out.update({prefix + k: v for k, v in sub.items()})
        return out

    @staticmethod
    def _headline_from_groups(metrics: dict[str, float], prefixes: list[str]) -> None:
        """Ranking metrics of the union pool move to ``pool/``; the headline becomes the sub-space mean."""
        for name in ("skdt", "kdt", "spearman", "params/skdt", "params/kdt", "params/spearman"):
            metrics[f"pool/{name}"] = metrics[name]
            values = [metrics[p + name] for p in prefixes]
            metrics[name] = metrics[f"subspace_mean/{name}"] = float(np.nanmean(values))

    def train_archs(self, stored: bool = True) -> list[str] | None:
        """The keys of ``space.subsample`` (None: the whole space): drawn from the seed by a fresh run,
        read back from its directory after (``stored``), so a resumed run keeps them even if the table
        file changed."""
        n = self.cfg.space.subsample
        if n is None:
            return None
        path = self.dir / TRAIN_ARCHS
        if stored and path.exists():
            return path.read_text().splitlines()
        return draw_pool(self.kit.candidates(self.cfg.space.subspace), n, self.cfg.seed, SUBSAMPLE_STREAM,
                         what="space.subsample")

    def train_sampler(self, keys: list[str] | None) -> Sampler:
        if keys is None:
            return make_sampler(self.kit.space, self.cfg.protocol.sampler)
        return fixed_sampler([self.kit.arch_of(k) for k in keys])

    def train(self) -> dict[str, float]:
        cfg, store = self.cfg, self.store
        rt = Runtime.from_config(cfg.device, cfg.runtime)
        # Build everything that can fail on bad input before the run is marked running.
        data = load_data(cfg, rt)
        torch.manual_seed(cfg.seed)
        model = rt.prepare(self.kit.build_supernet())
        ckpt = self.dir / CHECKPOINT
        resuming = ckpt.exists() and cfg.resume
        keys = self.train_archs(stored=resuming)
        sampler = self.train_sampler(keys)
        # FairNAS children are not uniform over architectures (NB101): validate on uniform paths.
        valid = make_sampler(self.kit.space, "uniform") if cfg.protocol.sampler == "fairnas" else None
        trainer = Trainer(model, sampler, cfg.protocol, cfg.seed, rt, valid_sampler=valid)
        start_epoch = 0
        if resuming:
            state = load_checkpoint(ckpt, rt.device)
            trainer.load_state_dict(state["trainer"])
            start_epoch = int(state["epoch"])
        elif self.dir.exists() and not cfg.resume:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(_yaml(cfg))
        if keys is not None:
            (self.dir / TRAIN_ARCHS).write_text("\n".join(keys) + "\n")
        store.upsert_run(self.id, name=cfg.name, space=cfg.space.name, seed=cfg.seed,
                         config=cfg.model_dump(), run_dir=str(self.dir))
        try:
            if start_epoch:
                self.use_stored_pool()
            store.rewind(self.id, start_epoch)
            store.set_pool(self.id, self.groups)
            self._loop(trainer, data, start_epoch)
            store.set_status(self.id, "completed")
        except KeyboardInterrupt:
            store.set_status(self.id, "interrupted", "interrupted; re-run the same command to resume")
            raise
        except BaseException as exc:
            store.set_status(self.id, "failed", str(exc) or type(exc).__name__)
            raise
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
                    set_bn_mode(trainer.model, cfg.evaluation.bn)
                    stats.valid_loss, stats.valid_acc = trainer.validate(epoch, data.valid.epoch(0))
                bar.set_postfix(loss=f"{stats.train_loss:.3f}", acc=f"{stats.train_acc:.1f}",
                                img_s=f"{stats.images_per_s:.0f}")
                self.store.add_epoch(self.id, epoch, asdict(stats))
                done = epoch + 1
                if done == epochs or (every and done % every == 0):
                    m = self.evaluate(trainer.model, data.eval_batches, done, trainer.runtime).metrics
                    bar.write(f"epoch {done}: s-KdT {m['skdt']:.3f} (params baseline {m['params/skdt']:.3f}), "
                              f"KdT {m['kdt']:.3f}, final model {m['final_acc']:.2f}%")
                save_checkpoint(self.dir / CHECKPOINT, {"trainer": trainer.state_dict(), "epoch": done})


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)


def evaluation_config(row_config: dict, overrides: list[str]) -> Config:
    """A stored run's config with the overrides an evaluation may apply (everything else defines the run)."""
    fields = set(Config.model_fields["evaluation"].annotation.model_fields)  # type: ignore[union-attr]
    expanded = []
    for text in overrides:
        key, _ = parse_override(text)
        if key in fields:  # shorthand: bn=running means evaluation.bn=running
            text, key = f"evaluation.{text}", f"evaluation.{key}"
        changes_training = key in {f"evaluation.{k}" for k in RUN_IDENTITY_EVAL_KEYS}
        allowed = ("evaluation.", "runtime.", "device", "progress", "data.root", "data.cache_dir")
        if changes_training or not key.startswith(allowed):
            raise SupernetError(
                f"'{key}' cannot change at evaluation (it defines the run); allowed: evaluation.* except "
                f"{', '.join(RUN_IDENTITY_EVAL_KEYS)} (short form e.g. bn=running), runtime.*, device, data.root, "
                "data.cache_dir"
            )
        expanded.append(text)
    return build_config(row_config, expanded)


def evaluate_run(
    store: ResultStore, run_id: str, overrides: list[str], pool: list[str] | None = None, kind: str = "manual"
) -> PoolEvaluation:
    """Re-evaluate a run's last checkpoint, e.g. with ``bn=running`` for the Fig. 6 comparison.

    ``pool``: evaluate these architecture keys instead of the run's pool (Random-NAS search).
    """
    run, rt, model, epoch = load_trained(store, run_id, overrides)
    if pool is None:
        run.use_stored_pool()
    else:
        run.set_pool([("", pool)])
    batches = eval_batches(run.cfg, load_dataset(run.cfg), rt)
    return run.evaluate(model, batches, epoch, rt, kind=kind)


def load_trained(store: ResultStore, run_id: str, overrides: list[str]) -> tuple[Run, Runtime, torch.nn.Module, int]:
    """A stored run with its last checkpoint's super-net, and the epoch that checkpoint ends."""
    row = store.get_run(run_id)
    cfg = evaluation_config(row.config, overrides)
    run = Run(cfg, store, run_id=row.id)
    run.dir = Path(row.run_dir)
    ckpt = run.dir / CHECKPOINT
    if not ckpt.exists():
        raise SupernetError(f"run {row.id} has no checkpoint at {ckpt}; train it first")
    rt = Runtime.from_config(cfg.device, cfg.runtime)
    state = load_checkpoint(ckpt, rt.device)
    model = rt.prepare(run.kit.build_supernet())
    model.load_state_dict(state["trainer"]["model"])
    return run, rt, model, int(state["epoch"])


def run_landscape(store: ResultStore, run_id: str, overrides: list[str], *, archs: int, images: int,
                  steps: int, span: float, seed: int) -> tuple[Landscape, int]:
    """The loss landscape of a run's checkpoint on ``images`` fixed training images (its own split,
    not augmented, in batches of its training batch size so batch-statistics BN sees what it trained
    on) and ``archs`` architectures: those it trained on (all of ``space.subsample`` when there are
    that few, else a random ``archs`` of them) or uniform samples of the space. Returns the landscape
    and how many architectures it averages."""
    run, rt, model, _ = load_trained(store, run_id, overrides)
    cfg = run.cfg
    rng = np.random.default_rng([seed, LANDSCAPE_STREAM])
    keys = run.train_archs()
    if keys is None:
        chosen = [run.kit.space.sample(rng) for _ in range(archs)]
    else:
        picked = keys if len(keys) <= archs else [keys[int(i)] for i in np.sort(rng.choice(len(keys), archs, False))]
        chosen = [run.kit.arch_of(k) for k in picked]
    ds = load_dataset(cfg)
    tr, _ = split_indices(len(ds.train_y), cfg.data.train_portion, cfg.seed)
    batches = fixed_batches(ds.train_x[tr], ds.train_y[tr], images, cfg.protocol.batch_size, cfg, rt)
    with tqdm(total=steps * steps, desc=f"landscape {run.id}", unit="point", disable=not cfg.progress) as bar:
        landscape = loss_landscape(model, chosen, batches, steps=steps, span=span, seed=seed, bn=cfg.evaluation.bn,
                                   runtime=rt, on_point=bar.update)
    return landscape, len(chosen)
