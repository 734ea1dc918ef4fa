"""One super-net on two gloo processes (issue 13.1): the same weights as one process that accumulates the
gradients of the same two half-batches, each normalised with its own batch statistics; and torchrun end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from supernet import streams
from supernet.config import load_config
from supernet.distributed import Processes
from supernet.registry import build_kit
from supernet.run import CHECKPOINT, Run
from supernet.store import ResultStore
from supernet.train.sampler import epoch_rng, make_sampler
from supernet.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "nb201-cpu.yaml"
STEPS, BATCH = 3, 8


def _setup():
    cfg = load_config(RECIPE, ["supernet.channels=4", "protocol.batch_size=8", "protocol.epochs=2"])
    kit = build_kit(cfg)
    torch.manual_seed(0)
    model = kit.build_supernet()
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(BATCH, 3, 32, 32, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen))
               for _ in range(STEPS)]
    return cfg, kit, model, batches


def _worker(rank: int, world: int, rendezvous: str, out: str, kind: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        cfg, kit, model, batches = _setup()
        trainer = Trainer(model, make_sampler(kit.space, kind), cfg.protocol, 0, processes=Processes(rank, world))
        stats = trainer.train_epoch(0, batches, steps=STEPS)
        torch.save({"model": model.state_dict(), "loss": stats.train_loss}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("kind", ["uniform", "fairnas"])  # FairNAS: |ops| paths per step, on every process
def test_two_processes_match_one_that_accumulates_the_two_half_batches(tmp_path, kind):
    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'rendezvous'}", str(tmp_path), kind), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for k, v in ranks[0]["model"].items():  # all processes hold identical weights
        torch.testing.assert_close(ranks[1]["model"][k], v, rtol=0, atol=0)

    cfg, kit, model, batches = _setup()  # one process: the same paths, half-batches accumulated
    sampler = make_sampler(kit.space, kind)
    rng = epoch_rng(0, streams.TRAIN, 0)
    p = cfg.protocol
    opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
    model.train()
    losses = []
    for x, y in batches:
        paths = sampler(rng)
        opt.zero_grad(set_to_none=False)
        for half in (slice(0, BATCH // 2), slice(BATCH // 2, BATCH)):
            for arch in paths:  # FairNAS: the children's gradients add up
                loss = F.cross_entropy(model(x[half], arch), y[half]) / 2
                loss.backward()
                losses.append(float(loss.detach()) * 2)
        torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
        opt.step()
    # Parameters: the same up to float rounding. Tracked BN statistics are rank 0's (its shard's), as DDP's
    # broadcast_buffers makes them, so they are not compared with the sequential reference.
    for k, v in model.named_parameters():
        torch.testing.assert_close(ranks[0]["model"][k], v.detach(), rtol=1e-5, atol=1e-6, msg=k)
    assert ranks[0]["loss"] == pytest.approx(np.mean(losses), rel=1e-5)  # statistics cover both shards


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "supernet", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_trains_one_run_written_once_and_resumes_a_single_process_run(tiny_overrides, tmp_path,
                                                                               interrupt_second_epoch):
    overrides = [*tiny_overrides, "evaluation.bootstrap=0", "protocol.epochs=2"]
    cfg = load_config(RECIPE, overrides)
    undo = interrupt_second_epoch()  # one process trains epoch 1, then stops
    with pytest.raises(KeyboardInterrupt):
        Run(cfg).train()
    undo()
    proc = _torchrun(["train", str(RECIPE), *overrides], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count(f"run {cfg.run_id()} -> ") == 1 and "resuming from epoch 1" in proc.stderr
    store = ResultStore(Path(cfg.out_dir) / "supernet.db")
    row = store.get_run(cfg.run_id())
    assert row.status == "completed" and row.epochs_done == 2
    assert [e["epoch"] for e in store.epochs(row.id)] == [0, 1]
    evaluations = store.evaluations(row.id)
    assert [e["epoch"] for e in evaluations] == [1, 2]  # the pool of 20, split over 2 processes, stored once
    assert len(store.arch_results(evaluations[-1]["id"])) == 20
    # the gathered scores are those one process computes from the same checkpoint
    from supernet.trained import evaluate_run

    alone = evaluate_run(store, row.id, ["evaluation.bootstrap=0"])
    np.testing.assert_allclose(alone.accuracy, [r[1] for r in store.arch_results(evaluations[-1]["id"])])
    assert torch.load(Path(row.run_dir) / CHECKPOINT, weights_only=True)["epoch"] == 2
