"""Work on a stored run's trained super-net: re-evaluation (other BN mode, more images, a search
sample) and its loss landscape. Everything here starts from the store and the run's last checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from supernet import streams
from supernet.config import evaluation_config
from supernet.data.loader import split_indices
from supernet.data.setup import calibration_batches, eval_batches, fixed_batches, load_dataset, proxy_batch
from supernet.errors import SupernetError
from supernet.evaluate.evaluator import PoolEvaluation
from supernet.evaluate.landscape import Landscape, loss_landscape
from supernet.run import CHECKPOINT, Run
from supernet.runtime import Runtime
from supernet.store import ResultStore
from supernet.train.checkpoint import load_checkpoint, restore


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
    ds = load_dataset(run.cfg)
    return run.evaluate(model, eval_batches(run.cfg, ds, rt), epoch, rt, kind=kind,
                        proxy_batch=proxy_batch(run.cfg, ds, rt), calibration=calibration_batches(run.cfg, ds, rt))


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
    model = rt.prepare(run.build_model())
    restore(ckpt, lambda: model.load_state_dict(state["trainer"]["model"]))
    epoch = restore(ckpt, lambda: int(state["epoch"]))
    return run, rt, model, epoch


def run_landscape(store: ResultStore, run_id: str, overrides: list[str], *, archs: int, images: int,
                  steps: int, span: float, seed: int) -> tuple[Landscape, int]:
    """The loss landscape of a run's checkpoint on ``images`` fixed training images (its own split,
    not augmented, in batches of its training batch size so batch-statistics BN sees what it trained
    on) and ``archs`` architectures: those it trained on (all of ``space.subsample`` when there are
    that few, else a random ``archs`` of them) or uniform samples of the space. Returns the landscape
    and how many architectures it averages."""
    run, rt, model, _ = load_trained(store, run_id, overrides)
    cfg = run.cfg
    rng = np.random.default_rng([seed, streams.LANDSCAPE])
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
