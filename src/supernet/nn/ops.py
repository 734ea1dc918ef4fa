"""NASBench-201 candidate operations and blocks, shaped exactly like the benchmark's.

Shapes (and so parameter counts) follow NAS-Bench-201's ``TinyNetwork``: a conv is ReLU-Conv-BN
without bias, pooling is 3x3 average without padded zeros counted, a reduction is a ResNet basic
block. The super-net reuses these modules per edge, so a sampled path costs what the stand-alone
network costs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.nn.norm import make_bn


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class BNSpec:
    """How every BN of a network is built (affine, tracked statistics)."""

    def __init__(self, affine: bool = True, track: bool = False) -> None:
        self.affine, self.track = affine, track

    def __call__(self, channels: int) -> nn.Module:
        return make_bn(channels, self.affine, self.track)


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bn: BNSpec) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            bn(c_out),
        )


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between NB201 stages."""

    def __init__(self, c_in: int, c_out: int, bn: BNSpec) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, bn)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, bn)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class AvgPool3x3(nn.Module):
    """NB201's ``avg_pool_3x3``: 3x3 mean, stride 1, padded zeros not counted.

    Computes what ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` computes (up to float rounding),
    but on the CPU as a depthwise convolution with a ones kernel times a per-position 1/count:
    PyTorch's CPU pooling kernels (forward and backward) are several times slower than that and took
    17-30 % of a CPU-recipe training step (bench/RESULTS.md). Other devices keep the native kernel.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("ones", torch.ones(channels, 1, 3, 3), persistent=False)
        self._inv_count: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        total = F.conv2d(x, self.ones.to(x.dtype), padding=1, groups=x.shape[1])
        return total * self._inverse_count(total)

    def _inverse_count(self, y: torch.Tensor) -> torch.Tensor:
        key = (y.shape[-2], y.shape[-1], y.dtype)
        inv = self._inv_count.get(key)
        if inv is None:
            # Built outside inference mode: a cached inference tensor could not be used in training later.
            with torch.inference_mode(False), torch.no_grad():
                count = F.avg_pool2d(torch.ones(1, 1, *key[:2]), 3, 1, 1, divisor_override=1)
                inv = self._inv_count[key] = (1.0 / count).to(y.dtype)
        return inv


def nb201_op(name: str, channels: int, bn: BNSpec) -> nn.Module:
    """One NB201 cell op (stride 1, C -> C); ``none`` has no module (the cell skips it)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, bn)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, bn)
    if name == "avg_pool_3x3":
        return AvgPool3x3(channels)
    raise ValueError(f"no module for op {name!r}")
