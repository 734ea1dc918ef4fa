"""NASBench-201: 6 edges x 5 ops, 15,625 architectures, the shipped table of all of them."""

from __future__ import annotations

from typing import Any

from supernet.config import Config
from supernet.factors import bn_levels, levels
from supernet.groundtruth.shipped import gt_path
from supernet.groundtruth.table import GroundTruth
from supernet.plugins.common import cell_supernet, describe_each, gt_column, table_spec, truth_row
from supernet.registry import ConvertFlags, SpaceKit, SpacePlugin, register


def build(cfg: Config) -> SpaceKit:
    from supernet.nn.ops import BNSpec
    from supernet.spaces.nasbench201 import NB201Space
    from supernet.supernets.nasbench201 import NB201Standalone, NB201SuperNet, nb201_param_count

    gt = GroundTruth.load(gt_path(table_spec(cfg, "nasbench201"), "nb201"))
    dataset, split = gt_column(cfg, gt, "cifar10/test")
    space = NB201Space()
    return SpaceKit(
        space=space,
        gt=gt,
        gt_dataset=dataset,
        gt_split=split,
        build_supernet=cell_supernet(NB201SuperNet, cfg),
        param_count=lambda a: nb201_param_count(a, 16, 5),  # NB201 trains C=16, N=5
        arch_of=space.parse,
        build_standalone=lambda a: NB201Standalone(a, 16, 5, cfg.supernet.num_classes),
        # trained from scratch: BN keeps running statistics for evaluation, as the benchmark's networks did
        build_final=lambda a, f: NB201Standalone(a, 16, 5, cfg.supernet.num_classes, bn=BNSpec(track=True)),
    )


def validate(cfg: Config) -> None:
    from supernet.spaces.nasbench201 import EDGES, OPS

    s = cfg.supernet
    if s.few_shot not in (1, len(OPS)):
        raise ValueError(f"supernet.few_shot={s.few_shot}: NASBench-201 splits into one sub-super-net per op of an "
                         f"edge, {len(OPS)} (or 1: one-shot)")
    if s.few_shot_slot >= len(EDGES):
        raise ValueError(f"supernet.few_shot_slot={s.few_shot_slot}: NASBench-201 has edges 0-{len(EDGES) - 1}")


def describe(texts: list[str], table: str | None) -> list[dict[str, Any]]:
    from supernet.spaces.nasbench201 import NB201Space
    from supernet.supernets.nasbench201 import nb201_param_count

    space, gt = NB201Space(), GroundTruth.load(gt_path(table, "nb201"))

    def facts(a: Any, key: str) -> dict[str, Any]:
        return {"index": gt.official_index(key), "params": nb201_param_count(a),
                "params_c100": nb201_param_count(a, num_classes=100), **truth_row(gt, key),
                "unique_key": space.unique_key(a)}

    return describe_each(space, texts, facts)


def convert(source: str, out: str, flags: ConvertFlags) -> str:
    from supernet.groundtruth.nb201_convert import convert_official_nb201

    convert_official_nb201(source, out)
    return ""


PLUGIN = register(SpacePlugin(
    name="nasbench201",
    title="NASBench-201",
    build=build,
    describe=describe,
    options=frozenset({"supernet.op_placement", "supernet.few_shot", "supernet.few_shot_slot",
                       "supernet.few_shot_warmup", "supernet.few_shot_compute"}),
    validate=validate,
    convert=convert,
    convert_source="NAS-Bench-201-v1_*.pth (refused if loading it would execute code)",
    factor_levels={
        "layers": levels("supernet.layers", (5, 3, 2, 1)),
        "channels": levels("supernet.channels", (16, 8, 4)),
        "epochs": levels("protocol.epochs", (100, 400, 1200, 1800)),
        "bn": bn_levels("false"),
    },
    paper={"meta": (0.52, 0.55, 0.94),
           "table4": {"random-nas": (87.66, 1.69), "tuned": (92.71, 0.15)}},  # final searched model, mean ± std
    # NAS-Bench-201's protocol (Dong & Yang 2020): its cifar10 column trained C=16, N=5 on all 50k images.
    final={"epochs": 200, "batch_size": 256, "optimizer": "sgd", "lr": 0.1, "lr_min": 0.0, "momentum": 0.9,
           "nesterov": True, "weight_decay": 5e-4, "grad_clip": 0.0, "cutout": 0, "train_portion": 1.0},
))
