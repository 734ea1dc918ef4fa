"""The registry is the whole plug-in contract: a toy space (a 2-edge cell, 9 architectures) registered
inside this test trains, evaluates, reports and is described through the CLI without touching a package
file."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from supernet.cli import cli
from supernet.config import Config, load_config
from supernet.errors import SupernetError
from supernet.factors import get_factor, levels
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth, write_table
from supernet.plugins.common import gt_column
from supernet.registry import SpaceKit, SpacePlugin, registered, space_names
from supernet.store import ResultStore

OPS = ("conv", "skip", "zero")
EDGES = 2


class ToySpace:
    """Two edges in a chain, each one of three ops: 9 architectures, keys like ``conv-skip``."""

    name = "toy"

    def parse(self, text: str) -> tuple[str, ...]:
        ops = tuple(text.strip().split("-"))
        if len(ops) != EDGES or any(o not in OPS for o in ops):
            raise SupernetError(f"'{text}' is not a toy architecture (two of {', '.join(OPS)} joined by '-')")
        return ops

    def key(self, arch: tuple[str, ...]) -> str:
        return "-".join(arch)

    def unique_key(self, arch: tuple[str, ...]) -> str:
        return "zero" if "zero" in arch else self.key(arch)

    def sample(self, rng: np.random.Generator) -> tuple[str, ...]:
        return tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=EDGES))

    sample_encoding = sample

    def op_slots(self, arch: tuple[str, ...]) -> int:
        return EDGES

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(itertools.product(OPS, repeat=EDGES))

    def __len__(self) -> int:
        return len(OPS) ** EDGES


class ToyNet(nn.Module):
    """A super-net when ``arch`` is passed to forward; ``fixed`` makes it the stand-alone network."""

    def __init__(self, channels: int, num_classes: int, fixed: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.fixed = fixed
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(EDGES))
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor, arch: tuple[str, ...] | None = None) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        for conv, op in zip(self.convs, arch or self.fixed or (), strict=True):
            h = torch.relu(conv(h)) if op == "conv" else h if op == "skip" else h * 0
        return self.head(h.mean((2, 3)))


def _params(arch: tuple[str, ...]) -> int:
    return sum(p.numel() for p in ToyNet(8, 10, arch).parameters() if p.requires_grad) - (
        sum(64 * 9 + 8 for op in arch if op != "conv"))


# Ground truth: more convs is better, skip beats zero.
TRUTH = {"-".join(a): 50.0 + 10 * a.count("conv") + 3 * a.count("skip") + 0.1 * i
         for i, a in enumerate(itertools.product(OPS, repeat=EDGES))}


def _build(cfg: Config) -> SpaceKit:
    gt = GroundTruth.load(gt_path(cfg.space.ground_truth, ""))
    dataset, split = gt_column(cfg, gt, "cifar10/test")
    space = ToySpace()
    return SpaceKit(space=space, gt=gt, gt_dataset=dataset, gt_split=split,
                    build_supernet=lambda: ToyNet(cfg.supernet.channels, cfg.supernet.num_classes),
                    param_count=_params, arch_of=space.parse,
                    build_standalone=lambda a: ToyNet(8, cfg.supernet.num_classes, a))


def _describe(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    space = ToySpace()
    return [{"key": space.key(a), "params": _params(a), "truth": TRUTH[space.key(a)]}
            for a in map(space.parse, texts)]


TOY = SpacePlugin(name="toy", title="Toy", build=_build, describe=_describe,
                  factor_levels={"epochs": levels("protocol.epochs", (1, 2))}, paper={"meta": (0.1, 0.2, 0.3)})


@pytest.fixture()
def toy(tmp_path: Path) -> Iterator[Path]:
    table = tmp_path / "toy.npz"
    write_table(table, list(TRUTH), list(range(len(TRUTH))), {"cifar10/test": list(TRUTH.values())})
    with registered(TOY):
        yield table
    assert "toy" not in space_names()


def test_a_toy_space_trains_evaluates_and_reports_through_the_cli(toy, tiny_cifar, tmp_path):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(json.dumps({"name": "toy", "space": {"name": "toy", "ground_truth": str(toy)},
                                  "supernet": {"channels": 8},
                                  "protocol": {"epochs": 2, "batch_size": 32, "lr": 0.05},
                                  "evaluation": {"pool_size": 9, "every": 1}}))
    out = tmp_path / "runs"
    common = [f"data.root={tiny_cifar}", f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={out}", "device=cpu",
              "progress=false"]
    runner = CliRunner()
    res = runner.invoke(cli, ["train", str(recipe), *common, "seed=1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run_id = load_config(recipe, [*common, "seed=1"]).run_id()
    store = ResultStore(out / "supernet.db")
    assert store.get_run(run_id).status == "completed" and store.get_run(run_id).space == "toy"
    ev = store.evaluations(run_id)[-1]
    rows = store.arch_results(ev["id"])
    assert sorted(r[0] for r in rows) == sorted(TRUTH)  # the whole 9-architecture space, each once
    for key, _, truth, *_ in rows:
        assert truth == pytest.approx(TRUTH[key], abs=1e-4)  # scored against its own ground truth
    # Parameter-count baseline: more convs, more parameters, so it ranks by the conv count.
    assert ev["metrics"]["params/kdt"] > 0.5

    res = runner.invoke(cli, ["evaluate", run_id, "bn=batch", "--out-dir", str(out), f"data.root={tiny_cifar}"],
                        catch_exceptions=False)
    assert res.exit_code == 0 and run_id in res.output
    res = runner.invoke(cli, ["show", run_id, "--out-dir", str(out)], catch_exceptions=False)
    assert res.exit_code == 0 and "re-evaluation" in res.output
    for seed in (2, 3):
        assert runner.invoke(cli, ["train", str(recipe), *common, f"seed={seed}"]).exit_code == 0
    res = runner.invoke(cli, ["report", "--meta", "--out-dir", str(out)], catch_exceptions=False)
    assert res.exit_code == 0 and "| toy | 3 |" in res.output and "(paper 0.10)" in res.output

    res = runner.invoke(cli, ["arch", "toy", "conv-skip", "--json"], catch_exceptions=False)
    assert json.loads(res.output) == {"key": "conv-skip", "params": _params(("conv", "skip")),
                                      "truth": TRUTH["conv-skip"]}
    res = runner.invoke(cli, ["factors", "--space", "toy"], catch_exceptions=False)
    assert "protocol.epochs=2" in res.output and "op_placement" not in res.output  # a space option it lacks


def test_space_options_and_factors_follow_the_plugin(toy):
    with pytest.raises(SupernetError, match="supernet.op_placement=edge is not available for toy"):
        load_config(None, ["space.name=toy", f"space.ground_truth={toy}", "supernet.op_placement=edge"])
    assert [lv.label for lv in get_factor("epochs").levels_for("toy")] == ["1", "2"]
    assert "toy" not in get_factor("op_placement").spaces and "toy" in get_factor("lr").spaces
    with pytest.raises(SupernetError, match="unknown space"):
        load_config(None, ["space.name=toyy"])
    res = CliRunner().invoke(cli, ["arch", "toyy", "a"])
    assert res.exit_code == 2 and "unknown space 'toyy'" in res.output
