"""One run, from config to stored metrics: a run directory, its row in the store, and the training loop.

Order of durable writes per epoch: epoch statistics, then the evaluation (if due), then the
checkpoint. A crash anywhere redoes at most the current epoch; on resume the store is rewound to the
checkpoint first, so it never holds an epoch twice.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from supernet import streams
from supernet.config import Config, absolute_paths
from supernet.data.setup import RunData, load_data, proxy_cache_file
from supernet.distributed import SINGLE, from_environment
from supernet.errors import SupernetError
from supernet.evaluate.catalogue import MetricSettings, baseline_scores, subspace_mean_names
from supernet.evaluate.evaluator import (
    Batches,
    PoolEvaluation,
    bootstrap_metrics,
    compute_metrics,
    ranking_score,
    supernet_scores,
)
from supernet.events import TensorBoardLog
from supernet.nn.norm import set_bn_mode
from supernet.pools import draw_landmarks, draw_pool, pool_groups
from supernet.proxies.pool import finite_scores, score_pool
from supernet.registry import build_kit
from supernet.runlock import hold
from supernet.runtime import Runtime
from supernet.store import ResultStore, outcome_recorded
from supernet.supernets.few_shot import FewShotSupernet, split
from supernet.train.checkpoint import load_checkpoint, restore, save_checkpoint
from supernet.train.landmarks import Landmarks, LandmarkSchedule
from supernet.train.sampler import Sampler, fixed_sampler, make_sampler, slot_sampler
from supernet.train.trainer import Trainer, reseed

CHECKPOINT = "checkpoint.pt"
TRAIN_ARCHS = "train_archs.txt"  # the keys of space.subsample, one per line
LANDMARKS = "landmarks.txt"  # protocol.landmarks: key and ground truth, worst first
SNAPSHOTS = "snapshots"  # evaluation.ensemble: the model weights of the last epochs, epoch-NNNN.pt
PSR_SPACE_SIZE = "psr_space_size"  # stored with every evaluation: the ranks P>R is computed within
EVAL_CHUNK = 256  # architectures per stored chunk of an evaluation
SUPERNET_LOSS = "supernet_loss"  # the arch_scores scorer holding the super-net's mean cross-entropy


class Run:
    """A run directory plus its row in the store."""

    def __init__(self, cfg: Config, store: ResultStore | None = None, run_id: str | None = None) -> None:
        self.cfg = absolute_paths(cfg)
        self.id = run_id or cfg.run_id()
        self.dir = Path(cfg.out_dir) / self.id
        self.store = store or ResultStore(Path(cfg.out_dir) / "supernet.db")
        self.kit = build_kit(cfg)
        self.set_pool(pool_groups(self.kit, cfg))
        self.processes = SINGLE  # torchrun: set by train(); rank 0 alone writes
        self._events: TensorBoardLog | None = None

    @property
    def events(self) -> TensorBoardLog | None:
        """The run's TensorBoard log (``logging.tensorboard``), opened on first use, on rank 0 only."""
        if self._events is None and self.cfg.logging.tensorboard and self.processes.main:
            self._events = TensorBoardLog(self.dir)
        return self._events

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

    def evaluate(self, model: torch.nn.Module, batches: Batches, epoch: int, rt: Runtime, kind: str = "train",
                 proxy_batch: tuple[torch.Tensor, torch.Tensor] | None = None, calibration: Batches | None = None
                 ) -> PoolEvaluation:
        """``proxy_batch``: the proxies' images (``data.setup.proxy_batch``); None leaves the panel out.
        ``calibration``: the training batches of ``evaluation.bn=recalibrate``."""
        ev, kit = self.cfg.evaluation, self.kit
        members = self.ensemble(model, epoch, rt)
        settings_row = {**ev.model_dump(), "precision": self.cfg.runtime.precision}
        label = json.dumps({"epoch": epoch, "kind": kind, "settings": settings_row, "n_images": sum(
            y.numel() for _, y in batches), "pool": hashlib.sha1("\n".join(self.pool).encode()).hexdigest()},
            sort_keys=True)
        procs = self.processes
        done = procs.share(self.store.partial(self.id, label) if procs.main else None)
        todo = [i for i in range(len(self.archs)) if i not in done]
        bar = tqdm(total=len(self.archs) * len(members), initial=len(done) * len(members),
                   desc=f"evaluate ({ev.bn} BN)", unit="arch", leave=False, disable=not (self.cfg.progress and procs.main))
        with bar:
            for at in range(0, len(todo), EVAL_CHUNK):  # stored chunk by chunk: a large pool resumes where it stopped
                chunk = todo[at:at + EVAL_CHUNK]
                mine = chunk[procs.rank::procs.world]  # torchrun: each process scores its share of the chunk
                start = time.perf_counter()
                acc, loss = np.zeros(len(mine)), np.zeros(len(mine))
                for member in members:  # a temporal ensemble averages the scores of the last epochs' weights
                    reseed(member, self.cfg.seed, streams.EVAL, epoch)
                    a, lo = supernet_scores(member, [self.archs[i] for i in mine], batches, ev.bn,
                                            on_arch=lambda: bar.update(procs.world), runtime=rt,
                                            calibration=calibration)
                    acc, loss = acc + a / len(members), loss + lo / len(members)
                parts = procs.gather((mine, acc.tolist(), loss.tolist(), time.perf_counter() - start))
                if procs.main:
                    for positions, a, lo, sec in parts:
                        self.store.add_partial(self.id, label, positions, a, lo, sec)
        if not procs.main:
            return PoolEvaluation(self.pool, np.zeros(0), np.zeros(0), np.zeros(0), self.params, {}, 0.0)
        stored = self.store.partial(self.id, label)
        acc = np.array([stored[i][0] for i in range(len(self.archs))])
        loss = np.array([stored[i][1] for i in range(len(self.archs))])
        seconds = float(sum(v[2] for v in stored.values()))
        proxies = self.proxy_scores(proxy_batch, rt)
        score = ranking_score(acc, loss, ev.score, proxies)
        settings = MetricSettings.from_config(ev)
        baselines = baseline_scores({"params": self.params, **proxies})
        truth, ranks, metrics = compute_metrics(score, self.pool, kit.gt, dataset=kit.gt_dataset, split=kit.gt_split,
                                                settings=settings, baselines=baselines, supernet_accuracy=acc)
        metrics[PSR_SPACE_SIZE] = float(len(kit.gt))  # P>R's r_max: the table's size, not the space's (issue 12.6)
        if len(self.groups) > 1 or self.groups[0][0]:
            metrics.update(self._per_group(score, acc, settings, baselines))
            self._headline_from_groups(metrics, [p for p, _ in self.groups])
        elif ev.bootstrap:  # one pool: intervals and the verdict against the best baseline
            metrics.update(bootstrap_metrics(score, truth, metrics, settings, baselines, ev.bootstrap))
        result = PoolEvaluation(self.pool, acc, truth, ranks, self.params, metrics, seconds, score=score)
        self.store.add_evaluation(
            self.id, epoch=epoch, bn=ev.bn, split=ev.split, n_images=sum(y.numel() for _, y in batches),
            batch_size=int(batches[0][1].numel()), settings=settings_row, seconds=seconds,
            archs=result.rows(), metrics=metrics, kind=kind, scores={**proxies, SUPERNET_LOSS: loss}, partial=label,
        )
        if self.events is not None:
            self.events.evaluation(epoch, metrics, acc)
        return result

    def ensemble(self, model: torch.nn.Module, epoch: int, rt: Runtime) -> list[torch.nn.Module]:
        """``model`` and, for ``evaluation.ensemble=K``, copies of it holding the weights of the K-1 epochs
        before ``epoch`` (snapshots kept by training; fewer in the first K-1 epochs)."""
        k = self.cfg.evaluation.ensemble
        earlier = [self.dir / SNAPSHOTS / f"epoch-{e:04d}.pt" for e in range(max(1, epoch - k + 1), epoch)]
        missing = [p.name for p in earlier if not p.exists()]
        if missing:
            kept_paths = sorted((self.dir / SNAPSHOTS).glob("epoch-*.pt"))
            kept = [p.name for p in kept_paths]
            last = max((_snapshot_epoch(p) for p in kept_paths), default=0)
            # The checkpoint is written after an epoch's evaluation: a run stopped during it has snapshots ahead.
            how = (f"the run was stopped after epoch {last}, before its checkpoint; `supernet train` resumes it"
                   if last > epoch else f"train with evaluation.ensemble={k} to keep them")
            raise SupernetError(f"evaluation.ensemble={k} at epoch {epoch} needs the weights of epochs "
                                f"{max(1, epoch - k + 1)}-{epoch - 1}; the run kept {', '.join(kept) or 'none'} ({how})")
        members = [model]
        for path in earlier:
            member = copy.deepcopy(model)
            weights = load_checkpoint(path, rt.device)
            restore(path, lambda m=member, w=weights: m.load_state_dict(w))
            members.append(member)
        return members

    def keep_snapshot(self, model: torch.nn.Module, epoch: int) -> None:
        """The weights after ``epoch`` for a temporal ensemble; only the last ``evaluation.ensemble`` stay."""
        k = self.cfg.evaluation.ensemble
        if k <= 1:
            return
        if self.processes.main:
            folder = self.dir / SNAPSHOTS
            folder.mkdir(exist_ok=True)
            save_checkpoint(folder / f"epoch-{epoch:04d}.pt", model.state_dict())
            for old in folder.glob("epoch-*.pt"):
                if _snapshot_epoch(old) <= epoch - k:
                    old.unlink()
        self.processes.barrier()  # every process reads the snapshots at the evaluation that follows

    def proxy_scores(self, batch: tuple[torch.Tensor, torch.Tensor] | None, rt: Runtime) -> dict[str, np.ndarray]:
        """The zero-cost proxies of the pool's stand-alone networks (cached on disk per architecture)."""
        names = self.cfg.evaluation.proxy_list()
        if batch is None or not names:
            return {}
        if self.kit.build_standalone is None:
            raise SupernetError(f"space {self.cfg.space.name} has no stand-alone network: set evaluation.proxies=none")
        ev = self.cfg.evaluation
        bar = tqdm(total=len(self.archs), desc="proxies", unit="arch", leave=False, disable=not self.cfg.progress)
        with bar:
            raw = score_pool(self.cfg.space.name, self.pool, self.archs,
                             lambda a: self.kit.build_standalone(a).to(rt.device), batch, names, ev.proxy_seed,
                             proxy_cache_file(self.cfg), on_arch=bar.update)
        return {n: finite_scores(v) for n, v in raw.items()}  # rankable: undefined scores rank last

    def _per_group(self, score: np.ndarray, acc: np.ndarray, settings, baselines: dict  # noqa: ANN001 - MetricSettings, lazy
                   ) -> dict[str, float]:
        """Baseline-v2: rankings inside each sub-space; the headline ranking metrics are their mean."""
        out: dict[str, float] = {}
        start = 0
        for prefix, keys in self.groups:
            sl = slice(start, start + len(keys))
            start += len(keys)
            small = settings.replace(top_k=min(settings.top_k, len(keys)))
            _, _, sub = compute_metrics(score[sl], keys, self.kit.gt, dataset=self.kit.gt_dataset, split=self.kit.gt_split,
                                        settings=small, baselines={name: s[sl] for name, s in baselines.items()},
                                        supernet_accuracy=acc[sl])
            out.update({prefix + k: v for k, v in sub.items()})
        return out

    @staticmethod
    def _headline_from_groups(metrics: dict[str, float], prefixes: list[str]) -> None:
        """Ranking metrics of the union pool move to ``pool/``; the headline becomes the sub-space mean
        (the catalogue's ``subspace_mean`` metrics, of the super-net and of each baseline)."""
        for name in subspace_mean_names(metrics):
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
        return draw_pool(self.kit.candidates(self.cfg.space.subspace), n, self.cfg.seed, streams.SUBSAMPLE,
                         what="space.subsample")

    def build_model(self) -> torch.nn.Module:
        """The run's super-net: the space's, or a few-shot one holding a sub-super-net per op of one slot."""
        s, space = self.cfg.supernet, self.kit.space
        if s.few_shot == 1:
            return self.kit.build_supernet()
        return FewShotSupernet(self.kit.build_supernet, space.ops, lambda a: space.slot_op(a, s.few_shot_slot))

    def few_shot_epoch(self, trainer: Trainer, base: Sampler, epoch: int) -> None:
        """Split a few-shot super-net when its warm-up ends (once; a checkpoint records it), and in the
        paper's compute mode train every sub-super-net on each batch from then on."""
        model, s = trainer.model, self.cfg.supernet
        if not isinstance(model, FewShotSupernet):
            return
        if not bool(model.is_split) and epoch >= s.few_shot_warmup:
            split(model, trainer.optimizer)
        paper = bool(model.is_split) and s.few_shot_compute == "paper"
        trainer.sampler = slot_sampler(self.kit.space, base, s.few_shot_slot, model.ops) if paper else base

    def landmarks(self) -> Landmarks | None:
        """The landmark set of ``protocol.landmarks`` (None: off), drawn outside the run's pool."""
        p, kit = self.cfg.protocol, self.kit
        if not p.landmarks:
            return None
        keys = draw_landmarks(kit, self.cfg, self.pool)
        truth = kit.gt.accuracy(keys, split=kit.gt_split, dataset=kit.gt_dataset)
        schedule = LandmarkSchedule(p.landmark_coef, p.landmark_warmup, p.epochs, p.landmark_every, p.landmark_margin)
        return Landmarks(keys, [kit.arch_of(k) for k in keys], truth, schedule)

    def train_sampler(self, keys: list[str] | None) -> Sampler:
        if keys is None:
            return make_sampler(self.kit.space, self.cfg.protocol.sampler)
        return fixed_sampler([self.kit.arch_of(k) for k in keys])

    def train(self, on_start: Callable[[int], None] | None = None) -> dict[str, float]:
        """Train (or resume) the run and return its latest metrics. ``on_start(epochs already done)`` is
        called once the inputs have been checked and the run's lock is held, just before the run is marked
        running (the CLI prints the run's directory and whether it resumes there, so a data error is not
        preceded by it)."""
        cfg = self.cfg
        rt = Runtime.from_config(cfg.device, cfg.runtime)
        self.processes = procs = from_environment(rt.device)
        if procs.active and rt.device.type == "cuda":  # one GPU per process
            torch.cuda.set_device(procs.local_rank)
            rt = dataclasses.replace(rt, device=torch.device("cuda", procs.local_rank))
        if cfg.protocol.batch_size % procs.world:
            raise SupernetError(f"protocol.batch_size={cfg.protocol.batch_size} does not split over {procs.world} "
                                "processes; make it a multiple of the number of processes")
        # Build everything that can fail on bad input before the run is marked running.
        data = load_data(cfg, rt)
        torch.manual_seed(cfg.seed)
        model = rt.prepare(self.build_model())
        if not procs.main:
            return self._train_locked(data, model, rt, None)
        with hold(cfg.out_dir, self.id):  # a second process on this run id stops here, naming the holder
            return self._train_locked(data, model, rt, on_start)

    def _train_locked(self, data: RunData, model: torch.nn.Module, rt: Runtime,
                      on_start: Callable[[int], None] | None) -> dict[str, float]:
        cfg, store, procs = self.cfg, self.store, self.processes
        ckpt = self.dir / CHECKPOINT
        resuming = procs.share(ckpt.exists() and cfg.resume)
        keys = self.train_archs(stored=resuming)
        sampler = self.train_sampler(keys)
        # FairNAS children are not uniform over architectures (NB101): validate on uniform paths.
        valid = make_sampler(self.kit.space, "uniform") if cfg.protocol.sampler == "fairnas" else None
        trainer = Trainer(model, sampler, cfg.protocol, cfg.seed, rt, valid_sampler=valid, processes=procs)
        start_epoch = 0
        if resuming:
            state = load_checkpoint(ckpt, rt.device)
            restore(ckpt, lambda: trainer.load_state_dict(state["trainer"]))
            start_epoch = restore(ckpt, lambda: int(state["epoch"]))
        if not procs.main:  # the others wait until rank 0 has the run's directory and row, then train alongside
            procs.barrier()
            self.set_pool(procs.share(None))
            trainer.landmarks = self.landmarks()
            self._loop(trainer, data, start_epoch)
            return {}
        if on_start is not None:
            on_start(start_epoch)
        if not start_epoch and self.dir.exists() and not cfg.resume:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.yaml").write_text(_yaml(cfg))
        if keys is not None:
            (self.dir / TRAIN_ARCHS).write_text("\n".join(keys) + "\n")
        _ = self.events  # a missing tensorboard package fails here, before the run is marked running
        store.upsert_run(self.id, name=cfg.name, space=cfg.space.name, seed=cfg.seed,
                         config=cfg.model_dump(), run_dir=str(self.dir))
        try:
            with outcome_recorded(lambda status, message: store.set_status(self.id, status, message)):
                self._train_stored(trainer, data, start_epoch)
        finally:
            if self._events is not None:
                self._events.close()
                self._events = None
        return store.latest_metrics(self.id)

    def _train_stored(self, trainer: Trainer, data: RunData, start_epoch: int) -> None:
        """The part of training whose every exit is recorded in the run's row."""
        store, procs = self.store, self.processes
        if start_epoch:
            self.use_stored_pool()
        store.rewind(self.id, start_epoch)
        store.set_pool(self.id, self.groups)
        if procs.active:
            procs.barrier()
            procs.share(self.groups)
        trainer.landmarks = self.landmarks()
        if trainer.landmarks is not None:
            (self.dir / LANDMARKS).write_text("".join(f"{k}\t{t:.4f}\n" for k, t in
                                                      zip(trainer.landmarks.keys, trainer.landmarks.truth, strict=True)))
        self._loop(trainer, data, start_epoch)
        store.set_status(self.id, "completed")

    def _loop(self, trainer: Trainer, data: RunData, start_epoch: int) -> None:
        cfg = self.cfg
        epochs, every = cfg.protocol.epochs, cfg.evaluation.every
        steps = len(data.train)
        base_sampler = trainer.sampler
        main = self.processes.main
        bar = tqdm(total=epochs * steps, initial=start_epoch * steps, unit="step", disable=not (cfg.progress and main),
                   dynamic_ncols=True)
        with bar:
            for epoch in range(start_epoch, epochs):
                bar.set_description(f"epoch {epoch + 1}/{epochs}")
                self.few_shot_epoch(trainer, base_sampler, epoch)
                stats = trainer.train_epoch(epoch, data.train.epoch(epoch), on_step=lambda: bar.update(), steps=steps)
                if data.valid is not None and main:
                    set_bn_mode(trainer.model, cfg.evaluation.bn)
                    stats.valid_loss, stats.valid_acc = trainer.validate(epoch, data.valid.epoch(0))
                bar.set_postfix(loss=f"{stats.train_loss:.3f}", acc=f"{stats.train_acc:.1f}",
                                img_s=f"{stats.images_per_s:.0f}")
                if main:
                    self.store.add_epoch(self.id, epoch, asdict(stats))
                    if self.events is not None:
                        self.events.epoch(epoch, asdict(stats))
                done = epoch + 1
                self.keep_snapshot(trainer.model, done)
                if done == epochs or (every and done % every == 0):
                    m = self.evaluate(trainer.model, data.eval_batches, done, trainer.runtime, proxy_batch=data.proxy,
                                      calibration=data.calibration).metrics
                    if main:
                        from supernet.evaluate.catalogue import summary

                        bar.write(f"epoch {done}: {summary(m)}")
                if main:
                    save_checkpoint(self.dir / CHECKPOINT, {"trainer": trainer.state_dict(), "epoch": done})


def _snapshot_epoch(path: Path) -> int:
    """The epoch whose weights ``RUN_DIR/snapshots/epoch-NNNN.pt`` holds."""
    return int(path.stem.split("-")[1])


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)
