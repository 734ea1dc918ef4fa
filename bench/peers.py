"""Training-step time of our NASBench-201 super-net vs a peer's, on the same inputs and paths.

Peers (same C, N, batch, inputs and sampled architectures; all with ops on edges and affine BN):

- ``xautodl``: the RSPS super-net of Dong & Yang (``TinyNetworkRANDOM``). Its metadata pins an old
  numpy: install it for this benchmark only, with ``pip install --no-deps xautodl``.
- ``nni``: NNI 3.0's ``NasBench201`` model space turned into a super-net by its ``RandomOneShot``
  strategy (uniform path sampling), with the path set through NNI's own ``resample(memo)``. NNI needs
  pytorch_lightning and warns about torch versions it does not know; use a separate environment:
  ``python -m venv --system-site-packages ENV && ENV/bin/pip install nni pytorch_lightning``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from common import machine, median_seconds, size_arguments
from supernet.spaces.nasbench201 import EDGES, OPS, NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet

# A peer: its super-net, and a function that sets a path and returns the forward pass on it.
Peer = tuple[torch.nn.Module, Callable[[object], Callable[[torch.Tensor], torch.Tensor]]]


def xautodl_peer(channels: int, layers: int) -> Peer:
    try:
        from xautodl.models.cell_searchs.genotypes import Structure
        from xautodl.models.cell_searchs.search_model_random import TinyNetworkRANDOM
    except ImportError:
        raise SystemExit("xautodl is not installed: pip install --no-deps xautodl") from None
    model = TinyNetworkRANDOM(channels, layers, 4, 10, list(OPS), True, False)

    def with_arch(arch: object) -> Callable[[torch.Tensor], torch.Tensor]:
        model.arch_cache = Structure.str2structure(str(arch))
        return lambda x: model(x)[1]

    return model, with_arch


def nni_peer(channels: int, layers: int) -> Peer:
    try:
        from nni.nas.hub.pytorch import NasBench201
        from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
        from nni.nas.strategy import RandomOneShot
    except ImportError as exc:
        raise SystemExit(f"NNI is not usable here ({exc}): pip install nni pytorch_lightning") from None
    model = RandomOneShot().mutate_model(NasBench201(channels, layers))
    layers_ = [m for m in model.modules() if isinstance(m, BaseSuperNetModule)]

    def with_arch(arch: object) -> Callable[[torch.Tensor], torch.Tensor]:
        # NNI labels an edge "cell/{source}_{target}" and calls the convs conv_1x1 / conv_3x3.
        memo = {f"cell/{s}_{t}": op.replace("nor_", "") for (s, t), op in zip(EDGES, arch.ops, strict=True)}
        for m in layers_:
            m.resample(memo=memo)
        return model

    return model, with_arch


PEERS = {"xautodl": xautodl_peer, "nni": nni_peer}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", choices=sorted(PEERS), default="xautodl")
    ap.add_argument("--archs", type=int, default=10)
    size_arguments(ap)
    args = ap.parse_args()
    theirs, with_arch = PEERS[args.peer](args.channels, args.layers)
    torch.manual_seed(0)
    ours = NB201SuperNet(args.channels, args.layers, placement="edge")
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    space, rng = NB201Space(), np.random.default_rng(0)

    def stepper(model: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            loss = F.cross_entropy(forward(x), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()

        return step

    ratios = []
    for i in range(args.archs):
        arch = space.sample(rng)
        t_ours = median_seconds(stepper(ours, lambda x, a=arch: ours(x, a)), 3, 1)
        t_theirs = median_seconds(stepper(theirs, with_arch(arch)), 3, 1)
        ratios.append(t_ours / t_theirs)
        print(f"{i:2d} {arch}  ours {t_ours * 1e3:7.1f} ms  {args.peer} {t_theirs * 1e3:7.1f} ms  "
              f"ratio {t_ours / t_theirs:.3f}")
    print(f"\nmachine: {machine()}")
    print(f"C={args.channels} N={args.layers} batch {args.batch}: ours / {args.peer} median ratio "
          f"{statistics.median(ratios):.3f} (< 1 means ours is faster)")


if __name__ == "__main__":
    main()
