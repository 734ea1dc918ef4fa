"""Loss landscapes (Fig. 7) and super-nets trained on a fixed subsample of architectures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.config import build_config, load_config
from supernet.errors import SupernetError
from supernet.evaluate.landscape import Landscape, filter_normalised_direction, loss_landscape, mean_loss
from supernet.run import Run
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml")


def _tiny_model() -> tuple[NB201SuperNet, list, list]:
    torch.manual_seed(0)
    model = NB201SuperNet(4, 1)
    rng = np.random.default_rng(0)
    archs = [NB201Space().sample(rng) for _ in range(2)]
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(2)]
    return model, archs, batches


def test_directions_are_filter_normalised_and_skip_bn_and_biases():
    model, _, _ = _tiny_model()
    direction = filter_normalised_direction(model, torch.Generator().manual_seed(0))
    for p, d in zip(model.parameters(), direction, strict=True):
        if p.dim() <= 1:
            assert not d.any()
        else:
            torch.testing.assert_close(d.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))


def test_landscape_centre_is_the_trained_loss_and_the_weights_come_back():
    model, archs, batches = _tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    ls = loss_landscape(model, archs, batches, steps=3, span=0.5, seed=0)
    assert ls.loss.shape == (3, 3) and list(ls.coords) == [-0.5, 0.0, 0.5]
    assert ls.center == pytest.approx(mean_loss(model, archs, batches))
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)
    again = loss_landscape(model, archs, batches, steps=3, span=0.5, seed=0)
    np.testing.assert_array_equal(ls.loss, again.loss)  # the seed fixes the directions
    assert not np.array_equal(ls.loss, loss_landscape(model, archs, batches, steps=3, span=0.5, seed=1).loss)
    assert len(np.unique(ls.loss)) == 9  # every point moved the weights


def test_landscape_refuses_a_grid_without_a_centre():
    model, archs, batches = _tiny_model()
    for steps, span in ((4, 1.0), (1, 1.0), (3, 0.0)):
        with pytest.raises(SupernetError, match="steps|span"):
            loss_landscape(model, archs, batches, steps=steps, span=span)


def test_shape_measures_on_known_surfaces():
    c = np.linspace(-1, 1, 17)
    a, b = np.meshgrid(c, c, indexing="ij")
    bowl = Landscape(c, a**2 + b**2)
    assert bowl.center == 0 and bowl.local_minima == 1 and bowl.nonconvex_share == 0
    assert bowl.rise == pytest.approx(np.mean(np.concatenate([bowl.loss[0], bowl.loss[-1], bowl.loss[1:-1, 0],
                                                              bowl.loss[1:-1, -1]])))
    egg = Landscape(c, a**2 + b**2 + 0.3 * np.cos(4 * np.pi * a) * np.cos(4 * np.pi * b))
    assert egg.local_minima > 1 and egg.nonconvex_share > 0.1


def test_subsample_trains_on_a_fixed_seeded_set(tiny_overrides):
    cfg = load_config(RECIPE, [*tiny_overrides, "space.subsample=3", "seed=4"])
    run = Run(cfg)
    keys = run.train_archs()
    assert len(keys) == 3 and keys == Run(cfg).train_archs()
    assert keys != Run(load_config(RECIPE, [*tiny_overrides, "space.subsample=3", "seed=5"])).train_archs()
    sampler, rng = run.train_sampler(keys), np.random.default_rng(0)
    drawn = {run.kit.space.key(sampler(rng)[0]) for _ in range(60)}
    assert drawn == set(keys)
    assert Run(load_config(RECIPE, tiny_overrides)).train_archs() is None
    # The default keeps earlier run ids; a subsample is another run.
    assert cfg.run_id() != load_config(RECIPE, [*tiny_overrides, "seed=4"]).run_id()
    # Ids of runs stored before space.subsample existed (computed with the code of that time) still hold.
    assert build_config({}, ["seed=1"]).run_id() == "run-s1-90fd2dc2"
    assert build_config({}, ["seed=1", "supernet.path_dropout=0.1"]).run_id() == "run-s1-b55cd028"


@pytest.mark.parametrize("overrides, message", [
    (["space.subsample=3", "protocol.sampler=fairnas"], "would leave it"),
    (["space.subsample=0"], "space.subsample"),
])
def test_subsample_refuses_bad_input(overrides, message):
    with pytest.raises(SupernetError, match=message):
        build_config({}, overrides)


def test_subsample_larger_than_the_table_is_one_clear_error(tiny_overrides):
    run = Run(load_config(RECIPE, [*tiny_overrides, "space.subsample=20000"]))
    with pytest.raises(SupernetError, match="space.subsample=20000 exceeds the 15625"):
        run.train_archs()


def test_landscape_of_a_standalone_and_a_supernet_through_the_cli(tiny_overrides, tmp_path):
    out = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("out_dir="))
    ids = []
    for n in ("1", "5"):
        res = subprocess.run([sys.executable, "-m", "supernet", "train", RECIPE, *tiny_overrides,
                              f"space.subsample={n}", "protocol.epochs=1"], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        ids.append(res.stderr.split("run ")[1].split()[0])
    stored = (Path(out) / ids[1] / "train_archs.txt").read_text().splitlines()
    assert stored == Run(load_config(RECIPE, [*tiny_overrides, "space.subsample=5", "protocol.epochs=1"])
                         ).train_archs(stored=False)
    figure, save = tmp_path / "fig7.png", tmp_path / "fig7"  # no suffix: written under exactly this name
    cmd = [sys.executable, "-m", "supernet", "landscape", *ids, "device=cpu", "--out-dir", out, "--steps", "3",
           "--archs", "2", "--images", "64", "--figure", str(figure), "--save", str(save)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith(f"| {ids[0]}") or ln.startswith(f"| {ids[1]}")]
    assert rows[0].startswith(f"| {ids[0]} | 1 | 1 |") and rows[1].startswith(f"| {ids[1]} | 5 | 2 |")
    assert figure.read_bytes()[:4] == b"\x89PNG"
    saved = np.load(save)
    assert saved["loss"].shape == (2, 3, 3) and list(saved["runs"]) == ids
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    np.testing.assert_array_equal(np.load(save)["loss"], saved["loss"])  # same seed, same landscape
    assert again.returncode == 0

    for option, message in ((["--steps", "4"], "odd number"), (["--span", "nan"], "positive number"),
                            (["--bogus"], "unknown option --bogus")):
        bad = subprocess.run([sys.executable, "-m", "supernet", "landscape", ids[0], "--out-dir", out, *option],
                             capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and message in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
