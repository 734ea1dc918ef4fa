"""How much a super-net's ranking moves between its last epochs (issue 14): each kept snapshot of a run
(``evaluation.ensemble=K`` keeps the last K epochs' weights) scored alone on the run's pool, their mean (the
temporal ensemble), and how well the epochs' accuracies agree.

    python bench/epoch_noise.py --out-dir /tmp/study RUN_ID [--every 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from common import machine
from supernet.data.setup import eval_batches, load_dataset
from supernet.evaluate.evaluator import supernet_scores
from supernet.evaluate.measures import kendall_tau, sparse_kendall_tau
from supernet.run import SNAPSHOTS
from supernet.store import ResultStore
from supernet.trained import load_trained


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_id")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--every", type=int, default=1, help="score every N-th architecture of the pool (speed)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    store = ResultStore(f"{args.out_dir}/supernet.db")
    run, rt, model, _ = load_trained(store, args.run_id, ["evaluation.ensemble=1"])
    run.use_stored_pool()
    batches = eval_batches(run.cfg, load_dataset(run.cfg), rt)
    picked = list(range(0, len(run.archs), args.every))
    archs = [run.archs[i] for i in picked]
    keys = [run.pool[i] for i in picked]
    truth = np.asarray(run.kit.gt.accuracy(keys, split=run.kit.gt_split, dataset=run.kit.gt_dataset), dtype=float)
    snapshots = sorted((run.dir / SNAPSHOTS).glob("epoch-*.pt"), reverse=True)
    if not snapshots:
        raise SystemExit(f"run {run.id} kept no snapshots (train it with evaluation.ensemble=K)")
    accs = []
    print(f"{len(archs)} architectures of the pool, {sum(len(y) for _, y in batches)} test images, bn=batch")
    for path in snapshots:
        model.load_state_dict(torch.load(path, weights_only=True))
        acc, _ = supernet_scores(model, archs, batches, "batch", runtime=rt)
        accs.append(acc)
        print(f"{path.stem}: s-KdT {sparse_kendall_tau(acc, truth):.3f}  KdT {kendall_tau(acc, truth):.3f}  "
              f"mean acc {acc.mean():.2f}", flush=True)
    mean = np.mean(accs, axis=0)
    print(f"mean of the {len(accs)}: s-KdT {sparse_kendall_tau(mean, truth):.3f}  KdT {kendall_tau(mean, truth):.3f}")
    for k in range(1, len(accs)):
        print(f"Pearson of {snapshots[0].stem} with {snapshots[k].stem} over architectures: "
              f"{np.corrcoef(accs[0], accs[k])[0, 1]:.4f}")


if __name__ == "__main__":
    main()
