"""Where a CPU training step spends its time, and what the fast average pooling saves.

Profiles one epoch of super-net training through the real ``Trainer`` and ``DeviceLoader`` with
``torch.profiler`` and prints the most expensive operators. ``--native-pool`` swaps every
``AvgPool3x3`` back to ``nn.AvgPool2d`` (the kernel it replaces) to measure the difference on the
same machine and the same steps.

    python bench/profile_step.py --channels 8 --layers 1 --batch 64          # the CPU recipe's size
    python bench/profile_step.py --channels 8 --layers 1 --batch 64 --native-pool
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from common import machine, random_cifar, size_arguments
from supernet.config import ProtocolConfig
from supernet.data.loader import DeviceLoader
from supernet.nn.ops import AvgPool3x3, BNSpec
from supernet.runtime import Runtime
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet
from supernet.train.sampler import make_sampler
from supernet.train.trainer import Trainer


def native_pools(model: torch.nn.Module) -> None:
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, AvgPool3x3):
                setattr(module, name, torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    size_arguments(ap, layers=1)
    ap.add_argument("--steps", type=int, default=20, help="steps per profiled epoch")
    ap.add_argument("--native-pool", action="store_true", help="use nn.AvgPool2d instead of AvgPool3x3")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--rows", type=int, default=15)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = NB201SuperNet(args.channels, args.layers, placement="edge", bn=BNSpec(track=True))
    if args.native_pool:
        native_pools(model)
    rt = Runtime(torch.device("cpu"), channels_last=args.channels_last)
    model = rt.prepare(model)
    images, labels = random_cifar(args.batch * args.steps, np.random.default_rng(0))
    loader = DeviceLoader(images, labels, args.batch, augment=True, shuffle=True, drop_last=True, seed=0,
                          channels_last=args.channels_last)
    trainer = Trainer(model, make_sampler(NB201Space(), "uniform"), ProtocolConfig(epochs=10), 0, rt)
    trainer.train_epoch(0, loader.epoch(0))  # warm-up
    timed = [trainer.train_epoch(e, loader.epoch(e)).seconds for e in (1, 2, 3)]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.train_epoch(4, loader.epoch(4))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    per_step = 1e3 * float(np.median(timed)) / args.steps
    pool = "nn.AvgPool2d" if args.native_pool else "AvgPool3x3"
    print(f"machine: {machine()}")
    print(f"C={args.channels} N={args.layers} batch {args.batch}, {pool}, channels_last={args.channels_last}: "
          f"{per_step:.1f} ms per training step (median of 3 epochs of {args.steps} steps, unprofiled)")


if __name__ == "__main__":
    main()
