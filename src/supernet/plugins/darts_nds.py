"""DARTS-NDS: the DARTS cell space restricted to the architectures NDS trained (SPEC 6.4); its ground
truth is not shipped and is converted from NDS' DARTS.json."""

from __future__ import annotations

import json
from typing import Any

from supernet.config import Config
from supernet.errors import SupernetError
from supernet.factors import bn_levels, levels
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.plugins.common import cell_supernet, describe_each, gt_column, table_spec, truth_row
from supernet.registry import ConvertFlags, SpaceKit, SpacePlugin, register


def build(cfg: Config) -> SpaceKit:
    from supernet.groundtruth.nds_convert import load_nds_details
    from supernet.nn.ops import BNSpec
    from supernet.spaces.darts import DartsSpace
    from supernet.supernets.darts import DartsStandalone, DartsSuperNet

    if cfg.space.ground_truth is None:
        raise SupernetError(
            "darts_nds needs space.ground_truth: NDS data is not shipped. Download the NDS release (data.zip), "
            "run `supernet convert darts_nds DARTS.json nds-darts.npz` and set space.ground_truth=nds-darts.npz"
        )
    path = gt_path(table_spec(cfg, "darts_nds"), "")
    gt = GroundTruth.load(path)
    dataset, split = gt_column(cfg, gt, "cifar10/test")
    details = load_nds_details(path)
    params = details.param_counts()
    row_of = {k: i for i, k in enumerate(details.keys.tolist())}
    space = DartsSpace(gt.keys())  # the authors train on the benchmarked architectures only (SPEC 6.4)

    def standalone(a: Any) -> Any:  # NDS trained each network at its own width and depth
        r = row_of[space.key(a)]
        return DartsStandalone(a, int(details.width[r]), int(details.depth[r]), cfg.supernet.num_classes,
                               auxiliary=bool(details.aux[r]))

    def final(a: Any, f: Any) -> Any:  # DARTS' evaluation network; an unset size is NDS' for the architecture
        r = row_of.get(space.key(a))
        if r is None and (f.channels is None or f.layers is None):
            raise SupernetError("this cell is not in the NDS table, so it has no NDS size: set final.channels and "
                                "final.layers")
        return DartsStandalone(a, f.channels or int(details.width[r]), f.layers or int(details.depth[r]),
                               cfg.supernet.num_classes, auxiliary=f.auxiliary_weight > 0, bn=BNSpec(track=True))

    return SpaceKit(
        space=space,
        gt=gt,
        gt_dataset=dataset,
        gt_split=split,
        build_supernet=cell_supernet(DartsSuperNet, cfg, ofa_kernel=cfg.supernet.ofa_kernel, wsbn=cfg.supernet.wsbn),
        param_count=lambda a: params[space.key(a)],
        arch_of=space.parse,
        build_standalone=standalone,
        build_final=final,
    )


def describe(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    from supernet.groundtruth.nds_convert import load_nds_details
    from supernet.spaces.darts import DartsSpace
    from supernet.supernets.darts import darts_param_count

    space = DartsSpace()
    path = gt_path(table, "") if table else None  # NDS ground truth is not shipped
    gt = GroundTruth.load(path) if path else None
    details = load_nds_details(path) if path else None
    rows_of = {k: i for i, k in enumerate(details.keys.tolist())} if details is not None else {}

    def facts(a: Any, key: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "params_c16_l8": darts_param_count(a, 16, 8),  # the authors' super-net size
            "params_c36_l20": darts_param_count(a, 36, 20),  # DARTS' CIFAR-10 evaluation network
        }
        if key in rows_of:
            assert gt is not None and details is not None
            r = rows_of[key]
            row.update(nds_width=int(details.width[r]), nds_depth=int(details.depth[r]),
                       nds_params=int(details.params[r]), rank=gt.rank(key), **truth_row(gt, key))
        row.update(unique_key=space.unique_key(a), genotype=json.dumps(a.genotype()))
        return row

    return describe_each(space, texts, facts)


def convert(source: str, out: str, flags: ConvertFlags) -> str:
    from supernet.groundtruth.nds_convert import convert_nds_darts
    from supernet.supernets.darts import darts_param_count

    gt = convert_nds_darts(source, out, param_count=darts_param_count, verify_params=16 if flags.verify else 0)
    return f"{len(gt)} architectures"


def validate(cfg: Config) -> None:
    if cfg.supernet.wsbn and cfg.placement() != "node":
        raise ValueError("supernet.wsbn gives a node's shared op one BN per source; with "
                         "supernet.op_placement=edge every op has one source already")
    if cfg.supernet.layers < 3:
        raise ValueError(f"supernet.layers={cfg.supernet.layers}: a DARTS network needs >= 3 cells (two are reductions)")


PLUGIN = register(SpacePlugin(
    name="darts_nds",
    title="DARTS-NDS",
    build=build,
    describe=describe,
    options=frozenset({"supernet.op_placement", "supernet.wsbn", "supernet.ofa_kernel", "final.channels",
                       "final.layers", "final.auxiliary_weight", "final.drop_path"}),
    refused={"protocol.sampler": {"encoding": "its super-nets train on the benchmarked architectures (SPEC 6.4); "
                                              "use uniform or fairnas",
                                  "unique": "it has no isomorphism classes here: its super-nets train on the "
                                            "benchmarked architectures (SPEC 6.4); use uniform or fairnas"}},
    validate=validate,
    convert=convert,
    convert_source="DARTS.json of the NDS release (refused if its networks' parameter counts differ from ours)",
    convert_flags=("verify",),
    factor_levels={
        "layers": levels("supernet.layers", (8, 5, 3)),
        "channels": levels("supernet.channels", (16, 8, 4)),
        "bn": bn_levels("true"),
    },
    paper={"meta": (0.07, 0.19, 0.47),
           "table4": {"random-nas": (91.33, 0.12), "tuned": (94.26, 0.05)}},  # final searched model, mean ± std
    # DARTS' CIFAR-10 evaluation (Liu et al. 2019, Table 4's DARTS-NDS*): C=36, 20 cells, 600 epochs.
    final={"epochs": 600, "batch_size": 96, "optimizer": "sgd", "lr": 0.025, "lr_min": 0.0, "momentum": 0.9,
           "nesterov": False, "weight_decay": 3e-4, "grad_clip": 5.0, "cutout": 16, "train_portion": 1.0,
           "channels": 36, "layers": 20, "auxiliary_weight": 0.4, "drop_path": 0.2},
))
