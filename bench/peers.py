"""Training-step time of our NASBench-201 super-net vs xautodl's RSPS super-net (Dong & Yang).

Same C, N, batch, inputs and sampled architectures; both with ops on edges, affine BN, batch
statistics. xautodl pins an old numpy in its metadata: install it for this benchmark only, with
``pip install --no-deps xautodl``. NNI's NAS-Bench-201 space is not compared yet.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from common import machine, median_seconds, size_arguments
from supernet.spaces.nasbench201 import OPS, NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", type=int, default=10)
    size_arguments(ap)
    args = ap.parse_args()
    try:
        from xautodl.models.cell_searchs.genotypes import Structure
        from xautodl.models.cell_searchs.search_model_random import TinyNetworkRANDOM
    except ImportError:
        raise SystemExit("xautodl is not installed: pip install --no-deps xautodl") from None

    torch.manual_seed(0)
    ours = NB201SuperNet(args.channels, args.layers, placement="edge")
    theirs = TinyNetworkRANDOM(args.channels, args.layers, 4, 10, list(OPS), True, False)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    space, rng = NB201Space(), np.random.default_rng(0)

    def stepper(model: torch.nn.Module, forward):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            loss = F.cross_entropy(forward(), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()

        return step

    ratios = []
    for i in range(args.archs):
        arch = space.sample(rng)
        theirs.arch_cache = Structure.str2structure(str(arch))
        t_ours = median_seconds(stepper(ours, lambda a=arch: ours(x, a)), 3, 1)
        t_theirs = median_seconds(stepper(theirs, lambda: theirs(x)[1]), 3, 1)
        ratios.append(t_ours / t_theirs)
        print(f"{i:2d} {arch}  ours {t_ours * 1e3:7.1f} ms  xautodl {t_theirs * 1e3:7.1f} ms  "
              f"ratio {t_ours / t_theirs:.3f}")
    print(f"\nmachine: {machine()}")
    print(f"C={args.channels} N={args.layers} batch {args.batch}: ours / xautodl RSPS median ratio "
          f"{statistics.median(ratios):.3f} (< 1 means ours is faster)")


if __name__ == "__main__":
    main()
