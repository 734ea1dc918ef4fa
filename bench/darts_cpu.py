"""The DARTS-NDS super-net on real CIFAR-10 at CPU scale, where NDS ground truth is not available.

Without NDS' DARTS.json nothing can be ranked, so this checks what can be checked on real data: the
super-net trains (loss, accuracy per epoch) and a fixed pool of NDS-distributed architectures gains
super-net accuracy, evaluated with batch statistics as a run does. It runs the run's own pieces
(``load_data``, ``Trainer``, ``supernet_accuracies``) with the DARTS-NDS recipe's protocol.

    python bench/darts_cpu.py --data ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz --epochs 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import machine
from supernet.config import load_config
from supernet.data.setup import load_data
from supernet.evaluate.evaluator import supernet_accuracies
from supernet.nn.ops import BNSpec
from supernet.runtime import CPU
from supernet.spaces.darts import DartsSpace
from supernet.supernets.darts import DartsSuperNet
from supernet.train.sampler import make_sampler
from supernet.train.trainer import Trainer

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "darts-nds.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="CIFAR-10 (batches dir, image folder or .tar.gz)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--archs", type=int, default=20, help="fixed pool of NDS-distributed architectures")
    ap.add_argument("--eval-images", type=int, default=2560)
    ap.add_argument("--no-pool-bn", action="store_true", help="pools without their BN (ops exactly the stand-alone's)")
    ap.add_argument("overrides", nargs="*", help="extra key=value config overrides (data.*, protocol.*)")
    args = ap.parse_args()
    cfg = load_config(RECIPE, [
        f"data.root={args.data}", f"protocol.epochs={args.epochs}", f"protocol.batch_size={args.batch}",
        f"protocol.lr={args.lr}", f"evaluation.max_images={args.eval_images}", "protocol.validate_every_epoch=false",
        *args.overrides,
    ])
    torch.manual_seed(cfg.seed)
    data = load_data(cfg, CPU)
    space = DartsSpace()
    rng = np.random.default_rng([cfg.seed, 1])
    pool = [space.sample(rng) for _ in range(args.archs)]
    model = DartsSuperNet(args.channels, args.layers, bn=BNSpec(cfg.supernet.bn_affine, cfg.supernet.bn_track_stats),
                          generator=torch.Generator(), pool_bn=not args.no_pool_bn)
    trainer = Trainer(model, make_sampler(space, "uniform"), cfg.protocol, cfg.seed, CPU)

    def pool_accuracy() -> np.ndarray:
        return supernet_accuracies(model, pool, data.eval_batches, "batch")

    acc = pool_accuracy()
    print(f"C={args.channels}, {args.layers} cells, pool BN {not args.no_pool_bn}, batch {args.batch}, lr {args.lr}, "
          f"{len(data.train)} steps per epoch, "
          f"pool of {args.archs} on {sum(len(y) for _, y in data.eval_batches)} test images")
    print(f"epoch  0: pool accuracy {acc.mean():5.1f} % (min {acc.min():.1f}, max {acc.max():.1f}) before training")
    for epoch in range(args.epochs):
        start = time.perf_counter()
        stats = trainer.train_epoch(epoch, data.train.epoch(epoch))
        train_s = time.perf_counter() - start
        acc = pool_accuracy()
        print(f"epoch {epoch + 1:2d}: train loss {stats.train_loss:.3f}, train acc {stats.train_acc:5.1f} %, "
              f"{train_s:5.0f} s; pool accuracy {acc.mean():5.1f} % (min {acc.min():.1f}, max {acc.max():.1f}), "
              f"{time.perf_counter() - start - train_s:4.0f} s")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
