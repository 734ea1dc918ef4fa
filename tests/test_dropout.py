"""The dropout factor: NAO-scheduled drop-path on cell outputs and dropout before the classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernet.config import load_config
from supernet.nn.droppath import Dropout, DropPath, scheduled_keep
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201SuperNet, nb201_param_count


def test_schedule_drops_more_in_deeper_cells():
    keeps = [scheduled_keep(0.3, i, 17) for i in range(17)]
    assert keeps[-1] == pytest.approx(0.7) and keeps[0] == pytest.approx(1 - 0.3 / 17)
    assert all(a > b for a, b in zip(keeps, keeps[1:], strict=False))
    with pytest.raises(ValueError):
        scheduled_keep(1.0, 0, 3)


def test_drop_path_zeroes_whole_samples_and_keeps_the_mean():
    gen = torch.Generator().manual_seed(0)
    drop = DropPath(0.6, gen)
    x = torch.ones(4000, 2, 3, 3)
    y = drop(x)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | torch.isclose(per_sample, torch.tensor(1 / 0.6)).all(1)).all()
    assert (per_sample[:, 0] == 0).float().mean().item() == pytest.approx(0.4, abs=0.03)
    assert y.mean().item() == pytest.approx(1.0, abs=0.05)
    drop.eval()
    assert drop(x) is x


def test_dropout_masks_come_from_the_generator():
    x = torch.ones(64, 32)
    a = Dropout(0.5, torch.Generator().manual_seed(3))(x)
    b = Dropout(0.5, torch.Generator().manual_seed(3))(x)
    c = Dropout(0.5, torch.Generator().manual_seed(4))(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    Dropout(0.5, torch.Generator().manual_seed(3))(x)
    assert torch.equal(torch.rand(1), before)  # torch's global RNG is untouched


def _assert_dropout_acts_in_training_only(plain, dropped, path) -> None:
    dropped.load_state_dict(plain.state_dict())  # same keys: dropout holds no state
    x = torch.randn(8, 3, 32, 32)
    plain.eval()
    dropped.eval()
    torch.testing.assert_close(dropped(x, path), plain(x, path))
    plain.train()
    dropped.train()
    assert not torch.allclose(dropped(x, path), plain(x, path))


def test_dropout_changes_training_only_and_no_parameters():
    torch.manual_seed(0)
    plain = NB201SuperNet(4, 1, placement="edge")
    dropped = NB201SuperNet(4, 1, placement="edge", path_dropout=0.3, global_dropout=0.3,
                            generator=torch.Generator().manual_seed(0))
    arch = NB201Space().sample(np.random.default_rng(0))
    _assert_dropout_acts_in_training_only(plain, dropped, arch)
    assert sum(p.numel() for p in dropped.parameters()) == sum(p.numel() for p in plain.parameters())
    assert nb201_param_count(arch) > 0


def test_dropout_keys_are_validated_and_enter_the_run_id_only_when_set():
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "nb201.yaml"
    base = load_config(recipe)
    assert load_config(recipe, ["supernet.path_dropout=0.0"]).run_id() == base.run_id()
    assert load_config(recipe, ["supernet.path_dropout=0.1"]).run_id() != base.run_id()
    assert load_config(recipe, ["supernet.global_dropout=0.1"]).run_id() != base.run_id()
    from supernet.errors import SupernetError

    with pytest.raises(SupernetError, match="supernet.path_dropout"):
        load_config(recipe, ["supernet.path_dropout=1.0"])


def test_nb101_supernet_applies_both_dropouts_in_training_only():
    from supernet.spaces.nasbench101 import make_cell
    from supernet.supernets.nasbench101 import NB101SuperNet

    cell = make_cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    torch.manual_seed(0)
    plain = NB101SuperNet(8, 2, 1)
    dropped = NB101SuperNet(8, 2, 1, path_dropout=0.3, global_dropout=0.3, generator=torch.Generator())
    _assert_dropout_acts_in_training_only(plain, dropped, cell)
    assert sum(isinstance(m, DropPath) for m in dropped.modules()) == len(dropped.cells)


@pytest.mark.parametrize("recipe, cells, expected", [
    # NB201, N=1: cell, ResNet block, cell, ResNet block, cell; position i of 5 keeps 1 - (i+1)/5 * rate
    ("nb201.yaml", ["supernet.layers=1", "supernet.channels=4"], [1 - 1 / 5 * 0.3, 1 - 3 / 5 * 0.3, 0.7]),
    # NB101, 2 cells per stack: every cell of stack s keeps 1 - (s+1)/3 * rate
    ("nb101.yaml", ["supernet.layers=2", "supernet.channels=8"], [0.9, 0.9, 0.8, 0.8, 0.7, 0.7]),
])
def test_the_built_supernet_carries_the_configured_dropout(recipe, cells, expected):
    from pathlib import Path

    from supernet.nn.droppath import Dropout as HeadDropout
    from supernet.registry import build_kit

    cfg = load_config(Path(__file__).resolve().parents[1] / "recipes" / recipe,
                      [*cells, "supernet.path_dropout=0.3", "supernet.global_dropout=0.2"])
    model = build_kit(cfg).build_supernet()
    keeps = [m.keep for m in model.drop_paths if isinstance(m, DropPath)]
    assert keeps == pytest.approx(expected)
    assert isinstance(model.dropout, HeadDropout) and model.dropout.keep == pytest.approx(0.8)
    assert all(m.generator is model.generator for m in model.modules() if isinstance(m, (DropPath, HeadDropout)))


def test_darts_drops_each_op_scheduled_by_layer_and_node_step_never_an_identity():
    """Issue 12.4: as the authors' DARTS cells (SPEC 6.8), not on cell outputs."""
    from supernet.nn.droppath import node_keep
    from supernet.spaces.darts import DartsSpace
    from supernet.supernets.darts import DartsSuperNet

    model = DartsSuperNet(4, 3, path_dropout=0.3, generator=torch.Generator())
    assert not hasattr(model, "drop_paths")
    for layer, cell in enumerate(model.cells):
        keeps = [m.keep for m in cell.node_drops]
        layer_keep = 1 - (layer + 1) / 3 * 0.3
        assert keeps == pytest.approx([1 - (k + 1) / 4 * (1 - layer_keep) for k in range(4)])
        assert keeps == pytest.approx([node_keep(0.3, layer, 3, k, 4) for k in range(4)])
        assert all(m.generator is model.generator for m in cell.node_drops)
    assert node_keep(0.3, 2, 3, 3, 4) == pytest.approx(0.7)  # the last node of the last cell: 1 - rate
    # Normal cells of skip connections only (identities) are never dropped; sep convs are.
    normal = "|".join(["skip_connect~0+skip_connect~1"] * 4)
    reduce = "|".join(["sep_conv_3x3~0+sep_conv_3x3~1"] * 4)
    arch = DartsSpace().parse(f"normal={normal}@2,3,4,5;reduce={reduce}@2,3,4,5")
    calls = {id(c): 0 for c in model.cells}
    for cell in model.cells:
        for drop in cell.node_drops:
            drop.register_forward_hook(lambda m, i, o, c=cell: calls.__setitem__(id(c), calls[id(c)] + 1))
    model.train()
    model(torch.randn(2, 3, 32, 32), arch)
    assert [calls[id(c)] for c in model.cells] == [0 if not c.reduction else 8 for c in model.cells]
    assert any(c.reduction for c in model.cells)
    model.eval()
    torch.testing.assert_close(model(torch.ones(2, 3, 32, 32), arch), model(torch.ones(2, 3, 32, 32), arch))
