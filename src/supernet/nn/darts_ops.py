"""DARTS candidate operations and blocks, shaped exactly like DARTS' ``NetworkCIFAR`` (and pycls' NDS copy).

The 1x1 convolutions that read a previous cell's output (cell preprocessing, the classifier) take an
optional ``cols``: the input channels to use. A stand-alone network builds them at the exact width
of its previous cell and never passes ``cols``; the super-net builds them at the width of a cell
that concatenates all nodes and passes the channels of the nodes the sampled cell concatenated.
That computes what the authors' zero-filled concatenation computes (SPEC 4.3), at the stand-alone
network's cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.nn.ops import AvgPool3x3, BNSpec


class SlicedConv1x1(nn.Conv2d):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        w = self.weight if cols is None else self.weight.index_select(1, cols)
        return F.conv2d(x, w, None, self.stride)


class SlicedLinear(nn.Linear):
    def forward(self, x: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        w = self.weight if cols is None else self.weight.index_select(1, cols)
        return F.linear(x, w, self.bias)


class Preprocess(nn.Module):
    """ReLU, 1x1 conv, BN: brings a previous cell's output to the cell's width."""

    def __init__(self, c_in: int, c_out: int, bn: BNSpec) -> None:
        super().__init__()
        self.conv = SlicedConv1x1(c_in, c_out)
        self.bn = bn(c_out)

    def forward(self, x: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        return self.bn(self.conv(F.relu(x), cols))


class FactorizedReduce(nn.Module):
    """Stride-2 1x1 convs on two pixel grids offset by one, concatenated: DARTS' shape-preserving reduction."""

    def __init__(self, c_in: int, c_out: int, bn: BNSpec) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even output width, got {c_out}")
        self.conv_1 = SlicedConv1x1(c_in, c_out // 2, stride=2)
        self.conv_2 = SlicedConv1x1(c_in, c_out // 2, stride=2)
        self.bn = bn(c_out)

    def forward(self, x: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x, cols), self.conv_2(x[:, :, 1:, 1:], cols)], dim=1))


def _dil_conv(c_in: int, c_out: int, kernel: int, stride: int, dilation: int, bn: BNSpec) -> list[nn.Module]:
    padding = dilation * (kernel - 1) // 2
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        bn(c_out),
    ]


def darts_op(name: str, channels: int, stride: int, bn: BNSpec) -> nn.Module:
    """One DARTS op, C -> C; ``stride`` 2 on reduction-cell edges from the cell inputs."""
    c = channels
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, padding=1)
    if name == "avg_pool_3x3":
        return AvgPool3x3(c) if stride == 1 else nn.AvgPool2d(3, stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, bn)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return nn.Sequential(*_dil_conv(c, c, k, stride, 1, bn), *_dil_conv(c, c, k, 1, 1, bn))
    if name.startswith("dil_conv_"):
        return nn.Sequential(*_dil_conv(c, c, int(name[-1]), stride, 2, bn))
    raise ValueError(f"no module for DARTS op {name!r}")


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier after the second reduction (8x8 input). f_proxy has it only
    so that its parameter count equals a benchmark network trained with ``aux``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
