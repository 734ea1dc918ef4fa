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

from supernet.nn.kernels import OFAKernel
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


def darts_op(name: str, channels: int, stride: int, bn: BNSpec, pool_bn: bool = False) -> nn.Module:
    """One DARTS op, C -> C; ``stride`` 2 on reduction-cell edges from the cell inputs.

    ``pool_bn``: follow a pooling op with a BN without affine parameters, as DARTS' search network and
    the authors' super-net ops do: a pooled state keeps the scale of its input while every conv op
    ends in a BN, and without it the super-net's shared next layers see scales that swing with the
    sampled path (bench/RESULTS.md: at CPU scale it learns faster with it, and lr 0.05 was unstable without).
    """
    c = channels
    if "pool" in name and pool_bn:
        return nn.Sequential(darts_op(name, c, stride, bn), BNSpec(affine=False, track=bn.track)(c))
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


OFA_FAMILIES = {"sep_conv": (2, 1), "dil_conv": (1, 2)}  # family -> (stacked convs, dilation)
OFA_SIZES = (3, 5)


class OFAConvOp(nn.Module):
    """``sep_conv_3x3`` and ``sep_conv_5x5`` (or the two ``dil_conv``) as one op whose depthwise kernels
    are OFA kernels read at 3 or 5 (SPEC 6.6); pointwise convs and BNs are shared like the rest of an
    OFA layer. ``materialize(k)`` is the plain DARTS op with the kernels this one computes."""

    def __init__(self, family: str, channels: int, stride: int, bn: BNSpec) -> None:
        super().__init__()
        self.family, self.stride = family, stride
        stacks, self.dilation = OFA_FAMILIES[family]
        self.depthwise = nn.ModuleList(OFAKernel(channels, 1, OFA_SIZES) for _ in range(stacks))
        self.pointwise = nn.ModuleList(nn.Conv2d(channels, channels, 1, bias=False) for _ in range(stacks))
        self.bns = nn.ModuleList(bn(channels) for _ in range(stacks))

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        for i, (dw, pw, norm) in enumerate(zip(self.depthwise, self.pointwise, self.bns, strict=True)):
            x = F.conv2d(F.relu(x), dw(kernel), None, self.stride if i == 0 else 1, self.dilation * (kernel - 1) // 2,
                         self.dilation, groups=x.shape[1])
            x = norm(pw(x))
        return x

    @torch.no_grad()
    def materialize(self, kernel: int, bn: BNSpec) -> nn.Sequential:
        op = darts_op(f"{self.family}_{kernel}x{kernel}", self.pointwise[0].in_channels, self.stride, bn)
        assert isinstance(op, nn.Sequential)
        for i, (dw, pw, norm) in enumerate(zip(self.depthwise, self.pointwise, self.bns, strict=True)):
            op[4 * i + 1].weight.copy_(dw(kernel))  # layout of _dil_conv: ReLU, depthwise, pointwise, BN
            op[4 * i + 2].load_state_dict(pw.state_dict())
            op[4 * i + 3].load_state_dict(norm.state_dict())
        return op


class KernelView:
    """An OFA op read at one kernel size, callable like the op it stands for (not a module: it owns nothing)."""

    def __init__(self, op: OFAConvOp, kernel: int, bn: BNSpec) -> None:
        self.op, self.kernel, self.bn = op, kernel, bn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x, self.kernel)

    def parameters(self):  # noqa: ANN201 - mirrors nn.Module.parameters
        return self.op.parameters()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state of the equivalent plain DARTS op (so a super-net path can be extracted)."""
        return self.op.materialize(self.kernel, self.bn).state_dict()


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
