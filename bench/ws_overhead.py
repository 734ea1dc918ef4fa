"""Weight-sharing overhead: a super-net training step on a sampled path vs the stand-alone network.

Same architecture, same batch, same layer shapes; 20 random NASBench-201 architectures at C=16, N=5,
batch 256 (the paper's f_ws). Target: median ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from common import machine, median_seconds, size_arguments
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201Standalone, NB201SuperNet


def step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, arch: object | None):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        logits = model(x, arch) if arch is not None else model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=False)  # as the trainer does: every op sampled so far keeps its decay
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", type=int, default=20)
    size_arguments(ap)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    space, rng = NB201Space(), np.random.default_rng(0)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    supernet = NB201SuperNet(args.channels, args.layers, placement="edge")
    # After a few steps of training every op holds a (zeroed) gradient, so each SGD step updates
    # the whole super-net: reproduce that state before timing.
    for _ in range(30):
        supernet(x[:8], space.sample(rng)).sum().backward()
    ratios = []
    for i in range(args.archs):
        arch = space.sample(rng)
        alone = NB201Standalone(arch, args.channels, args.layers)
        t_ws = median_seconds(step_fn(supernet, x, y, arch), args.repeats, 1)
        t_sa = median_seconds(step_fn(alone, x, y, None), args.repeats, 1)
        ratios.append(t_ws / t_sa)
        print(f"{i:2d} {arch}  super-net {t_ws * 1e3:7.1f} ms  stand-alone {t_sa * 1e3:7.1f} ms  ratio {t_ws / t_sa:.3f}")
    print(f"\nmachine: {machine()}")
    print(f"C={args.channels} N={args.layers} batch {args.batch}, {args.archs} archs: "
          f"median ratio {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f}, max {max(ratios):.3f}")


if __name__ == "__main__":
    main()
