import numpy as np
import pytest
import torch

from supernet.errors import SupernetError
from supernet.nn.norm import set_bn_mode
from supernet.nn.ops import BNSpec
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.nasbench201 import NB201Standalone, NB201SuperNet, nb201_param_count

INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _numel(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_standalone_matches_benchmark_param_counts():
    a = NB201Space().parse(INDEX0)
    assert _numel(NB201Standalone(a)) == 129_306
    assert _numel(NB201Standalone(a, num_classes=100)) == 135_156


@pytest.mark.parametrize("num_classes", [10, 100])
def test_param_count_formula_matches_built_network(num_classes):
    space, rng = NB201Space(), np.random.default_rng(0)
    for _ in range(12):
        a = space.sample(rng)
        assert nb201_param_count(a, num_classes=num_classes) == _numel(NB201Standalone(a, num_classes=num_classes))
    # Extremes of the range: all-none and all 3x3 convolutions.
    for op in ("none", "nor_conv_3x3"):
        a = (op,) * 6
        assert nb201_param_count(a, num_classes=num_classes) == _numel(NB201Standalone(a, num_classes=num_classes))


def _copy_path_weights(supernet: NB201SuperNet, standalone: NB201Standalone) -> None:
    """Give the stand-alone network the weights the super-net path uses."""
    for sc, ic in zip(supernet.cells, standalone.cells, strict=True):
        if hasattr(ic, "edges"):
            for e, op in enumerate(ic.ops):
                if op != "none":
                    ic.edges[e].load_state_dict(sc.module_for(e, op).state_dict())
        else:
            ic.load_state_dict(sc.state_dict())
    for name in ("stem", "lastact", "classifier"):
        getattr(standalone, name).load_state_dict(getattr(supernet, name).state_dict())


@pytest.mark.parametrize("placement", ["edge", "node"])
def test_supernet_path_computes_the_standalone_network(placement):
    torch.manual_seed(0)
    space = NB201Space()
    net = NB201SuperNet(4, 1, placement=placement)
    x = torch.randn(6, 3, 32, 32)
    rng = np.random.default_rng(1)
    for _ in range(5):
        a = space.sample(rng)
        alone = NB201Standalone(a, 4, 1)
        _copy_path_weights(net, alone)
        torch.testing.assert_close(net(x, a), alone(x))


def test_forward_touches_only_the_sampled_path():
    torch.manual_seed(0)
    net = NB201SuperNet(4, 1, placement="edge")
    a = NB201Space().parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    net(torch.randn(4, 3, 32, 32), a).sum().backward()
    cell = net.cells[0]
    used = {id(p) for e, op in enumerate(a.ops) if op != "none" for p in cell.module_for(e, op).parameters()}
    for p in cell.parameters():
        assert (p.grad is not None) == (id(p) in used)


def test_node_placement_shares_inner_edge_weights():
    net = NB201SuperNet(4, 1, placement="node")
    cell = net.cells[0]
    # edges 1->3 and 2->3 (positions 4, 5) share node 3's inner op set; 0->3 (position 3) does not
    assert cell.module_for(4, "nor_conv_3x3") is cell.module_for(5, "nor_conv_3x3")
    assert cell.module_for(3, "nor_conv_3x3") is not cell.module_for(4, "nor_conv_3x3")
    edge = NB201SuperNet(4, 1, placement="edge").cells[0]
    assert edge.module_for(4, "nor_conv_3x3") is not edge.module_for(5, "nor_conv_3x3")


def test_bn_modes_batch_vs_running():
    torch.manual_seed(0)
    a = NB201Space().parse(INDEX0)
    net = NB201SuperNet(4, 1, bn=BNSpec(affine=True, track=True))
    x = torch.randn(8, 3, 32, 32) * 3 + 1
    net.train()
    net(x, a)
    net.eval()
    set_bn_mode(net, "running")
    running = net(x, a)
    set_bn_mode(net, "batch")
    batch = net(x, a)
    assert not torch.allclose(running, batch)
    # Evaluating with batch statistics must not move the running statistics.
    before = net.stem[1].running_mean.clone()
    net(x * 5, a)
    torch.testing.assert_close(net.stem[1].running_mean, before)
    untracked = NB201SuperNet(4, 1)
    with pytest.raises(SupernetError, match="bn_track_stats"):
        set_bn_mode(untracked, "running")


def test_affine_off_has_no_bn_parameters():
    a = NB201Space().parse(INDEX0)
    on = _numel(NB201Standalone(a, bn=BNSpec(affine=True)))
    off = _numel(NB201Standalone(a, bn=BNSpec(affine=False)))
    assert off < on and off == nb201_param_count(a, affine=False)


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 7, 3), (3, 2, 1, 1), (2, 4, 1, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_avg_pool_equals_the_native_kernel(shape, channels_last):
    from supernet.nn.ops import AvgPool3x3

    ref_op = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    fast_op = AvgPool3x3(shape[1])
    x = torch.randn(shape, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out_fast = ref_op(xr), fast_op.double()(xf)
    torch.testing.assert_close(out_fast, out_ref)
    g = torch.randn_like(out_ref)
    out_ref.backward(g)
    out_fast.backward(g)
    torch.testing.assert_close(xf.grad, xr.grad)
    assert not list(fast_op.parameters()) and not fast_op.state_dict()  # checkpoints and counts unchanged


def test_fast_avg_pool_first_used_in_inference_still_trains():
    from supernet.nn.ops import AvgPool3x3

    op = AvgPool3x3(3)
    x = torch.randn(2, 3, 5, 5)
    with torch.inference_mode():
        op(x)  # evaluation before the op is ever trained
    xg = x.clone().requires_grad_()
    op(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = op(x)
    torch.testing.assert_close(out.float(), torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                               rtol=2e-2, atol=2e-2)
