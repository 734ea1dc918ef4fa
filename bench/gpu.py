"""GPU check: the NASBench-201 paper recipe at full size, timed with the fast paths on.

Runs the real code path (``recipes/nb201.yaml`` -> ``load_data`` -> ``Trainer`` -> pool evaluation)
for a few epochs per precision and prints seconds per epoch, images per second, the pool evaluation
time, host synchronisations per epoch, and the achieved fraction of the card's measured convolution
throughput (training FLOPs counted with ``torch.utils.flop_counter`` over sampled paths, divided by
the rate of a large bf16 channels-last convolution timed on the same card).

    bash bench/gpu.sh                       # on a lent GPU; see gpu.sh for carrying the data
    python bench/gpu.py --data PATH --allow-cpu --epochs 2 --pool 4 supernet.channels=4 ...   # smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from common import machine, median_seconds
from supernet.config import load_config
from supernet.data.setup import RunData, load_data
from supernet.evaluate.evaluator import supernet_accuracies
from supernet.pools import draw_pool
from supernet.registry import build_kit
from supernet.runtime import Runtime
from supernet.train.sampler import make_sampler
from supernet.train.trainer import EpochStats, Trainer

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], repeats: int = 10) -> float:
    """Median seconds of ``fn`` after warm-up; each call ends synchronised, so asynchronous work counts."""

    def synced() -> None:
        fn()
        sync()

    return median_seconds(synced, repeats, 3)


def conv_roof(device: torch.device, small: bool) -> float:
    """FLOP/s of one large bf16 channels-last 3x3 convolution (forward): the card's practical ceiling."""
    b, c, hw = (8, 16, 16) if small else (256, 256, 32)
    x = torch.randn(b, c, hw, hw, device=device).to(memory_format=torch.channels_last, dtype=torch.bfloat16)
    w = torch.randn(c, c, 3, 3, device=device).to(memory_format=torch.channels_last, dtype=torch.bfloat16)
    seconds = timed(lambda: F.conv2d(x, w, padding=1))
    return 2.0 * b * c * c * 9 * hw * hw / seconds


def training_flops_per_image(model: torch.nn.Module, archs: list, rt: Runtime, image: torch.Tensor) -> float:
    """Forward + backward FLOPs per image, averaged over sampled paths (the count is per-path exact)."""
    counts = []
    for arch in archs:
        with FlopCounterMode(display=False) as counter, rt.autocast():
            F.cross_entropy(model(image, arch), torch.zeros(len(image), dtype=torch.long, device=image.device)).backward()
        counts.append(counter.get_total_flops() / len(image))
    model.zero_grad(set_to_none=True)  # training starts from no gradients, as in a run
    return float(np.mean(counts))


def one_epoch(trainer: Trainer, data: RunData, epoch: int) -> tuple[EpochStats, float]:
    """An epoch as a run does it: training, then validation on the held-out half; (stats, seconds)."""
    sync()
    start = time.perf_counter()
    stats = trainer.train_epoch(epoch, data.train.epoch(epoch))
    if data.valid is not None:
        trainer.validate(epoch, data.valid.epoch(0))
    sync()
    return stats, time.perf_counter() - start


def syncs_in_epoch(trainer: Trainer, data: RunData) -> int | None:
    """Host synchronisations of one epoch, counted by CUDA's sync debug mode (None on the CPU).

    Expected: 3 at the end of training (loss, accuracy, divergence check) and 2 after validation.
    """
    if not torch.cuda.is_available():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            one_epoch(trainer, data, 99)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def check(precision: str, args: argparse.Namespace, roof: float) -> dict[str, float | int | str]:
    cfg = load_config(RECIPE, [f"data.root={args.data}", f"runtime.precision={precision}", "progress=false",
                               f"protocol.epochs={args.epochs}", *args.overrides])
    rt = Runtime.from_config(cfg.device, cfg.runtime)
    kit = build_kit(cfg)
    data = load_data(cfg, rt)
    torch.manual_seed(cfg.seed)
    model = rt.prepare(kit.build_supernet())
    trainer = Trainer(model, make_sampler(kit.space, cfg.protocol.sampler), cfg.protocol, cfg.seed, rt)
    rng = np.random.default_rng(0)
    x0 = data.eval_batches[0][0][:8]
    flops = training_flops_per_image(model, [kit.space.sample(rng) for _ in range(args.flop_paths)], rt, x0)
    epochs = [one_epoch(trainer, data, e) for e in range(args.epochs)]
    steady = epochs[1:] or epochs  # epoch 0 pays for cuDNN autotuning and allocator warm-up
    sec = statistics.median(seconds for _, seconds in steady)
    img_s = statistics.median(s.images_per_s for s, _ in steady)  # training images per training second
    syncs = syncs_in_epoch(trainer, data)
    archs = [kit.arch_of(k) for k in draw_pool(kit.candidates(), args.pool, cfg.seed)]
    n_eval = sum(len(y) for _, y in data.eval_batches)
    sync()
    start = time.perf_counter()
    acc = supernet_accuracies(model, archs, data.eval_batches, cfg.evaluation.bn, runtime=rt)
    sync()
    eval_s = time.perf_counter() - start
    print(f"{precision}: epochs {[round(sec, 2) for _, sec in epochs]} s, train loss {epochs[-1][0].train_loss:.3f}, "
          f"pool accuracy {acc.mean():.1f} %, syncs per epoch {syncs}")
    return {"sec_epoch": sec, "img_s": img_s, "tflops": flops * img_s / 1e12, "fraction": flops * img_s / roof,
            "eval_s": eval_s, "eval_archs": len(archs), "eval_images": n_eval, "flops_img": flops,
            "syncs": "n/a" if syncs is None else syncs, "steps": len(data.train)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="CIFAR-10 (batches dir, image folder or .tar.gz)")
    ap.add_argument("--epochs", type=int, default=4, help="per precision; the first is warm-up")
    ap.add_argument("--pool", type=int, default=200)
    ap.add_argument("--flop-paths", type=int, default=20, help="sampled paths the FLOP count averages over")
    ap.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    ap.add_argument("--allow-cpu", action="store_true", help="smoke-test the script without a GPU")
    ap.add_argument("overrides", nargs="*", help="extra key=value config overrides")
    args = ap.parse_intermixed_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        raise SystemExit("no CUDA device: this is the GPU check (use --allow-cpu only to smoke-test it)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"machine: {machine()}; device: {name}")
    roof = conv_roof(device, small=device.type == "cpu")
    print(f"measured convolution throughput (bf16, channels-last, 3x3): {roof / 1e12:.3g} TFLOP/s")
    rows = {p: check(p, args, roof) for p in args.precisions}
    print("\ns/epoch: training + validation; images/s and TFLOP/s: training steps alone; fp32 convolutions use "
          "TF32 (PyTorch's cuDNN default); syncs/epoch: host synchronisations (5 = the end-of-pass reads)")
    print("| precision | s/epoch | steps | images/s | train TFLOP/s | of conv roof | pool eval | syncs/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for p, r in rows.items():
        print(f"| {p} | {r['sec_epoch']:.2f} | {r['steps']} | {r['img_s']:.0f} | {r['tflops']:.3g} | "
              f"{100 * r['fraction']:.1f} % | {r['eval_s']:.1f} s ({r['eval_archs']} archs x {r['eval_images']} images) "
              f"| {r['syncs']} |")
    first = next(iter(rows.values()))
    print(f"training FLOPs per image (forward + backward, mean over paths): {first['flops_img'] / 1e6:.1f} MFLOP")


if __name__ == "__main__":
    main()
