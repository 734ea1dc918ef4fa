"""The hardware fast paths (bf16 autocast, channels-last) and what they may and may not change.

The GPU is where they pay off, but every code path also runs on the CPU, so these tests exercise
the real switches here; ``bench/gpu.sh`` measures their speed on a lent GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.config import RuntimeConfig, load_config
from supernet.errors import SupernetError
from supernet.run import Run
from supernet.runtime import Runtime
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet
from supernet.trained import evaluate_run

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml")


def test_only_precision_enters_the_run_id():
    base = load_config(RECIPE)
    assert load_config(RECIPE, ["runtime.channels_last=true", "runtime.cudnn_benchmark=false"]).run_id() == base.run_id()
    assert load_config(RECIPE, ["runtime.precision=bf16"]).run_id() != base.run_id()


def test_channels_last_defaults_to_the_device():
    assert not Runtime.from_config("cpu", RuntimeConfig()).channels_last
    assert Runtime.from_config("cpu", RuntimeConfig(channels_last=True)).channels_last


def test_channels_last_computes_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = NB201SuperNet(8, 1, placement="edge")
    fast = NB201SuperNet(8, 1, placement="edge")
    fast.load_state_dict(ref.state_dict())
    fast = Runtime(torch.device("cpu"), channels_last=True).prepare(fast)
    assert fast.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 32, 32)
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = NB201Space().sample(rng)
        out_ref = ref(x, arch)
        out_fast = fast(x.contiguous(memory_format=torch.channels_last), arch)
        torch.testing.assert_close(out_fast, out_ref, rtol=1e-4, atol=1e-4)
        out_ref.square().sum().backward()
        out_fast.square().sum().backward()
    # Other kernels sum in another order; through BN backward on 16 images a few entries move by up to
    # ~1e-3 of the gradient scale; a layout bug would be O(1), so 1 % of the norm is the bar.
    for (name, a), b in zip(ref.named_parameters(), fast.parameters(), strict=True):
        if a.grad is None:  # an op none of the five paths used
            assert b.grad is None, name
            continue
        assert (b.grad - a.grad).norm() <= 1e-2 * a.grad.norm() + 1e-4, name


def test_bf16_autocast_reaches_the_convolutions():
    model = NB201SuperNet(8, 1, placement="edge")
    rt = Runtime(torch.device("cpu"), bf16=True)
    x = torch.randn(4, 3, 32, 32)
    arch = NB201Space().sample(np.random.default_rng(0))
    with rt.autocast():
        assert model(x, arch).dtype == torch.bfloat16
    assert model(x, arch).dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bf16_run_trains_evaluates_and_stays_close_to_fp32(tiny_overrides):
    fp32 = Run(load_config(RECIPE, tiny_overrides))
    fp32.train()
    bf16 = Run(load_config(RECIPE, [*tiny_overrides, "runtime.precision=bf16", "runtime.channels_last=true"]))
    assert bf16.id != fp32.id
    m16 = bf16.train()
    assert np.isfinite(m16["skdt"]) and np.isfinite(m16["final_acc"])
    e32, e16 = fp32.store.epochs(fp32.id), bf16.store.epochs(bf16.id)
    # Same data, paths and initial weights: bf16 rounding moves the loss, but not far.
    assert abs(e16[0]["train_loss"] - e32[0]["train_loss"]) < 0.05 * e32[0]["train_loss"]
    assert bf16.store.evaluations(bf16.id)[-1]["settings"]["precision"] == "bf16"


def test_evaluation_may_switch_runtime_but_not_training(tiny_overrides):
    run = Run(load_config(RECIPE, tiny_overrides))
    run.train()
    train_eval = run.store.evaluations(run.id)[-1]
    ref = {a: w for a, w, *_ in run.store.arch_results(train_eval["id"])}
    ev = evaluate_run(run.store, run.id, ["runtime.channels_last=true"])
    # Same checkpoint, same images: the layout changes rounding only (at most one image in 100 flips).
    assert ev.accuracy == pytest.approx([ref[a] for a in ev.archs], abs=1.0)
    ev16 = evaluate_run(run.store, run.id, ["runtime.precision=bf16"])
    assert run.store.evaluations(run.id)[-1]["settings"]["precision"] == "bf16"
    assert np.isfinite(ev16.metrics["skdt"])
    for key in ("protocol.lr=0.1", "supernet.channels=8", "evaluation.pool_size=10"):
        with pytest.raises(SupernetError, match="cannot change at evaluation"):
            evaluate_run(run.store, run.id, [key])


def test_older_run_ids_are_unchanged_by_the_runtime_section():
    """Ids computed before the runtime section existed: existing run directories must still resume."""
    recipes = Path(RECIPE).parent
    assert load_config(recipes / "nb201.yaml").run_id() == "nb201-s0-e743c88c"
    assert load_config(recipes / "nb201-cpu.yaml").run_id() == "nb201-cpu-s0-97fc2f82"
    assert load_config(recipes / "nb101.yaml").run_id() == "nb101-s0-8e6ecc68"
