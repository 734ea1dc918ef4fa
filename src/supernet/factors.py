"""The 14 factors of the paper's Table 1, one entry each: group, config keys, levels swept, spaces.

A factor is data, not code: each level is a set of ``key=value`` overrides applied to a space's
recipe, so a sweep is "the recipe, plus one level of one factor" and every level is checked to be
a valid config by the tests. Levels come from the paper and SPEC.md where they state them; where
they do not (the appendix tables are not available), ``source`` says the levels are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from supernet.errors import SupernetError

Group = Literal["f_ws implementation", "f_ws low fidelity", "P_ws hyper-parameters", "P_ws sampling"]
Space = Literal["nasbench201", "nasbench101", "darts_nds"]
ALL: tuple[Space, ...] = ("nasbench201", "nasbench101", "darts_nds")


@dataclass(frozen=True)
class Level:
    label: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Factor:
    name: str
    title: str
    group: Group
    keys: tuple[str, ...]
    levels: dict[Space, tuple[Level, ...]]
    source: str
    # Low-fidelity factors of Table 2 are compute-matched: epochs x (recipe value / level value) of this key.
    compute_key: str | None = None

    @property
    def spaces(self) -> tuple[Space, ...]:
        return tuple(self.levels)

    def levels_for(self, space: str) -> tuple[Level, ...]:
        if space not in self.levels:
            raise SupernetError(f"factor '{self.name}' does not apply to {space} (only {', '.join(self.spaces)})")
        return self.levels[space]


def _levels(key: str, values: tuple[object, ...], spaces: tuple[Space, ...] = ALL) -> dict[Space, tuple[Level, ...]]:
    """One key, the same values in every space."""
    return {s: tuple(Level(str(v), (f"{key}={v}",)) for v in values) for s in spaces}


def _per_space(key: str, values: dict[Space, tuple[object, ...]]) -> dict[Space, tuple[Level, ...]]:
    return {s: tuple(Level(str(v), (f"{key}={v}",)) for v in vs) for s, vs in values.items()}


FACTORS: tuple[Factor, ...] = (
    # f_ws: implementation
    Factor("dynamic_channels", "Dynamic channeling", "f_ws implementation", ("supernet.channel_strategy",), {
        "nasbench101": (
            Level("fixed", ("supernet.channel_strategy=fixed",)),
            Level("shuffle", ("supernet.channel_strategy=shuffle",)),
            Level("interpolate", ("supernet.channel_strategy=interpolate",)),
            Level("baseline-v2", ("supernet.channel_strategy=fixed", "evaluation.per_subspace=true")),
            Level("disabled", ("supernet.channel_strategy=disabled", "space.subspace=2")),
        )}, "Table 3 (disabled: one super-net per sub-space; K=2, the authors' default)"),
    Factor("ofa_kernel", "OFA conv (kernel sharing)", "f_ws implementation", ("supernet.ofa_kernel",),
           _levels("supernet.ofa_kernel", ("false", "true"), ("nasbench101", "darts_nds")),
           "SPEC 6.6 (NB101: conv 1x1/3x3; DARTS-NDS: sep_conv and dil_conv 3x3/5x5)"),
    Factor("wsbn", "WSBN", "f_ws implementation", ("supernet.wsbn",),
           _levels("supernet.wsbn", ("false", "true"), ("nasbench101", "darts_nds")),
           "SPEC 6.7 (NB101: per set of incoming vertices; DARTS-NDS: per source state of a node's op)"),
    Factor("dropout", "Dropout (path / global)", "f_ws implementation",
           ("supernet.path_dropout", "supernet.global_dropout"),
           {s: (Level("none", ("supernet.path_dropout=0.0", "supernet.global_dropout=0.0")),
                Level("path 0.1", ("supernet.path_dropout=0.1",)),
                Level("path 0.2", ("supernet.path_dropout=0.2",)),
                Level("global 0.1", ("supernet.global_dropout=0.1",)),
                Level("global 0.2", ("supernet.global_dropout=0.2",))) for s in ALL},
           "SPEC 6.8; rates are ours (the paper's appendix values are not available)"),
    Factor("op_placement", "Op on node or edge", "f_ws implementation", ("supernet.op_placement",),
           _levels("supernet.op_placement", ("node", "edge"), ("nasbench201", "darts_nds")), "SPEC 4.2, 4.3"),
    # f_ws: low fidelity (Table 2)
    Factor("layers", "Number of layers (repeated cells)", "f_ws low fidelity", ("supernet.layers",),
           _per_space("supernet.layers", {"nasbench201": (5, 3, 2, 1), "nasbench101": (3, 2, 1), "darts_nds": (8, 5, 3)}),
           "Table 2 (NB201 3/2/1, plus the full 5), compute-matched; NB101 cells per stack and DARTS cells: ours",
           compute_key="supernet.layers"),
    Factor("train_portion", "Train portion", "f_ws low fidelity", ("data.train_portion",),
           _levels("data.train_portion", (0.75, 0.5, 0.25)), "Table 2, compute-matched",
           compute_key="data.train_portion"),
    Factor("batch_size", "Batch size", "f_ws low fidelity", ("protocol.batch_size",),
           _levels("protocol.batch_size", (256, 128, 64)), "Table 2 (same epochs: the compute is the same)"),
    Factor("channels", "Number of channels", "f_ws low fidelity", ("supernet.channels",),
           _per_space("supernet.channels", {"nasbench201": (16, 8, 4), "nasbench101": (128, 64, 32),
                                            "darts_nds": (16, 8, 4)}),
           "Table 2 for NB201, compute-matched; NB101 stems: the authors' 128 and 64 scripts, halved once more",
           compute_key="supernet.channels"),
    # P_ws: hyper-parameters, tuned sequentially in this order
    Factor("bn", "Batch-norm mode", "P_ws hyper-parameters",
           ("supernet.bn_track_stats", "supernet.bn_affine", "evaluation.bn"),
           {s: (Level("batch statistics", ("supernet.bn_track_stats=false", "evaluation.bn=batch")),
                Level("tracked running statistics", ("supernet.bn_track_stats=true", "evaluation.bn=running")),
                Level(f"batch statistics, {'' if affine else 'no '}affine",
                      ("supernet.bn_track_stats=false", "evaluation.bn=batch", f"supernet.bn_affine={affine}")))
            for s, affine in (("nasbench201", "false"), ("nasbench101", "false"), ("darts_nds", "true"))},
           "SPEC 6.1 (Fig. 6); the third level flips the recipe's affine choice (DARTS-NDS trains without)"),
    Factor("lr", "Learning rate", "P_ws hyper-parameters", ("protocol.lr",),
           _levels("protocol.lr", (0.005, 0.01, 0.025, 0.05, 0.15)), "Fig. 8 (NB201 sweep; also used for NB101)"),
    Factor("epochs", "Epochs", "P_ws hyper-parameters", ("protocol.epochs",),
           _per_space("protocol.epochs", {"nasbench201": (100, 400, 1200, 1800), "nasbench101": (100, 200, 300, 400),
                                          "darts_nds": (100, 200, 300, 400)}),
           "SPEC 5 (the authors' epoch sweeps)"),
    Factor("weight_decay", "Weight decay", "P_ws hyper-parameters", ("protocol.weight_decay",),
           _levels("protocol.weight_decay", (0.0, 1.0e-4, 5.0e-4, 1.0e-3)),
           "values ours around the authors' 1e-4 (NB101) and 5e-4 (NB201, DARTS-NDS)"),
    # P_ws: path sampling
    Factor("sampling", "Path sampling (FairNAS, Random-NAS, Random-A)", "P_ws sampling", ("protocol.sampler",),
           {s: (Level("uniform over architectures (baseline)", ("protocol.sampler=uniform",)),
                Level("uniform over encodings", ("protocol.sampler=encoding",)),
                Level("FairNAS", ("protocol.sampler=fairnas",))) for s in ("nasbench201", "nasbench101")}
           | {"darts_nds": (Level("uniform over architectures (baseline)", ("protocol.sampler=uniform",)),
                            Level("FairNAS", ("protocol.sampler=fairnas",)))},
           "SPEC 6.4: the paper's Random-NAS baseline is uniform over architectures; Li & Talwalkar's "
           "encoding-uniform sampler is the other variant (SPEC's unverified guess for Random-A)"),
)

BY_NAME = {f.name: f for f in FACTORS}


def get_factor(name: str) -> Factor:
    try:
        return BY_NAME[name]
    except KeyError:
        raise SupernetError(f"unknown factor '{name}'; known: {', '.join(BY_NAME)}") from None
