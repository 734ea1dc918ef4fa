"""DARTS-NDS networks: published parameter counts, path = stand-alone network, only the path trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from supernet.spaces.darts import DartsSpace, parse_arch
from supernet.supernets.darts import DartsStandalone, DartsSuperNet, darts_param_count
from test_space_darts import DARTS_V2

# P-DARTS' published CIFAR genotype (chenxin061/pdarts genotypes.py).
PDARTS = (
    "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), "
    "reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), "
    "('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))"
)


def _numel(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("genotype", "plain", "with_aux"),
    [
        # Counted with DARTS' own NetworkCIFAR at C=36, 20 cells, by a user in github.com/chenxin061/pdarts/issues/7
        # (3,433,798; 3,910,224 with the auxiliary head). DARTS_V2: the "param size = 3.349342MB" DARTS' train.py
        # logs (quoted from memory, not re-sourced here; the P-DARTS pair is the sourced check).
        (PDARTS, 3_433_798, 3_910_224),
        (DARTS_V2, 3_349_342, 3_825_768),
    ],
)
def test_standalone_matches_published_parameter_counts(genotype, plain, with_aux):
    a = parse_arch(genotype)
    assert darts_param_count(a, 36, 20) == plain
    assert darts_param_count(a, 36, 20, auxiliary=True) == with_aux
    assert _numel(DartsStandalone(a, 8, 5)) == darts_param_count(a, 8, 5)  # the meta-device count is the real one


def test_loose_end_concat_narrows_the_next_layers():
    a = DartsSpace().sample(np.random.default_rng(3))
    assert len(a.normal.concat) < 4
    net = DartsStandalone(a, 4, 5)
    assert net.classifier.in_features == len(net.cells[-1].concat) * 16
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("placement", ["node", "edge"])
def test_supernet_path_computes_the_standalone_network(placement):
    torch.manual_seed(0)
    net = DartsSuperNet(4, 5, placement=placement).eval()
    x = torch.randn(4, 3, 32, 32)
    rng = np.random.default_rng(0)
    space = DartsSpace()
    for _ in range(4):
        a = space.sample(rng)
        alone = net.extract(a).eval()
        assert _numel(alone) == darts_param_count(a, 4, 5)
        torch.testing.assert_close(net(x, a), alone(x))


def test_forward_touches_only_the_sampled_path():
    torch.manual_seed(0)
    net = DartsSuperNet(4, 3, placement="node")
    a = DartsSpace().sample(np.random.default_rng(5))
    net(torch.randn(2, 3, 32, 32), a).sum().backward()
    for cell in net.cells:
        spec = a.reduce if cell.reduction else a.normal
        used = {id(p) for j, (op, src) in enumerate(spec.pairs()) for p in cell.module_for(j, op, src).parameters()}
        used |= {id(p) for p in (*cell.pre0.parameters(), *cell.pre1.parameters())}
        for p in cell.parameters():
            assert (p.grad is not None) == (id(p) in used)


def test_placements_share_weights_as_the_authors_do():
    node = DartsSuperNet(4, 3, placement="node").cells[1]  # a reduction cell
    assert node.reduction
    # A node's pair owns one op set whatever node it reads, plus a stride-2 set for the cell inputs.
    assert node.module_for(2, "sep_conv_3x3", 2) is node.module_for(2, "sep_conv_3x3", 2)
    assert node.module_for(6, "sep_conv_3x3", 2) is node.module_for(6, "sep_conv_3x3", 4)
    assert node.module_for(6, "sep_conv_3x3", 0) is node.module_for(6, "sep_conv_3x3", 1)
    assert node.module_for(6, "sep_conv_3x3", 0) is not node.module_for(6, "sep_conv_3x3", 2)
    assert node.module_for(6, "sep_conv_3x3", 2) is not node.module_for(7, "sep_conv_3x3", 2)
    edge = DartsSuperNet(4, 3, placement="edge").cells[1]
    # One set per (source, node): both pairs of a node reading one source share it, other sources do not.
    assert edge.module_for(6, "sep_conv_3x3", 2) is edge.module_for(7, "sep_conv_3x3", 2)
    assert edge.module_for(6, "sep_conv_3x3", 2) is not edge.module_for(6, "sep_conv_3x3", 4)
    assert len(edge.sets) == 2 + 3 + 4 + 5  # (source, node) pairs of a cell


def test_extract_gives_a_trainable_copy():
    torch.manual_seed(0)
    net = DartsSuperNet(4, 3)
    a = DartsSpace().sample(np.random.default_rng(2))
    alone = net.extract(a)
    alone(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in net.parameters())  # inherited weights are copies, not views


def test_ofa_kernels_share_one_op_per_family_and_extract_exactly():
    torch.manual_seed(0)
    net = DartsSuperNet(4, 3, ofa_kernel=True).eval()
    cell = net.cells[0]
    three, five = cell.module_for(0, "sep_conv_3x3", 0), cell.module_for(0, "sep_conv_5x5", 0)
    assert three.op is five.op and (three.kernel, five.kernel) == (3, 5)
    x = torch.randn(2, 4, 8, 8)
    plain = three.op.materialize(3, net.bn)
    dw5 = five.op.depthwise[0].weight
    torch.testing.assert_close(plain[1].weight, dw5[:, :, 1:4, 1:4])  # identity transform: the 5x5 centre
    for p in net.parameters():  # a trained transform moves the 3x3 away from the centre crop
        if p.dim() == 2 and p.shape[0] == 9:
            p.data.add_(0.1 * torch.randn_like(p))
    assert not torch.allclose(three.op.materialize(3, net.bn)[1].weight, dw5[:, :, 1:4, 1:4])
    torch.testing.assert_close(three(x), three.op.materialize(3, net.bn)(x))
    a = parse_arch(PDARTS)
    torch.testing.assert_close(net(torch.randn(2, 3, 32, 32), a) * 0, torch.zeros(2, 10))
    y = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(net(y, a), net.extract(a).eval()(y))
    assert _numel(net) < _numel(DartsSuperNet(4, 3))  # one op per family instead of two


def test_wsbn_gives_each_source_its_own_batch_norms_over_shared_weights():
    torch.manual_seed(0)
    net = DartsSuperNet(4, 3, wsbn=True).eval()
    cell = net.cells[0]  # a normal cell: node 3's pairs read states 0..4
    from_0, from_3 = cell.module_for(6, "sep_conv_3x3", 0), cell.module_for(6, "sep_conv_3x3", 3)
    assert from_0 is not from_3
    assert from_0[1].weight is from_3[1].weight and from_0[2].weight is from_3[2].weight  # shared convs
    assert from_0[3] is not from_3[3]  # own BN
    plain = DartsSuperNet(4, 3)
    extra_bns = _numel(net) - _numel(plain)
    assert extra_bns > 0 and extra_bns % 4 == 0  # only BN scale/shift pairs at width 4, 8, 16 were added
    for m in net.modules():  # make the per-source BNs differ, then the path must still extract exactly
        if isinstance(m, torch.nn.BatchNorm2d) and m.affine:
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 32, 32)
    for seed in range(3):
        a = DartsSpace().sample(np.random.default_rng(seed))
        torch.testing.assert_close(net(x, a), net.extract(a).eval()(x))
    twin = DartsSuperNet(4, 3, wsbn=True).eval()
    twin.load_state_dict(net.state_dict())  # shared weights appear under several names and load consistently
    torch.testing.assert_close(twin(x, a), net(x, a))
    with pytest.raises(ValueError, match="one source"):
        DartsSuperNet(4, 3, wsbn=True, placement="edge")


def test_a_path_first_seen_in_evaluation_trains_afterwards():
    net = DartsSuperNet(4, 3)
    a = DartsSpace().sample(np.random.default_rng(3))  # loose-end concats: the next layers slice their inputs
    with torch.inference_mode():
        net.eval()(torch.randn(2, 3, 32, 32), a)
    net.train()(torch.randn(2, 3, 32, 32), a).sum().backward()  # the cached channel index is a normal tensor
    assert net.classifier.weight.grad is not None


def test_supernet_pools_are_normalised_as_the_authors_do_but_benchmark_networks_are_not():
    cell = DartsSuperNet(4, 3).cells[0]
    pool = cell.module_for(0, "max_pool_3x3", 0)
    assert isinstance(pool, torch.nn.Sequential) and isinstance(pool[1], torch.nn.BatchNorm2d) and not pool[1].affine
    a = parse_arch(DARTS_V2)  # max pools in its reduction cell
    plain, normalised = DartsStandalone(a, 4, 3), DartsStandalone(a, 4, 3, pool_bn=True)
    bare = DartsSuperNet(4, 3, pool_bn=False).eval()  # ops exactly the benchmark network's
    assert not isinstance(bare.cells[0].module_for(0, "max_pool_3x3", 0), torch.nn.Sequential)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(bare(x, a), bare.extract(a).eval()(x))
    assert not any(isinstance(m, torch.nn.Sequential) and isinstance(m[0], torch.nn.MaxPool2d) for m in plain.modules())
    assert _numel(plain) == _numel(normalised) == darts_param_count(a, 4, 3)  # the BN has no parameters
