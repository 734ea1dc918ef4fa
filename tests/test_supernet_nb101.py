import pytest
import torch
from torch import nn

from nb101_cells import (
    C1,
    C3,
    INCEPTION_MATRIX,
    INCEPTION_OPS,
    MP,
    README_MATRIX,
    README_OPS,
    shipped_records30,
)
from supernet.errors import SupernetError
from supernet.nn.channels import DynamicBatchNorm, DynamicConvBNReLU, interpolate_channels
from supernet.nn.kernels import OFAKernel
from supernet.nn.norm import set_bn_mode
from supernet.nn.ops import BNSpec
from supernet.nn.wsbn import incoming_index
from supernet.supernets.nasbench101 import (
    NB101Standalone,
    NB101SuperNet,
    as_cell,
    cell_plan,
    nb101_param_count,
    vertex_channels,
)

INCEPTION = (INCEPTION_MATRIX, INCEPTION_OPS)
README_2 = (README_MATRIX, README_OPS)
ONLY_INPUT = ([[0, 1], [0, 0]], ["input", "output"])
ONE_VERTEX = ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
CHAIN = (
    [
        [0, 1, 0, 0, 1, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
    ],
    ["input", C3, C1, MP, C3, "output"],
)
FAN5 = (
    [[0, 1, 1, 1, 1, 1, 0]] + [[0] * 6 + [1] for _ in range(5)] + [[0] * 7],
    ["input", C3, C1, MP, C3, C1, "output"],
)
CELLS = [ONLY_INPUT, ONE_VERTEX, CHAIN, INCEPTION, README_2, FAN5]
STRATEGIES = ["fixed", "shuffle", "interpolate", "disabled"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _records() -> list[dict]:
    """The 30 official records (NASLib's nb101_dummy.json) as shipped with the package: they always run."""
    return shipped_records30()


# ------------------------------------------------------------------------------------ f_proxy shapes
def test_vertex_channels_rule():
    m = as_cell(INCEPTION).matrix
    assert vertex_channels(m, 128, 128) == (128, 32, 32, 32, 32, 32, 128)
    # Remainder to the first feeders; a non-feeder takes the max of its successors.
    assert vertex_channels(as_cell(FAN5).matrix, 8, 8) == (8, 2, 2, 2, 1, 1, 8)
    assert vertex_channels(as_cell(README_2).matrix, 64, 10) == (64, 5, 5, 5, 5, 5, 10)
    assert vertex_channels(as_cell(ONLY_INPUT).matrix, 3, 7) == (3, 7)


@pytest.mark.parametrize(("cell", "expected"), [(INCEPTION, 2_694_282), (README_2, 8_555_530)])
def test_readme_cells_param_counts(cell, expected):
    assert _numel(NB101Standalone(cell)) == expected
    assert nb101_param_count(cell) == expected


@pytest.mark.parametrize("index", range(30))
def test_benchmark_param_counts(index):
    records = _records()
    assert len(records) == 30
    rec = records[index]
    cell = (rec["module_adjacency"], rec["module_operations"])
    with torch.device("meta"):
        built = _numel(NB101Standalone(cell))
    assert built == rec["trainable_parameters"]
    assert nb101_param_count(cell) == rec["trainable_parameters"]


@pytest.mark.parametrize("cell", CELLS)
def test_param_count_matches_built_network_at_other_sizes(cell):
    kw = dict(stem_channels=16, stacks=2, cells_per_stack=2, num_classes=100)
    assert nb101_param_count(cell, **kw) == _numel(NB101Standalone(cell, **kw))
    assert nb101_param_count(cell, affine=False) == _numel(NB101Standalone(cell, bn=BNSpec(affine=False)))


def test_cells_are_validated():
    unpruned = ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])
    with pytest.raises(ValueError, match="pruned"):
        NB101Standalone(unpruned, stem_channels=8)
    with pytest.raises(ValueError, match="ops"):
        cell_plan(as_cell(([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])), 8, 8)
    with pytest.raises(ValueError, match="upper-triangular"):
        cell_plan(as_cell(([[0, 1], [1, 0]], ["input", "output"])), 8, 8)
    net = NB101SuperNet(8, 1, 1, max_vertices=6)
    with pytest.raises(ValueError, match="at most 6"):
        net(torch.randn(2, 3, 8, 8), INCEPTION)


class _Cell:
    """A cell given as an object with ``.matrix``/``.ops`` (as a search space's cell class would be)."""

    def __init__(self, matrix, ops):
        self.matrix, self.ops = matrix, ops


def test_standalone_forward_shape_and_widths():
    x = torch.randn(2, 3, 32, 32)
    net = NB101Standalone(README_2, stem_channels=8)
    assert net(x).shape == (2, 10)
    assert net.features(x, net.cell).shape == (2, 32)


# ------------------------------------------------------------------------------------------ f_ws
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategies_output_shapes(strategy):
    torch.manual_seed(0)
    net = NB101SuperNet(8, 3, 1, channel_strategy=strategy)
    x = torch.randn(2, 3, 16, 16)
    seen: list[tuple[int, int]] = []  # (asked width, produced width) of every dynamic conv call
    for m in net.modules():
        if isinstance(m, DynamicConvBNReLU):
            m.register_forward_hook(lambda m, i, o: seen.append((i[1], o.shape[1])))
    for cell in [*CELLS, _Cell(*README_2)]:
        seen.clear()
        assert net(x, cell).shape == (2, 10)
        assert all(asked == got for asked, got in seen)
        spec = as_cell(cell)
        rule = {w for c in (8, 16, 32) for w in cell_plan(spec, c, c).widths[1:-1]}
        assert {asked for asked, _ in seen} == rule
        assert net.features(x, spec).shape == (2, 32)


def _load_conv_bn(seq: nn.Sequential, conv, c: int) -> None:
    """Give a stand-alone conv-BN-ReLU the first-C-channel slice of a super-net op."""
    seq[0].weight.data.copy_(conv.kernel.weight[:c, : seq[0].in_channels])
    seq[1].weight.data.copy_(conv.bn.weight[:c])
    seq[1].bias.data.copy_(conv.bn.bias[:c])


def _copy_fixed_path(net: NB101SuperNet, alone: NB101Standalone) -> None:
    for name in ("stem", "classifier"):
        getattr(alone, name).load_state_dict(getattr(net, name).state_dict())
    for sc, ic in zip(net.cells, alone.cells, strict=True):
        plan = cell_plan(alone.cell, ic.c_in, ic.c_out)
        for key, seq in ic.proj.items():
            _load_conv_bn(seq, sc.slots[int(key) - 1].proj, plan.widths[int(key)])
        for key, seq in ic.ops.items():
            t = int(key)
            if plan.ops[t] != MP:
                _load_conv_bn(seq, sc.slots[t - 1].conv(plan.ops[t]), plan.widths[t])
        if ic.out_proj is not None:
            ic.out_proj.load_state_dict(sc.out_proj.state_dict())


@pytest.mark.parametrize("strategy", ["fixed", "disabled"])
def test_fixed_path_computes_the_standalone_network(strategy):
    torch.manual_seed(0)
    net = NB101SuperNet(8, channel_strategy=strategy)
    with torch.no_grad():  # non-trivial BN affine parameters, so their slicing is checked too
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(2, 3, 32, 32)
    for cell in CELLS:
        alone = NB101Standalone(cell, stem_channels=8)
        _copy_fixed_path(net, alone)
        torch.testing.assert_close(net(x, cell), alone(x))


@pytest.mark.parametrize(("strategy", "rows"), [("fixed", 1), ("shuffle", 1), ("interpolate", 8)])
def test_convs_compute_only_the_selected_channels(strategy, rows):
    torch.manual_seed(0)
    net = NB101SuperNet(8, 1, 1, channel_strategy=strategy)
    net(torch.randn(2, 3, 16, 16), FAN5).sum().backward()  # vertex 5 projects to 1 of 8 channels
    grad = net.cells[0].slots[4].proj.kernel.weight.grad
    used = (grad.flatten(1).abs().sum(1) > 0).nonzero().flatten().tolist()
    assert len(used) == rows
    if strategy == "fixed":
        assert used == [0]


def test_shuffle_is_stochastic_and_follows_its_generator():
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(0)
    a = NB101SuperNet(8, 1, 1, channel_strategy="shuffle", generator=torch.Generator().manual_seed(5)).eval()
    torch.manual_seed(0)
    b = NB101SuperNet(8, 1, 1, channel_strategy="shuffle", generator=torch.Generator().manual_seed(5)).eval()
    with torch.no_grad():
        first, again = a(x, FAN5), a(x, FAN5)
        torch.testing.assert_close(first, b(x, FAN5))  # same seed, same draws
    assert not torch.allclose(first, again)  # fresh permutation on every forward, at evaluation too


def test_interpolation_averages_neighbouring_channels():
    t = torch.arange(8.0).reshape(1, 8, 1, 1).expand(2, 8, 3, 3)
    torch.testing.assert_close(interpolate_channels(t, 4)[0, :, 0, 0], torch.tensor([0.5, 2.5, 4.5, 6.5]))
    assert interpolate_channels(t, 3).shape == (2, 3, 3, 3)
    w = torch.randn(5, 8, 3, 3)  # a conv weight's input axis
    torch.testing.assert_close(interpolate_channels(w, 2)[:, 0], w[:, :4].mean(1))


def test_one_step_on_one_cell_changes_another_cells_output():
    torch.manual_seed(0)
    net = NB101SuperNet(8, 1, 1)
    x = torch.randn(2, 3, 16, 16)
    # Freeze everything but vertex 1's conv3x3 (slot 0), which both cells use.
    shared = net.cells[0].slots[0].conv(C3)
    for p in net.parameters():
        p.requires_grad_(p in set(shared.parameters()))
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    with torch.no_grad():
        before = net(x, CHAIN)
    net(x, README_2).pow(2).sum().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(net(x, CHAIN), before)


# -------------------------------------------------------------------------------------- WSBN / OFA
def test_wsbn_uses_one_bn_per_incoming_set():
    assert incoming_index([0]) == 0 and incoming_index([0, 1]) == 2 and incoming_index([1, 2]) == 5
    torch.manual_seed(0)
    net = NB101SuperNet(8, 1, 1, wsbn=True)
    wsbn = net.cells[0].slots[1].conv(C1).bn  # vertex 2: 3 incoming sets
    assert len(wsbn.bns) == 3 and len(net.cells[0].slots[4].conv(C3).bn.bns) == 31
    x = torch.randn(2, 3, 16, 16)
    fed_by_1 = ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, C1, "output"])
    fed_by_01 = ([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, C1, "output"])
    for cell, used in ((fed_by_1, 1), (fed_by_01, 2)):
        net.zero_grad(set_to_none=True)
        net(x, cell).sum().backward()
        got = [i for i, bn in enumerate(wsbn.bns) if bn.weight.grad is not None]
        assert got == [used]
    with torch.no_grad():
        out = net(x, fed_by_1)
        wsbn.bns[2].bias.add_(1.0)  # another set's BN does not affect this cell
        torch.testing.assert_close(net(x, fed_by_1), out)
        wsbn.bns[1].bias.add_(1.0)
        assert not torch.allclose(net(x, fed_by_1), out)


def test_ofa_kernel_transform_starts_as_the_centre_crop():
    k = OFAKernel(4, 3, (1, 3))
    assert k(3) is k.weight
    torch.testing.assert_close(k(1), k.weight[:, :, 1:2, 1:2])
    with torch.no_grad():
        k.transforms["3to1"].fill_(2.0)
    torch.testing.assert_close(k(1), 2 * k.weight[:, :, 1:2, 1:2])
    k5 = OFAKernel(2, 2, (1, 3, 5))
    torch.testing.assert_close(k5(1), k5.weight[:, :, 2:3, 2:3])


def test_ofa_conv1x1_and_conv3x3_share_one_kernel():
    torch.manual_seed(0)
    net = NB101SuperNet(8, 1, 1, ofa_kernel=True)
    slot = net.cells[0].slots[0]
    assert slot.conv(C1) is slot.conv(C3) and "conv" in slot.ops and len(slot.ops) == 1
    only_1x1 = ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C1, "output"])
    only_3x3 = ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    kernel = slot.conv(C1).kernel.weight
    for p in net.parameters():
        p.requires_grad_(p is kernel)
    opt = torch.optim.SGD([kernel], lr=0.5)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        before = net(x, only_3x3)
    net(x, only_1x1).pow(2).sum().backward()
    assert kernel.grad is not None and kernel.grad[:, :, 1, 1].abs().sum() > 0
    assert kernel.grad[:, :, 0, 0].abs().sum() == 0  # a 1x1 conv reads only the centre tap
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(net(x, only_3x3), before)


# ----------------------------------------------------------------------------------------- BN modes
def test_dynamic_batchnorm_slices_parameters_and_running_stats():
    torch.manual_seed(0)
    bn = DynamicBatchNorm.from_spec(BNSpec(track=True), 6)
    with torch.no_grad():
        bn.weight.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(4, 3, 5, 5) + 2
    ref = nn.BatchNorm2d(3)
    with torch.no_grad():
        ref.weight.copy_(bn.weight[:3])
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_mean[:3], ref.running_mean)
    assert bn.running_mean[3:].abs().sum() == 0
    idx = torch.tensor([5, 1])
    bn(x[:, :2], idx)
    assert bn.running_mean[5] > 0 and bn.running_mean[4] == 0  # index selections are written back


@pytest.mark.parametrize("strategy", ["fixed", "interpolate", "shuffle"])
def test_set_bn_mode_on_the_supernet(strategy):
    torch.manual_seed(0)
    net = NB101SuperNet(8, 1, 1, channel_strategy=strategy, wsbn=True, bn=BNSpec(track=True))
    x = torch.randn(4, 3, 16, 16) * 3 + 1
    net.train()
    net(x, README_2)
    net.eval()
    set_bn_mode(net, "running")
    if strategy != "shuffle":
        running = net(x, README_2)
        set_bn_mode(net, "batch")
        assert not torch.allclose(running, net(x, README_2))
    set_bn_mode(net, "batch")
    before = net.cells[0].slots[0].proj.bn.running_mean.clone()
    net(x * 5, README_2)  # evaluating with batch statistics leaves running ones alone
    torch.testing.assert_close(net.cells[0].slots[0].proj.bn.running_mean, before)
    with pytest.raises(SupernetError, match="bn_track_stats"):
        set_bn_mode(NB101SuperNet(8, 1, 1), "running")
