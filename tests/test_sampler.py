"""Path samplers: what one optimiser step trains on, and FairNAS's strict fairness."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from supernet.config import ProtocolConfig
from supernet.spaces.nasbench101 import OPS as NB101_OPS
from supernet.spaces.nasbench101 import NB101Space
from supernet.spaces.nasbench201 import OPS, NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet
from supernet.train.sampler import make_sampler
from supernet.train.trainer import Trainer


def test_single_path_samplers_draw_what_the_space_draws():
    space = NB201Space()
    for kind, draw in (("uniform", space.sample), ("encoding", space.sample_encoding)):
        got = [make_sampler(space, kind)(np.random.default_rng(5)) for _ in range(3)]
        assert got == [[draw(np.random.default_rng(5))]] * 3


def test_fairnas_on_nb201_gives_every_edge_every_op_once():
    sampler = make_sampler(NB201Space(), "fairnas")
    rng = np.random.default_rng(0)
    for _ in range(20):
        paths = sampler(rng)
        assert len(paths) == len(OPS)
        for edge in range(6):
            assert sorted(p.ops[edge] for p in paths) == sorted(OPS)
    assert sampler(np.random.default_rng(1)) == sampler(np.random.default_rng(1))


def test_fairnas_on_nb101_keeps_the_topology_and_permutes_vertex_ops():
    rng = np.random.default_rng(0)
    cells = [NB101Space(cells=[]).sample_encoding(rng) for _ in range(300)]
    for space in (NB101Space(cells=cells), NB101Space(cells=cells).subspace(2)):
        sampler = make_sampler(space, "fairnas")
        for _ in range(20):
            paths = sampler(rng)
            assert len(paths) == len(NB101_OPS)
            assert len({p.matrix for p in paths}) == 1
            for v in range(1, paths[0].num_vertices - 1):
                assert sorted(p.ops[v] for p in paths) == sorted(NB101_OPS)
            if space.output_inputs is not None:
                assert all(p.output_inputs == space.output_inputs for p in paths)


@pytest.mark.parametrize("clip", [0.5, 1e6], ids=["clipped", "unclipped"])  # unclipped: sum != mean shows
def test_fairnas_step_sums_the_children_gradients_before_one_clipped_step(clip):
    torch.manual_seed(0)
    model = NB201SuperNet(4, 1, placement="edge")
    reference = copy.deepcopy(model)
    protocol = ProtocolConfig(epochs=1, lr=0.1, grad_clip=clip, weight_decay=0.0, momentum=0.0)
    trainer = Trainer(model, make_sampler(NB201Space(), "fairnas"), protocol, seed=3)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    paths = []
    trainer.sampler = lambda rng, s=trainer.sampler: paths.append(s(rng)) or paths[-1]
    trainer.train_epoch(0, [(x, y)])

    for arch in paths[0]:
        F.cross_entropy(reference(x, arch), y).backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), clip)
    with torch.no_grad():
        for p in reference.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    for (name, a), b in zip(reference.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(b, a, msg=name)
    assert len(paths[0]) == len(OPS)


def test_fairnas_keeps_a_cell_without_op_slots_single():
    from supernet.spaces.nasbench101 import make_cell

    bare = make_cell([[0, 1], [0, 0]], ["input", "output"])
    space = NB101Space(cells=[bare])
    assert make_sampler(space, "fairnas")(np.random.default_rng(0)) == [bare]


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="fairnas"):
        make_sampler(NB201Space(), "fair")


def test_fairnas_run_trains_and_evaluates_end_to_end(tiny_overrides):
    from pathlib import Path

    from supernet.config import load_config
    from supernet.run import Run

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"
    run = Run(load_config(recipe, [*tiny_overrides, "protocol.sampler=fairnas"]))
    metrics = run.train()
    assert np.isfinite(metrics["skdt"]) and run.store.get_run(run.id).status == "completed"
    epochs = run.store.epochs(run.id)
    assert len(epochs) == 2 and all(np.isfinite(e["train_loss"]) for e in epochs)
