"""Sequential tuning of P_ws: each stage sweeps one factor from the levels kept so far."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.experiments.tune import PAPER_ORDER, choose_level
from supernet.factors import FACTORS, Level
from supernet.report.tables import LevelRow
from supernet.store import ResultStore

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"
LEVELS = [Level(x, (f"protocol.lr={x}",)) for x in ("0.01", "0.025", "0.05")]


def _row(level: str, values: list[float], completed: int) -> LevelRow:
    return LevelRow("lr", level, status={"completed": completed}, values={"final_acc": values})


def test_the_best_mean_among_levels_that_completed_every_seed_is_kept():
    rows = [_row("0.01", [90.0, 91.0], 2), _row("0.025", [93.0, 92.0], 2), _row("0.05", [95.0], 1)]
    level, score = choose_level(rows, LEVELS, "final_acc", seeds=2)
    assert level.label == "0.025" and score == pytest.approx(92.5)  # 0.05 diverged in one seed: not safe
    tie = [_row("0.01", [92.5], 1), _row("0.025", [92.5], 1)]
    assert choose_level(tie, LEVELS, "final_acc", seeds=1)[0].label == "0.01"
    with pytest.raises(SupernetError, match="no level of 'lr' completed every seed"):
        choose_level([_row("0.01", [90.0], 1)], LEVELS, "final_acc", seeds=2)


def test_the_paper_order_is_the_registry_order_of_the_hyper_parameters():
    assert PAPER_ORDER == tuple(f.name for f in FACTORS if f.group == "P_ws hyper-parameters")


def test_tune_cli_carries_each_kept_level_into_the_next_stage(tiny_overrides, tmp_path):
    out = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("out_dir="))
    tuned = tmp_path / "tuned.yaml"
    cmd = [sys.executable, "-m", "supernet", "tune", str(RECIPE), "--factors", "bn,weight_decay", "--seeds", "0",
           "--write", str(tuned), *tiny_overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    kept = res.stdout.split("tuned overrides: ")[1].split()
    assert any(o.startswith("evaluation.bn=") for o in kept) and any(o.startswith("protocol.weight_decay=") for o in kept)
    store = ResultStore(Path(out) / "supernet.db")
    bn_kept = next(o for o in kept if o.startswith("evaluation.bn=")).split("=")[1]
    stage_two = [run_id for *_, run_id in store.sweep("nb201-tune-weight_decay")]
    assert len(stage_two) == 4 and all(store.get_run(r).config["evaluation"]["bn"] == bn_kept for r in stage_two)
    cfg = load_config(tuned)
    assert cfg.evaluation.bn == bn_kept and f"protocol.weight_decay={cfg.protocol.weight_decay}" in kept
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # resumes: nothing left to train
    assert again.returncode == 0 and again.stdout.split("tuned overrides: ")[1] == res.stdout.split("tuned overrides: ")[1]
    bad = subprocess.run([*cmd[:5], "--factors", "lr,lr", *tiny_overrides], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "without repeats" in bad.stderr
