"""The benchmark scripts that guard issue-4 numbers still run: smoke tests at tiny size on the CPU.

They check that each script runs its real code path end to end and prints its figures, not the
figures themselves (those are measured on a quiet machine and recorded in bench/RESULTS.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=BENCH, capture_output=True, text=True, timeout=300)


def test_gpu_check_runs_on_the_cpu_when_allowed(tiny_cifar, tmp_path):
    res = bench("gpu.py", "--data", str(tiny_cifar), "--allow-cpu", "--epochs", "2", "--pool", "4",
                "--flop-paths", "2", "--precisions", "fp32", "bf16", "--", "device=cpu",
                f"data.cache_dir={tmp_path}", "supernet.channels=4", "supernet.layers=1", "protocol.batch_size=32")
    assert res.returncode == 0, res.stderr
    assert "| fp32 |" in res.stdout and "| bf16 |" in res.stdout and "TFLOP/s" in res.stdout
    assert "4 archs x 100 images" in res.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_check_refuses_to_pretend_without_a_gpu(tiny_cifar):
    res = bench("gpu.py", "--data", str(tiny_cifar))
    assert res.returncode != 0 and "no CUDA device" in res.stderr


def test_profile_step_compares_both_pool_kernels():
    for extra in ([], ["--native-pool"]):
        res = bench("profile_step.py", "--channels", "4", "--batch", "8", "--steps", "2", "--rows", "3", *extra)
        assert res.returncode == 0, res.stderr
        assert "ms per training step" in res.stdout


@pytest.mark.parametrize("space", ["nasbench201", "darts_nds"])
def test_ws_overhead_times_each_space(space):
    res = bench("ws_overhead.py", "--space", space, "--archs", "2", "--repeats", "1", "--channels", "4",
                "--layers", "3", "--batch", "4", "--precision", "bf16")
    assert res.returncode == 0, res.stderr
    assert f"{space} C=4 N=3 batch 4, 2 archs: median ratio" in res.stdout and "bf16" in res.stdout
    assert ("path vs extracted network" in res.stdout) == (space == "darts_nds")
