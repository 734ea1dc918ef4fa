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
- **The caller's network is never changed.** Every proxy works on a deep copy in ``train()`` mode:
  copying a benchmark-size network costs milliseconds, far less than a backward pass, and it leaves
  weights, ``.grad``, BN running statistics and train/eval modes of the caller exactly as they were.
- **Batch statistics in BN.** The references score networks in training mode, so BN normalises with
  the batch's statistics (the project's ``SwitchableBatchNorm`` does so in training mode whatever its
  evaluation setting, and a copy in train mode never touches the caller's tracked statistics).
- **Deterministic.** No proxy draws random numbers; with a seeded network (see ``panel.score_all``)
  and a fixed batch the score is reproducible on one machine.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Layers whose weights the gradient saliencies count. The references count exactly these (their
# ``get_layer_metric_array``): the layers a pruner would prune, never BN affine parameters or biases.
SALIENCY_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)

# Added to every eigenvalue in jacov, as in Mellor et al. v1 / Abdelfattah et al.: it keeps log and
# 1/v finite for the (near-)zero eigenvalues of a rank-deficient correlation matrix.
JACOV_EPS = 1e-5


def _scratch_copy(net: nn.Module) -> nn.Module:
    """A private copy in training mode, so that no proxy can leave a trace on the caller's network."""
    work = copy.deepcopy(net)
    work.train()
    for p in work.parameters():
        p.grad = None
    return work


def _saliency_weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, SALIENCY_LAYERS)]


def loss_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights of the saliency layers of a scratch copy and dL/dW of the mean cross-entropy on (x, y).

    ``allow_unused``: a layer the output does not depend on has no gradient; the references count
    it as zero saliency, and so do we.
    """
    work = _scratch_copy(net)
    weights = _saliency_weights(work)
    with torch.enable_grad():
        loss = F.cross_entropy(work(x), y)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return weights, [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)]


def snip_from_gradients(weights: list[torch.Tensor], grads: list[torch.Tensor]) -> float:
    """SNIP from the saliency layers' weights and loss gradients (shared with ``grad_norm`` by the panel)."""
    with torch.no_grad():
        return float(sum((w * g).abs().sum(dtype=torch.float64) for w, g in zip(weights, grads, strict=True)))


def grad_norm_from_gradients(grads: list[torch.Tensor]) -> float:
    """grad_norm from the saliency layers' loss gradients (shared with ``snip`` by the panel)."""
    with torch.no_grad():
        return float(sum(g.double().norm() for g in grads))


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP (Lee et al. 2019) summed over the network: sum over conv/linear weights of |w * dL/dw|.

    The references obtain it as the gradient of the loss w.r.t. a multiplicative mask of ones on each
    weight, which by the chain rule equals w * dL/dw; computing that product directly needs no change
    to the layers' forward methods. L is the mean cross-entropy of the batch, BN on batch statistics.
    """
    return snip_from_gradients(*loss_gradients(net, x, y))


def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of the Euclidean norm of that layer's dL/dW.

    The references sum per-layer norms (not the norm of the whole gradient vector), so a network with
    more layers scores higher at equal per-layer gradients; we keep that, as the published figures
    were measured with it.
    """
    return grad_norm_from_gradients(loss_gradients(net, x, y)[1])


def _without_bn(net: nn.Module) -> None:
    """Replace every BN layer by an identity, in place (used on a scratch copy only).

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
    work = _scratch_copy(net)
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
    del y
    work = _scratch_copy(net)
    inputs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = work(inputs)
        (jac,) = torch.autograd.grad(out, inputs, grad_outputs=torch.ones_like(out), allow_unused=True)
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

    With s = 2c - 1 in {-1, +1}, s_i . s_j = agreements - disagreements = 2 K_ij - N_A, so one
    product gives K = (s s^T + N_A) / 2 instead of the references' two (c c^T and (1-c)(1-c)^T).
    The product runs in float32, exact here: every partial sum is an integer of magnitude at most
    N_A, below 2^24 for one layer of a CIFAR network (float64 beyond that).
    """
    n = code.shape[0]
    s = code.reshape(n, -1).to(torch.float32) * 2.0 - 1.0
    if s.shape[1] >= 2**24:
        s = s.double()
    return ((s @ s.T).double().cpu() + s.shape[1]) / 2.0


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
    del y
    work = _scratch_copy(net)
    n = x.shape[0]
    k = torch.zeros((n, n), dtype=torch.float64)
    seen = [0]

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        k.add_(_agreement(inputs[0].detach() > 0))
        seen[0] += 1

    handles = [m.register_forward_pre_hook(record) for m in work.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            work(x)
    finally:
        for h in handles:
            h.remove()
    if not seen[0]:
        return -math.inf
    return nwot_logdet(k.numpy())


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
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        work(torch.empty(x.shape, dtype=x.dtype, device="meta"))
    return counter.get_total_flops() / x.shape[0]


def params(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Trainable parameters (BN affine parameters included), as NB201 and the project count them."""
    del x, y
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))
