"""Training-free proxies: each checked against an answer computed by hand on a tiny network; the panel's
shared passes (one forward for nwot/jacov/snip/grad_norm, flops on meta tensors with reused layer counts,
synflow in place) against the proxies run one by one."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from supernet.errors import SupernetError
from supernet.nn.ops import BNSpec
from supernet.proxies import (
    PROXIES,
    PROXY_NAMES,
    flops,
    grad_norm,
    jacov,
    nwot,
    params,
    resolve_names,
    score_all,
    snip,
    synflow,
)
from supernet.proxies.measures import (
    FORWARD_PROXIES,
    JACOV_EPS,
    _scratch_copy,
    forward_proxies,
    meta_flops,
    nwot_kernel,
)
from supernet.spaces.darts import DartsSpace
from supernet.spaces.nasbench201 import NB201Space
from supernet.supernets.darts import DartsStandalone
from supernet.supernets.nasbench101 import NB101Standalone
from supernet.supernets.nasbench201 import NB201Standalone, nb201_param_count
from test_toy_space import ToyNet

torch.set_num_threads(1)

RESNET_LIKE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# No path from the cell input to node 3: every cell outputs zeros, the logits do not depend on the image.
DISCONNECTED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _batch(n: int = 8, c: int = 3, hw: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, hw, hw, generator=g), torch.randint(0, 10, (n,), generator=g)


def _nb201(arch: str, channels: int = 4, layers: int = 1, bn: BNSpec | None = None) -> nn.Module:
    torch.manual_seed(0)
    return NB201Standalone(NB201Space().parse(arch), channels, layers, bn=bn)


# --- synflow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_bn", [False, True])
def test_synflow_of_a_linear_chain_is_layers_times_the_path_sum(with_bn: bool) -> None:
    # R = 1^T |A2| |A1| 1 (all paths' products of absolute weights). Each layer's sum of |w * dR/dw|
    # telescopes to R, so two layers give 2R. BN must be removed (the references' bn=False), so
    # adding one changes nothing.
    torch.manual_seed(3)
    a1, a2 = nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False)
    mid = [nn.BatchNorm1d(3)] if with_bn else []
    net = nn.Sequential(a1, *mid, nn.ReLU(), a2)
    w1, w2 = a1.weight.detach().double().numpy(), a2.weight.detach().double().numpy()
    assert (w1 < 0).any() and (w2 < 0).any()  # the abs must matter
    path_sum = np.ones(2) @ np.abs(w2) @ np.abs(w1) @ np.ones(4)
    x = torch.randn(5, 4)  # only the shape is used: synflow feeds a single input of ones
    assert synflow(net, x, torch.zeros(5, dtype=torch.int64)) == pytest.approx(2 * path_sum, rel=1e-12)


def test_synflow_is_data_free_and_float64() -> None:
    net = nn.Sequential(nn.Flatten(), *[nn.Linear(50, 50, bias=False) for _ in range(40)])
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 10.0)
    x1, x2 = torch.randn(2, 50), torch.zeros(7, 50)
    y = torch.zeros(2, dtype=torch.int64)
    # path sum 50 * 500^40 = 4.5e109 > float32's max 3.4e38: finite only in float64.
    s = synflow(net, x1, y)
    assert math.isfinite(s) and s == pytest.approx(40 * 50 * 500.0**40, rel=1e-9)
    assert synflow(net, x2, torch.zeros(7, dtype=torch.int64)) == s


# --- snip, grad_norm -----------------------------------------------------------------------------


def _one_layer_gradient(net: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """dL/dW of the mean cross-entropy for logits x W^T + b: (softmax - onehot)^T x / n."""
    w, b = net.weight.detach().double().numpy(), net.bias.detach().double().numpy()
    xs = x.double().numpy()
    z = xs @ w.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y.numpy()] -= 1.0
    return p.T @ xs / len(y)


def test_snip_and_grad_norm_of_one_linear_layer_match_the_hand_gradient() -> None:
    torch.manual_seed(1)
    net = nn.Linear(6, 4)  # the bias is not a saliency layer weight: it must not count
    x, y = torch.randn(10, 6), torch.randint(0, 4, (10,))
    g = _one_layer_gradient(net, x, y)
    w = net.weight.detach().double().numpy()
    assert snip(net, x, y) == pytest.approx(np.abs(w * g).sum(), rel=1e-5)
    assert grad_norm(net, x, y) == pytest.approx(np.linalg.norm(g), rel=1e-5)


def test_grad_norm_sums_per_layer_norms() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    work = copy.deepcopy(net)
    F.cross_entropy(work(x), y).backward()
    expected = work[0].weight.grad.norm().item() + work[2].weight.grad.norm().item()
    assert grad_norm(net, x, y) == pytest.approx(expected, rel=1e-5)


# --- jacov ---------------------------------------------------------------------------------------


class _HalfSquaredNorm(nn.Module):
    """One output sum(x^2)/2 per image: its input Jacobian row is the image itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) ** 2).sum(1, keepdim=True) / 2


def test_jacov_of_uncorrelated_jacobians_is_the_maximum() -> None:
    # Zero-mean, mutually orthogonal rows: correlation = identity, all eigenvalues 1.
    x = torch.tensor([[1.0, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    expected = -3 * (math.log(1 + JACOV_EPS) + 1 / (1 + JACOV_EPS))
    assert jacov(_HalfSquaredNorm(), x, torch.zeros(3, dtype=torch.int64)) == pytest.approx(expected, rel=1e-9)


def test_jacov_of_identical_jacobians() -> None:
    # A linear model's input Jacobian is W^T 1 for every image: correlation all ones, eigenvalues n, 0, ..., 0.
    torch.manual_seed(4)
    n = 5
    x = torch.randn(n, 7)
    expected = -(math.log(n + JACOV_EPS) + 1 / (n + JACOV_EPS) + (n - 1) * (math.log(JACOV_EPS) + 1 / JACOV_EPS))
    got = jacov(nn.Linear(7, 3), x, torch.zeros(n, dtype=torch.int64))
    assert got == pytest.approx(expected, rel=1e-6)


def test_jacov_of_an_input_independent_network_is_minus_inf() -> None:
    x, y = _batch()
    assert jacov(_nb201(DISCONNECTED), x, y) == -math.inf


# --- nwot ----------------------------------------------------------------------------------------


def test_nwot_kernel_counts_agreements() -> None:
    # Codes [1,1,0,0] and [1,0,1,0]: N_A = 4 units, they agree on 2 -> K = [[4, 2], [2, 4]], det 12.
    x = torch.tensor([[1.0, 1, -1, -1], [1, -1, 1, -1]])
    assert nwot(nn.ReLU(), x, torch.zeros(2, dtype=torch.int64)) == pytest.approx(math.log(12.0), rel=1e-12)
    # Two ReLU modules on the same input: K doubles, log|K| grows by 2 log 2.
    assert nwot(nn.Sequential(nn.ReLU(), nn.Identity(), nn.ReLU()), x, torch.zeros(2, dtype=torch.int64)) == (
        pytest.approx(math.log(48.0), rel=1e-12)
    )


def test_nwot_kernel_equals_the_two_product_definition() -> None:
    g = torch.Generator().manual_seed(0)
    codes = [(torch.rand(6, 3, 5, 5, generator=g) > 0.4).float(), (torch.rand(6, 40, generator=g) > 0.5).float()]
    expected = sum(
        (c.reshape(6, -1) @ c.reshape(6, -1).T + (1 - c.reshape(6, -1)) @ (1 - c.reshape(6, -1)).T).double()
        for c in codes
    )
    np.testing.assert_array_equal(nwot_kernel(codes), expected.numpy())


def test_nwot_of_identical_codes() -> None:
    # One image: K = [[N_A]], log N_A. Two images with the same codes: K = N_A * ones is singular.
    x = torch.tensor([[1.0, -2, 3, 0.5, -1]])
    assert nwot(nn.ReLU(), x, torch.zeros(1, dtype=torch.int64)) == pytest.approx(math.log(5.0))
    x2 = torch.tensor([[1.0, -2, 3, 0.5, -1], [2.0, -1, 1, 4, -3]])  # different values, same signs
    assert nwot(nn.ReLU(), x2, torch.zeros(2, dtype=torch.int64)) == -math.inf


def test_nwot_reads_the_pre_activation_of_inplace_relus() -> None:
    x = torch.tensor([[1.0, 1, -1, -1], [1, -1, 1, -1]])
    y = torch.zeros(2, dtype=torch.int64)
    assert nwot(nn.Sequential(nn.Identity(), nn.ReLU(inplace=True)), x, y) == pytest.approx(math.log(12.0))


def test_nwot_counts_relus_off_the_output_path() -> None:
    # As NASLib (whose figures we validate against) every ReLU module counts, also on branches that
    # never reach the logits; Mellor et al.'s code kept only ReLUs reached by a backward pass. Nodes 1
    # and 2 of this cell see the image, so the codes differ per image although the output does not.
    x, y = _batch()
    assert math.isfinite(nwot(_nb201(DISCONNECTED), x, y))
    # A ReLU that only ever sees zeros (the reduction block after an all-zero cell) adds N_A to every
    # entry of K: alone it would make K singular.
    x1 = torch.zeros(3, 4)
    assert nwot(nn.ReLU(), x1, torch.zeros(3, dtype=torch.int64)) == -math.inf


# --- flops, params -------------------------------------------------------------------------------


def _counter_flops(net: nn.Module, x: torch.Tensor) -> float:
    """What ``flops`` computed before it reused layer counts: FlopCounterMode over a meta copy."""
    work = copy.deepcopy(net).to("meta").train()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        work(torch.empty(x.shape, dtype=x.dtype, device="meta"))
    return counter.get_total_flops() / x.shape[0]


def _networks() -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Stand-alone networks of every space and a toy network, with a batch of their input size."""
    x = _batch(4, hw=32)[0]
    space = NB201Space()
    nets = [(f"nb201-{i}", NB201Standalone(space.from_index(i), 8, 2), x) for i in (0, 1462, 6111, 12329, 15624)]
    nets.append(("nb201-C16-N5", NB201Standalone(space.from_index(8888), 16, 5), x))
    nets.append(("nb201-tracked-bn", _nb201(RESNET_LIKE, 8, 1, bn=BNSpec(track=True)), x))
    readme = ([[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
               [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
              ["input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"])
    nets.append(("nb101", NB101Standalone(readme, stem_channels=8, cells_per_stack=1), x))
    darts = DartsSpace().sample(np.random.default_rng(3))
    nets.append(("darts", DartsStandalone(darts, 4, 5), x))
    nets.append(("darts-pool-bn", DartsStandalone(darts, 4, 5, pool_bn=True), x))
    nets.append(("toy", ToyNet(8, 10, ("conv", "skip")), x))
    return nets


def test_flops_equal_the_flop_counter_on_every_space() -> None:
    # Layer counts are reused across calls and networks (a process-wide memo): count each network
    # twice, interleaved with the others, and once in eval mode.
    torch.manual_seed(0)
    nets = _networks()
    expected = {name: _counter_flops(net, x) for name, net, x in nets}
    y = torch.zeros(4, dtype=torch.int64)
    for _ in range(2):
        for name, net, x in nets:
            assert flops(net, x, y) == meta_flops(_scratch_copy(net), x) == expected[name], name
    name, net, x = nets[1]
    assert flops(net.eval(), x, y) == expected[name]


def test_meta_flops_puts_the_network_back() -> None:
    net = _nb201(RESNET_LIKE, bn=BNSpec(track=True))
    net.eval()
    net.cells[0].train()
    tensors = {k: (v, v.clone()) for k, v in net.state_dict(keep_vars=True).items()}
    modes = [m.training for m in net.modules()]
    meta_flops(net, _batch()[0])
    after = net.state_dict(keep_vars=True)
    assert all(after[k] is v and torch.equal(v, c) for k, (v, c) in tensors.items())
    assert [m.training for m in net.modules()] == modes
    assert all("forward" not in m.__dict__ for m in net.modules())


def test_flops_and_params_of_a_conv_layer() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(4, 3, 32, 32)  # per image: independent of the batch size
    y = torch.zeros(4, dtype=torch.int64)
    assert params(conv, x, y) == 8 * 3 * 3 * 3
    assert flops(conv, x, y) == 2 * (8 * 32 * 32) * (3 * 3 * 3)  # 2 per multiply-accumulate
    assert params(nn.Conv2d(3, 8, 3, padding=1), x, y) == 8 * 3 * 3 * 3 + 8
    assert flops(nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), torch.randn(3, 12), y[:3]) == 2 * 12 * 5


def test_nb201_flops_and_params_match_the_benchmark() -> None:
    # NB201's own counter gives 15.64737 M multiply-accumulates and 129,306 parameters for index 0.
    net = _nb201(INDEX0, channels=16, layers=5)
    x, y = _batch(2, hw=32)
    assert flops(net, x, y) / 2 / 1e6 == pytest.approx(15.64737, abs=2e-5)
    assert params(net, x, y) == 129_306 == nb201_param_count(NB201Space().parse(INDEX0))


# --- the panel -----------------------------------------------------------------------------------


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_no_proxy_changes_the_callers_network(mode: str) -> None:
    # Tracked BN statistics would move under a training-mode forward if a proxy used the caller's net.
    net = _nb201(RESNET_LIKE, bn=BNSpec(track=True))
    net.train(mode == "train")
    before = _snapshot(net)
    x, y = _batch()
    rng_before = torch.random.get_rng_state()
    for name, proxy in PROXIES.items():
        proxy(net, x, y)
        for k, v in net.state_dict().items():
            assert torch.equal(v, before[k]), f"{name} changed {k}"
        assert all(p.grad is None for p in net.parameters()), name
        assert all(m.training == (mode == "train") for m in net.modules()), name
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_score_all_is_deterministic_for_a_seed_and_leaves_the_global_rng() -> None:
    arch = NB201Space().parse(RESNET_LIKE)
    x, y = _batch()
    state = torch.random.get_rng_state()
    a = score_all(lambda: NB201Standalone(arch, 4, 1), x, y, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = score_all(lambda: NB201Standalone(arch, 4, 1), x, y, seed=7)
    c = score_all(lambda: NB201Standalone(arch, 4, 1), x, y, seed=8)
    assert a == b
    assert list(a) == list(PROXY_NAMES)
    assert a["synflow"] != c["synflow"] and a["params"] == c["params"]


def test_the_shared_forward_pass_equals_separate_passes_on_every_space() -> None:
    # One forward for any subset of nwot, jacov, snip, grad_norm: each score exactly the one of its own
    # pass on its own copy (which is what the proxy functions compute).
    y = _batch(4, hw=32)[1]
    for name, net, x in _networks():
        alone = {n: forward_proxies(_scratch_copy(net), x, y, [n])[n] for n in FORWARD_PROXIES}
        assert alone == {n: PROXIES[n](net, x, y) for n in FORWARD_PROXIES}, name
        for subset in (FORWARD_PROXIES, {"nwot", "jacov"}, {"jacov", "snip"}, {"nwot", "grad_norm"}):
            spent: dict[str, float] = {}
            both = forward_proxies(_scratch_copy(net), x, y, subset, spent=spent)
            assert both == {n: alone[n] for n in subset}, (name, subset)
            assert set(spent) == set(subset) and all(t >= 0 for t in spent.values())


def test_nwot_reuses_a_tensors_codes_only_while_it_is_unchanged() -> None:
    class TwoReads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.ReLU(), nn.ReLU(), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x.clone()
            out = self.a(h) + self.b(h)  # the same tensor twice: its codes count twice
            h.neg_()  # changed in place: new codes
            return out + self.c(h)

    x = torch.randn(6, 40)
    expected = math.log(np.linalg.det(nwot_kernel([x > 0, x > 0, x < 0])))
    assert nwot(TwoReads(), x, torch.zeros(6, dtype=torch.int64)) == pytest.approx(expected, rel=1e-9)


# Scores of the panel as computed before it shared passes (one copy and one pass per proxy, flops by
# FlopCounterMode on a meta copy), NB201 at C=8, N=1, seed 5, on 16 seeded random images. The shared
# paths reproduced them bit for bit on the machine that computed them; the tolerance is for another CPU's
# float32 rounding (bench/proxies_cost.py --reference checks real scores at the benchmark's size).
PINNED = {
    RESNET_LIKE: {"nwot": 174.0773073467725, "jacov": -16.076810939199234, "synflow": 17908948556338.945,
                  "params": 79778.0, "flops": 21807744.0, "grad_norm": 7.254869437514198, "snip": 11.394096456024503},
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|": {
        "nwot": 171.51415945189504, "jacov": -16.100447896724184, "synflow": 8847164956.314468,
        "params": 46066.0, "flops": 11977344.0, "grad_norm": 6.331808930665817, "snip": 9.976384984939896},
}


@pytest.mark.parametrize("arch", list(PINNED))
def test_score_all_equals_the_proxies_run_one_by_one_and_the_pinned_scores(arch: str) -> None:
    parsed = NB201Space().parse(arch)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    timings: dict[str, float] = {}
    panel = score_all(lambda: NB201Standalone(parsed, 8, 1), x, y, seed=5, timings=timings)
    assert list(panel) == list(PROXY_NAMES) and set(timings) == {"build", *PROXY_NAMES}
    torch.manual_seed(5)
    net = NB201Standalone(parsed, 8, 1)
    assert panel == {name: proxy(net, x, y) for name, proxy in PROXIES.items()}
    assert panel == pytest.approx(PINNED[arch], rel=1e-4, abs=0)
    # Any subset, in any order, gives the same scores in the order asked for.
    some = score_all(lambda: NB201Standalone(parsed, 8, 1), x, y, ["synflow", "snip", "flops", "nwot"], seed=5)
    assert list(some) == ["synflow", "snip", "flops", "nwot"] and some == {n: panel[n] for n in some}


def test_score_all_fused_gradients_equal_the_separate_proxies() -> None:
    arch = NB201Space().parse(RESNET_LIKE)
    x, y = _batch()
    timings: dict[str, float] = {}
    both = score_all(lambda: NB201Standalone(arch, 4, 1), x, y, ["snip", "grad_norm"], seed=3, timings=timings)
    alone = {n: score_all(lambda: NB201Standalone(arch, 4, 1), x, y, [n], seed=3)[n] for n in ("snip", "grad_norm")}
    assert both == alone
    assert set(timings) == {"build", "snip", "grad_norm"} and all(t >= 0 for t in timings.values())


def test_proxy_names() -> None:
    assert resolve_names(None) == resolve_names("all") == PROXY_NAMES
    assert resolve_names("none") == ()
    assert resolve_names("snip, nwot") == ("snip", "nwot")
    with pytest.raises(SupernetError, match="valid proxies: nwot, jacov"):
        resolve_names(["naswot"])
    assert score_all(lambda: nn.Linear(2, 2), torch.randn(2, 2), torch.zeros(2, dtype=torch.int64), "none") == {}


def test_every_proxy_is_finite_on_a_real_nb201_network() -> None:
    arch = NB201Space().parse(RESNET_LIKE)
    x, y = _batch(16, hw=32)
    scores = score_all(lambda: NB201Standalone(arch, 8, 1), x, y, seed=0)
    assert set(scores) == set(PROXY_NAMES)
    assert all(math.isfinite(v) for v in scores.values()), scores
    assert all(v > 0 for k, v in scores.items() if k != "jacov"), scores
