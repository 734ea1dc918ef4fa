"""Weight-sharing overhead: a super-net training step on a sampled path vs the stand-alone network.

Same architecture, same batch, same layer shapes; 20 random NASBench-201 architectures at C=16, N=5,
batch 256 (the paper's f_ws). Target: median ratio <= 1.10. ``--space darts_nds`` times the DARTS
super-net instead (pass its size, e.g. ``--channels 16 --layers 8 --batch 128``: the paper's recipe).
``--device cuda --precision bf16`` times both on a GPU with the runtime's fast paths (bench/gpu.sh
does, for DARTS-NDS), and checks that the path and the extracted network agree there.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from common import machine, median_seconds, size_arguments
from supernet.config import RuntimeConfig
from supernet.runtime import Runtime
from supernet.spaces.darts import DartsSpace
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.darts import DartsStandalone, DartsSuperNet
from supernet.supernets.nasbench201 import NB201Standalone, NB201SuperNet

SPACES = {  # space, super-net, stand-alone network of (arch, C, N)
    "nasbench201": (NB201Space, lambda c, n: NB201SuperNet(c, n, placement="edge"), NB201Standalone),
    "darts_nds": (DartsSpace, lambda c, n: DartsSuperNet(c, n), DartsStandalone),
}


def step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, arch: object | None, rt: Runtime):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        with rt.autocast():
            logits = model(x, arch) if arch is not None else model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=False)  # as the trainer does: every op sampled so far keeps its decay
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if rt.device.type == "cuda":
            torch.cuda.synchronize()  # time the work, not its launch

    return step


@torch.no_grad()
def path_matches_extract(supernet: torch.nn.Module, arch: object, x: torch.Tensor, rt: Runtime) -> float:
    """Largest |logit difference| between a path and its extracted network (DARTS only), in eval mode."""
    supernet.eval()
    alone = rt.prepare(supernet.extract(arch)).eval()
    with rt.autocast():
        diff = (supernet(x, arch).float() - alone(x).float()).abs().max().item()
    supernet.train()
    return diff


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", type=int, default=20)
    size_arguments(ap)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--space", choices=sorted(SPACES), default="nasbench201")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args()
    torch.manual_seed(0)
    rt = Runtime.from_config(args.device, RuntimeConfig(precision=args.precision))
    make_space, make_supernet, make_standalone = SPACES[args.space]
    space, rng = make_space(), np.random.default_rng(0)
    memory = torch.channels_last if rt.channels_last else torch.contiguous_format
    x = torch.randn(args.batch, 3, 32, 32).to(rt.device, memory_format=memory)
    y = torch.randint(0, 10, (args.batch,)).to(rt.device)
    supernet = rt.prepare(make_supernet(args.channels, args.layers))
    # After a few steps of training every op holds a (zeroed) gradient, so each SGD step updates
    # the whole super-net: reproduce that state before timing.
    for _ in range(30):
        supernet(x[:8], space.sample(rng)).sum().backward()
    ratios, diffs = [], []
    for i in range(args.archs):
        arch = space.sample(rng)
        alone = rt.prepare(make_standalone(arch, args.channels, args.layers))
        t_ws = median_seconds(step_fn(supernet, x, y, arch, rt), args.repeats, 1)
        t_sa = median_seconds(step_fn(alone, x, y, None, rt), args.repeats, 1)
        ratios.append(t_ws / t_sa)
        if hasattr(supernet, "extract"):
            diffs.append(path_matches_extract(supernet, arch, x, rt))
        print(f"{i:2d} {arch}  super-net {t_ws * 1e3:7.1f} ms  stand-alone {t_sa * 1e3:7.1f} ms  ratio {t_ws / t_sa:.3f}")
    print(f"\nmachine: {machine()}, device {rt.device} ({torch.cuda.get_device_name() if rt.device.type == 'cuda' else 'cpu'}), "
          f"{args.precision}, channels-last {rt.channels_last}")
    if diffs:
        print(f"path vs extracted network: max |logit difference| {max(diffs):.2e} over {len(diffs)} archs")
    print(f"{args.space} C={args.channels} N={args.layers} batch {args.batch}, {args.archs} archs: "
          f"median ratio {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f}, max {max(ratios):.3f}")


if __name__ == "__main__":
    main()
