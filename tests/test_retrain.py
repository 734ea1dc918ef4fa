"""`supernet retrain` (issue 12.9): a searched architecture trained from scratch with its benchmark's final
protocol, stored next to its search run, resumable; the DARTS pieces (auxiliary head, drop-path, cutout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from nds_records import write_nds
from supernet.cli import cli
from supernet.config import load_config
from supernet.data.loader import DeviceLoader, cutout_mask
from supernet.errors import SupernetError
from supernet.groundtruth.nds_convert import convert_nds_darts
from supernet.registry import get_space
from supernet.retrain import resolve, retrain
from supernet.run import Run
from supernet.spaces.darts import DartsSpace
from supernet.store import ResultStore
from supernet.supernets.darts import DartsStandalone, darts_param_count
from supernet.supernets.nasbench201 import nb201_param_count
from supernet.train.final import FinalTrainer, make_optimizer

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
TINY_FINAL = ["final.epochs=2", "final.batch_size=64", "final.eval_every=1", "device=cpu", "progress=false"]


def data_keys(tiny_overrides: list[str]) -> list[str]:
    return [o for o in tiny_overrides if o.startswith(("data.root=", "data.cache_dir="))]


@pytest.fixture()
def searched_run(tiny_overrides, one_torch_thread):
    run = Run(load_config(None, [*tiny_overrides, "data.max_train_images=250", "resume=false"]))
    run.train()
    return run


def test_a_runs_searched_architecture_trains_with_the_benchmark_protocol(searched_run, tiny_overrides):
    run, store = searched_run, searched_run.store
    ev = store.evaluations(run.id)[-1]
    acc = {a: x for a, x, *_ in store.arch_results(ev["id"])}
    best = max(run.pool, key=lambda k: acc[k])  # first in pool order among ties, as max keeps the first
    second = sorted(run.pool, key=lambda k: -acc[k])[1]
    job = resolve(run.id, [*TINY_FINAL, *data_keys(tiny_overrides)], out_dir=run.cfg.out_dir)
    assert job.arch == best and job.source_run == run.id
    assert resolve(run.id, TINY_FINAL, out_dir=run.cfg.out_dir, rank=2).arch == second
    assert job.dir.parent == run.dir  # stored next to the search run
    assert "final evaluation (epoch 2)" in job.why
    # the super-net's training subset and how its process ran are not inherited
    assert job.cfg.data.max_train_images is None and job.cfg.resume is True
    by_hand = resolve(job.arch, [*TINY_FINAL, *data_keys(tiny_overrides)], out_dir=run.cfg.out_dir)
    assert by_hand.arch == job.arch and by_hand.id != job.id  # each source keeps its own training
    fc = job.cfg.final  # NAS-Bench-201's protocol for every key not given
    assert (fc.lr, fc.nesterov, fc.weight_decay, fc.optimizer, fc.train_portion) == (0.1, True, 5e-4, "sgd", 1.0)
    assert fc.epochs == 2

    row = retrain(job)
    epochs = store.final_epochs(job.id)
    assert row["status"] == "completed" and row["source_run"] == run.id and row["arch"] == best
    assert [e["epoch"] for e in epochs] == [0, 1] and row["test_acc"] == epochs[-1]["test_acc"]
    assert row["params"] == nb201_param_count(run.kit.arch_of(best), 16, 5)  # f_proxy, the benchmark's size
    assert row["ground_truth"] == pytest.approx(run.kit.gt.accuracy(best, split="test", dataset="cifar10"))
    assert epochs[1]["lr"] < epochs[0]["lr"] == 0.1  # cosine
    assert [r["id"] for r in store.finals(run.id)] == [job.id]
    shown = CliRunner().invoke(cli, ["show", run.id, "--out-dir", run.cfg.out_dir])
    assert shown.exit_code == 0 and f"{job.id}  completed  epochs 2/2  test {row['test_acc']:.2f} %" in shown.output


def test_a_run_ranked_by_loss_gives_its_lowest_loss_architecture(searched_run):
    run, store = searched_run, searched_run.store
    ev = store.evaluations(run.id)[-1]
    acc = {a: x for a, x, *_ in store.arch_results(ev["id"])}
    chosen = min(run.pool, key=lambda k: acc[k])  # the worst by accuracy gets the lowest loss
    db = store._db
    with db:
        db.execute("UPDATE evaluations SET settings=json_set(settings, '$.score', 'loss') WHERE id=?", (ev["id"],))
        db.execute("DELETE FROM arch_scores WHERE evaluation_id=? AND scorer='supernet_loss'", (ev["id"],))
        db.executemany("INSERT INTO arch_scores VALUES (?, ?, 'supernet_loss', ?)",
                       [(ev["id"], k, 0.5 if k == chosen else 2.0) for k in run.pool])
    assert resolve(run.id, TINY_FINAL, out_dir=run.cfg.out_dir).arch == chosen


def test_a_final_training_may_not_change_what_the_search_run_fixed(searched_run):
    run = searched_run
    with pytest.raises(SupernetError, match="fixed by the search run"):
        resolve(run.id, ["protocol.lr=0.1"], out_dir=run.cfg.out_dir)
    with pytest.raises(SupernetError, match="final.channels=36 is not available for nasbench201"):
        resolve(run.id, ["final.channels=36"], out_dir=run.cfg.out_dir)
    with pytest.raises(SupernetError, match="picks among a run's architectures"):
        resolve(NB201, TINY_FINAL, out_dir=run.cfg.out_dir, rank=2)
    run.store.set_status(run.id, "interrupted")
    with pytest.raises(SupernetError, match="is interrupted, not completed: finish training it first"):
        resolve(run.id, TINY_FINAL, out_dir=run.cfg.out_dir)


def test_an_unknown_target_is_refused_with_what_to_give(tmp_path):
    with pytest.raises(SupernetError, match="neither a run in the store nor an architecture of nasbench201"):
        resolve("|nor_conv_3x3~0|", out_dir=str(tmp_path))


@pytest.mark.parametrize("space", ["nasbench201", "darts_nds"])
def test_an_interrupted_final_training_resumes_to_the_same_result(space, request, tiny_overrides, tmp_path,
                                                                  monkeypatch, one_torch_thread):
    keys = [*TINY_FINAL, "final.epochs=3", "data.max_train_images=128", *data_keys(tiny_overrides)]
    target = NB201
    if space == "darts_nds":  # DARTS' protocol: cutout, drop-path and the auxiliary head draw and train too
        table = request.getfixturevalue("nds_table")
        target = DartsSpace().key(DartsSpace().sample(np.random.default_rng(1)))
        keys += ["space.name=darts_nds", f"space.ground_truth={table}", "final.channels=4", "final.layers=3"]
    whole = retrain(resolve(target, keys, out_dir=str(tmp_path / "a")))
    job = resolve(target, keys, out_dir=str(tmp_path / "b"))
    assert (job.cfg.final.cutout > 0) == (space == "darts_nds")
    original = FinalTrainer.train_epoch

    def stop_at_second(self, epoch, batches):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch, batches)

    monkeypatch.setattr(FinalTrainer, "train_epoch", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        retrain(job)
    store = ResultStore(job.store_path)
    assert store.finals()[0]["status"] == "interrupted" and store.finals()[0]["epochs_done"] == 1
    monkeypatch.undo()
    starts = []
    resumed = retrain(job, on_start=starts.append)
    assert starts == [1] and resumed["test_acc"] == whole["test_acc"]
    a = torch.load(Path(whole["run_dir"]) / "checkpoint.pt", weights_only=True)["trainer"]["model"]
    b = torch.load(job.dir / "checkpoint.pt", weights_only=True)["trainer"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e["epoch"] for e in store.final_epochs(job.id)] == [0, 1, 2]


def test_a_failing_final_training_is_stored_as_failed_with_its_message(tiny_overrides, tmp_path, monkeypatch):
    def diverge(self, epoch, batches):
        raise SupernetError("final training diverged at epoch 0 (non-finite loss); lower final.lr")

    monkeypatch.setattr(FinalTrainer, "train_epoch", diverge)
    job = resolve(NB201, [*TINY_FINAL, *data_keys(tiny_overrides)], out_dir=str(tmp_path))
    with pytest.raises(SupernetError, match="diverged"):
        retrain(job)
    row = ResultStore(job.store_path).finals()[0]
    assert row["status"] == "failed" and "lower final.lr" in row["message"]


def test_the_shipped_retrain_recipes_state_each_benchmarks_protocol():
    for recipe, space in (("retrain-nb201.yaml", "nasbench201"), ("retrain-nb101.yaml", "nasbench101"),
                          ("retrain-darts.yaml", "darts_nds")):
        assert yaml.safe_load((RECIPES / recipe).read_text())["final"] == dict(get_space(space).final)
        assert load_config(RECIPES / recipe, [f"space.name={space}"]).final.model_dump().items() >= dict(
            get_space(space).final).items()


def test_nasbench101_trains_with_rmsprop_as_tensorflow_configured_it():
    cfg = load_config(None, ["space.name=nasbench101", *(f"final.{k}={v}" for k, v in
                                                         get_space("nasbench101").final.items())])
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg.final)
    assert isinstance(opt, torch.optim.RMSprop)
    group = opt.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["momentum"], group["weight_decay"]) == (
        0.2, 0.9, 1.0, 0.9, 1e-4)


def darts_net(aux: bool) -> DartsStandalone:
    from supernet.nn.ops import BNSpec

    torch.manual_seed(0)
    return DartsStandalone(DartsSpace().sample(np.random.default_rng(3)), 4, 3, auxiliary=aux, bn=BNSpec(track=True))


def test_darts_auxiliary_head_loss_enters_with_its_weight(one_torch_thread):
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    net = darts_net(aux=True)
    net.train()
    logits, aux = net.forward_with_aux(x)
    assert aux is not None and aux.shape == logits.shape == (8, 10)
    net.eval()
    assert net.forward_with_aux(x)[1] is None  # evaluation: the main head alone
    moved = []
    for weight in (0.4, 0.8):  # plain SGD, one step: the aux head moves by lr * weight * its gradient
        net = darts_net(aux=True)
        fc = load_config(None, ["space.name=darts_nds", f"final.auxiliary_weight={weight}", "final.momentum=0",
                                "final.weight_decay=0", "final.lr=1", "final.epochs=1"]).final
        before = net.aux_head.classifier.weight.detach().clone()
        FinalTrainer(net, fc, 0).train_epoch(0, [(x, y)])
        moved.append(net.aux_head.classifier.weight.detach() - before)
    assert torch.allclose(moved[1], 2 * moved[0], atol=1e-6)


def test_darts_final_drop_path_drops_every_op_with_one_probability(one_torch_thread):
    x = torch.randn(4, 3, 32, 32)
    net = darts_net(aux=False)
    net.train()
    plain = net(x)
    net.set_drop_path(0.0, torch.Generator())
    assert torch.equal(net(x), plain)  # probability 0 at the first epoch: nothing dropped
    net.set_drop_path(0.3, torch.Generator())
    keeps = [m.keep for cell in net.cells for m in cell.node_drops]
    assert keeps == [pytest.approx(0.7)] * 12  # the same in all 3 cells x 4 nodes, unlike the super-net's schedule
    assert not torch.equal(net(x), plain)


def test_cutout_zeroes_one_clipped_square_and_keeps_the_crops():
    m = cutout_mask(torch.tensor([0, 16]), torch.tensor([31, 5]), 16, 32, 32)
    assert int((m[0, 0] == 0).sum()) == 8 * 9 and int((m[1, 0] == 0).sum()) == 16 * 13  # clipped at the borders
    assert bool((m[1, 0, 8:24, 0:13] == 0).all()) and bool((m[1, 0, :8] == 1).all())
    images = np.random.default_rng(0).integers(1, 255, (10, 32, 32, 3), dtype=np.uint8)
    kw = dict(augment=True, shuffle=True, drop_last=False, seed=5)
    plain = next(DeviceLoader(images, np.arange(10), 10, **kw).epoch(0))[0]
    cut = next(DeviceLoader(images, np.arange(10), 10, cutout=16, **kw).epoch(0))[0]
    changed = (cut != plain).any(1)  # per pixel
    assert bool((cut[changed.unsqueeze(1).expand_as(cut)] == 0).all())  # what changed became 0
    assert all(0 < int(c.sum()) <= 256 for c in changed)


@pytest.fixture()
def nds_table(tmp_path: Path) -> Path:
    write_nds(tmp_path / "DARTS.json", 12)
    convert_nds_darts(tmp_path / "DARTS.json", tmp_path / "nds.npz", param_count=darts_param_count)
    return tmp_path / "nds.npz"


def test_darts_cells_retrain_in_darts_evaluation_network_through_the_cli(entry, tiny_overrides, nds_table,
                                                                          one_torch_thread):
    arch = DartsSpace().sample(np.random.default_rng(1))
    text = DartsSpace().key(arch)
    code, err = entry(["retrain", text, "space.name=darts_nds", f"space.ground_truth={nds_table}",
                       "final.channels=4", "final.layers=3", *TINY_FINAL, "final.epochs=1", *data_keys(tiny_overrides)])
    assert code == 0, err
    store = ResultStore(Path("runs") / "supernet.db")
    row = store.finals()[0]
    assert row["status"] == "completed" and row["source_run"] is None
    assert row["params"] == darts_param_count(arch, 4, 3)  # DARTS' network, counted without its auxiliary head
    fc = row["config"]["final"]  # DARTS' protocol where the command line left keys unset
    assert (fc["cutout"], fc["drop_path"], fc["auxiliary_weight"], fc["batch_size"]) == (16, 0.2, 0.4, 64)
