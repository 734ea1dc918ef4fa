"""NASBench-101 through the same pipeline: tiny runs of each channel strategy, sub-spaces, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nb101_cells import INCEPTION_MATRIX, INCEPTION_OPS
from supernet.config import build_config, load_config
from supernet.errors import SupernetError
from supernet.registry import build_kit
from supernet.run import Run

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "nb101-cpu.yaml")
INCEPTION = {"matrix": INCEPTION_MATRIX, "ops": INCEPTION_OPS}


@pytest.fixture()
def nb101_overrides(tiny_overrides: list[str]) -> list[str]:
    drop = ("supernet.channels=", "protocol.epochs=", "evaluation.every=")
    return [o for o in tiny_overrides if not o.startswith(drop)] + [
        "supernet.channels=4", "protocol.epochs=1", "protocol.sampler=encoding", "data.max_train_images=300",
    ]


@pytest.mark.parametrize("strategy", ["fixed", "shuffle", "interpolate"])
def test_each_channel_strategy_trains_and_ranks(nb101_overrides, strategy):
    cfg = load_config(RECIPE, nb101_overrides + [f"supernet.channel_strategy={strategy}"])
    metrics = Run(cfg).train()
    assert {"skdt", "kdt", "final_acc", "params/skdt"} <= set(metrics)
    assert 0 <= metrics["acc_mean"] <= 100


def test_disabled_channels_train_one_subspace(nb101_overrides):
    cfg = load_config(RECIPE, nb101_overrides + ["supernet.channel_strategy=disabled", "space.subspace=2",
                                                 "evaluation.pool_size=30"])
    run = Run(cfg)
    kit = run.kit
    assert all(kit.subspace_of(kit.arch_of(k)) == 2 for k in run.pool)
    run.train()


def test_baseline_v2_reports_per_subspace_rankings(nb101_overrides):
    cfg = load_config(RECIPE, nb101_overrides + ["evaluation.per_subspace=true", "evaluation.pool_size=25"])
    metrics = Run(cfg).train()
    subs = sorted({k.split("/")[0] for k in metrics if k.startswith("sub") and not k.startswith("subspace")})
    assert subs == ["sub1", "sub2", "sub3"]  # of the 292 cells, sub0 holds 1 and sub4 3: too few to rank
    for name in ("skdt", "final_acc", "p_surpass_random"):  # every headline figure: the mean over sub-spaces
        mean = sum(metrics[f"{s}/{name}"] for s in subs) / len(subs)
        assert metrics[f"subspace_mean/{name}"] == pytest.approx(mean) and metrics[name] == pytest.approx(mean)
        assert f"pool/{name}" in metrics  # the union pool's value, under its own name


def test_val500_ground_truth_has_no_test_split():
    kit = build_kit(build_config({}, ["space.name=nasbench101"]))
    assert (kit.gt_dataset, kit.gt_split) == ("cifar10", "valid") and len(kit.gt) == 292
    with pytest.raises(SupernetError, match="splits: valid"):
        build_kit(build_config({}, ["space.name=nasbench101", "evaluation.ground_truth=cifar10/test"]))
    with pytest.raises(SupernetError, match="pool_size=200 exceeds"):
        Run(build_config({}, ["space.name=nasbench101", "space.subspace=2", "supernet.channel_strategy=disabled"]))


def test_nb201_only_factors_are_refused_for_the_other_space():
    with pytest.raises(SupernetError, match="not available for nasbench201"):
        build_config({}, ["supernet.channel_strategy=shuffle"])


def test_arch_command_describes_nb101_cells():
    res = subprocess.run([sys.executable, "-m", "supernet", "arch", "nasbench101", "-", "--json"],
                         input=json.dumps(INCEPTION) + "\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)
    assert row["params"] == 2_694_282 and row["vertices"] == 7 and row["output_inputs"] == 4
    bad = subprocess.run([sys.executable, "-m", "supernet", "arch", "nasbench101", '{"matrix": [[0]], "ops": []}'],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")


@pytest.mark.parametrize("table", ["nb101-val500", "nb101-records30"])
def test_subspaces_from_stored_arrays_equal_the_cells(table):
    """Sub-space labels come from the table's matrices in one vectorised pass (full tables: 423,624 rows)."""
    import numpy as np

    kit = build_kit(load_config(RECIPE, [f"space.ground_truth={table}"]))
    fast = kit._labels()
    slow = np.array([kit.arch_of(k).output_inputs for k in kit.gt.keys()])
    assert (fast == slow).all() and kit.subspaces() == sorted(set(slow.tolist()))
    assert kit.candidates(2) == [k for k in kit.gt.keys() if kit.arch_of(k).output_inputs == 2]
