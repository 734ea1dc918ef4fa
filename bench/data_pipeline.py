"""Share of a training step spent on batching and augmentation (target <= 3 %).

Times one pass of the on-device loader (shuffle, crop, flip, normalise) over N images against the
training steps over the same images, at the recipe's super-net size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import machine, random_cifar, size_arguments
from supernet.data.loader import DeviceLoader
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5120)
    size_arguments(ap)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    images, labels = random_cifar(args.images, rng)
    loader = DeviceLoader(images, labels, args.batch, augment=True, shuffle=True, drop_last=True, seed=0)
    for _ in loader.epoch(0):  # warm-up
        pass
    start = time.perf_counter()
    batches = list(loader.epoch(1))
    t_data = time.perf_counter() - start

    torch.manual_seed(0)
    model = NB201SuperNet(args.channels, args.layers, placement="edge")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    space = NB201Space()
    archs = [space.sample(rng) for _ in batches]
    start = time.perf_counter()
    for (x, y), arch in zip(batches, archs, strict=True):
        loss = F.cross_entropy(model(x, arch), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t_step = time.perf_counter() - start
    share = t_data / (t_data + t_step)
    print(f"machine: {machine()}")
    print(f"{len(batches)} batches of {args.batch} at C={args.channels} N={args.layers}: loader {t_data:.3f} s, "
          f"training steps {t_step:.2f} s -> data pipeline share {100 * share:.2f} %")


if __name__ == "__main__":
    main()
