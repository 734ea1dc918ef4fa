"""Random-NAS search with a trained super-net, through the real checkpoint, evaluator and store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.run import Run
from supernet.search import search_run

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"


def test_search_ranks_a_fresh_sample_and_reports_its_ground_truth(tiny_overrides):
    run = Run(load_config(RECIPE, tiny_overrides))
    run.train()
    result = search_run(run.store, run.id, samples=30)
    ev = result.evaluation
    assert len(ev.archs) == 30 and len(set(ev.archs)) == 30
    assert set(ev.archs) != set(run.pool)  # a new draw, not the evaluation pool
    acc = [a for _, a, _ in result.best(30)]
    assert acc == sorted(acc, reverse=True)
    top = result.best(result.top_k)
    assert ev.metrics["final_acc"] == pytest.approx(np.mean([t for *_, t in top]))
    assert run.store.evaluations(run.id)[-1]["kind"] == "search"
    assert run.store.latest_metrics(run.id) == run.store.evaluations(run.id)[1]["metrics"]  # headline unchanged
    again = search_run(run.store, run.id, samples=30)
    assert again.best(5) == result.best(5)  # same seed, same sample, same ranking
    other = search_run(run.store, run.id, samples=30, seed=7)
    assert set(other.evaluation.archs) != set(ev.archs)
    with pytest.raises(SupernetError, match="fewer than evaluation.top_k"):
        search_run(run.store, run.id, samples=2)


def test_search_cli_prints_the_best_architectures(tiny_overrides):
    out = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("out_dir="))
    run = Run(load_config(RECIPE, tiny_overrides))
    run.train()
    res = subprocess.run([sys.executable, "-m", "supernet", "search", run.id, "--samples", "20", "--show", "4",
                          "--out-dir", out, "evaluation.top_k=2"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [ln for ln in res.stdout.splitlines() if ln.strip().endswith("|")]
    assert len(rows) == 4 and "searched model (top 2 by super-net)" in res.stdout
