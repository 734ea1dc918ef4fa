"""Once-for-All kernel sharing (SPEC 6.6): smaller kernels are derived from one largest kernel.

OFA's ``KernelTransformDynamicConv2d`` keeps one K x K kernel; a k x k kernel (k < K) is the centre
crop of the next larger size, flattened over its k*k taps and passed through a learnable k^2 x k^2
matrix that is shared by every (output, input) channel pair and initialised to the identity, so
training starts from plain centre-cropping and the transform lets the small kernel drift away from
the large one's centre. Crops chain through every listed size (5 -> 3 -> 1 uses two matrices).

For NASBench-101 (sizes 1 and 3) the 3 -> 1 transform is a 1 x 1 matrix: one learnable scalar per
kernel, multiplying the centre tap. With a single size this is just a conv weight.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn


class OFAKernel(nn.Module):
    """A conv weight (C_out, C_in, K, K) that can be read at any of ``kernel_sizes``."""

    def __init__(self, c_out: int, c_in: int, kernel_sizes: tuple[int, ...] = (3,)) -> None:
        super().__init__()
        sizes = tuple(sorted(set(kernel_sizes)))
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ValueError(f"kernel sizes must be odd and positive, got {kernel_sizes}")
        self.kernel_sizes = sizes
        k_max = sizes[-1]
        self.weight = nn.Parameter(torch.empty(c_out, c_in, k_max, k_max))
        # nn.Conv2d's default initialisation, so super-net and stand-alone convs start alike.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.transforms = nn.ParameterDict(
            {f"{big}to{small}": nn.Parameter(torch.eye(small * small)) for small, big in pairwise(sizes)}
        )

    def forward(self, kernel_size: int) -> torch.Tensor:
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"kernel size {kernel_size} not among {self.kernel_sizes}")
        w = self.weight
        for small, big in reversed(list(pairwise(self.kernel_sizes))):
            if big <= kernel_size:
                break
            start = (big - small) // 2
            crop = w[:, :, start : start + small, start : start + small]
            flat = crop.reshape(-1, small * small) @ self.transforms[f"{big}to{small}"].t()
            w = flat.reshape(w.shape[0], w.shape[1], small, small)
        return w
