"""`supernet retrain`: the evaluation phase of weight-sharing NAS (the paper's Table 4, DARTS-NDS*).

The architecture a search run found (its best by the super-net's score), or one given by hand, is trained from
scratch with its benchmark's final protocol (``SpacePlugin.final``, under a recipe's and the command line's
``final.*`` keys) and tested on the test set. A final training has its own row in the store of the search run it
came from (table ``final_runs``, per-epoch rows in ``final_epochs``) and its directory inside that run's
directory; it resumes from its checkpoint like a super-net run, and one process at a time holds it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.config import Config, absolute_paths, build_config, flatten, load_recipe, parse_override
from supernet.data.loader import DeviceLoader, split_indices
from supernet.data.setup import fixed_batches, load_dataset
from supernet.errors import SupernetError
from supernet.evaluate.evaluator import ranking_score
from supernet.nn.ops import count_parameters
from supernet.registry import SpaceKit, build_kit, get_space
from supernet.run import SUPERNET_LOSS
from supernet.runlock import hold
from supernet.runtime import Runtime
from supernet.store import ResultStore, outcome_recorded
from supernet.train.checkpoint import load_checkpoint, restore, save_checkpoint
from supernet.train.final import FinalTrainer

CHECKPOINT = "checkpoint.pt"
# What a final training of a search run may change: the run fixes the space and its tables.
RUN_KEYS = ("final.", "runtime.", "device", "progress", "resume", "data.root", "data.cache_dir",
            "data.max_train_images", "seed")
# Keys of a search run's config that a final training does not inherit: how that process ran, and the super-net's
# training subset (the final protocol trains on the whole training set unless data.max_train_images is given).
NOT_INHERITED = {"resume": None, "progress": None, "final": None, "data": ("max_train_images",)}


@dataclass(frozen=True)
class FinalTraining:
    """One final training, resolved: its config (``final.*`` complete), architecture and place in the store."""

    cfg: Config
    arch: str  # the space's key of the architecture
    text: str  # what it was given as (the key, or the user's text), parsed again when training starts
    source_run: str | None
    store_path: Path
    dir: Path
    why: str  # how the architecture was chosen (a run's evaluation and rank, or given)

    @property
    def id(self) -> str:
        return self.dir.name


def searched_architecture(store: ResultStore, run_id: str, rank: int = 1) -> tuple[str, str]:
    """The ``rank``-th best architecture of the finished run's newest search (``supernet search``) or, without one,
    of its final headline evaluation, by the score the run ranks with (``evaluation.score``); ties keep the order
    the architectures were evaluated in. Returns (key, which evaluation it came from)."""
    row = store.get_run(run_id)
    if row.status != "completed":
        raise SupernetError(f"run {run_id} is {row.status}, not completed: finish training it first (re-run its "
                            "`supernet train` command), or give an architecture instead of the run")
    evals = [e for e in store.evaluations(run_id) if e.get("kind", "train") in ("train", "search")]
    if not evals:
        raise SupernetError(f"run {run_id} has no evaluation: evaluate it (`supernet search`) or give an architecture")
    ev = evals[-1]
    rows = store.arch_results(ev["id"])
    results = {a: acc for a, acc, *_ in rows}
    pool = [k for _, keys in store.pool(run_id) for k in keys if k in results] if ev.get("kind") == "train" else []
    pool = pool or [r[0] for r in rows]
    if not 1 <= rank <= len(pool):
        raise SupernetError(f"--rank {rank}: the run's evaluation holds {len(pool)} architectures")
    settings = ev["settings"] if isinstance(ev["settings"], dict) else json.loads(ev["settings"])
    score = settings.get("score", "accuracy")
    stored = store.arch_scores(ev["id"])
    losses = stored.get(SUPERNET_LOSS, {})
    if score == "loss" and not set(pool) <= set(losses):
        raise SupernetError(f"run {run_id} ranks by loss but its evaluation stored no losses; re-evaluate it")
    acc = np.array([results[k] for k in pool])
    loss = np.array([losses.get(k, 0.0) for k in pool])
    proxies = {name: np.array([s[k] for k in pool]) for name, s in stored.items() if set(pool) <= set(s)}
    order = np.argsort(-ranking_score(acc, loss, score, proxies), kind="stable")
    what = "Random-NAS search" if ev.get("kind") == "search" else "final evaluation"
    return pool[int(order[rank - 1])], f"rank {rank} by super-net {score} in its {what} (epoch {ev['epoch']})"


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def final_config(base: dict[str, Any], recipe: str | None, overrides: Sequence[str],
                 allowed: tuple[str, ...] | None) -> Config:
    """``base`` (a search run's stored config, or nothing) + the space's benchmark protocol + ``recipe`` +
    ``overrides``, later ones winning; ``allowed``: the only key prefixes a recipe or override may set."""
    tree = {}
    for k, v in base.items():
        dropped = NOT_INHERITED.get(k, ())
        if dropped is None:
            continue
        tree[k] = {kk: vv for kk, vv in v.items() if kk not in dropped} if isinstance(v, dict) else v
    extra = load_recipe(recipe) if recipe else {}
    if allowed is not None:
        given = list(flatten(extra)) + [parse_override(o)[0] for o in overrides]
        for key in given:
            if not key.startswith(allowed):
                raise SupernetError(f"'{key}' is fixed by the search run; a final training may set "
                                    f"{', '.join(p + '*' if p.endswith('.') else p for p in allowed)}")
    _merge(tree, extra)
    space = build_config(tree, overrides).space.name
    tree["final"] = {**get_space(space).final, **tree.get("final", {})}
    return build_config(tree, overrides)


def resolve(target: str, overrides: Sequence[str] = (), *, recipe: str | None = None, out_dir: str = "runs",
            rank: int = 1) -> FinalTraining:
    """``target``: a run id (or unique prefix) in ``OUT_DIR/supernet.db`` (its searched architecture), or an
    architecture in the space that ``space.name`` names (a ground-truth key or the space's text form)."""
    store_path = Path(out_dir) / "supernet.db"
    run = None
    if store_path.is_file():
        store = ResultStore(store_path)
        try:
            try:
                run = store.get_run(target)
            except SupernetError as exc:
                if "ambiguous" in str(exc):
                    raise
            if run is not None:
                arch, why = searched_architecture(store, run.id, rank)
        finally:
            store.close()
    if run is not None:
        cfg = final_config(run.config, recipe, overrides, RUN_KEYS)
        cfg.out_dir = str(store_path.parent)
        return _placed(cfg, arch, arch, run.id, Path(run.run_dir), store_path, why)
    if rank != 1:
        raise SupernetError(f"--rank {rank} picks among a run's architectures; '{target}' is not a run in {store_path}")
    cfg = final_config({"out_dir": out_dir}, recipe, overrides, None)
    kit = build_kit(cfg)
    key = kit.space.key(_parse(kit, cfg.space.name, target))
    return _placed(cfg, key, target, None, Path(cfg.out_dir), Path(cfg.out_dir) / "supernet.db", "given")


def _parse(kit: SpaceKit, space: str, text: str) -> Any:
    """A ground-truth key (NB101's hashes need the table), else the space's own text form."""
    for parse in (kit.arch_of, kit.space.parse):
        try:
            return parse(text)
        except (SupernetError, ValueError, KeyError) as exc:
            why = exc
    raise SupernetError(f"'{text}' is neither a run in the store nor an architecture of {space} ({why}); give a run "
                        "id (`supernet runs`) or an architecture (`supernet arch`)")


def _placed(cfg: Config, arch: str, text: str, source_run: str | None, home: Path, store_path: Path, why: str
            ) -> FinalTraining:
    """The training's id hashes what determines its result (space, architecture, the protocol but how often it is
    tested, seed, precision, training subset) and the run it came from, so each search run keeps its own."""
    ident = {"space": cfg.space.name, "arch": arch, "final": cfg.final.model_dump(exclude={"eval_every"}),
             "seed": cfg.seed, "precision": cfg.runtime.precision, "table": cfg.space.ground_truth,
             "max_train_images": cfg.data.max_train_images, "source_run": source_run}
    digest = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:8]
    return FinalTraining(absolute_paths(cfg), arch, text, source_run, store_path, home / f"final-s{cfg.seed}-{digest}",
                         why)


def retrain(job: FinalTraining, on_start: Callable[[int], None] | None = None,
            on_epoch: Callable[[int, dict[str, float | None]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a final training; returns its stored row. ``on_start(epochs done)`` once the inputs are
    checked and the lock is held; ``on_epoch(epoch, stats)`` after each stored epoch."""
    cfg, fc = job.cfg, job.cfg.final
    rt = Runtime.from_config(cfg.device, cfg.runtime)
    kit = build_kit(cfg)
    if kit.build_final is None:
        raise SupernetError(f"{get_space(cfg.space.name).title} offers no final training (its plug-in has no "
                            "build_final)")
    arch = _parse(kit, cfg.space.name, job.text)
    truth = float(kit.gt.accuracy(job.arch, split=kit.gt_split, dataset=kit.gt_dataset)) if job.arch in kit.gt else None
    train, valid, test = _loaders(cfg, rt)
    torch.manual_seed(cfg.seed)
    model = rt.prepare(kit.build_final(arch, fc))
    trainer = FinalTrainer(model, fc, cfg.seed, rt)
    store = ResultStore(job.store_path)
    try:
        with hold(job.store_path.parent, job.id):
            ckpt = job.dir / CHECKPOINT
            start = 0
            if ckpt.exists() and cfg.resume:
                state = load_checkpoint(ckpt, rt.device)
                restore(ckpt, lambda: trainer.load_state_dict(state["trainer"]))
                start = restore(ckpt, lambda: int(state["epoch"]))
            if on_start is not None:
                on_start(start)
            if not start and job.dir.exists():
                shutil.rmtree(job.dir)
            job.dir.mkdir(parents=True, exist_ok=True)
            (job.dir / "final.json").write_text(json.dumps({"arch": job.arch, "source_run": job.source_run,
                                                            "config": cfg.model_dump()}, indent=1, sort_keys=True))
            store.upsert_final(job.id, source_run=job.source_run, space=cfg.space.name, arch=job.arch, seed=cfg.seed,
                               config=cfg.model_dump(), run_dir=str(job.dir), params=_params(model),
                               ground_truth=truth)
            with outcome_recorded(lambda status, message: store.set_final_status(job.id, status, message)):
                store.rewind_final(job.id, start)
                test_acc = _loop(job, trainer, store, (train, valid, test), start, on_epoch)
                store.finish_final(job.id, test_acc)
        return next(r for r in store.finals() if r["id"] == job.id)
    finally:
        store.close()


Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _params(model: torch.nn.Module) -> int:
    """Parameters of the network that is tested: an auxiliary head only trains (DARTS reports counts without it)."""
    aux = getattr(model, "aux_head", None)
    return count_parameters(model) - (count_parameters(aux) if aux is not None else 0)


def _loaders(cfg: Config, rt: Runtime) -> tuple[DeviceLoader, Batches | None, Batches]:
    """Training images (``final.train_portion`` of the training set, augmented, with cutout), the held-out rest
    for validation, and the whole test set."""
    fc = cfg.final
    ds = load_dataset(cfg)
    tr, va = split_indices(len(ds.train_y), fc.train_portion, cfg.seed)
    if len(tr) < fc.batch_size:
        raise SupernetError(f"{len(tr)} training images do not fill one batch of {fc.batch_size}; lower "
                            "final.batch_size")
    # Every image every epoch, as the benchmarks trained; only a last batch of one image (BN cannot train on it) is left.
    train = DeviceLoader(ds.train_x[tr], ds.train_y[tr], fc.batch_size, augment=True, shuffle=True,
                         drop_last=len(tr) % fc.batch_size == 1,
                         seed=cfg.seed, device=rt.device, channels_last=rt.channels_last, cutout=fc.cutout)
    valid = fixed_batches(ds.train_x[va], ds.train_y[va], None, fc.batch_size, cfg, rt) if len(va) else None
    return train, valid, fixed_batches(ds.test_x, ds.test_y, None, fc.batch_size, cfg, rt)


def _loop(job: FinalTraining, trainer: FinalTrainer, store: ResultStore,
          data: tuple[DeviceLoader, Batches | None, Batches], start: int,
          on_epoch: Callable[[int, dict[str, float | None]], None] | None) -> float:
    """Epoch rows, then the checkpoint (atomic): a crash redoes at most one epoch."""
    fc = job.cfg.final
    train, valid, test = data
    test_acc = float("nan")
    for epoch in range(start, fc.epochs):
        ep = trainer.train_epoch(epoch, train.epoch(epoch))
        stats: dict[str, float | None] = {"lr": ep.lr, "train_loss": ep.train_loss, "train_acc": ep.train_acc,
                                          "seconds": ep.seconds}
        last = epoch == fc.epochs - 1
        if last or (fc.eval_every and (epoch + 1) % fc.eval_every == 0):
            stats["test_loss"], stats["test_acc"] = trainer.test(test)
            if valid is not None:
                stats["valid_acc"] = trainer.test(valid)[1]
        store.add_final_epoch(job.id, epoch, stats)
        save_checkpoint(job.dir / CHECKPOINT, {"trainer": trainer.state_dict(), "epoch": epoch + 1})
        if on_epoch is not None:
            on_epoch(epoch, stats)
        if last:
            test_acc = float(stats["test_acc"])  # type: ignore[arg-type]
    if start >= fc.epochs:  # already finished: the stored result stands
        rows = store.final_epochs(job.id)
        test_acc = float(rows[-1]["test_acc"]) if rows and rows[-1]["test_acc"] is not None else test_acc
    return test_acc
