"""The evaluation phase's training loop (`supernet retrain`): one stand-alone network from scratch, as its
benchmark trained it.

Separate from ``trainer.Trainer`` because nothing here samples paths, and the final protocols add what super-net
training never has: an auxiliary head's loss (DARTS), drop-path raised over the epochs (DARTS), Nesterov momentum
(NB201) and RMSProp (NB101). Randomness is derived per (seed, epoch), so a resumed training equals an
uninterrupted one on the same machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from supernet import streams
from supernet.config import FinalConfig
from supernet.errors import SupernetError
from supernet.runtime import CPU, Runtime
from supernet.train.sampler import epoch_rng

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FinalEpoch:
    lr: float
    train_loss: float
    train_acc: float
    seconds: float


def make_optimizer(params: Iterable[nn.Parameter], fc: FinalConfig) -> torch.optim.Optimizer:
    if fc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=fc.lr, momentum=fc.momentum, weight_decay=fc.weight_decay,
                               nesterov=fc.nesterov and fc.momentum > 0)
    # NASBench-101 trained with TensorFlow's RMSProp (decay 0.9, epsilon 1.0, momentum). PyTorch's differs in two
    # details (the squared average starts at 0 rather than 1; epsilon is added outside the square root); with
    # epsilon 1 both take steps close to momentum SGD's, so the protocol is kept as a plain library optimizer.
    return torch.optim.RMSprop(params, lr=fc.lr, alpha=0.9, eps=1.0, momentum=fc.momentum,
                               weight_decay=fc.weight_decay)


def logits_and_aux(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A DARTS network with an auxiliary head returns the head's logits in training; others return none."""
    forward_with_aux = getattr(model, "forward_with_aux", None)
    return forward_with_aux(x) if forward_with_aux is not None else (model(x), None)


class FinalTrainer:
    def __init__(self, model: nn.Module, fc: FinalConfig, seed: int, runtime: Runtime = CPU) -> None:
        if fc.drop_path > 0 and not hasattr(model, "set_drop_path"):
            raise SupernetError(f"final.drop_path={fc.drop_path}: this network has no drop-path (a DARTS option)")
        self.model, self.fc, self.seed, self.runtime = model, fc, seed, runtime
        self.optimizer = make_optimizer(model.parameters(), fc)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=fc.epochs, eta_min=fc.lr_min)
        self.generator = torch.Generator()  # drop-path masks, reseeded per epoch

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def train_epoch(self, epoch: int, batches: Batches) -> FinalEpoch:
        model, opt, fc = self.model, self.optimizer, self.fc
        model.train()
        if fc.drop_path > 0:  # DARTS: the probability grows linearly from 0 at the first epoch
            self.generator.manual_seed(int(epoch_rng(self.seed, streams.TRAIN, epoch).integers(2**63)))
            model.set_drop_path(fc.drop_path * epoch / fc.epochs, self.generator)  # type: ignore[operator]
        lr = opt.param_groups[0]["lr"]
        device = next(model.parameters()).device
        loss_sum = correct = torch.zeros((), device=device)
        n = 0
        start = time.perf_counter()
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            with self.runtime.autocast():
                logits, aux = logits_and_aux(model, x)
                loss = F.cross_entropy(logits, y)
                total = loss if aux is None else loss + fc.auxiliary_weight * F.cross_entropy(aux, y)
            total.backward()
            if fc.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), fc.grad_clip)
            opt.step()
            loss_sum = loss_sum + loss.detach().float() * y.numel()
            correct = correct + (logits.detach().argmax(1) == y).sum()
            n += y.numel()
        self.scheduler.step()
        mean_loss = float(loss_sum) / max(n, 1)
        if not math.isfinite(mean_loss):
            raise SupernetError(f"final training diverged at epoch {epoch} (non-finite loss); lower final.lr")
        return FinalEpoch(lr, mean_loss, 100.0 * float(correct) / max(n, 1), time.perf_counter() - start)

    @torch.inference_mode()
    def test(self, batches: Batches) -> tuple[float, float]:
        """(mean loss, accuracy %) of the main head, BN with its running statistics (a trained network)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        loss_sum = correct = torch.zeros((), device=device)
        n = 0
        for x, y in batches:
            with self.runtime.autocast():
                logits = self.model(x).float()
            loss_sum = loss_sum + F.cross_entropy(logits, y, reduction="sum")
            correct = correct + (logits.argmax(1) == y).sum()
            n += y.numel()
        return float(loss_sum) / max(n, 1), 100.0 * float(correct) / max(n, 1)
