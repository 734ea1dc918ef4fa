"""Shared fixtures: a tiny CIFAR-shaped image folder so end-to-end tests run the real code paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def in_ci() -> bool:
    """``CI=true`` (as GitHub Actions and most CI services set it): missing shared data is then an error."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_shared(path: Path, what: str = "public benchmark data") -> Path:
    """``path`` (under ../shared/data) if it exists; otherwise skip the test, or fail it under ``CI=true``.

    The one place that decides what a missing ../shared means, so that CI, which must have the data,
    never reports a check as passed (skipped) that it did not run.
    """
    if path.exists():
        return path
    reason = f"{what} not found at {path} (clone shared/ beside the repository)"
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 train / 10 test images per class; each class has its own mean colour, so it is learnable."""
    root = tmp_path_factory.mktemp("tiny-cifar")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 30), ("test", 10)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            base = np.array([25 * label, 255 - 25 * label, (80 * label) % 256])
            for i in range(per_class):
                img = np.clip(base + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture()
def tiny_overrides(tiny_cifar: Path, tmp_path: Path) -> list[str]:
    """A C=4, N=1 super-net, two short epochs, a pool of 20: seconds on a CPU."""
    return [
        f"data.root={tiny_cifar}",
        f"data.cache_dir={tmp_path / 'cache'}",
        f"out_dir={tmp_path / 'runs'}",
        "device=cpu",
        "progress=false",
        "supernet.channels=4",
        "supernet.layers=1",
        "protocol.epochs=2",
        "protocol.batch_size=32",
        "evaluation.pool_size=20",
        "evaluation.every=1",
        "evaluation.proxies=none",  # the panel has its own tests (test_proxy_panel.py): seconds per architecture
    ]


@pytest.fixture()
def interrupt_second_epoch(monkeypatch: pytest.MonkeyPatch):
    """Call it to make training raise KeyboardInterrupt when epoch 1 starts (as Ctrl-C would); it returns
    the function that undoes that."""
    from supernet.train.trainer import Trainer

    original = Trainer.train_epoch

    def stop_in_second_epoch(self, epoch, *args, **kwargs):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch, *args, **kwargs)

    def arm():
        monkeypatch.setattr(Trainer, "train_epoch", stop_in_second_epoch)
        return monkeypatch.undo

    return arm


@pytest.fixture()
def one_torch_thread():
    """Tiny convs on shared, busy cores: OpenMP's spin-waiting across 2 threads costs 100x here."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def entry(tmp_path, monkeypatch, capsys):
    """Run ``supernet.cli.main`` (the console script's entry point) in-process in ``tmp_path``: a function of
    argv returning (exit code, stderr); stdout stays readable with ``capsys``."""
    import signal
    import sys

    from supernet import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    handler = signal.getsignal(signal.SIGTERM)

    def run(argv: list[str]) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["supernet", *argv])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            signal.signal(signal.SIGTERM, handler)
        return code, capsys.readouterr().err

    return run
