"""The 14 factors of the paper's Table 1, one entry each: group, config keys, levels swept, spaces.

A factor is data, not code: each level is a set of ``key=value`` overrides applied to a space's
recipe, so a sweep is "the recipe, plus one level of one factor" and every level is checked to be
a valid config by the tests. Levels come from the paper and SPEC.md where they state them; where
they do not (the appendix tables are not available), ``source`` says the levels are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from supernet.config import SPACE_OPTIONS, parse_override
from supernet.errors import SupernetError
from supernet.registry import get_space, space_names

Group = Literal["f_ws implementation", "f_ws low fidelity", "P_ws hyper-parameters", "P_ws sampling", "beyond the paper"]


@dataclass(frozen=True)
class Level:
    label: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Factor:
    """``levels`` apply to every space that supports the factor's keys; a space plug-in replaces them
    with its own (``SpacePlugin.factor_levels``) where the values depend on the space, and a level with a
    value the space refuses is left out. A factor with no levels of its own applies only to the spaces
    that give it levels."""

    name: str
    title: str
    group: Group
    keys: tuple[str, ...]
    levels: tuple[Level, ...]
    source: str
    # Low-fidelity factors of Table 2 are compute-matched: epochs x (recipe value / level value) of this key.
    compute_key: str | None = None

    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(s for s in space_names() if self._levels(s))

    def _levels(self, space: str) -> tuple[Level, ...]:
        plugin = get_space(space)
        if self.name in plugin.factor_levels:
            return plugin.factor_levels[self.name]
        if any(k in SPACE_OPTIONS and k not in plugin.options for k in self.keys):
            return ()
        return tuple(lv for lv in self.levels if not any(plugin.refuses(*parse_override(o)) for o in lv.overrides))

    def levels_for(self, space: str) -> tuple[Level, ...]:
        levels = self._levels(space)
        if not levels:
            raise SupernetError(f"factor '{self.name}' does not apply to {space} (only {', '.join(self.spaces)})")
        return levels


def levels(key: str, values: tuple[object, ...]) -> tuple[Level, ...]:
    """One key, one level per value."""
    return tuple(Level(str(v), (f"{key}={v}",)) for v in values)


def bn_levels(affine: str) -> tuple[Level, ...]:
    """The bn factor's levels; the third flips the recipe's affine choice, so it depends on the space. The
    fourth, per-architecture recalibration (SPOS), is the post-paper practice that completes the set."""
    return (Level("batch statistics", ("supernet.bn_track_stats=false", "evaluation.bn=batch")),
            Level("tracked running statistics", ("supernet.bn_track_stats=true", "evaluation.bn=running")),
            Level(f"batch statistics, {'no ' if affine == 'false' else ''}affine",
                  ("supernet.bn_track_stats=false", "evaluation.bn=batch", f"supernet.bn_affine={affine}")),
            Level("recalibrated per architecture", ("supernet.bn_track_stats=false", "evaluation.bn=recalibrate")))


FACTORS: tuple[Factor, ...] = (
    # f_ws: implementation
    Factor("dynamic_channels", "Dynamic channeling", "f_ws implementation", ("supernet.channel_strategy",), (),
           "Table 3 (disabled: one super-net per sub-space; K=2, the authors' default)"),
    Factor("ofa_kernel", "OFA conv (kernel sharing)", "f_ws implementation", ("supernet.ofa_kernel",),
           levels("supernet.ofa_kernel", ("false", "true")),
           "SPEC 6.6 (NB101: conv 1x1/3x3; DARTS-NDS: sep_conv and dil_conv 3x3/5x5)"),
    Factor("wsbn", "WSBN", "f_ws implementation", ("supernet.wsbn",), levels("supernet.wsbn", ("false", "true")),
           "SPEC 6.7 (NB101: per set of incoming vertices; DARTS-NDS: per source state of a node's op)"),
    Factor("dropout", "Dropout (path / global)", "f_ws implementation",
           ("supernet.path_dropout", "supernet.global_dropout"),
           (Level("none", ("supernet.path_dropout=0.0", "supernet.global_dropout=0.0")),
            Level("path 0.1", ("supernet.path_dropout=0.1",)),
            Level("path 0.2", ("supernet.path_dropout=0.2",)),
            Level("global 0.1", ("supernet.global_dropout=0.1",)),
            Level("global 0.2", ("supernet.global_dropout=0.2",))),
           "SPEC 6.8; rates are ours (the paper's appendix values are not available)"),
    Factor("op_placement", "Op on node or edge", "f_ws implementation", ("supernet.op_placement",),
           levels("supernet.op_placement", ("node", "edge")), "SPEC 4.2, 4.3"),
    # f_ws: low fidelity (Table 2); layers and channels: levels per space
    Factor("layers", "Number of layers (repeated cells)", "f_ws low fidelity", ("supernet.layers",), (),
           "Table 2 (NB201 3/2/1, plus the full 5), compute-matched; NB101 cells per stack and DARTS cells: ours",
           compute_key="supernet.layers"),
    Factor("train_portion", "Train portion", "f_ws low fidelity", ("data.train_portion",),
           levels("data.train_portion", (0.75, 0.5, 0.25)), "Table 2, compute-matched",
           compute_key="data.train_portion"),
    Factor("batch_size", "Batch size", "f_ws low fidelity", ("protocol.batch_size",),
           levels("protocol.batch_size", (256, 128, 64)), "Table 2 (same epochs: the compute is the same)"),
    Factor("channels", "Number of channels", "f_ws low fidelity", ("supernet.channels",), (),
           "Table 2 for NB201, compute-matched; NB101 stems: the authors' 128 and 64 scripts, halved once more",
           compute_key="supernet.channels"),
    # P_ws: hyper-parameters, tuned sequentially in this order
    Factor("bn", "Batch-norm mode", "P_ws hyper-parameters",
           ("supernet.bn_track_stats", "supernet.bn_affine", "evaluation.bn"), bn_levels("false"),
           "SPEC 6.1 (Fig. 6); the third level flips the recipe's affine choice (DARTS-NDS trains without)"),
    Factor("lr", "Learning rate", "P_ws hyper-parameters", ("protocol.lr",),
           levels("protocol.lr", (0.005, 0.01, 0.025, 0.05, 0.15)), "Fig. 8 (NB201 sweep; also used for NB101)"),
    Factor("epochs", "Epochs", "P_ws hyper-parameters", ("protocol.epochs",),
           levels("protocol.epochs", (100, 200, 300, 400)), "SPEC 5 (the authors' epoch sweeps)"),
    Factor("weight_decay", "Weight decay", "P_ws hyper-parameters", ("protocol.weight_decay",),
           levels("protocol.weight_decay", (0.0, 1.0e-4, 5.0e-4, 1.0e-3)),
           "values ours around the authors' 1e-4 (NB101) and 5e-4 (NB201, DARTS-NDS)"),
    # P_ws: path sampling
    Factor("sampling", "Path sampling (FairNAS, Random-NAS, Random-A)", "P_ws sampling", ("protocol.sampler",),
           (Level("uniform over architectures (baseline)", ("protocol.sampler=uniform",)),
            Level("uniform over encodings", ("protocol.sampler=encoding",)),
            Level("FairNAS", ("protocol.sampler=fairnas",))),
           "SPEC 6.4: the paper's Random-NAS baseline is uniform over architectures; Li & Talwalkar's "
           "encoding-uniform sampler is the other variant (SPEC's unverified guess for Random-A)"),
    # After the paper: methods shown since to make super-nets rank better (issue 14)
    Factor("unique_sampling", "Non-isomorphic sampling", "beyond the paper", ("protocol.sampler",),
           (Level("uniform over architectures", ("protocol.sampler=uniform",)),
            Level("uniform over isomorphism classes", ("protocol.sampler=unique",))),
           "Ning et al., NeurIPS 2021 (de-isomorphic sampling); NB101 cells are unique already"),
    Factor("score", "Ranking score (loss; the super-net in the proxies' vote)", "beyond the paper",
           ("evaluation.score",), levels("evaluation.score", ("accuracy", "loss", "vote")),
           "Ning et al., NeurIPS 2021 (loss); vote: Abdelfattah et al., ICLR 2021's proxy vote, the super-net added"),
    Factor("ensemble", "Temporal ensemble", "beyond the paper", ("evaluation.ensemble",),
           levels("evaluation.ensemble", (1, 3, 5)), "Ning et al., NeurIPS 2021 (mean score of the last K epochs)"),
    Factor("few_shot", "Few-shot super-net", "beyond the paper",
           ("supernet.few_shot", "supernet.few_shot_compute"),
           (Level("one-shot", ("supernet.few_shot=1",)),
            Level("5 sub-super-nets, the paper's compute", ("supernet.few_shot=5", "supernet.few_shot_compute=paper")),
            Level("5 sub-super-nets, compute-matched", ("supernet.few_shot=5", "supernet.few_shot_compute=matched"))),
           "Zhao et al., ICML 2021 (split on edge 0 after supernet.few_shot_warmup epochs)"),
    Factor("landmarks", "Landmark regularisation (supervised)", "beyond the paper", ("protocol.landmarks",),
           levels("protocol.landmarks", (0, 50)),
           "Yu et al., CVPR 2021 (50 landmarks, coefficient 10, cosine after 5 warm-up epochs: the issue's defaults)"),
)

BY_NAME = {f.name: f for f in FACTORS}


def get_factor(name: str) -> Factor:
    try:
        return BY_NAME[name]
    except KeyError:
        raise SupernetError(f"unknown factor '{name}'; known: {', '.join(BY_NAME)}") from None
