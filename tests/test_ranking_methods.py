"""The post-paper ranking methods (issue 14): each does what its paper describes, through the real code paths."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.evaluate.catalogue import best_baseline
from supernet.evaluate.evaluator import ranking_score, supernet_scores
from supernet.evaluate.measures import kendall_tau, sparse_kendall_tau
from supernet.nn.norm import make_bn, recalibrate
from supernet.run import LANDMARKS, SNAPSHOTS, SUPERNET_LOSS, Run
from supernet.runtime import CPU
from supernet.spaces.nasbench201 import NB201Space
from supernet.store import ResultStore
from supernet.train.landmarks import Landmarks, LandmarkSchedule
from supernet.train.sampler import make_sampler
from supernet.trained import evaluate_run, load_trained

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "nb201-cpu.yaml"


# --- non-isomorphic sampling ---------------------------------------------------------------------------------

def test_unique_sampler_is_uniform_over_isomorphism_classes_not_encodings():
    space = NB201Space()
    classes = space.isomorphism_classes()
    assert len(classes) == 6466 and sum(map(len, classes)) == 15625
    big = max(classes, key=len)  # the class of the most encodings (all-"none"-like cells)
    members = {space.key(space.from_index(i)) for i in big}
    draws = 60_000
    for kind, expected in (("uniform", len(big) / 15625), ("unique", 1 / 6466)):
        sampler = make_sampler(space, kind)
        rng = np.random.default_rng(0)
        hits = sum(space.key(sampler(rng)[0]) in members for _ in range(draws))
        assert abs(hits / draws - expected) < 4 * math.sqrt(expected / draws) + 1e-4, (kind, hits)
    assert len(big) > 100  # else the two expectations would not differ


def test_unique_sampler_reaches_every_encoding_of_a_class():
    space = NB201Space()
    classes = space.isomorphism_classes()
    small = next(c for c in classes if len(c) == 2)
    seen: Counter[int] = Counter()
    rng = np.random.default_rng(1)
    # Draw until the 2-member class is hit often enough: both encodings train.
    while sum(seen.values()) < 40:
        a = space.sample_unique(rng)
        if space.index_of(a) in small:
            seen[space.index_of(a)] += 1
    assert set(seen) == set(small)


def test_unique_sampler_is_refused_where_a_space_has_no_classes():
    with pytest.raises(SupernetError, match="protocol.sampler=unique is not available for darts_nds"):
        load_config(None, ["space.name=darts_nds", "space.ground_truth=x.npz", "protocol.sampler=unique"])


# --- loss as the score ----------------------------------------------------------------------------------------

def test_ranking_score_is_accuracy_or_negated_loss():
    acc, loss = np.array([50.0, 70.0]), np.array([1.2, 0.4])
    assert ranking_score(acc, loss, "accuracy") is acc
    np.testing.assert_array_equal(ranking_score(acc, loss, "loss"), [-1.2, -0.4])


class _Toy(nn.Module):
    """A 'super-net' of one BN layer and a linear head; the architecture scales the input."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = make_bn(3, affine=False, track=False)
        self.head = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))

    def forward(self, x: torch.Tensor, arch: float) -> torch.Tensor:
        return self.head(self.bn(x * arch).mean((2, 3)))


def test_supernet_scores_returns_accuracy_and_mean_cross_entropy():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 2, 2), torch.randint(0, 2, (8,))
    model = _Toy()
    acc, loss = supernet_scores(model, [1.0], [(x[:4], y[:4]), (x[4:], y[4:])], "batch")
    with torch.no_grad():
        logits = torch.cat([model.head(F.batch_norm(x[s], None, None, training=True).mean((2, 3)))
                            for s in (slice(0, 4), slice(4, 8))])
    assert acc[0] == pytest.approx(100.0 * float((logits.argmax(1) == y).float().mean()))
    assert loss[0] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)


# --- BN recalibration -----------------------------------------------------------------------------------------

def test_recalibration_averages_the_batch_statistics_of_the_given_batches_per_architecture():
    torch.manual_seed(0)
    model = _Toy()
    batches = [(torch.randn(5, 3, 2, 2) * (k + 1) + k, torch.zeros(5, dtype=torch.long)) for k in range(3)]
    recalibrate(model, 2.0, batches, CPU)
    mean, var, n = model.bn.calibrated
    assert n == 3
    scaled = [2.0 * x for x, _ in batches]
    np.testing.assert_allclose(mean, torch.stack([s.mean((0, 2, 3)) for s in scaled]).mean(0), rtol=1e-5)
    np.testing.assert_allclose(var, torch.stack([s.var((0, 2, 3), unbiased=True) for s in scaled]).mean(0), rtol=1e-5)
    # Evaluation then normalises with exactly those statistics, whatever the evaluation batch holds.
    model.eval()
    model.bn.eval_mode = "recalibrate"
    x = torch.randn(4, 3, 2, 2)
    expected = model.head(((2.0 * x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + model.bn.eps))
                          .mean((2, 3)))
    torch.testing.assert_close(model(x, 2.0), expected)
    # Another architecture gets its own statistics: recalibrating forgets the last ones.
    recalibrate(model, 1.0, batches[:1], CPU)
    assert model.bn.calibrated[2] == 1


def test_recalibrate_mode_without_calibration_fails_loudly():
    model = _Toy().eval()
    model.bn.eval_mode = "recalibrate"
    with pytest.raises(SupernetError, match="not on the calibrated path"):
        model(torch.randn(2, 3, 2, 2), 1.0)
    with pytest.raises(SupernetError, match="needs calibration batches"):
        supernet_scores(model, [1.0], [(torch.randn(2, 3, 2, 2), torch.zeros(2, dtype=torch.long))], "recalibrate")


def test_training_is_unaffected_by_the_recalibrate_mode():
    torch.manual_seed(0)
    model = _Toy().train()
    model.bn.eval_mode = "recalibrate"
    x = torch.randn(4, 3, 2, 2)
    torch.testing.assert_close(model(x, 1.0), model.head(F.batch_norm(x, None, None, training=True).mean((2, 3))))


# --- landmark regularisation ----------------------------------------------------------------------------------

def test_landmark_coefficient_is_zero_in_warmup_then_a_rising_half_cosine():
    s = LandmarkSchedule(coef=10.0, warmup=2, epochs=6)
    assert s.coefficient(0, 9, 10) == 0.0 and s.coefficient(1, 9, 10) == 0.0
    assert s.coefficient(3, 9, 10) == pytest.approx(5.0)  # halfway through epochs 2..5
    assert s.coefficient(5, 9, 10) == pytest.approx(10.0)
    values = [s.coefficient(e, k, 10) for e in range(2, 6) for k in range(10)]
    assert values == sorted(values) and values[0] > 0


def test_landmarks_are_ordered_worst_first_and_pairs_skip_ties():
    lm = Landmarks(["a", "b", "c"], [1.0, 2.0, 3.0], [90.0, 80.0, 90.0], LandmarkSchedule(1.0, 0, 1))
    assert lm.keys == ["b", "a", "c"] and lm.truth == [80.0, 90.0, 90.0]
    rng = np.random.default_rng(0)
    pairs = [lm.pair(rng) for _ in range(200)]
    assert set(pairs) == {(0, 1), (0, 2), None}  # (1, 2) ties at 90.0


class _Scaled(nn.Module):
    """Each architecture is a scalar multiplying shared logits: its loss depends on the shared weight."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.5, -0.5]]))

    def forward(self, x: torch.Tensor, arch: float) -> torch.Tensor:
        return arch * x @ self.w


def test_landmark_step_pushes_the_better_architectures_loss_below_the_worse_ones():
    torch.manual_seed(0)
    x = torch.randn(16, 1)
    y = (x[:, 0] < 0).long()  # class 1 for negative x: the shared weight starts right, more scale = lower loss
    model = _Scaled()
    # Ground truth says the small scale is better, which the super-net gets wrong (its loss is higher).
    lm = Landmarks(["small", "large"], [0.5, 2.0], [95.0, 60.0], LandmarkSchedule(coef=1.0, warmup=0, epochs=1))
    def gap() -> float:
        with torch.no_grad():
            return float(F.cross_entropy(model(x, 0.5), y) - F.cross_entropy(model(x, 2.0), y))

    before = gap()
    assert before > 0
    rank = lm.step(model, x, y, np.random.default_rng(0), epoch=0, step=0, steps=1)
    assert rank == pytest.approx(before, rel=1e-5)  # relu(L_better - L_worse), coefficient 1 at the last step
    with torch.no_grad():
        model.w -= 0.5 * model.w.grad
    assert gap() < before


def test_landmark_runs_store_their_landmarks_outside_the_pool_and_the_rank_loss(tiny_overrides):
    cfg = load_config(RECIPE, [*tiny_overrides, "protocol.landmarks=6", "protocol.landmark_warmup=0",
                               "protocol.landmark_every=2"])
    run = Run(cfg)
    run.train()
    rows = [line.split("\t") for line in (run.dir / LANDMARKS).read_text().splitlines()]
    keys, truth = [r[0] for r in rows], [float(r[1]) for r in rows]
    assert len(keys) == 6 and not set(keys) & set(run.pool) and truth == sorted(truth)
    epochs = run.store.epochs(run.id)
    assert all(e["rank_loss"] is not None for e in epochs)
    plain = Run(load_config(RECIPE, tiny_overrides))
    assert plain.id != run.id and plain.landmarks() is None


def test_landmark_config_errors_are_clear():
    with pytest.raises(SupernetError, match="needs pairs"):
        load_config(None, ["protocol.landmarks=1"])
    with pytest.raises(SupernetError, match="landmark_warmup=5 leaves no epoch"):
        load_config(None, ["protocol.landmarks=10", "protocol.epochs=5"])


# --- temporal ensemble, and the three evaluation levels through a stored run ------------------------------------

def test_ensemble_keeps_the_last_k_snapshots_and_averages_their_scores(tiny_overrides):
    cfg = load_config(RECIPE, [*tiny_overrides, "protocol.epochs=3", "evaluation.every=0", "evaluation.ensemble=2"])
    run = Run(cfg)
    run.train()
    assert sorted(p.name for p in (run.dir / SNAPSHOTS).iterdir()) == ["epoch-0002.pt", "epoch-0003.pt"]
    stored = run.store.evaluations(run.id)[-1]
    rows = run.store.arch_results(stored["id"])
    # By hand: each snapshot's accuracies through a one-member evaluation, then their mean.
    single = [evaluate_run(run.store, run.id, ["evaluation.ensemble=1", "evaluation.bootstrap=0"])]
    _, rt, model, _ = load_trained(run.store, run.id, [])
    model.load_state_dict(torch.load(run.dir / SNAPSHOTS / "epoch-0002.pt", weights_only=True))
    from supernet.data.setup import eval_batches, load_dataset

    earlier, _ = supernet_scores(model, run.archs, eval_batches(run.cfg, load_dataset(run.cfg), rt), "batch")
    np.testing.assert_allclose([r[1] for r in rows], (single[0].accuracy + earlier) / 2, atol=1e-9)
    with pytest.raises(SupernetError, match=r"ensemble=3 at epoch 3 needs the weights of epochs 1-2.*train with"):
        evaluate_run(run.store, run.id, ["evaluation.ensemble=3"])
    # A run stopped during its last evaluation kept that epoch's snapshot but not its checkpoint: say so.
    (run.dir / SNAPSHOTS / "epoch-0004.pt").write_bytes((run.dir / SNAPSHOTS / "epoch-0003.pt").read_bytes())
    with pytest.raises(SupernetError, match=r"stopped after epoch 4, before its checkpoint; `supernet train` resumes"):
        evaluate_run(run.store, run.id, ["evaluation.ensemble=3"])


def test_vote_score_adds_the_super_net_as_a_fourth_voter():
    acc = np.array([60.0, 70.0, 50.0])  # ranks 2 3 1
    proxies = {"synflow": np.array([1.0, 2.0, 3.0]), "jacov": np.array([3.0, 1.0, 2.0]),  # ranks 1 2 3 / 3 1 2
               "snip": np.array([5.0, 6.0, 4.0]), "nwot": np.array([0.0, 9.0, 1.0])}  # 2 3 1; nwot is no voter
    np.testing.assert_allclose(ranking_score(acc, np.zeros(3), "vote", proxies), [8 / 4, 9 / 4, 7 / 4])
    with pytest.raises(SupernetError, match="needs the proxies synflow, jacov, snip .missing: snip"):
        ranking_score(acc, np.zeros(3), "vote", {k: proxies[k] for k in ("synflow", "jacov")})
    with pytest.raises(SupernetError, match="evaluation.proxies=synflow,nwot lacks jacov, snip"):
        load_config(RECIPE, ["evaluation.score=vote", "evaluation.proxies=synflow,nwot"])


def test_a_vote_run_ranks_and_picks_by_the_vote_and_its_checkpoint_re_scores_by_accuracy(tiny_overrides):
    from supernet.retrain import searched_architecture

    panel = ["evaluation.proxies=synflow,jacov,snip", "evaluation.proxy_batch_size=8", "evaluation.bootstrap=50"]
    run = Run(load_config(RECIPE, [*tiny_overrides, "evaluation.every=0", *panel, "evaluation.score=vote"]))
    run.train()
    ev = run.store.evaluations(run.id)[-1]
    rows = run.store.arch_results(ev["id"])
    assert [r[0] for r in rows] == run.pool
    stored = run.store.arch_scores(ev["id"])
    voters = [np.array([stored[v][k] for k in run.pool]) for v in ("synflow", "jacov", "snip")]
    accuracy, truth = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    expected = np.mean([rankdata(v) for v in [accuracy, *voters]], axis=0)  # four voters, equal weight
    assert ev["metrics"]["skdt"] == pytest.approx(sparse_kendall_tau(expected, truth))
    assert ev["metrics"]["acc_mean"] == pytest.approx(accuracy.mean())  # an accuracy, not the mean rank
    vote = np.mean([rankdata(v) for v in voters], axis=0)
    assert ev["metrics"]["vote/kdt"] == pytest.approx(kendall_tau(vote, truth))
    best, how = searched_architecture(run.store, run.id)  # the evaluation phase takes the vote's winner
    assert best == run.pool[int(np.argmax(expected))] and "super-net vote" in how

    plain = evaluate_run(run.store, run.id, ["evaluation.score=accuracy"])  # the same checkpoint, ranked alone
    np.testing.assert_allclose(plain.accuracy, accuracy)
    np.testing.assert_allclose(plain.score, plain.accuracy)
    assert plain.metrics["vote/kdt"] == pytest.approx(ev["metrics"]["vote/kdt"])


def test_loss_score_and_recalibration_re_evaluate_a_stored_checkpoint(tiny_overrides):
    cfg = load_config(RECIPE, [*tiny_overrides, "supernet.bn_track_stats=false", "evaluation.every=0"])
    run = Run(cfg)
    run.train()
    store: ResultStore = run.store
    ev = evaluate_run(store, run.id, ["evaluation.score=loss", "evaluation.bootstrap=0"])
    eid = store.evaluations(run.id)[-1]["id"]
    loss = store.arch_scores(eid)[SUPERNET_LOSS]
    np.testing.assert_allclose(ev.score, [-loss[k] for k in run.pool])
    assert ev.metrics["skdt"] == pytest.approx(sparse_kendall_tau(ev.score, ev.ground_truth))
    assert ev.metrics["acc_mean"] == pytest.approx(ev.accuracy.mean())  # still an accuracy, not the negated loss
    plain = evaluate_run(store, run.id, ["evaluation.bootstrap=0"])
    np.testing.assert_allclose(plain.accuracy, ev.accuracy)  # the same forward passes, another ranking
    recal = evaluate_run(store, run.id, ["evaluation.bn=recalibrate", "evaluation.bn_batches=2",
                                         "evaluation.bootstrap=0"])
    assert store.evaluations(run.id)[-1]["bn"] == "recalibrate"
    assert not np.allclose(recal.accuracy, plain.accuracy)  # other statistics, other predictions
    assert load_config(RECIPE, [*tiny_overrides, "evaluation.score=loss"]).run_id() != cfg.run_id()


def test_supervised_runs_are_marked_in_runs_show_and_sweep_tables(tiny_overrides):
    from click.testing import CliRunner

    from supernet.cli import cli
    from supernet.report.tables import markdown_table, sweep_rows

    cfg = load_config(RECIPE, [*tiny_overrides, "protocol.epochs=1", "protocol.landmarks=4",
                               "protocol.landmark_warmup=0", "evaluation.bootstrap=0"])
    run = Run(cfg)
    run.train()
    out_dir = cfg.out_dir
    listing = CliRunner().invoke(cli, ["runs", "--out-dir", out_dir])
    assert f"{run.id}*" in listing.output and "* supervised" in listing.output
    shown = CliRunner().invoke(cli, ["show", run.id, "--out-dir", out_dir])
    assert "supervised: protocol.landmarks=4" in shown.output
    run.store.set_sweep("lm", [("landmarks", "4", cfg.seed, run.id)])
    assert "| 4 (supervised) |" in markdown_table(sweep_rows(run.store, "lm"))


# --- few-shot super-nets --------------------------------------------------------------------------------------

def test_few_shot_routes_by_the_split_edge_and_split_copies_the_warmed_up_state():
    from supernet.registry import build_kit
    from supernet.supernets.few_shot import FewShotSupernet, split

    cfg = load_config(RECIPE, ["supernet.channels=4", "supernet.few_shot=5", "supernet.few_shot_slot=2"])
    kit = build_kit(cfg)
    space = kit.space
    model = FewShotSupernet(kit.build_supernet, space.ops, lambda a: space.slot_op(a, 2))
    arch = space.parse("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert model.index(arch) == 0  # before the split, everything trains sub-super-net 0
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3, 32, 32)
    F.cross_entropy(model(x, arch), torch.zeros(4, dtype=torch.long)).backward()
    opt.step()
    split(model, opt)
    assert model.index(arch) == space.ops.index("avg_pool_3x3")  # edge 2 is (1 -> 2)
    first = model.subnets[0].state_dict()
    for sub in model.subnets[1:]:
        for k, v in sub.state_dict().items():
            torch.testing.assert_close(v, first[k], rtol=0, atol=0)
        for p0, p in zip(model.subnets[0].parameters(), sub.parameters(), strict=True):
            assert (p.grad is None) == (p0.grad is None)
            if p0 in opt.state:
                torch.testing.assert_close(opt.state[p]["momentum_buffer"], opt.state[p0]["momentum_buffer"])
    restored = FewShotSupernet(kit.build_supernet, space.ops, lambda a: space.slot_op(a, 2))
    restored.load_state_dict(model.state_dict())
    assert bool(restored.is_split)


def test_few_shot_paper_mode_trains_each_sub_super_net_only_on_its_slice(tiny_overrides):
    from supernet.spaces.nasbench201 import OPS

    cfg = load_config(RECIPE, [*tiny_overrides, "supernet.few_shot=5", "supernet.few_shot_warmup=1",
                               "protocol.momentum=0", "protocol.weight_decay=0", "evaluation.every=0",
                               "evaluation.bootstrap=0"])
    run = Run(cfg)
    metrics = run.train()
    assert np.isfinite(metrics["skdt"])
    state = torch.load(run.dir / "checkpoint.pt", weights_only=True)["trainer"]["model"]
    assert bool(state["is_split"])
    for op in ("nor_conv_1x1", "nor_conv_3x3"):
        name = f"cells.0.slots.0.{op}.1.weight"
        weights = [state[f"subnets.{k}.{name}"] for k in range(len(OPS))]
        owner = OPS.index(op)
        others = [w for k, w in enumerate(weights) if k != owner]
        for w in others[1:]:  # untouched since the split (no decay, no momentum): still the split-time copy
            torch.testing.assert_close(w, others[0], rtol=0, atol=0)
        assert not torch.equal(weights[owner], others[0])  # its own sub-super-net trained it
    # every sub-super-net trained its other edges
    name = "cells.0.slots.1.nor_conv_3x3.1.weight"
    trained = [state[f"subnets.{k}.{name}"] for k in range(len(OPS))]
    assert all(not torch.equal(trained[0], w) for w in trained[1:])


def test_the_best_cpu_recipe_trains_as_the_cpu_recipe_and_ranks_by_the_vote():
    best = load_config(RECIPE.with_name("nb201-cpu-best.yaml"), []).model_dump()
    plain = load_config(RECIPE, []).model_dump()
    assert best.pop("name") == "nb201-cpu-best" and plain.pop("name") == "nb201-cpu"
    assert best["evaluation"].pop("score") == "vote" and plain["evaluation"].pop("score") == "accuracy"
    assert best == plain  # its claim is about the vote alone: the same training, pool and images


def test_the_study_table_re_ranks_stored_scores_as_a_real_vote_evaluation_does(tiny_overrides, tmp_path):
    """bench/ranking_study_table.py re-ranks stored evaluations by the vote instead of re-running them; its
    figures must be the ones a real ``evaluation.score=vote`` evaluation stores."""
    import subprocess
    import sys

    cfg = load_config(RECIPE, [*tiny_overrides, "evaluation.every=0", "evaluation.proxies=synflow,jacov,snip",
                               "evaluation.proxy_batch_size=8", "evaluation.bootstrap=1000"])
    run = Run(cfg)
    run.train()
    real = evaluate_run(run.store, run.id, ["evaluation.score=vote"]).metrics
    bench = Path(__file__).resolve().parents[1] / "bench"
    res = subprocess.run([sys.executable, "ranking_study_table.py", "--out-dir", str(tmp_path / "runs")], cwd=bench,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = {cells[3]: cells for line in res.stdout.splitlines()
            if len(cells := [c.strip() for c in line.split("|")]) == 14 and cells[2] == "0"}
    fmt = "{:.3f}".format
    assert rows["bn=batch, score=vote"][4] == f"{fmt(real['skdt'])} [{fmt(real['skdt_lo'])}, {fmt(real['skdt_hi'])}]"
    assert rows["bn=batch, score=vote (stored scores)"][4] == rows["bn=batch, score=vote"][4]  # the first evaluation
    assert rows["bn=batch, score=vote"][9].startswith(f"{best_baseline(real).name} ")
    assert {"bn=batch", "bn=batch (stored scores)", "bn=batch, score=loss (stored scores)"} <= set(rows)

    # bench/vote_control.py: the super-net as fourth voter is the vote evaluation's ranking (clean s-KdT)
    res = subprocess.run([sys.executable, "vote_control.py", "--out-dir", str(tmp_path / "runs")], cwd=bench,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = {c[1]: c for line in res.stdout.splitlines() if len(c := [x.strip() for x in line.split("|")]) == 6}
    vote = evaluate_run(run.store, run.id, ["evaluation.score=vote", "evaluation.skdt_variant=clean"]).metrics
    assert rows["supernet"][3] == f"{vote['skdt']:.3f}" and rows["supernet"][4] == f"{vote['final_acc']:.2f}"
    assert rows["none"][3] == f"{real['vote/skdt']:.3f}"
    assert set(rows) - {"---", "fourth voter"} == {"none", "supernet", "params"}  # this panel: no other proxy

    # bench/vote_rules.py: its recipe row is the vote evaluation's ranking, the proxies' row the vote baseline's
    res = subprocess.run([sys.executable, "vote_rules.py", "--out-dir", str(tmp_path / "runs")], cwd=bench,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "seeds 0-2 (chose the recipe): mean over the pools of seeds [0]" in res.stdout
    rules = {c[1]: c for line in res.stdout.splitlines() if len(c := [x.strip() for x in line.split("|")]) == 8}
    rows = rules
    assert rows["super-net in the vote (the recipe)"][2:4] == [f"{vote['kdt']:.3f}", f"{vote['skdt']:.3f}"]
    assert rows["super-net in the vote (the recipe)"][6] == f"{vote['final_acc']:.2f}"
    assert rows["the proxies' vote"][2] == f"{real['vote/kdt']:.3f}"

    # bench/fullspace.py on a search sample: each row is what a real evaluation ranking by that scorer stores
    from supernet.search import search_run

    search_run(run.store, run.id, 12, overrides=["evaluation.score=vote"])
    res = subprocess.run([sys.executable, "fullspace.py", "--out-dir", str(tmp_path / "runs"), "--run", run.id,
                          "--size", "12"], cwd=bench, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = {c[1]: c for line in res.stdout.splitlines() if len(c := [x.strip() for x in line.split("|")]) == 10}
    voted = run.store.evaluations(run.id)[-1]["metrics"]
    alone = evaluate_run(run.store, run.id, ["evaluation.skdt_variant=clean"], pool=run.store.pool_scores(
        run.store.evaluations(run.id)[-1]["id"]).keys, kind="search").metrics
    assert "super-net + vote (evaluation.score=vote)" in rows, res.stdout
    assert rows["super-net + vote (evaluation.score=vote)"][2] == f"{voted['kdt']:.3f}"
    assert rows["super-net + vote (evaluation.score=vote)"][8] == f"{voted['final_acc']:.2f}"
    assert rows["vote"][2:4] == [f"{voted['vote/kdt']:.3f}", f"{voted['vote/skdt']:.3f}"]
    assert rows["params"][5] == f"{voted['params/p_at_top5']:.3f}"
    assert rows["super-net accuracy (alone)"][2:4] == [f"{alone['kdt']:.3f}", f"{alone['skdt']:.3f}"]
    # a search evaluation of the run is another sample, never the run's newest pool evaluation
    res = subprocess.run([sys.executable, "vote_rules.py", "--out-dir", str(tmp_path / "runs")], cwd=bench,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert {c[1]: c for line in res.stdout.splitlines() if len(c := [x.strip() for x in line.split("|")]) == 8} == rules


def test_vote_rules_fuse_reciprocal_ranks_and_let_the_super_net_order_the_votes_top():
    """bench/vote_rules.py's alternatives to the mean-rank vote, on hand-computed cases."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from vote_rules import filter_then_select, reciprocal_rank_fusion

    a, b = np.array([3.0, 2.0, 1.0]), np.array([1.0, 3.0, 2.0])  # places (1 = best): a 1, 2, 3; b 3, 1, 2
    assert np.allclose(reciprocal_rank_fusion(a, b), [1 / 61 + 1 / 63, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62])
    vote = np.arange(20.0)  # one voter: 19 best, then 18, 17, ...
    supernet = np.zeros(20)
    supernet[18] = 1.0  # the super-net prefers 18 to 19; only the vote's top 10 % (19, 18) are its to order
    supernet[0] = 5.0  # its favourite outside that top counts for nothing
    out = filter_then_select(supernet, [vote])
    assert list(np.argsort(-out)[:4]) == [18, 19, 17, 16]



def _dead(key: str) -> bool:
    """An NB201 cell whose output no path from the input reaches (its jacov score is -inf)."""
    reached = {0}
    for node, edges in enumerate(key.split("+"), start=1):
        if any(op != "none" and int(src) in reached for op, src in (e.split("~") for e in edges.split("|") if e)):
            reached.add(node)
    return 3 not in reached


def test_fullspace_reads_an_unfinished_search_as_far_as_it_got(tiny_overrides, tmp_path, monkeypatch):
    """bench/fullspace.py --unfinished on a search stopped after its first chunk, with one architecture's jacov
    missing from the proxy cache: each table ranks exactly the architectures that have its scores, with the
    values a finished search stores (a dead cell's -inf jacov ranked last, as evaluations rank it)."""
    import sqlite3
    import subprocess
    import sys

    from supernet import run as run_module
    from supernet import streams
    from supernet.evaluate.catalogue import mean_rank
    from supernet.pools import draw_pool
    from supernet.search import search_run

    cfg = load_config(RECIPE, [*tiny_overrides, "evaluation.every=0", "evaluation.proxies=synflow,jacov,snip",
                               "evaluation.proxy_batch_size=8", "evaluation.pool_size=6"])
    run = Run(cfg)
    run.train()
    candidates = run.kit.candidates(None)
    seed = next(s for s in range(1000) if any(_dead(k) for k in draw_pool(candidates, 12, s, streams.SEARCH)[1:5]))
    search_run(run.store, run.id, 12, seed=seed, overrides=["evaluation.score=vote"])  # caches every proxy
    done = run.store.pool_scores(run.store.evaluations(run.id)[-1]["id"])
    assert any(_dead(k) for k in done.keys[1:5])

    real = run_module.supernet_scores
    calls = iter(range(100))

    def first_chunk_only(*args: object, **kwargs: object) -> object:
        if next(calls):
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "EVAL_CHUNK", 5)
    monkeypatch.setattr(run_module, "supernet_scores", first_chunk_only)
    with pytest.raises(KeyboardInterrupt):  # another label (top_k), the same pool and forward passes
        search_run(run.store, run.id, 12, seed=seed, overrides=["evaluation.score=vote", "evaluation.top_k=1"])
    jacov_of_first = "SELECT score FROM scores WHERE key=? AND proxy='jacov'"
    with sqlite3.connect(tmp_path / "cache" / "proxies.sqlite") as db:
        cached = db.execute(jacov_of_first, (done.keys[0],)).fetchall()
        assert db.execute("DELETE FROM scores WHERE key=? AND proxy='jacov'", (done.keys[0],)).rowcount == 1

    bench = Path(__file__).resolve().parents[1] / "bench"
    res = subprocess.run([sys.executable, "fullspace.py", "--out-dir", str(tmp_path / "runs"), "--run", run.id,
                          "--size", "12", "--seed", str(seed), "--unfinished"], cwd=bench, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "5 of 12 super-net scores, 14 of 15 voter scores cached" in res.stdout
    assert "4 of the 12 architectures with the voters' proxies as well" in res.stdout
    scored, voted = res.stdout.split("with super-net scores")[1].split("with the voters' proxies as well")

    def kdt_cells(text: str) -> dict[str, str]:
        return {c[1]: c[2] for line in text.splitlines() if len(c := [x.strip() for x in line.split("|")]) == 10}

    assert kdt_cells(scored)["super-net accuracy (alone)"] == f"{kendall_tau(done.accuracy[:5], done.ground_truth[:5]):.3f}"
    assert "super-net + vote (evaluation.score=vote)" not in kdt_cells(scored)
    subset = slice(1, 5)
    vote = mean_rank(done.accuracy[subset], *(done.scores[v][subset] for v in ("synflow", "jacov", "snip")))
    assert kdt_cells(voted)["super-net + vote (evaluation.score=vote)"] == \
        f"{kendall_tau(vote, done.ground_truth[subset]):.3f}"
    assert kdt_cells(voted)["jacov"] == f"{kendall_tau(done.scores['jacov'][subset], done.ground_truth[subset]):.3f}"

    # --score-voters N computes what the search's proxy phase would, into its cache
    res = subprocess.run([sys.executable, "fullspace.py", "--out-dir", str(tmp_path / "runs"), "--run", run.id,
                          "--size", "12", "--seed", str(seed), "--unfinished", "--score-voters", "3"], cwd=bench,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "5 of 12 super-net scores, 15 of 15 voter scores cached" in res.stdout
    with sqlite3.connect(tmp_path / "cache" / "proxies.sqlite") as db:
        assert db.execute(jacov_of_first, (done.keys[0],)).fetchall() == cached
