"""Dynamic channels: one set of weights allocated at C_max, run at any width C <= C_max.

NASBench-101 gives every cell vertex a width that depends on the architecture (the output width
split among the vertices feeding the output), so a super-net must extract C channels from weights
allocated at C_max. How it does so is a factor of the paper (SPEC 6.5, Table 3):

* ``fixed``: channels [0:C] (SPOS). The conv computes only C output channels.
* ``shuffle``: a fresh random permutation of the C_max channels, keep its first C (ShuffleNet-style);
  stochastic by design, at evaluation too. The conv gathers C weight rows, so it computes only C
  channels. Draws use ``generator`` when given, else torch's global RNG.
* ``interpolate``: C_max -> C by averaging neighbouring channels (adaptive average pooling along the
  channel axis, TAS). Applied to activations (the authors' v1 op, the one that works, SPEC 6.5/10):
  the conv runs at full C_max width, then conv-BN-ReLU's output is pooled, so it costs C_max.
* ``disabled``: no sharing across widths is intended (the sampler keeps to a sub-space with a fixed
  fan-in of the output), but widths there can still differ by one through the remainder rule; those
  are handled by ``fixed`` slicing.

The input side of a conv (its input has C channels, its weight C_max) uses the same strategy on the
weight's input axis, as the authors' v1 ``DynamicConv2d`` does: first C columns, an independent random
subset of columns, or columns averaged C_max -> C.

Per-channel BN commutes with channel selection, so ``fixed``/``shuffle`` normalise only the selected
channels with the matching slice of the max-width parameters (``DynamicBatchNorm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import nn

from supernet.nn.droppath import to_device
from supernet.nn.kernels import OFAKernel
from supernet.nn.norm import SwitchableBatchNorm

if TYPE_CHECKING:
    from supernet.nn.ops import BNSpec

ChannelStrategyName = Literal["fixed", "shuffle", "interpolate", "disabled"]
CHANNEL_STRATEGIES: tuple[ChannelStrategyName, ...] = ("fixed", "shuffle", "interpolate", "disabled")
# Which channels of a max-width tensor to use: a leading slice, an index tensor, or None (all of them,
# reduced afterwards by the strategy's ``reduce``).
Selection: TypeAlias = slice | torch.Tensor | None


def take(t: torch.Tensor, select: Selection, dim: int = 0) -> torch.Tensor:
    """Apply a selection along ``dim``; a slice gives a view (in-place updates reach the original)."""
    if select is None:
        return t
    if isinstance(select, slice):
        return t.narrow(dim, select.start or 0, select.stop - (select.start or 0))
    return t.index_select(dim, select)


def interpolate_channels(t: torch.Tensor, channels: int) -> torch.Tensor:
    """Adaptive average pooling along dim 1 of a 4-D tensor (activations or conv weights)."""
    if t.shape[1] == channels:
        return t
    n, _, h, w = t.shape
    return F.adaptive_avg_pool3d(t.unsqueeze(1), (channels, h, w)).squeeze(1)


class ChannelStrategy:
    """``fixed`` (and ``disabled``): the first C channels."""

    name: ChannelStrategyName = "fixed"

    def select(self, c_max: int, c: int, device: torch.device) -> Selection:
        """Which output channels to compute (None: all C_max, then ``reduce``)."""
        return slice(0, c)

    def in_weight(self, weight: torch.Tensor, c: int) -> torch.Tensor:
        """The weight's input axis (dim 1) narrowed to an input of C channels."""
        return weight[:, :c]

    def reduce(self, y: torch.Tensor, c: int) -> torch.Tensor:
        """Bring a full-width activation to C channels (only strategies that compute C_max need it)."""
        return y


class DisabledChannels(ChannelStrategy):
    name: ChannelStrategyName = "disabled"


class ShuffleChannels(ChannelStrategy):
    name: ChannelStrategyName = "shuffle"

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def _subset(self, c_max: int, c: int, device: torch.device) -> torch.Tensor:
        # Drawn where the generator lives (CPU unless given otherwise, so the stream is the same on every
        # device), then moved: a few hundred ints. Through pinned memory, so a GPU step need not wait.
        where = self.generator.device if self.generator is not None else torch.device("cpu")
        return to_device(torch.randperm(c_max, generator=self.generator, device=where)[:c], device)

    def select(self, c_max: int, c: int, device: torch.device) -> Selection:
        return self._subset(c_max, c, device)

    def in_weight(self, weight: torch.Tensor, c: int) -> torch.Tensor:
        return weight.index_select(1, self._subset(weight.shape[1], c, weight.device))


class InterpolateChannels(ChannelStrategy):
    name: ChannelStrategyName = "interpolate"

    def select(self, c_max: int, c: int, device: torch.device) -> Selection:
        return None

    def in_weight(self, weight: torch.Tensor, c: int) -> torch.Tensor:
        return interpolate_channels(weight, c)

    def reduce(self, y: torch.Tensor, c: int) -> torch.Tensor:
        return interpolate_channels(y, c)


def make_channel_strategy(name: str, generator: torch.Generator | None = None) -> ChannelStrategy:
    if name == "fixed":
        return ChannelStrategy()
    if name == "disabled":
        return DisabledChannels()
    if name == "shuffle":
        return ShuffleChannels(generator)
    if name == "interpolate":
        return InterpolateChannels()
    raise ValueError(f"unknown channel strategy {name!r}; choose from {', '.join(CHANNEL_STRATEGIES)}")


class DynamicBatchNorm(SwitchableBatchNorm):
    """BN allocated at C_max that normalises any selection of its channels.

    A subclass of ``SwitchableBatchNorm`` so ``set_bn_mode`` reaches it and it keeps the same
    semantics: batch statistics in training, running ones updated only when tracked, and at
    evaluation whichever ``eval_mode`` says. Running statistics of the selected channels are updated
    in place (a slice is a view; an index selection is written back).
    """

    @classmethod
    def from_spec(cls, bn: BNSpec, channels: int) -> DynamicBatchNorm:
        """Build through ``BNSpec`` so every option it sets (affine, tracking, eval mode) carries over."""
        ref = bn(channels)
        assert isinstance(ref, SwitchableBatchNorm)
        m = cls(
            ref.num_features,
            eps=ref.eps,
            momentum=ref.momentum,
            affine=ref.affine,
            track_running_stats=ref.track_running_stats,
        )
        m.eval_mode = ref.eval_mode
        m.load_state_dict(ref.state_dict())
        return m

    def forward(self, x: torch.Tensor, select: Selection = None) -> torch.Tensor:
        if select is None:
            if x.shape[1] == self.num_features:
                return super().forward(x)
            select = slice(0, x.shape[1])
        use_batch = self.training or self.eval_mode == "batch"
        update = self.training and self.track_running_stats
        stats = update or not use_batch
        mean = take(self.running_mean, select) if stats and self.running_mean is not None else None
        var = take(self.running_var, select) if stats and self.running_var is not None else None
        weight = take(self.weight, select) if self.weight is not None else None
        bias = take(self.bias, select) if self.bias is not None else None
        y = F.batch_norm(
            x,
            mean,
            var,
            weight,
            bias,
            use_batch,
            self.momentum if self.momentum is not None else 0.1,
            self.eps,
        )
        if update and isinstance(select, torch.Tensor):
            assert mean is not None and var is not None
            with torch.no_grad():
                self.running_mean.index_copy_(0, select, mean)
                self.running_var.index_copy_(0, select, var)
        return y


class DynamicConvBNReLU(nn.Module):
    """conv-BN-ReLU allocated at (C_in_max -> C_out_max), run at the widths of the input and ``c_out``.

    The kernel is an ``OFAKernel``: with several ``kernel_sizes`` one 3x3 (say) kernel serves a 1x1
    conv too (SPEC 6.6), and then the BN is shared by both kernel sizes, as in OFA and the authors'
    code. ``bn`` is a ``DynamicBatchNorm``, or a ``WSBatchNorm`` (``nn/wsbn.py``: one BN per set of
    incoming vertices, SPEC 6.7), which is built on this module; then ``forward`` needs ``incoming``.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_sizes: tuple[int, ...],
        bn: nn.Module,
        strategy: ChannelStrategy,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.kernel = OFAKernel(c_out, c_in, kernel_sizes)
        self.bn = bn
        self.strategy = strategy

    def forward(
        self, x: torch.Tensor, c_out: int, kernel_size: int | None = None, incoming: int | None = None
    ) -> torch.Tensor:
        k = kernel_size if kernel_size is not None else max(self.kernel.kernel_sizes)
        select = self.strategy.select(self.c_out, c_out, x.device) if c_out != self.c_out else None
        weight = take(self.kernel(k), select, 0)
        if x.shape[1] != self.c_in:
            weight = self.strategy.in_weight(weight, x.shape[1])
        y = F.conv2d(x, weight, None, 1, k // 2)
        y = self.bn(y, select) if incoming is None else self.bn(y, select, incoming=incoming)
        y = F.relu(y)
        return self.strategy.reduce(y, c_out) if select is None and c_out != self.c_out else y

    def extra_repr(self) -> str:
        return f"{self.c_in}, {self.c_out}, kernel_sizes={self.kernel.kernel_sizes}, strategy={self.strategy.name}"
