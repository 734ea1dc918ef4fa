"""The proxy panel inside an evaluation: each architecture's stored scores are its own, the proxies' metrics
are computed from them, the cache makes a re-evaluation free, and `supernet proxies` prints the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from supernet.cli import cli
from supernet.config import load_config
from supernet.data.setup import load_dataset, proxy_batch
from supernet.evaluate import catalogue
from supernet.evaluate.measures import kendall_tau
from supernet.proxies import panel
from supernet.proxies.panel import score_all
from supernet.run import Run
from supernet.runtime import CPU
from supernet.trained import evaluate_run

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"
PANEL = ["evaluation.proxies=synflow,nwot", "evaluation.proxy_batch_size=8", "evaluation.pool_size=6",
         "evaluation.every=0", "protocol.epochs=1", "evaluation.bootstrap=200"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_each_architecture_gets_its_own_scores_and_the_cache_serves_reevaluations(tiny_overrides, monkeypatch):
    cfg = load_config(RECIPE, [*tiny_overrides, *PANEL])
    run = Run(cfg)
    run.train()
    ev = run.store.evaluations(run.id)[-1]
    stored = run.store.arch_scores(ev["id"])
    assert set(stored) == {"synflow", "nwot", "supernet_loss"} and list(stored["nwot"]) == run.pool

    # Known answer: score each pool architecture directly, with the evaluation's batch and seed.
    batch = proxy_batch(cfg, load_dataset(cfg), CPU)
    for key, arch in zip(run.pool, run.archs, strict=True):
        direct = score_all(lambda a=arch: run.kit.build_standalone(a), *batch, ["synflow", "nwot"], seed=0)
        for name, value in direct.items():
            if np.isfinite(value):
                assert stored[name][key] == pytest.approx(value, rel=1e-9), (name, key)

    m = ev["metrics"]
    truth = {key: t for key, _, t, _, _ in run.store.arch_results(ev["id"])}
    for name in ("synflow", "nwot"):
        scores = [stored[name][k] for k in run.pool]
        assert m[f"{name}/kdt"] == pytest.approx(kendall_tau(scores, [truth[k] for k in run.pool]))
    best = catalogue.best_baseline(m)
    assert best.name in {"params", "synflow", "nwot"}
    assert m["vs_best_diff"] == pytest.approx(m["skdt"] - m[best.prefix + "skdt"])
    assert m["vs_best_lo"] <= m["vs_best_hi"] and catalogue.verdict(m) in {"beats", "ties", "loses"}

    figure = Path(cfg.out_dir) / "pool.png"
    res = CliRunner().invoke(cli, ["show", run.id, "--out-dir", cfg.out_dir, "--figure", str(figure)],
                             catch_exceptions=False)
    assert res.exit_code == 0 and "strongest baseline" in res.output and "95% intervals" in res.output
    assert figure.read_bytes()[:4] == b"\x89PNG"
    from supernet.cli import _best_baseline_points

    label, scores, gt = _best_baseline_points(run.store, ev)
    assert label.startswith(best.title) and len(scores) == len(gt) == len(run.pool)

    def no_new_scores(*args, **kwargs):
        raise AssertionError("a cached architecture was scored again")

    monkeypatch.setattr("supernet.proxies.pool.score_all", no_new_scores)
    again = evaluate_run(run.store, run.id, ["evaluation.max_images=50"])
    for name in ("synflow", "nwot"):
        assert again.metrics[f"{name}/kdt"] == pytest.approx(m[f"{name}/kdt"])


def test_the_cli_prints_the_scores_an_evaluation_stores(tiny_overrides, tiny_cifar):
    cfg = load_config(RECIPE, [*tiny_overrides, *PANEL])
    run = Run(cfg)
    run.train()
    stored = run.store.arch_scores(run.store.evaluations(run.id)[-1]["id"])
    keys = run.pool[:2]
    cache = [o for o in tiny_overrides if o.startswith("data.cache_dir=")]
    res = CliRunner().invoke(cli, ["proxies", "nasbench201", *keys, "--data", str(tiny_cifar), "--json",
                                   "evaluation.proxies=synflow,nwot", "evaluation.proxy_batch_size=8", *cache],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert [r["key"] for r in rows] == keys
    for r in rows:
        assert r["synflow"] == pytest.approx(stored["synflow"][r["key"]])
        assert r["params"] == run.params[run.pool.index(r["key"])]


def test_unknown_proxies_are_refused_with_the_known_names():
    from supernet.errors import SupernetError

    with pytest.raises(SupernetError, match="unknown proxy 'nwott'; known: flops, synflow, nwot"):
        load_config(RECIPE, ["evaluation.proxies=nwott"])
    assert set(catalogue.PROXIES) == set(panel.PROXY_NAMES) - {"params"}  # params: the parameter-count baseline
