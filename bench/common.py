"""Timing helpers shared by the benchmarks: warm-up, then the median of repeated measurements."""

from __future__ import annotations

import argparse
import platform
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from supernet.cli import terminate_as_interrupt
from supernet.config import Config, load_config
from supernet.store import ResultStore

# `kill PID` stops a bench's run as the CLI's runs stop: marked interrupted, resumable (SIGINT may be ignored)
signal.signal(signal.SIGTERM, terminate_as_interrupt)


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"


def size_arguments(ap: argparse.ArgumentParser, layers: int = 5) -> None:
    """The super-net size every benchmark takes: batch, C, N (defaults: the paper's NB201 f_ws)."""
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=layers)


def random_cifar(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-shaped uint8 images and labels: timing needs the shapes, not the content."""
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


CPU_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201-cpu.yaml"


def cpu_recipe_runs(default_seeds: list[int], *fixed: str) -> tuple[argparse.Namespace, list[Config]]:
    """The command line of the CPU-recipe benchmarks (--data, --seeds, --out-dir, overrides) and one config
    per seed (``fixed`` overrides come before the user's, so the user's win)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=default_seeds)
    ap.add_argument("--out-dir", default="runs/bench-cpu")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides")
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    return args, [load_config(CPU_RECIPE, [f"data.root={args.data}", f"seed={seed}", f"out_dir={args.out_dir}",
                                           "progress=false", *fixed, *args.overrides]) for seed in args.seeds]


def pool_evaluations(store: ResultStore, run_id: str) -> list[dict]:
    """A run's evaluations of its own pool, oldest first: a ``supernet search`` evaluation of the same run ranks
    another sample (up to the whole space), so the pool studies must not take it for the newest pool evaluation."""
    return [e for e in store.evaluations(run_id) if e["kind"] != "search"]

