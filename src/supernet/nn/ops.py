"""NASBench-201 candidate operations and blocks, shaped exactly like the benchmark's.

Shapes (and so parameter counts) follow NAS-Bench-201's ``TinyNetwork``: a conv is ReLU-Conv-BN
without bias, pooling is 3x3 average without padded zeros counted, a reduction is a ResNet basic
block. The super-net reuses these modules per edge, so a sampled path costs what the stand-alone
network costs.
"""

from __future__ import annotations

import torch
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


def nb201_op(name: str, channels: int, bn: BNSpec) -> nn.Module:
    """One NB201 cell op (stride 1, C -> C); ``none`` has no module (the cell skips it)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, bn)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, bn)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"no module for op {name!r}")
