"""Issue 13, section 4: the holes a hostile-input run found that need a trained run, a lock, or a moved store."""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from supernet import cli
from supernet.config import load_config
from supernet.data import cifar
from supernet.errors import SupernetError
from supernet.run import CHECKPOINT, Run
from supernet.runlock import hold, is_held, shown_status
from supernet.store import ResultStore
from supernet.trained import evaluate_run

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "nb201-cpu.yaml")


@pytest.fixture
def trained(tiny_overrides):
    cfg = load_config(RECIPE, [*tiny_overrides, "protocol.epochs=1", "evaluation.bootstrap=0"])
    run = Run(cfg)
    run.train()
    return run, tiny_overrides


@pytest.mark.parametrize("content", [{"foo": 1}, [1, 2], "wrong-shape"], ids=["dict", "list", "wrong-shape"])
def test_a_checkpoint_of_another_structure_is_one_clear_error_on_resume_and_evaluate(entry, trained, content,
                                                                                      capsys):
    run, overrides = trained
    ckpt = run.dir / CHECKPOINT
    if content == "wrong-shape":
        state = torch.load(ckpt, weights_only=True)
        name = next(k for k, v in state["trainer"]["model"].items() if v.dim() == 4)
        state["trainer"]["model"][name] = torch.zeros(1, 1, 1, 1)
        content = state
    torch.save(content, ckpt)
    before = run.store.get_run(run.id).status
    code, err = entry(["evaluate", run.id, "--out-dir", run.cfg.out_dir])
    assert code == 2 and err.startswith("error: checkpoint ") and "does not fit this run's super-net" in err, err
    assert len(err.splitlines()) == 1 and "weights_only" not in err
    code, err = entry(["train", RECIPE, *overrides, "protocol.epochs=1"])  # the same run: resumes
    assert code == 2 and "does not fit this run's super-net" in err and len(err.splitlines()) == 1, err
    assert run.store.get_run(run.id).status == before  # nothing marked running or failed


def test_a_store_moved_with_its_runs_still_finds_their_checkpoints(trained, tmp_path):
    run, _ = trained
    moved = tmp_path / "moved"
    shutil.move(run.cfg.out_dir, moved)
    store = ResultStore(moved / "supernet.db")
    assert store.get_run(run.id).run_dir == str(moved / run.id)
    ev = evaluate_run(store, run.id, ["evaluation.bootstrap=0"])
    assert len(ev.archs) == len(run.pool)


def test_a_second_process_on_one_run_is_refused_and_a_dead_one_shows_stale(entry, trained, monkeypatch, capsys):
    run, overrides = trained
    out = run.cfg.out_dir
    with hold(out, run.id):
        assert is_held(out, run.id)
        code, err = entry(["train", RECIPE, *overrides, "protocol.epochs=1"])
        assert code == 2 and f"run {run.id} is being trained by process " in err, err
        with pytest.raises(SupernetError, match="being trained by process"), hold(out, run.id):
            pass
    assert not is_held(out, run.id)
    assert shown_status(out, run.id, "running") == "stale"  # as a process killed with -9 leaves it
    with hold(out, run.id):
        assert shown_status(out, run.id, "running") == "running"


def test_runs_lists_a_dead_run_as_stale(trained, monkeypatch, capsys):
    run, _ = trained
    run.store.set_status(run.id, "running")
    monkeypatch.setattr(sys, "argv", ["supernet", "runs", "--out-dir", run.cfg.out_dir])
    capsys.readouterr()
    cli.main()
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(run.id))
    assert line.split()[1] == "stale"


def test_resuming_says_so_and_a_data_error_comes_alone(entry, trained, monkeypatch, capsys, tmp_path):
    run, overrides = trained
    code, err = entry(["train", RECIPE, *overrides, "protocol.epochs=1", "evaluation.bootstrap=0"])
    assert code == 0 and f"run {run.id} -> " in err and "resuming from epoch 1" in err
    code, err = entry(["train", RECIPE, *overrides, f"data.root={tmp_path / 'none.tar.gz'}"])
    assert code == 2 and err.splitlines() == [err.splitlines()[0]] and "does not exist" in err, err


def test_ctrl_c_prints_the_resume_hint(entry, trained, monkeypatch, capsys):
    run, overrides = trained

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "train", interrupt)
    code, err = entry(["train", RECIPE, *overrides])
    assert code == 130 and "re-run the same command to resume" in err and "aborted" not in err


def test_a_zero_byte_store_is_refused_not_treated_as_empty(entry, tmp_path, monkeypatch, capsys):
    (tmp_path / "supernet.db").write_bytes(b"")
    code, err = entry(["runs", "--out-dir", str(tmp_path)])
    assert code == 2 and "is empty (0 bytes)" in err
    assert (tmp_path / "supernet.db").stat().st_size == 0


def test_a_nine_class_folder_is_refused(entry, tiny_cifar, tiny_overrides, tmp_path, monkeypatch, capsys):
    nine = tmp_path / "nine"
    shutil.copytree(tiny_cifar, nine)
    for split in ("train", "test"):
        shutil.rmtree(nine / split / "truck")
    overrides = [o for o in tiny_overrides if not o.startswith("data.root=")] + [f"data.root={nine}"]
    code, err = entry(["train", RECIPE, *overrides])
    assert code == 2 and "has 9 classes but supernet.num_classes=10" in err, err


def test_a_failed_download_leaves_no_empty_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens on port 9
    target = tmp_path / "a" / "b"
    with pytest.raises(SupernetError, match="could not download CIFAR-10"):
        cifar.load_cifar10(target)
    assert not (tmp_path / "a").exists()


def test_an_archive_that_expands_too_far_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.tar"
    with tarfile.open(path, "w") as tf:
        for name in ("train/cat/0.png", "train/cat/1.png"):
            info = tarfile.TarInfo(name)
            info.size = 600
            tf.addfile(info, io.BytesIO(b"\0" * 600))
    monkeypatch.setattr(cifar, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(SupernetError, match="holds more than"):
        cifar.load_cifar10(path)


def test_random_bytes_are_not_called_code(entry, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "random.pth"
    bad.write_bytes(bytes(range(256)) * 20)
    code, err = entry(["convert", "nasbench201", str(bad), str(tmp_path / "out.npz")])
    assert code == 2 and "corrupt or not a torch file" in err and "code" not in err.split(":", 1)[1], err
    assert "weights_only" not in err


def test_pool_export_and_runs_json_for_pandas(entry, trained, monkeypatch, capsys, tmp_path):
    import csv
    import json

    run, _ = trained
    out = run.cfg.out_dir
    evaluate_run(run.store, run.id, ["evaluation.bootstrap=0"])  # a second evaluation: rows of both are written
    code, err = entry(["show", run.id, "--out-dir", out, "--pool", str(tmp_path / "p.csv")])
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    evaluations = run.store.evaluations(run.id)
    assert len(rows) == len(run.pool) * len(evaluations) == 40
    stored = {r[0]: r for r in run.store.arch_results(evaluations[0]["id"])}
    first = rows[0]
    assert float(first["supernet_acc"]) == stored[first["arch"]][1] and float(first["ground_truth"]) == stored[first["arch"]][2]
    loss = run.store.arch_scores(evaluations[0]["id"])["supernet_loss"][first["arch"]]
    assert float(first["supernet_loss"]) == pytest.approx(loss)
    code, _ = entry(["show", run.id, "--out-dir", out, "--pool", str(tmp_path / "p.json")])
    lines = (tmp_path / "p.json").read_text().splitlines()
    assert code == 0 and len(lines) == 40 and json.loads(lines[0])["arch"] == first["arch"]
    code, err = entry(["show", run.id, "--out-dir", out, "--pool", str(tmp_path / "p.xlsx")])
    assert code == 2 and "give a .csv or .json" in err
    monkeypatch.setattr(sys, "argv", ["supernet", "runs", "--out-dir", out, "--json"])
    capsys.readouterr()
    cli.main()
    (record,) = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert record["id"] == run.id and record["status"] == "completed" and record["metrics"]["skdt"] == pytest.approx(
        run.store.latest_metrics(run.id)["skdt"])


def test_every_evaluation_names_the_table_size_p_r_ranks_within(trained, monkeypatch, capsys):
    run, _ = trained
    assert run.store.latest_metrics(run.id)["psr_space_size"] == 15625
    monkeypatch.setattr(sys, "argv", ["supernet", "show", run.id, "--out-dir", run.cfg.out_dir])
    capsys.readouterr()
    cli.main()
    assert "P>R ranks within   15,625 architectures of the ground-truth table shipped" in capsys.readouterr().out


def test_tensorboard_events_hold_the_epochs_every_stored_metric_and_the_fig6_histogram(tiny_overrides):
    pytest.importorskip("tensorboard", reason="the tensorboard extra (pip install 'supernet[tensorboard]') is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(RECIPE, [*tiny_overrides, "logging.tensorboard=true", "evaluation.bootstrap=0"])
    assert cfg.run_id() == load_config(RECIPE, [*tiny_overrides, "evaluation.bootstrap=0"]).run_id()
    run = Run(cfg)
    run.train()
    events = EventAccumulator(str(run.dir / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0}).Reload()
    tags = events.Tags()
    losses = [e.value for e in events.Scalars("train/train_loss")]
    stored = run.store.epochs(run.id)
    assert losses == pytest.approx([e["train_loss"] for e in stored])
    evaluations = run.store.evaluations(run.id)
    for name in ("skdt", "params/skdt", "final_acc", "psr_space_size"):
        assert [(e.step, e.value) for e in events.Scalars(f"eval/{name}")] == [
            (ev["epoch"], pytest.approx(ev["metrics"][name])) for ev in evaluations]
    assert "eval/supernet_accuracy" in tags["histograms"]
    (last,) = [h for h in events.Histograms("eval/supernet_accuracy") if h.step == 2]
    assert last.histogram_value.num == len(run.pool)
