"""Few-shot super-nets (Zhao et al., ICML 2021): one super-net per operation of one op slot.

A one-shot super-net makes every op of a slot share what follows it; splitting after a warm-up into one
sub-super-net per op of one slot (NB201: an edge, 5 sub-super-nets) removes that coupling where it is
strongest. ``FewShotSupernet`` holds the sub-super-nets and routes each architecture to the one of its op
on the split slot, so training, evaluation, BN modes, snapshots and checkpoints see one module. Before the
split every architecture runs through sub-super-net 0; ``split`` then copies it into the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn


class FewShotSupernet(nn.Module):
    def __init__(self, build: Callable[[], nn.Module], ops: Sequence[str], route: Callable[[Any], str]) -> None:
        """``build``: one (sub-)super-net; ``ops``: the split slot's candidates, one sub-super-net each;
        ``route``: an architecture's op on the split slot."""
        super().__init__()
        self.ops = tuple(ops)
        self.route = route
        self.subnets = nn.ModuleList(build() for _ in self.ops)
        # A buffer, so a checkpoint (and a resumed run) knows whether the split has happened.
        self.register_buffer("is_split", torch.zeros((), dtype=torch.bool))

    def index(self, arch: Any) -> int:
        return self.ops.index(self.route(arch)) if bool(self.is_split) else 0

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        return self.subnets[self.index(arch)](x, arch)

    def grad_groups(self) -> list[list[nn.Parameter]]:
        """The sub-super-nets' parameters apart: each clips its gradient on its own, as separate trainings would."""
        return [list(m.parameters()) for m in self.subnets]

    @property
    def generators(self) -> list[torch.Generator | None]:
        """Each sub-super-net's generator (dropout masks), all reseeded per epoch by the trainer."""
        return [getattr(m, "generator", None) for m in self.subnets]


@torch.no_grad()
def split(model: FewShotSupernet, optimizer: torch.optim.Optimizer) -> None:
    """Every sub-super-net continues sub-super-net 0's training: its weights, BN statistics, momentum
    buffers, and which parameters have been sampled (they keep receiving weight decay)."""
    first = model.subnets[0]
    for other in model.subnets[1:]:
        other.load_state_dict(first.state_dict())
        for p0, p in zip(first.parameters(), other.parameters(), strict=True):
            p.grad = None if p0.grad is None else torch.zeros_like(p0.grad)
            state = optimizer.state.get(p0, {})
            if state.get("momentum_buffer") is not None:
                optimizer.state[p] = {"momentum_buffer": state["momentum_buffer"].clone()}
    model.is_split.fill_(True)
