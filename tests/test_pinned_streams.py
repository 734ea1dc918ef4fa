"""Run ids, pools, space.subsample draws, first sampled paths and search samples of every space, pinned
to the values the code produced before the registry / run.py redesign (tests/pinned_streams.json): moving
code must never change what a seed draws."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nds_records import write_nds
from supernet import streams
from supernet.config import load_config
from supernet.groundtruth.nds_convert import convert_nds_darts
from supernet.pools import draw_pool
from supernet.run import Run
from supernet.supernets.darts import darts_param_count
from supernet.train.sampler import epoch_rng, make_sampler

HERE = Path(__file__).resolve().parent
RECIPES = HERE.parent / "recipes"
PINNED = json.loads((HERE / "pinned_streams.json").read_text())
CASES = {
    "nb201": ("nb201.yaml", ["seed=1"]),
    "nb201-cpu": ("nb201-cpu.yaml", ["seed=2"]),
    "nb201-sub": ("nb201-cpu.yaml", ["seed=3", "space.subsample=5"]),
    "nb101": ("nb101.yaml", ["seed=1"]),
    "nb101-v2": ("nb101.yaml", ["seed=1", "evaluation.per_subspace=true"]),
    "nb101-k3": ("nb101.yaml", ["seed=1", "space.subspace=3", "supernet.channel_strategy=disabled",
                                "evaluation.pool_size=50"]),
    "darts": ("darts-nds.yaml", ["seed=1", "evaluation.pool_size=20"]),
}


@pytest.fixture(scope="module")
def darts_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nds")
    write_nds(folder / "darts.json", 30)
    convert_nds_darts(folder / "darts.json", folder / "darts.npz", param_count=darts_param_count, verify_params=0)
    return folder / "darts.npz"


@pytest.mark.parametrize("case", list(CASES))
def test_draws_are_unchanged(case: str, darts_table: Path, tmp_path: Path) -> None:
    recipe, overrides = CASES[case]
    if case == "darts":  # its table path enters the run id, so only the draws are pinned
        overrides = [*overrides, f"space.ground_truth={darts_table}"]
    cfg = load_config(RECIPES / recipe, [*overrides, f"out_dir={tmp_path}"])
    run = Run(cfg)
    want = PINNED[case]
    if "id" in want:
        assert run.id == want["id"]
    pool = "\n".join(f"{prefix}:{k}" for prefix, keys in run.groups for k in keys)
    assert hashlib.sha1(pool.encode()).hexdigest()[:12] == want["pool_sha"]
    assert run.pool[:2] == want["pool_head"]
    assert run.train_archs(stored=False) == want.get("subsample")
    space = run.kit.space
    for kind in ("uniform", "fairnas", "encoding"):
        if kind in want:
            paths = make_sampler(space, kind)(epoch_rng(cfg.seed, streams.TRAIN, 0))
            assert [space.key(a) for a in paths][:2] == want[kind], kind
    assert draw_pool(run.kit.candidates(cfg.space.subspace), 5, cfg.seed, streams.SEARCH) == want["search"]
