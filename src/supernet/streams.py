"""Every random stream of the package, named in one place.

All randomness is derived from ``(seed, stream, ...)`` so that runs, pools and resumed epochs are
reproducible. The numbers are the ones runs were created with: changing one changes run contents
(pools, sampled paths), so they are fixed here and pinned by tests.

Two families:

* ``numpy.random.default_rng([seed, STREAM, epoch])`` and the super-net generators' reseeding per epoch:
  ``TRAIN``, ``VALID``, ``EVAL``;
* architecture draws from a table (``pools.draw_pool``): ``default_rng([seed, POOL, sub])`` where ``sub``
  tells the draws apart: ``EVAL_POOL`` (the evaluation pool), ``subspace_pool(K)`` (Baseline-v2's pool of
  sub-space K), ``SUBSAMPLE`` (the architectures of ``space.subsample``), ``SEARCH`` (Random-NAS samples).
"""

from __future__ import annotations

TRAIN = 1  # per-epoch path samples and super-net generator (dropout masks, NB101 shuffle) in training
VALID = 2  # the same for the per-epoch validation
POOL = 3  # every draw of architectures from a ground-truth table
EVAL = 4  # super-net generator at evaluation
PROXY = 5  # default_rng([evaluation.proxy_seed, PROXY]): the proxies' batch of training images
LANDMARK = 6  # per-epoch landmark pairs in training (apart from TRAIN, so the sampled paths do not move)
RECALIBRATE = 7  # default_rng([seed, RECALIBRATE]): the training images of bn=recalibrate

EVAL_POOL = 0
SUBSAMPLE = 100
SEARCH = 1000
LANDSCAPE = 101  # default_rng([seed, LANDSCAPE]): the landscape's directions and architectures
LANDMARKS = 102  # the landmark architectures of protocol.landmarks (a draw_pool stream, outside the pool)

FIXED_ORDER_SEED = 0  # orders evaluation images identically for every run and seed


def subspace_pool(k: int) -> int:
    """The pool stream of sub-space ``k`` (1-5) in a per-sub-space evaluation."""
    return 1 + k
