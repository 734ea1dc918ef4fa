"""End to end at tiny scale, through the real CLI, data loader, trainer, evaluator and store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from supernet.config import load_config
from supernet.errors import SupernetError
from supernet.run import CHECKPOINT, Run
from supernet.runtime import CPU
from supernet.store import ResultStore

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml")


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "supernet", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


def _out_dir(overrides: list[str]) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.startswith("out_dir="))


def test_train_runs_show_evaluate_through_the_cli(tiny_overrides):
    out = _out_dir(tiny_overrides)
    res = cli("train", RECIPE, *tiny_overrides, "seed=3")
    assert res.returncode == 0, res.stderr
    assert "s-KdT" in res.stdout and "params baseline" in res.stdout

    listing = cli("runs", "--out-dir", out)
    assert listing.returncode == 0 and "completed" in listing.stdout and "2/2" in listing.stdout
    run_id = listing.stdout.splitlines()[1].split()[0]

    store = ResultStore(Path(out) / "supernet.db")
    evals = store.evaluations(run_id)
    assert [e["epoch"] for e in evals] == [1, 2] and {e["bn"] for e in evals} == {"batch"}
    rows = store.arch_results(evals[-1]["id"])
    assert len(rows) == 20 and len({r[0] for r in rows}) == 20
    assert len(store.epochs(run_id)) == 2

    again = cli("evaluate", run_id, "bn=running", "--out-dir", out)
    assert again.returncode == 0, again.stderr
    evals = store.evaluations(run_id)
    assert [e["bn"] for e in evals] == ["batch", "batch", "running"]
    figure = Path(out) / "pool.png"
    shown = cli("show", run_id, "--out-dir", out, "--figure", str(figure))
    assert "bn=running" in shown.stdout and "params" in shown.stdout
    assert figure.read_bytes()[:4] == b"\x89PNG" and "wrote" in shown.stderr  # Fig. 6: both BN modes of epoch 2


def test_metrics_are_recomputable_from_the_store(tiny_overrides):
    from supernet.evaluate.metrics import pool_metrics

    cfg = load_config(RECIPE, tiny_overrides + ["evaluation.every=0", "protocol.epochs=1"])
    run = Run(cfg)
    stored = run.train()
    ev = run.store.evaluations(run.id)[-1]
    rows = run.store.arch_results(ev["id"])
    import numpy as np

    ws, gt, ranks = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    again = pool_metrics(ws, gt, ranks.astype(int), 15625)
    for key, value in again.items():
        assert stored[key] == pytest.approx(value, nan_ok=True), key


NB101 = str(Path(__file__).resolve().parents[1] / "recipes" / "nb101-cpu.yaml")
NB101_SHUFFLE = ["supernet.channel_strategy=shuffle", "protocol.sampler=encoding", "data.max_train_images=300"]


@pytest.mark.parametrize(
    "recipe, extra",
    [
        (RECIPE, []),
        (RECIPE, ["protocol.momentum=0"]),  # without momentum only the checkpoint knows what was sampled
        (RECIPE, ["supernet.path_dropout=0.3", "supernet.global_dropout=0.3", "protocol.sampler=fairnas"]),
        (NB101, NB101_SHUFFLE),
        # split before the interruption (the checkpoint must restore it and the paper mode's sampler)
        (RECIPE, ["supernet.few_shot=5", "supernet.few_shot_warmup=0", "protocol.landmarks=4",
                  "protocol.landmark_warmup=0", "evaluation.ensemble=2", "supernet.path_dropout=0.3"]),
        (RECIPE, ["supernet.few_shot=5", "supernet.few_shot_warmup=1", "supernet.few_shot_compute=matched"]),
    ],
    ids=["nb201", "nb201-no-momentum", "nb201-dropout-fairnas", "nb101-shuffle", "nb201-few-shot-landmarks-ensemble",
         "nb201-few-shot-matched"],
)
def test_resume_after_interruption_matches_an_uninterrupted_run(recipe, extra, tiny_overrides, tmp_path,
                                                               interrupt_second_epoch):
    extra = extra + ["protocol.validate_every_epoch=true", "data.train_portion=0.8"]
    whole = load_config(recipe, tiny_overrides + extra + [f"out_dir={tmp_path / 'whole'}"])
    metrics_whole = Run(whole).train()

    cfg = load_config(recipe, tiny_overrides + extra + [f"out_dir={tmp_path / 'split'}"])
    undo = interrupt_second_epoch()
    run = Run(cfg)
    with pytest.raises(KeyboardInterrupt):
        run.train()
    assert run.store.get_run(run.id).status == "interrupted"
    assert run.store.get_run(run.id).epochs_done == 1
    undo()

    metrics_split = Run(cfg).train()  # the same command again resumes
    assert metrics_split == metrics_whole
    a = torch.load(Path(whole.out_dir) / whole.run_id() / CHECKPOINT, weights_only=True)
    b = torch.load(Path(cfg.out_dir) / cfg.run_id() / CHECKPOINT, weights_only=True)
    for k, v in a["trainer"]["model"].items():
        torch.testing.assert_close(b["trainer"]["model"][k], v, rtol=0, atol=0)
    store = Run(cfg).store
    assert [e["epoch"] for e in store.evaluations(cfg.run_id())] == [1, 2]
    same = ("epoch", "lr", "train_loss", "train_acc", "valid_loss", "valid_acc")  # timings differ, of course
    rows = [[{k: e[k] for k in same} for e in s.epochs(c.run_id())] for s, c in ((store, cfg), (Run(whole).store, whole))]
    assert rows[0] == rows[1]


def test_store_is_rewound_to_the_checkpoint_after_a_crash_between_writes(tiny_overrides, monkeypatch):
    """A crash after an epoch's row is stored but before its checkpoint must not leave that row."""
    cfg = load_config(RECIPE, tiny_overrides + ["evaluation.every=0"])
    import supernet.run as run_module

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_module, "save_checkpoint", crash)
    run = Run(cfg)
    with pytest.raises(RuntimeError):
        run.train()
    row = run.store.get_run(run.id)
    assert row.status == "failed" and "disk full" in row.message
    monkeypatch.undo()
    Run(cfg).train()
    assert [e["epoch"] for e in run.store.epochs(run.id)] == [0, 1]


def test_evaluation_batches_mix_classes_even_for_class_sorted_folders(tiny_overrides):
    from supernet.data.setup import eval_batches, load_dataset

    cfg = load_config(RECIPE, tiny_overrides + ["protocol.batch_size=16"])
    ds = load_dataset(cfg)
    assert (ds.test_y[:10] == ds.test_y[0]).all()  # the fixture's folder order is sorted by class
    batches = eval_batches(cfg, ds, CPU)
    assert all(len(torch.unique(y)) > 1 for _, y in batches)
    assert sum(len(y) for _, y in batches) == len(ds.test_y)


def test_diverging_loss_fails_the_run_with_a_clear_message(tiny_overrides):
    cfg = load_config(RECIPE, tiny_overrides + ["protocol.lr=1e30", "protocol.grad_clip=1e30", "protocol.epochs=3"])
    run = Run(cfg)
    with pytest.raises(SupernetError, match="diverged"):
        run.train()
    row = run.store.get_run(run.id)
    assert row.status == "failed" and "diverged" in row.message


def test_bad_inputs_give_one_clear_error_and_exit_code_2(tiny_overrides, tmp_path):
    res = cli("arch", "nasbench201", "|nor_conv_3x3~0|+|bogus~0|none~1|")
    assert res.returncode == 2 and res.stderr.startswith("error:") and "Traceback" not in res.stderr

    res = cli("train", RECIPE, *tiny_overrides, "protocol.epoch=3")
    assert res.returncode == 2 and "did you mean 'protocol.epochs'" in res.stderr

    missing = tmp_path / "no-such-dir"
    overrides = [o for o in tiny_overrides if not o.startswith("data.root=")] + [f"data.root={missing}"]
    res = cli("train", RECIPE, *overrides)
    assert res.returncode == 2 and str(missing) in res.stderr and "Traceback" not in res.stderr
    db = Path(_out_dir(tiny_overrides)) / "supernet.db"
    if db.exists():  # nothing may be left marked as running
        assert all(r.status != "running" for r in ResultStore(db).runs())

    typo = tmp_path / "typo"
    res = cli("evaluate", "nope", "--out-dir", str(typo))
    assert res.returncode == 2 and "no results store" in res.stderr and not typo.exists()
    ResultStore(tmp_path / "store" / "supernet.db")
    res = cli("evaluate", "nope", "--out-dir", str(tmp_path / "store"))
    assert res.returncode == 2 and "no such run" in res.stderr


def test_arch_command_reports_key_params_and_ground_truth():
    resnet = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    index0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    res = cli("arch", "nasbench201", "-", "--json", stdin=f"{index0}\n{resnet}\n")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows[0]["key"] == index0 and rows[0]["index"] == 0 and rows[0]["params"] == 129_306
    assert rows[1]["cifar10/test"] == pytest.approx(94.363, abs=1e-3)
    assert rows[1]["cifar10/valid"] == pytest.approx(91.553, abs=1e-3)
    assert {"unique_key", "params_c100", "cifar100/test", "imagenet16-120/test"} <= set(rows[0])
    table = cli("arch", "nasbench201", resnet)
    assert table.returncode == 0 and table.stdout.splitlines()[0].startswith("key\t")
