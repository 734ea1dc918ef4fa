"""DARTS-NDS through the same pipeline: train, evaluate, resume, search, with a table converted from
records in NDS' format (the real DARTS.json is not in ../shared/data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nds_records import write_nds
from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.groundtruth.nds_convert import convert_nds_darts
from supernet.registry import build_kit
from supernet.run import Run
from supernet.search import search_run
from supernet.spaces.darts import DartsSpace, from_genotype
from supernet.supernets.darts import darts_param_count

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "darts-nds.yaml")


@pytest.fixture(scope="module")
def nds_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nds")
    write_nds(root / "DARTS.json", 40)
    convert_nds_darts(root / "DARTS.json", root / "nds.npz", param_count=darts_param_count)
    return root / "nds.npz"


def record_params(table: Path) -> dict[str, int]:
    """Key -> the parameter count the NDS records beside ``table`` carry (first record of a genotype)."""
    space, out = DartsSpace(), {}
    for rec in json.loads((table.parent / "DARTS.json").read_text()):
        out.setdefault(space.key(from_genotype(rec["net"]["genotype"])), rec["params"])
    return out


@pytest.fixture()
def darts_overrides(tiny_overrides: list[str], nds_table: Path) -> list[str]:
    drop = ("supernet.layers=", "protocol.epochs=", "evaluation.pool_size=", "evaluation.every=")
    return [o for o in tiny_overrides if not o.startswith(drop)] + [
        f"space.ground_truth={nds_table}", "supernet.layers=3", "protocol.epochs=1", "evaluation.pool_size=12",
        "evaluation.every=0", "data.max_train_images=200",
    ]


@pytest.mark.parametrize("extra", [[], ["supernet.op_placement=edge", "protocol.sampler=fairnas"],
                                   ["supernet.ofa_kernel=true", "supernet.wsbn=true"]])
def test_train_and_rank_against_the_table(darts_overrides, nds_table, extra):
    cfg = load_config(RECIPE, darts_overrides + extra)
    run = Run(cfg)
    metrics = run.train()
    assert {"skdt", "kdt", "spearman", "final_acc", "params/skdt"} <= set(metrics)
    assert set(run.pool) <= set(run.kit.gt.keys())
    assert 0 <= metrics["acc_mean"] <= 100
    # The parameter baseline ranks by the benchmark's own counts (each network at its NDS width and depth):
    # those the NDS records carry, stored against the right architecture.
    published = record_params(nds_table)
    assert run.params.tolist() == [published[k] for k in run.pool]
    (evaluation,) = run.store.evaluations(run.id)
    rows = run.store.arch_results(evaluation["id"])
    assert [r[0] for r in rows] == run.pool and [r[4] for r in rows] == [published[k] for k in run.pool]
    assert len({published[k] for k in run.pool}) > 3  # records at several widths and depths: a real check


def test_resume_and_search(darts_overrides):
    cfg = load_config(RECIPE, darts_overrides + ["protocol.epochs=2"])
    first = Run(cfg).train()
    again = Run(load_config(RECIPE, darts_overrides + ["protocol.epochs=2"]))
    assert again.train() == first  # finished run: nothing retrained, same metrics
    result = search_run(again.store, again.id, samples=15)
    assert len(result.evaluation.archs) == 15 and set(result.evaluation.archs) <= set(again.kit.gt.keys())


def test_without_a_table_or_with_encodings_the_error_says_what_to_do(tiny_overrides):
    res = subprocess.run([sys.executable, "-m", "supernet", "train", RECIPE, *tiny_overrides, "supernet.layers=3"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "supernet convert darts_nds DARTS.json" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(SupernetError, match="sampler=encoding is not available for darts_nds"):
        load_config(RECIPE, ["protocol.sampler=encoding"])
    with pytest.raises(SupernetError, match="every op has one source already"):
        load_config(RECIPE, ["supernet.wsbn=true", "supernet.op_placement=edge"])
    with pytest.raises(SupernetError, match="needs >= 3 cells"):
        load_config(RECIPE, ["supernet.layers=2"])
    with pytest.raises(SupernetError, match="is not a DARTS-NDS table"):
        build_kit(load_config(RECIPE, ["space.ground_truth=nb201"]))
