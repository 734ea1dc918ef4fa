"""Training-free proxies: one score per untrained stand-alone network and one batch of images.

Definitions follow Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021; the
``foresight`` package of their code) and Mellor et al., "Neural Architecture Search without Training"
(ICML 2021), in the form NASLib evaluates them, because that is the implementation behind the
published NAS-Bench-Suite-Zero correlations this panel is validated against.

Conventions shared by every proxy:

- **Higher is predicted better.** None of the published proxies needs a sign flip for that: synflow,
  snip and grad_norm are saliency sums, jacov is already the negated eigenvalue penalty, nwot a
  log-determinant, flops and params sizes; all correlate positively with accuracy on NASBench-201.
- **Degenerate networks score ``-inf``.** Where the quantity is undefined (a singular NASWOT kernel,
  a Jacobian row with zero variance because the output does not depend on the input), the network
  computes nothing useful, so it goes to the bottom of any ranking instead of producing a NaN that
  silently shuffles it. NASLib maps these cases to -1e8, the same ordering.
- **The caller's network is never changed.** Every proxy function works on a deep copy in ``train()``
  mode: copying a benchmark-size network costs milliseconds, far less than a backward pass, and it
  leaves weights, ``.grad``, BN running statistics and train/eval modes of the caller exactly as they
  were. The panel (``panel.score_all``) builds its own network and needs no copy: it runs the proxies
  that only read the network first (``forward_proxies``, ``meta_flops``) and synflow, which rewrites
  the weights, last (``synflow_in_place``), with the same results as the copying functions (tested).
- **Batch statistics in BN.** The references score networks in training mode, so BN normalises with
  the batch's statistics (the project's ``SwitchableBatchNorm`` does so in training mode whatever its
  evaluation setting, and a copy in train mode never touches the caller's tracked statistics).
- **Deterministic.** No proxy draws random numbers; with a seeded network (see ``panel.score_all``)
  and a fixed batch the score is reproducible on one machine.
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from supernet.nn.norm import SwitchableBatchNorm

# Layers whose weights the gradient saliencies count. The references count exactly these (their
# ``get_layer_metric_array``): the layers a pruner would prune, never BN affine parameters or biases.
SALIENCY_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)

# Added to every eigenvalue in jacov, as in Mellor et al. v1 / Abdelfattah et al.: it keeps log and
# 1/v finite for the (near-)zero eigenvalues of a rank-deficient correlation matrix.
JACOV_EPS = 1e-5

# The proxies that read one training-mode forward pass of the batch: ``forward_proxies`` serves any
# subset of them from a single pass.
FORWARD_PROXIES: frozenset[str] = frozenset({"nwot", "jacov", "snip", "grad_norm"})


def _scratch_copy(net: nn.Module) -> nn.Module:
    """A private copy in training mode, so that no proxy can leave a trace on the caller's network."""
    work = copy.deepcopy(net)
    return make_private(work)


def make_private(net: nn.Module) -> nn.Module:
    """Put a network nobody else holds into the state every proxy expects (training mode, no
    ``.grad``), in place; ``_scratch_copy`` does the same to a copy."""
    net.train()
    for p in net.parameters():
        p.grad = None
    return net


def _saliency_weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, SALIENCY_LAYERS)]


def _weight_gradients(
    work: nn.Module, out: torch.Tensor, y: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The saliency layers' weights and dL/dW of the mean cross-entropy of the logits ``out``.

    ``allow_unused``: a layer the output does not depend on has no gradient; the references count
    it as zero saliency, and so do we.
    """
    weights = _saliency_weights(work)
    with torch.enable_grad():
        loss = F.cross_entropy(out, y)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return weights, [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)]


def loss_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights of the saliency layers of a scratch copy and dL/dW of the mean cross-entropy on (x, y)."""
    work = _scratch_copy(net)
    with torch.enable_grad():
        return _weight_gradients(work, work(x), y)


def snip_from_gradients(weights: list[torch.Tensor], grads: list[torch.Tensor]) -> float:
    """SNIP from the saliency layers' weights and loss gradients (shared with ``grad_norm``)."""
    with torch.no_grad():
        return float(sum((w * g).abs().sum(dtype=torch.float64) for w, g in zip(weights, grads, strict=True)))


def grad_norm_from_gradients(grads: list[torch.Tensor]) -> float:
    """grad_norm from the saliency layers' loss gradients (shared with ``snip``)."""
    with torch.no_grad():
        return float(sum(g.double().norm() for g in grads))


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP (Lee et al. 2019) summed over the network: sum over conv/linear weights of |w * dL/dw|.

    The references obtain it as the gradient of the loss w.r.t. a multiplicative mask of ones on each
    weight, which by the chain rule equals w * dL/dw; computing that product directly needs no change
    to the layers' forward methods. L is the mean cross-entropy of the batch, BN on batch statistics.
    """
    return forward_proxies(_scratch_copy(net), x, y, ("snip",))["snip"]


def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of the Euclidean norm of that layer's dL/dW.

    The references sum per-layer norms (not the norm of the whole gradient vector), so a network with
    more layers scores higher at equal per-layer gradients; we keep that, as the published figures
    were measured with it.
    """
    return forward_proxies(_scratch_copy(net), x, y, ("grad_norm",))["grad_norm"]


def _without_bn(net: nn.Module) -> None:
    """Replace every BN layer by an identity, in place (used on a private network only).

    Synflow is meant to measure the flow through the weights alone on a single input of ones;
    batch-statistics BN on a batch of one would normalise each channel to zero. The references copy
    the network with BN turned into a no-op for synflow (their ``bn=False``).
    """
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _without_bn(child)


def synflow(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SynFlow (Tanaka et al. 2020) as a proxy: sum over conv/linear weights of |w * dR/dw|.

    R is the sum of the logits of the network with every parameter replaced by its absolute value,
    BN removed, run on one input of ones of the images' shape. With non-negative weights and input
    every ReLU passes everything, so R is the sum over input-output paths of the product of absolute
    weights, and the score is data-free (``x`` only gives the shape, ``y`` is unused). It is
    computed in float64 as the references do: products over ~20 layers under- or overflow float32.
    The references return the raw sum (NASLib logs it afterwards, a monotone change that leaves every
    rank correlation as it is); we return the raw sum.
    """
    del y
    return synflow_in_place(_scratch_copy(net), x)


def synflow_in_place(work: nn.Module, x: torch.Tensor) -> float:
    """``synflow`` of a private network in training mode, which it rewrites (no BN, float64, absolute
    weights): the panel runs it last, on the network it built, instead of on a copy."""
    _without_bn(work)
    work.double()
    with torch.no_grad():
        for t in work.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    weights = _saliency_weights(work)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    with torch.enable_grad():
        total = work(ones).sum()
        grads = torch.autograd.grad(total, weights, allow_unused=True)
    with torch.no_grad():
        return float(sum((w * g).abs().sum() for w, g in zip(weights, grads, strict=True) if g is not None))


def jacov(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (Mellor et al., NASWOT v1; the ``jacob_cov`` of Abdelfattah et al.).

    J holds, per image, the gradient of the sum of its logits w.r.t. the input pixels (one backward
    of the summed outputs, BN on batch statistics, as in the references). With C the correlation
    matrix of the rows of J and v its eigenvalues, the score is -sum(log(v + 1e-5) + 1/(v + 1e-5)):
    maximal when the per-image Jacobians are uncorrelated (v all 1), i.e. when the network tells
    the images apart at initialisation. ``eigvalsh`` is used since C is symmetric (the references'
    general ``eig`` returns the same eigenvalues up to rounding). A zero-variance row (output
    independent of the input) leaves C undefined: ``-inf``.
    """
    return forward_proxies(_scratch_copy(net), x, y, ("jacov",))["jacov"]


def _jacov_score(jac: torch.Tensor | None) -> float:
    if jac is None:  # the output does not depend on the input at all
        return -math.inf
    rows = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(rows)
    if not np.all(np.isfinite(corr)):
        return -math.inf
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + JACOV_EPS) + 1.0 / (v + JACOV_EPS)))


def _agreement(code: torch.Tensor) -> torch.Tensor:
    """One layer's N_A - d_H matrix of a batch's binary codes (any shape with the batch first).

    With G = c c^T (units active in both images) and r the number of active units per image, the
    units inactive in both are N_A - r_i - r_j + G_ij, so K = 2G - r_i - r_j + N_A: one product
    instead of the references' two (c c^T and (1-c)(1-c)^T). The product and the row sums run in
    float32, exact here: every partial sum is an integer of at most N_A, below 2^24 for one layer of a
    CIFAR network (float64 beyond that); the rest is integer arithmetic in float64.
    """
    n = code.shape[0]
    c = code.reshape(n, -1).to(torch.float32)
    if c.shape[1] >= 2**24:
        c = c.double()
    both = (c @ c.T).double().cpu()
    active = c.sum(1).double().cpu()
    return 2.0 * both - active[:, None] - active[None, :] + c.shape[1]


def nwot_kernel(codes: list[torch.Tensor]) -> np.ndarray:
    """K = sum over layers of N_A - d_H: per pair of images, the number of units on which their binary
    codes agree (both active plus both inactive). Exposed for tests; ``nwot`` accumulates the same sum
    layer by layer during the forward pass, so the codes are never all held at once."""
    n = codes[0].shape[0]
    k = torch.zeros((n, n), dtype=torch.float64)
    for c in codes:
        k += _agreement(c)
    return k.numpy()


def nwot_logdet(k: np.ndarray) -> float:
    """log|K| via slogdet; a singular K (two images with identical codes everywhere, or any
    rank deficiency) has no log-determinant: ``-inf``, the bottom of the ranking. K is a Gram
    matrix, so its determinant is never negative; a negative sign can only be rounding on a
    numerically singular K and is treated the same way."""
    sign, logdet = np.linalg.slogdet(k)
    if sign <= 0:
        return -math.inf
    return float(logdet)


def nwot(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT (Mellor et al., ICML 2021, v2 of the paper): log|K_H| of the batch's activation codes.

    Each ``nn.ReLU`` module contributes the binary code "input > 0" of every unit for every image
    (the sign of the pre-activation, equivalently "ReLU output > 0"); the hook reads the input before
    the ReLU runs, so in-place ReLUs are handled. As in NASLib every ReLU module call counts, so a node
    read by three convolutions contributes three times, and the forward pass uses BN on batch
    statistics. Every ReLU module counts, also one on a branch that never reaches the logits: NASLib
    dropped the original code's filter (only ReLUs reached by a backward pass), and the published
    NAS-Bench-Suite-Zero figures were measured without it. Functional ReLUs (``F.relu``) are not
    seen: the benchmark networks use modules.
    """
    return forward_proxies(_scratch_copy(net), x, y, ("nwot",))["nwot"]


class _CodeKernel:
    """nwot's forward pre-hook: adds each ReLU call's agreement matrix to K as the forward runs.

    ReLUs reading the same tensor (NB201: one per op reading a node) see the same codes, so the matrix
    is computed once per tensor and added again for each further call: its entries are integers, so
    the sum is exactly the one of recomputing it. A tensor is recognised by a weak reference (no
    activation is kept alive) and its version counter (an in-place change, e.g. by an in-place ReLU,
    means new codes).
    """

    def __init__(self, n: int, clock: Callable[[], float]) -> None:
        self.k = torch.zeros((n, n), dtype=torch.float64)
        self.calls = 0
        self.seconds = 0.0
        self._clock = clock
        self._seen: dict[int, tuple[weakref.ref, int, torch.Tensor]] = {}

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        start = self._clock()
        t = inputs[0]
        hit = self._seen.get(id(t))
        if hit is not None and hit[0]() is t and hit[1] == t._version:
            agreement = hit[2]
        else:
            agreement = _agreement(t.detach() > 0)
            self._seen[id(t)] = (weakref.ref(t), t._version, agreement)
        self.k.add_(agreement)
        self.calls += 1
        self.seconds += self._clock() - start


def forward_proxies(
    work: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    names: Iterable[str],
    clock: Callable[[], float] = time.perf_counter,
    spent: MutableMapping[str, float] | None = None,
) -> dict[str, float]:
    """nwot, jacov, snip and grad_norm (those of them in ``names``) of ``work`` from one forward pass.

    ``work`` must be private and in training mode (``_scratch_copy``, or the panel's own network): its
    weights and ``.grad`` are left as they are, its BN running statistics move as in any training-mode
    forward. The pass runs with gradients only if jacov, snip or grad_norm is asked for, on an input
    that requires gradients only if jacov is; nwot's hooks read the ReLU inputs as it goes. jacov
    then takes the input gradient of the summed logits, snip and grad_norm the weight gradient of
    the mean cross-entropy of the same logits (two backward passes of one graph): each score is
    the one a separate pass computes (tested). ``spent`` receives seconds by ``clock`` per proxy: the
    forward pass split evenly between the proxies asked for (nwot's hooks charged to nwot), each
    backward pass to its own proxies (snip and grad_norm halve theirs).
    """
    wanted = FORWARD_PROXIES.intersection(names)
    if not wanted:
        return {}
    gradients = wanted - {"nwot"}
    weight_grads = wanted & {"snip", "grad_norm"}
    charge = dict.fromkeys(wanted, 0.0)
    start = clock()
    codes = _CodeKernel(x.shape[0], clock) if "nwot" in wanted else None
    handles = [] if codes is None else [m.register_forward_pre_hook(codes) for m in work.modules() if isinstance(m, nn.ReLU)]
    inputs = x.detach().clone().requires_grad_(True) if "jacov" in wanted else x
    try:
        with torch.set_grad_enabled(bool(gradients)):
            out = work(inputs)
    finally:
        for h in handles:
            h.remove()
    forward = clock() - start
    scores: dict[str, float] = {}
    if codes is not None:
        forward -= codes.seconds
        start = clock()
        scores["nwot"] = nwot_logdet(codes.k.numpy()) if codes.calls else -math.inf
        charge["nwot"] += codes.seconds + clock() - start
    for name in wanted:
        charge[name] += forward / len(wanted)
    if "jacov" in wanted:
        start = clock()
        with torch.enable_grad():
            (jac,) = torch.autograd.grad(
                out, inputs, grad_outputs=torch.ones_like(out), allow_unused=True, retain_graph=bool(weight_grads)
            )
        scores["jacov"] = _jacov_score(jac)
        charge["jacov"] += clock() - start
    if weight_grads:
        start = clock()
        weights, grads = _weight_gradients(work, out, y)
        if "snip" in wanted:
            scores["snip"] = snip_from_gradients(weights, grads)
        if "grad_norm" in wanted:
            scores["grad_norm"] = grad_norm_from_gradients(grads)
        for name in weight_grads:
            charge[name] += (clock() - start) / len(weight_grads)
    if spent is not None:
        for name, seconds in charge.items():
            spent[name] = spent.get(name, 0.0) + seconds
    return scores


# --- flops -----------------------------------------------------------------------------------------

# Leaf modules whose forward is a function of their type, their plain attributes (sizes, strides, eps,
# modes), the shapes of their parameters and buffers and the shapes of their inputs: torch.nn's own
# layers and the project's BN. ``_count_flops`` counts each distinct call of such a layer once and
# reuses its count and output shape for every other call with the same signature.
_MEMO_EXTRA_TYPES: tuple[type[nn.Module], ...] = (SwitchableBatchNorm,)
_MODULE_INTERNALS = frozenset(nn.Module().__dict__)
_PLAIN = (type(None), bool, int, float, str)
_FLOP_MEMO: dict[tuple, tuple[int, tuple | None]] = {}
_FLOP_MEMO_MAX = 1 << 14


def _plain(value: object) -> object:
    """``value`` as a hashable of plain values, or ``_Unplain`` when it holds anything else."""
    if isinstance(value, _PLAIN):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        items = tuple(_plain(v) for v in value)
        return _Unplain if _Unplain in items else (type(value).__name__, items)
    return _Unplain


class _Unplain:
    pass


def _tensor_signature(t: torch.Tensor | None) -> tuple | None:
    if t is None:
        return None
    return (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype, t.device.type, t.requires_grad, t._is_view())


def _leaf_signature(m: nn.Module) -> tuple | None:
    """What the output and counted FLOPs of a call of ``m`` depend on besides its inputs, or ``None``
    when ``m`` is not a leaf whose call can be reused (a container, a custom layer, hooks on it, any
    attribute that is not a plain value)."""
    kind = type(m)
    if m._modules or not (kind.__module__.startswith("torch.nn.modules.") or kind in _MEMO_EXTRA_TYPES):
        return None
    if m._forward_hooks or m._forward_pre_hooks or "forward" in m.__dict__:
        return None
    attrs = tuple(sorted((k, _plain(v)) for k, v in m.__dict__.items() if k not in _MODULE_INTERNALS))
    if any(v is _Unplain for _, v in attrs):
        return None
    tensors = tuple((k, _tensor_signature(t)) for store in (m._parameters, m._buffers) for k, t in store.items())
    return (kind, m.training, attrs, tensors)


def _memo_forward(forward: Callable, signature: tuple, counter: FlopCounterMode, reused: list[int]) -> Callable:
    """``forward`` of a leaf with ``signature``, through the process-wide memo of its calls' FLOPs and
    output shapes (``_count_flops``); the reused FLOPs are added to ``reused[0]``."""

    def call(*args: object, **kwargs: object) -> object:
        if kwargs or not all(isinstance(a, torch.Tensor) for a in args):
            return forward(*args, **kwargs)
        key = (signature, torch.is_grad_enabled(), tuple(_tensor_signature(a) for a in args))
        hit = _FLOP_MEMO.get(key)
        if hit is not None:
            reused[0] += hit[0]
            if hit[1] is None:
                return args[0]
            shape, stride, dtype, device = hit[1]
            return torch.empty_strided(shape, stride, dtype=dtype, device=device)
        before = counter.get_total_flops()
        out = forward(*args)
        if isinstance(out, torch.Tensor) and not out.requires_grad:
            if out is args[0]:
                template = None
            elif out._is_view() or out.storage_offset():
                return out
            else:
                template = (tuple(out.shape), out.stride(), out.dtype, out.device)
            if len(_FLOP_MEMO) >= _FLOP_MEMO_MAX:
                _FLOP_MEMO.clear()
            _FLOP_MEMO[key] = (counter.get_total_flops() - before, template)
        return out

    return call


def _count_flops(work: nn.Module, shape: torch.Size, dtype: torch.dtype) -> int:
    """``FlopCounterMode``'s total for one forward of a meta-device network on a meta input.

    The meta kernels of BN and ReLU run as Python decompositions and cost most of the trace, so a leaf
    layer that ``_leaf_signature`` vouches for runs once per distinct signature (in this process);
    later calls add the FLOPs it counted then and return an empty meta tensor of its output's shape and
    strides. Everything else (containers' own code, custom layers) runs under the counter as before,
    so the total is the counter's (tested against it on NB201, NB101, DARTS and a toy network)."""
    counter = FlopCounterMode(display=False)
    reused = [0]
    patched = []
    try:
        for m in work.modules():
            signature = _leaf_signature(m)
            if signature is not None:
                # An instance attribute, not Module.__setattr__ (slow; "forward" is no parameter,
                # buffer or submodule name), taken away again below.
                m.__dict__["forward"] = _memo_forward(m.forward, signature, counter, reused)
                patched.append(m)
        with torch.no_grad(), counter:
            work(torch.empty(shape, dtype=dtype, device="meta"))
    finally:
        for m in patched:
            del m.__dict__["forward"]
    return counter.get_total_flops() + reused[0]


@contextmanager
def _on_meta(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in training mode with every parameter and buffer swapped for a meta tensor of its shape,
    as ``net.to("meta")`` converts them, and put back afterwards: a meta view without a copy."""
    modules = list(net.modules())
    modes = [m.training for m in modules]
    swapped: list[tuple[dict, str, torch.Tensor]] = []
    converted: dict[int, torch.Tensor] = {}
    try:
        for m in modules:
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is None:
                        continue
                    meta = converted.get(id(t))
                    if meta is None:
                        meta = t.to("meta")
                        if isinstance(t, nn.Parameter):
                            meta = nn.Parameter(meta, t.requires_grad)
                        converted[id(t)] = meta
                    swapped.append((store, name, t))
                    store[name] = meta
        if not all(modes):
            net.train()
        yield net
    finally:
        for store, name, t in reversed(swapped):
            store[name] = t
        if not all(modes):
            for m, mode in zip(modules, modes, strict=True):
                m.training = mode


def flops(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Floating-point operations of one forward pass per image, as ``FlopCounterMode`` counts them.

    FlopCounterMode counts matrix products and convolutions, 2 per multiply-accumulate; pooling, BN,
    additions and activations count zero. It runs on a copy on the meta device: nothing is computed,
    and the project's CPU-only ``AvgPool3x3`` (a depthwise convolution on the CPU, the pooling kernel
    elsewhere) takes its pooling path there, so a pooling op counts zero whatever device the caller
    uses. NASLib reports tensorwatch's counts instead (which include pooling); the two differ by the
    pooling share, a few percent of NB201 networks.
    """
    del y
    work = copy.deepcopy(net).to("meta")
    work.train()
    return _count_flops(work, x.shape, x.dtype) / x.shape[0]


def meta_flops(work: nn.Module, x: torch.Tensor) -> float:
    """``flops`` of a private network without copying it: its tensors are swapped for meta tensors
    for the count and put back (``_on_meta``), so it must be one no one else uses meanwhile."""
    with _on_meta(work):
        return _count_flops(work, x.shape, x.dtype) / x.shape[0]


def params(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Trainable parameters (BN affine parameters included), as NB201 and the project count them."""
    del x, y
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))
