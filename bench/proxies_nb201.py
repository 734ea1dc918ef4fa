"""Validation of the training-free proxy panel on NASBench-201 (issue 11, part 1).

N seeded random NB201 architectures (distinct, drawn without replacement from the 15,625), each
stand-alone network at NB201's size (C=16, N=5) initialised from a seed derived from the run seed
and the architecture, scored by every proxy on one fixed seeded batch of real CIFAR-10 training
images (un-augmented, normalised as the project's training normalises them). Prints the Spearman
correlation of each proxy with the CIFAR-10 validation accuracy of NB201's 200-epoch runs (the
``cifar10/valid`` column: trained on half the training set, as NAS-Bench-Suite-Zero reports), the
published NAS-Bench-Suite-Zero figure, and seconds per architecture. Per-architecture scores go to
``--out`` (.npz or .csv), rewritten every ``--save-every`` architectures, so a long run can be
re-analysed or reported on while it goes: ``--analyse FILE`` prints the table of a saved file.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, rankdata, spearmanr

from common import machine
from supernet.data.cifar import load_cifar10
from supernet.data.loader import CIFAR_MEAN, CIFAR_STD
from supernet.groundtruth.table import GroundTruth
from supernet.proxies import resolve_names, score_all
from supernet.spaces.nasbench201 import NUM_ARCHS, NB201Space
from supernet.supernets.nasbench201 import NB201Standalone

# NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 D&B), NB201 CIFAR-10, Spearman with validation accuracy.
PUBLISHED = {"nwot": 0.77, "jacov": 0.75, "synflow": 0.73, "params": 0.72, "flops": 0.69, "grad_norm": 0.58, "snip": 0.58}
TOLERANCE = 0.05
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"


def proxy_batch(data: Path, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``batch`` training images drawn without replacement by ``seed``, normalised as in training."""
    ds = load_cifar10(data, download=False)
    idx = np.sort(np.random.default_rng([seed, 1]).choice(len(ds.train_y), batch, replace=False))
    images = torch.from_numpy(ds.train_x[idx]).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (images - mean) / std, torch.as_tensor(ds.train_y[idx], dtype=torch.int64), idx


def save(path: Path, arrays: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
    """Write-then-rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            cols = ["arch", "space_index", "init_seed", "cifar10_valid", "cifar10_test"]
            cols += list(names) + [f"seconds_{n}" for n in names] + ["seconds_panel"]
            w.writerow(cols)
            for i in range(len(arrays["arch"])):
                row = [arrays["arch"][i], int(arrays["space_index"][i]), int(arrays["init_seed"][i]),
                       float(arrays["cifar10_valid"][i]), float(arrays["cifar10_test"][i])]
                row += [repr(float(arrays["scores"][i, j])) for j in range(len(names))]
                row += [f"{arrays['seconds'][i, j]:.4f}" for j in range(len(names))]
                row += [f"{arrays['seconds_panel'][i]:.4f}"]
                w.writerow(row)
    else:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    os.replace(tmp, path)


def bootstrap_ci(s: np.ndarray, acc: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the Spearman correlation over architectures resampled with
    replacement: how far the figure could move with another draw of N architectures (not of batch
    or initialisation)."""
    rng = np.random.default_rng(seed)
    rs = rankdata(s)
    ra = rankdata(acc)
    stats = []
    for _ in range(resamples):
        i = rng.integers(0, len(s), len(s))
        stats.append(spearmanr(rs[i], ra[i]).statistic)
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def table(names: list[str], scores: np.ndarray, seconds: np.ndarray, panel: np.ndarray,
          valid: np.ndarray, test: np.ndarray) -> str:
    n = len(valid)
    lines = [
        f"N = {n} architectures",
        "",
        "| proxy | Spearman (cifar10 valid) | 95 % CI (archs resampled) | published | within ±0.05? "
        "| Spearman (cifar10 test) | Kendall (valid) | -inf scores | s per arch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for j, name in enumerate(names):
        s = scores[:, j]
        rho_v = spearmanr(s, valid).statistic
        lo, hi = bootstrap_ci(s, valid)
        rho_t = spearmanr(s, test).statistic
        tau_v = kendalltau(s, valid).statistic
        pub = PUBLISHED.get(name)
        ok = "-" if pub is None else ("yes" if abs(rho_v - pub) <= TOLERANCE else f"no ({rho_v - pub:+.3f})")
        lines.append(
            f"| {name} | {rho_v:.3f} | {lo:.3f}-{hi:.3f} | {pub if pub is not None else '-'} | {ok} | {rho_t:.3f} | {tau_v:.3f} "
            f"| {int(np.sum(np.isneginf(s)))} | {seconds[:, j].mean():.3f} |"
        )
    lines.append(f"| whole panel (incl. building the network) | | | | | | | | {panel.mean():.3f} |")
    return "\n".join(lines)


def analyse(path: Path) -> None:
    with np.load(path, allow_pickle=False) as z:
        names = [str(s) for s in z["names"]]
        print(table(names, z["scores"], z["seconds"], z["seconds_panel"], z["cifar10_valid"], z["cifar10_test"]))
        print(f"\nrecorded on: {z['machine']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=1000, help="random NB201 architectures (distinct)")
    ap.add_argument("--seed", type=int, default=0, help="architectures, image batch and initialisations")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=64, help="images in the proxy batch")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CIFAR-10 in any layout load_cifar10 reads")
    ap.add_argument("--proxies", default="all", help="comma-separated names, or all")
    ap.add_argument("--out", type=Path, default=None, help="per-architecture scores (.npz or .csv)")
    ap.add_argument("--save-every", type=int, default=25)
    ap.add_argument("--analyse", type=Path, default=None, help="print the table of a saved .npz and exit")
    args = ap.parse_args()
    if args.analyse is not None:
        analyse(args.analyse)
        return
    torch.set_num_threads(args.threads)
    names = resolve_names(args.proxies)

    space, gt = NB201Space(), GroundTruth.nasbench201()
    picks = np.random.default_rng(args.seed).choice(NUM_ARCHS, args.archs, replace=False)
    archs = [space.from_index(int(i)) for i in picks]
    keys = [space.key(a) for a in archs]
    valid = np.asarray(gt.accuracy(keys, "valid", "cifar10"), dtype=np.float64)
    test = np.asarray(gt.accuracy(keys, "test", "cifar10"), dtype=np.float64)
    # The same architecture gets the same initialisation whatever --archs is.
    init_seeds = np.asarray([args.seed * NUM_ARCHS + int(i) for i in picks], dtype=np.int64)
    x, y, image_idx = proxy_batch(args.data, args.batch, args.seed)
    where = machine()
    print(f"machine: {where}; {os.cpu_count()} CPU cores")
    print(f"NB201 C={args.channels} N={args.layers}, batch {args.batch} CIFAR-10 training images, seed {args.seed}")

    scores = np.full((args.archs, len(names)), np.nan)
    seconds = np.full((args.archs, len(names)), np.nan)
    panel = np.full(args.archs, np.nan)

    def arrays(done: int) -> dict[str, np.ndarray]:
        return dict(
            names=np.asarray(names), arch=np.asarray(keys[:done]), space_index=picks[:done],
            init_seed=init_seeds[:done], cifar10_valid=valid[:done], cifar10_test=test[:done],
            scores=scores[:done], seconds=seconds[:done], seconds_panel=panel[:done],
            image_index=image_idx, machine=np.asarray(where),
            settings=np.asarray(f"seed={args.seed} batch={args.batch} C={args.channels} N={args.layers} threads={args.threads}"),
        )

    start_all = time.perf_counter()
    for i, arch in enumerate(archs):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        result = score_all(lambda a=arch: NB201Standalone(a, args.channels, args.layers), x, y, names, int(init_seeds[i]), timings)
        panel[i] = time.perf_counter() - start
        scores[i] = [result[n] for n in names]
        seconds[i] = [timings[n] for n in names]
        done = i + 1
        if args.out is not None and (done % args.save_every == 0 or done == args.archs):
            save(args.out, arrays(done), names)
        if done % max(1, args.archs // 20) == 0 or done == args.archs:
            elapsed = time.perf_counter() - start_all
            eta = elapsed / done * (args.archs - done)
            print(f"  {done}/{args.archs} archs, {elapsed / done:.2f} s/arch, ETA {eta / 60:.1f} min", flush=True)

    bad = ~np.isfinite(scores) & ~np.isneginf(scores)
    if bad.any():
        print(f"warning: {int(bad.sum())} NaN/+inf scores")
    print()
    print(table(list(names), scores, seconds, panel, valid, test))
    total = time.perf_counter() - start_all
    print(f"\n{args.archs} architectures in {total / 60:.1f} min ({total / args.archs:.2f} s per architecture); "
          f"machine: {where}")
    if args.out is not None:
        print(f"per-architecture scores: {args.out}")


if __name__ == "__main__":
    main()
