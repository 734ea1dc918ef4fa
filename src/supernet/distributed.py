"""One super-net on several processes (``torchrun``): data parallel, the same path everywhere.

Every process draws the same architecture each step (all randomness derives from the run seed), trains on
its contiguous shard of the same global batch, and the gradients are averaged with one all-reduce before
the clipped step, so all processes keep identical weights. That is DDP with per-process batch statistics,
done by hand: a super-net leaves most parameters unused at each step, which ``DistributedDataParallel``
only supports through its slower unused-parameter search, while here every process knows the path.
Rank 0 alone writes the store, checkpoints and progress; an evaluation pool is split across processes
and gathered. NCCL on GPUs, gloo on CPUs; one process needs none of this (``SINGLE``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from supernet.errors import SupernetError


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's contiguous share of each global batch (the batch size divides by the world size)."""
        for x, y in batches:
            n = len(y)
            if n % self.world:
                raise SupernetError(f"a batch of {n} images does not split over {self.world} processes; make "
                                    "protocol.batch_size a multiple of the number of processes")
            lo, hi = self.rank * n // self.world, (self.rank + 1) * n // self.world
            yield x[lo:hi], y[lo:hi]

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """All-reduce the mean of every gradient present (the same parameters on every process: one path)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.active or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        at = 0
        for g in grads:
            g.copy_(flat[at:at + g.numel()].view_as(g))
            at += g.numel()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.active:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def maximum(self, values: torch.Tensor) -> torch.Tensor:
        if self.active:
            values = values.clone()
            dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return values

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (tracked BN statistics, each process saw only its shard) everywhere, as DDP does."""
        if self.active:
            for b in model.buffers():
                dist.broadcast(b, 0)

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Processes()


def from_environment(device: torch.device) -> Processes:
    """The processes ``torchrun`` started (``WORLD_SIZE`` > 1), joined into one group on first use; else SINGLE."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, local)
