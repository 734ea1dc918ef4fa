"""One-shot super-net training (P_ws): the sampler's paths per mini-batch (one path for single-path
one-shot; FairNAS's children, whose gradients add up before the one step).

Kept short on purpose: the loop is the paper's (SGD, cosine schedule, grad-norm clipping), every
knob comes from ``ProtocolConfig``, and randomness is derived per epoch so that a resumed run
reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from supernet import streams
from supernet.config import ProtocolConfig
from supernet.distributed import SINGLE, Processes
from supernet.errors import SupernetError
from supernet.runtime import CPU, Runtime
from supernet.train.landmarks import Landmarks
from supernet.train.sampler import Sampler, epoch_rng


def reseed(model: nn.Module, seed: int, stream: int, epoch: int) -> None:
    """Models that draw randomness in forward (NB101 ``shuffle`` channels) expose ``generator``;
    reseeding it per (seed, purpose, epoch) keeps resumed runs identical to uninterrupted ones."""
    gens = getattr(model, "generators", None) or [getattr(model, "generator", None)]  # several: a few-shot super-net
    value = int(epoch_rng(seed, stream, epoch).integers(2**63))
    for gen in gens:
        if isinstance(gen, torch.Generator):
            gen.manual_seed(value)


@dataclass
class EpochStats:
    lr: float
    train_loss: float
    train_acc: float
    seconds: float
    images_per_s: float
    valid_loss: float | None = None
    valid_acc: float | None = None
    rank_loss: float | None = None  # landmark regularisation: mean ranking loss over the steps that had one


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        sampler: Sampler,
        protocol: ProtocolConfig,
        seed: int,
        runtime: Runtime = CPU,
        valid_sampler: Sampler | None = None,
        landmarks: Landmarks | None = None,
        processes: Processes = SINGLE,
    ) -> None:
        """``valid_sampler``: the one random path per validation batch (default: the first of ``sampler``'s).
        ``landmarks``: adds their ranking loss to the steps it schedules (its own random stream, so the
        sampled paths are those of the same run without landmarks)."""
        self.model, self.sampler, self.protocol, self.seed = model, sampler, protocol, seed
        self.landmarks = landmarks
        self.processes = processes  # torchrun: each trains its shard of every batch; gradients are averaged
        # Parameters clipped together; a few-shot super-net's sub-super-nets each on their own.
        groups = getattr(model, "grad_groups", None)
        self.grad_groups = groups() if groups is not None else [list(model.parameters())]
        self.all_params = list(model.parameters())
        self.runtime = runtime
        self.valid_sampler = valid_sampler or sampler
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=protocol.lr, momentum=protocol.momentum, weight_decay=protocol.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=protocol.epochs, eta_min=protocol.lr_min
        )

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            # Which parameters hold a (zeroed) gradient, i.e. belong to an op sampled so far.
            "sampled": [p.grad is not None for p in self.model.parameters()],
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        params = list(self.model.parameters())
        # Older checkpoints lack "sampled": a momentum buffer marks the same parameters when momentum > 0.
        sampled = state.get("sampled") or ["momentum_buffer" in self.optimizer.state.get(p, {}) for p in params]
        # Gradients are not checkpointed; restore the zero gradients of every op sampled so far, so
        # that weight decay and momentum keep reaching them exactly as in an uninterrupted run.
        for p, was_sampled in zip(params, sampled, strict=True):
            if was_sampled:
                p.grad = torch.zeros_like(p)
            opt_state = self.optimizer.state.get(p, {})
            if opt_state.get("momentum_buffer") is not None:
                # A checkpoint from another memory format (CPU run resumed on a GPU) would otherwise
                # push SGD off its fast multi-tensor path for the rest of the run.
                opt_state["momentum_buffer"] = torch.empty_like(p).copy_(opt_state["momentum_buffer"])

    def train_epoch(self, epoch: int, batches, on_step: Callable[[], None] | None = None, steps: int = 0
                    ) -> EpochStats:
        """One pass over ``batches`` (an iterable of (x, y) already on the device).

        Nothing in the loop waits for the device: statistics and the divergence check accumulate in
        device tensors and are read once, after the epoch. With several paths per step, loss and
        accuracy are their mean, and images per second counts each image once. ``steps``: batches in the
        epoch (the landmark coefficient's schedule needs it).
        """
        model, opt = self.model, self.optimizer
        model.train()
        reseed(model, self.seed, streams.TRAIN, epoch)
        rng = epoch_rng(self.seed, streams.TRAIN, epoch)
        landmark_rng = epoch_rng(self.seed, streams.LANDMARK, epoch)
        lr = opt.param_groups[0]["lr"]
        device = next(model.parameters()).device
        loss_sum = correct = rank_sum = torch.zeros((), device=device)
        first_bad = torch.full((), -1, dtype=torch.long, device=device)
        n = ranked = 0
        start = time.perf_counter()
        procs = self.processes
        for step, (x, y) in enumerate(procs.shard(batches) if procs.active else batches):
            paths = self.sampler(rng)
            # Zeroed, not None: as in the authors' code, every op that has ever been sampled keeps
            # receiving weight decay and momentum on every step (a part of the weight-decay factor).
            opt.zero_grad(set_to_none=False)
            for arch in paths:  # FairNAS: gradients of all children add up before the one step
                with self.runtime.autocast():
                    logits = model(x, arch)
                    loss = F.cross_entropy(logits, y)
                loss.backward()
                loss = loss.detach().float()
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
                loss_sum = loss_sum + loss * (y.numel() / len(paths))
                correct = correct + (logits.detach().argmax(1) == y).sum() / len(paths)
            if self.landmarks is not None:
                rank = self.landmarks.step(model, x, y, landmark_rng, epoch, step, steps, self.runtime)
                if rank is not None:
                    rank_sum, ranked = rank_sum + rank, ranked + 1
            procs.average_gradients(self.all_params)
            for group in self.grad_groups:
                nn.utils.clip_grad_norm_(group, self.protocol.grad_clip)
            opt.step()
            n += y.numel()
            if on_step is not None:
                on_step()
        if procs.active:  # every process stops on a non-finite loss of any; statistics cover all shards
            first_bad = procs.maximum(first_bad)
            loss_sum, correct, rank_sum = (procs.sum(t) for t in (loss_sum, correct, rank_sum))
            n *= procs.world
            procs.sync_buffers(model)
        self._check_finite(int(first_bad), float(loss_sum), epoch)
        self.scheduler.step()
        seconds = time.perf_counter() - start
        return EpochStats(lr, float(loss_sum) / max(n, 1), 100.0 * float(correct) / max(n, 1), seconds, n / seconds,
                          rank_loss=float(rank_sum) / (ranked * procs.world) if ranked else None)

    @torch.inference_mode()
    def validate(self, epoch: int, batches) -> tuple[float, float]:
        """Held-out loss/accuracy, a different random architecture per batch (as the authors log it)."""
        self.model.eval()
        reseed(self.model, self.seed, streams.VALID, epoch)
        rng = epoch_rng(self.seed, streams.VALID, epoch)
        device = next(self.model.parameters()).device
        loss_sum = correct = torch.zeros((), device=device)
        n = 0
        for x, y in batches:
            with self.runtime.autocast():
                logits = self.model(x, self.valid_sampler(rng)[0]).float()
            loss_sum = loss_sum + F.cross_entropy(logits, y, reduction="sum")
            correct = correct + (logits.argmax(1) == y).sum()
            n += y.numel()
        return float(loss_sum) / max(n, 1), 100.0 * float(correct) / max(n, 1)

    @staticmethod
    def _check_finite(first_bad_step: int, loss_sum: float, epoch: int) -> None:
        if first_bad_step >= 0 or not math.isfinite(loss_sum):
            where = f"step {first_bad_step}" if first_bad_step >= 0 else "the end"
            raise SupernetError(
                f"training diverged: non-finite loss at epoch {epoch}, {where}; lower protocol.lr or check the data"
            )
