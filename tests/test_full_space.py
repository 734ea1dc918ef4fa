"""evaluation.pool_size=all (issue 11): the whole table, optionally one architecture per isomorphism class,
evaluated in stored chunks so a stopped evaluation resumes where it stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from supernet import run as run_module
from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.pools import pool_groups
from supernet.registry import build_kit
from supernet.run import Run
from supernet.spaces.nasbench201 import NB201Space
from supernet.trained import evaluate_run

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201-cpu.yaml"


def test_pool_all_is_the_whole_table_and_unique_keeps_one_per_class():
    cfg = load_config(RECIPE, ["evaluation.pool_size=all"])
    (_, keys), = pool_groups(build_kit(cfg), cfg)
    assert len(keys) == 15625
    cfg = load_config(RECIPE, ["evaluation.pool_size=all", "evaluation.pool_unique=true"])
    kit = build_kit(cfg)
    (_, keys), = pool_groups(kit, cfg)
    space = NB201Space()
    assert len(keys) == 6466 == len({space.unique_key(space.parse(k)) for k in keys})
    table = kit.candidates()
    first = {}
    for k in table:  # the first of each class in table order represents it
        first.setdefault(space.unique_key(space.parse(k)), k)
    assert keys == [k for k in table if first[space.unique_key(space.parse(k))] == k]
    # a drawn pool from the unique candidates holds no two isomorphic architectures
    cfg = load_config(RECIPE, ["evaluation.pool_unique=true", "evaluation.pool_size=500"])
    (_, keys), = pool_groups(build_kit(cfg), cfg)
    assert len({space.unique_key(space.parse(k)) for k in keys}) == 500


def test_pool_all_and_unique_enter_the_run_id_and_cannot_change_at_evaluation():
    base = load_config(RECIPE, [])
    ids = {base.run_id(), load_config(RECIPE, ["evaluation.pool_size=all"]).run_id(),
           load_config(RECIPE, ["evaluation.pool_unique=true"]).run_id()}
    assert len(ids) == 3
    assert base.run_id() == load_config(RECIPE, ["evaluation.pool_unique=false"]).run_id()
    with pytest.raises(SupernetError, match="top_k=300 exceeds"):
        load_config(RECIPE, ["evaluation.top_k=300"])
    assert load_config(RECIPE, ["evaluation.pool_size=all", "evaluation.top_k=300"]).evaluation.top_k == 300


def test_a_stopped_evaluation_resumes_after_its_last_stored_chunk(tiny_overrides, monkeypatch):
    cfg = load_config(RECIPE, [*tiny_overrides, "protocol.epochs=1", "evaluation.bootstrap=0"])
    run = Run(cfg)
    run.train()
    whole = evaluate_run(run.store, run.id, ["evaluation.bootstrap=0", "evaluation.max_images=40"])

    monkeypatch.setattr(run_module, "EVAL_CHUNK", 6)
    scored: list[int] = []
    real = run_module.supernet_scores

    def counting(model, archs, *args, **kwargs):
        scored.append(len(archs))
        return real(model, archs, *args, **kwargs)

    monkeypatch.setattr(run_module, "supernet_scores", counting)
    original = run.store.add_partial
    calls = {"n": 0}

    def stop_after_two(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(type(run.store), "add_partial", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run.store, run.id, ["evaluation.bootstrap=0", "evaluation.max_images=40"])
    monkeypatch.setattr(type(run.store), "add_partial", lambda self, *a, **k: original.__func__(self, *a, **k))
    scored.clear()
    resumed = evaluate_run(run.store, run.id, ["evaluation.bootstrap=0", "evaluation.max_images=40"])
    assert scored == [6, 2]  # 20 architectures: chunks 1-2 were stored, 3 was lost with the interruption
    np.testing.assert_array_equal(resumed.accuracy, whole.accuracy)
    assert resumed.metrics == whole.metrics
    assert not run.store._db.execute("SELECT COUNT(*) FROM partial_scores").fetchone()[0]  # cleared on completion
