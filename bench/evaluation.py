"""Pool evaluation time vs the sum of the pure forward passes it needs (target: overhead <= 5 %).

``--channels-last``: the same in NHWC (``runtime.channels_last=true``), which on the CPU makes the CPU recipe's
evaluation faster although its training is slower (bench/RESULTS.md)."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import machine, random_cifar, size_arguments
from supernet.data.loader import DeviceLoader
from supernet.evaluate.evaluator import supernet_accuracies
from supernet.nn.norm import set_bn_mode
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", type=int, default=20)
    ap.add_argument("--images", type=int, default=2560)
    size_arguments(ap, layers=1)
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    images, labels = random_cifar(args.images, rng)
    space = NB201Space()
    archs = [space.sample(rng) for _ in range(args.archs)]
    torch.manual_seed(0)
    model = NB201SuperNet(args.channels, args.layers, placement="edge").eval()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)

    start = time.perf_counter()
    batches = list(DeviceLoader(images, labels, args.batch, augment=False, shuffle=False, drop_last=False,
                                seed=0, channels_last=args.channels_last).epoch(0))
    supernet_accuracies(model, archs, batches, "batch")
    t_eval = time.perf_counter() - start

    set_bn_mode(model, "batch")
    t_forward = 0.0
    with torch.inference_mode():
        for arch in archs:
            for x, _ in batches:
                s = time.perf_counter()
                model(x, arch)
                t_forward += time.perf_counter() - s
    print(f"machine: {machine()}")
    layout = "channels-last" if args.channels_last else "contiguous"
    print(f"{args.archs} archs x {args.images} images at C={args.channels} N={args.layers}, batch {args.batch}, {layout}: "
          f"{t_eval / args.archs:.3f} s per arch; evaluation {t_eval:.2f} s, "
          f"pure forwards {t_forward:.2f} s -> overhead {100 * (t_eval / t_forward - 1):+.2f} %")


if __name__ == "__main__":
    main()
