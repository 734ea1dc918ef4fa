"""NASBench-101: cells of up to 7 vertices and 9 edges, 423,624 unique; the shipped tables hold
NASLib's 500 validation records (292 cells) and 30 official records; the official file converts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from supernet.config import Config
from supernet.errors import SupernetError
from supernet.factors import Level, bn_levels, levels
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.plugins.common import bn_spec, describe_each, gt_column, table_spec, truth_row
from supernet.registry import ConvertFlags, SpaceKit, SpacePlugin, register


def build(cfg: Config) -> SpaceKit:
    import torch

    from supernet.nn.ops import BNSpec
    from supernet.spaces.nasbench101 import NB101Space
    from supernet.supernets.nasbench101 import NB101Standalone, NB101SuperNet, nb101_param_count

    s = cfg.supernet
    path = gt_path(table_spec(cfg, "nasbench101"), "nb101-val500")
    gt = GroundTruth.load(path)
    dataset, split = gt_column(cfg, gt, "cifar10/test")
    bn = bn_spec(cfg)
    space = NB101Space()
    if cfg.space.subspace is not None:
        space = space.subspace(cfg.space.subspace)
    return SpaceKit(
        space=space,
        gt=gt,
        gt_dataset=dataset,
        gt_split=split,
        build_supernet=lambda: NB101SuperNet(
            s.channels, 3, s.layers, s.num_classes, channel_strategy=s.channel_strategy, wsbn=s.wsbn,
            ofa_kernel=s.ofa_kernel, bn=bn, path_dropout=s.path_dropout, global_dropout=s.global_dropout,
            generator=torch.Generator(),
        ),
        param_count=lambda c: nb101_param_count(c),  # NB101 trains stem 128, 3 stacks of 3 cells
        arch_of=cells_of(path),
        build_standalone=lambda c: NB101Standalone(c, num_classes=s.num_classes),
        build_final=lambda c, f: NB101Standalone(c, num_classes=s.num_classes, bn=BNSpec(track=True)),
        subspace_of=lambda c: c.output_inputs,
        row_subspaces=lambda: output_inputs(path, gt.keys()),
    )


def output_inputs(path: Path, keys: list[str]) -> np.ndarray:
    """The sub-space label (interior vertices feeding the output) of every table row, from its arrays."""
    from supernet.groundtruth.nb101_convert import load_nb101_details

    d = load_nb101_details(path)
    if d.keys.tolist() != keys:
        raise SupernetError(f"{path}: its cell arrays are not in the order of its keys")
    rows = np.arange(len(d.keys))
    last = d.num_vertices.astype(np.int64) - 1  # the output vertex of each (padded) matrix
    # Interior vertices feeding the output: column `last`, rows 1 .. last-1 (rows beyond are padding zeros).
    column = d.matrix[rows[:, None], np.arange(d.matrix.shape[1])[None, :], last[:, None]]
    return column[:, 1:].sum(axis=1)


def cells_of(path: Path) -> Callable[[str], Any]:
    """Cells straight from the table's stored matrices: no enumeration of the whole space needed."""
    from supernet.groundtruth.nb101_convert import load_nb101_details
    from supernet.spaces.nasbench101 import make_cell

    details = load_nb101_details(path)
    rows: dict[str, int] = {}
    cache: dict[str, Any] = {}

    def arch_of(key: str) -> Any:
        if key not in cache:
            if not rows:
                rows.update((k, i) for i, k in enumerate(details.keys.tolist()))
            if key not in rows:
                raise SupernetError(f"cell {key} is not in ground-truth table {path}")
            r = rows[key]
            n = int(details.num_vertices[r])
            ops = ["input", *(details.op_names[c] for c in details.ops[r][: n - 2]), "output"]
            cache[key] = make_cell(details.matrix[r][:n, :n], ops)
        return cache[key]

    return arch_of


def describe(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    from supernet.spaces.nasbench101 import NB101Space
    from supernet.supernets.nasbench101 import nb101_param_count

    space = NB101Space()
    names = [table] if table else ["nb101-records30", "nb101-val500"]
    tables = [GroundTruth.load(gt_path(name, "")) for name in names]

    def facts(cell: Any, key: str) -> dict[str, Any]:
        row: dict[str, Any] = {"vertices": cell.num_vertices, "edges": cell.num_edges,
                               "output_inputs": cell.output_inputs, "params": nb101_param_count(cell)}
        for gt in tables:  # the shipped subsets; a converted full table covers all cells
            if key in gt:
                row.update(truth_row(gt, key))
        row["cell"] = str(cell)  # the pruned cell as JSON
        return row

    return describe_each(space, texts, facts)


def convert(source: str, out: str, flags: ConvertFlags) -> str:
    from supernet.groundtruth.nb101_convert import convert_official_nb101

    summary = convert_official_nb101(source, out, full=flags.full, progress=True)
    return f"{summary.cells} cells from {summary.records} records in {summary.seconds:.0f} s"


def validate(cfg: Config) -> None:
    if cfg.supernet.channel_strategy == "disabled" and cfg.space.subspace is None:
        raise ValueError("supernet.channel_strategy=disabled trains one super-net per sub-space: set space.subspace=K")
    if cfg.evaluation.per_subspace and cfg.space.subspace is not None:
        raise ValueError("evaluation.per_subspace evaluates a full-space super-net; unset space.subspace")


PLUGIN = register(SpacePlugin(
    name="nasbench101",
    title="NASBench-101",
    build=build,
    describe=describe,
    options=frozenset({"supernet.channel_strategy", "supernet.wsbn", "supernet.ofa_kernel", "space.subspace",
                       "evaluation.per_subspace"}),
    validate=validate,
    convert=convert,
    convert_source="nasbench_only108.tfrecord or, with --full, nasbench_full.tfrecord (no TensorFlow needed)",
    convert_flags=("full",),
    factor_levels={
        "dynamic_channels": (
            Level("fixed", ("supernet.channel_strategy=fixed",)),
            Level("shuffle", ("supernet.channel_strategy=shuffle",)),
            Level("interpolate", ("supernet.channel_strategy=interpolate",)),
            Level("baseline-v2", ("supernet.channel_strategy=fixed", "evaluation.per_subspace=true")),
            Level("disabled", ("supernet.channel_strategy=disabled", "space.subspace=2")),
        ),
        "layers": levels("supernet.layers", (3, 2, 1)),
        "channels": levels("supernet.channels", (128, 64, 32)),
        "bn": bn_levels("false"),
    },
    paper={"meta": (0.09, 0.45, 0.23),
           "table4": {"random-nas": (89.89, 3.89), "tuned": (93.12, 0.06)}},  # final searched model, mean ± std
    # NASBench-101's protocol (its lib/config.py, model_builder.py): RMSProp (epsilon 1, momentum 0.9) at 0.1 x 2 TPU
    # shards, cosine to 0, L2 1e-4, batch 256, 108 epochs on 40k of the 50k training images.
    final={"epochs": 108, "batch_size": 256, "optimizer": "rmsprop", "lr": 0.2, "lr_min": 0.0, "momentum": 0.9,
           "nesterov": False, "weight_decay": 1e-4, "grad_clip": 0.0, "cutout": 0, "train_portion": 0.8},
))
