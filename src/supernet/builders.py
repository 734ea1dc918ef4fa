"""One builder per concept, per space: search space, ground truth, super-net, parameter count.

``run.py`` asks for a :class:`SpaceKit` and never branches on the space name itself, so adding a
space means adding one ``_kit_*`` function here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from supernet.config import Config
from supernet.errors import SupernetError
from supernet.groundtruth.table import GroundTruth
from supernet.nn.ops import BNSpec


@dataclass
class SpaceKit:
    space: Any  # a SearchSpace
    gt: GroundTruth
    gt_dataset: str
    gt_split: str
    build_supernet: Callable[[], nn.Module]
    param_count: Callable[[Any], int]  # the benchmark's stand-alone size, for the training-free baseline
    arch_of: Callable[[str], Any]  # ground-truth key -> architecture
    subspace_of: Callable[[Any], int] | None = None  # NB101: vertices feeding the output
    # The same for every table row at once, from stored arrays: a full NB101 table has 423,624 rows.
    row_subspaces: Callable[[], np.ndarray] | None = None
    _labels_cache: list[np.ndarray] = field(default_factory=list, repr=False)

    def _labels(self) -> np.ndarray:
        if not self._labels_cache:
            if self.row_subspaces is not None:
                self._labels_cache.append(self.row_subspaces())
            else:
                assert self.subspace_of is not None
                self._labels_cache.append(np.array([self.subspace_of(self.arch_of(k)) for k in self.gt.keys()]))
        return self._labels_cache[0]

    def candidates(self, subspace: int | None = None) -> list[str]:
        """Keys a pool may be drawn from: those with ground truth, in the (sub-)space, in table order."""
        keys = self.gt.keys()
        if subspace is None or self.subspace_of is None:
            return keys
        return [k for k, label in zip(keys, self._labels(), strict=True) if label == subspace]

    def subspaces(self) -> list[int]:
        if self.subspace_of is None:
            raise SupernetError("this space has no sub-spaces")
        return sorted(int(x) for x in np.unique(self._labels()))


SHIPPED = {"nb201": "nb201.npz", "nb101-val500": "nb101-val500.npz", "nb101-records30": "nb101-records30.npz"}


def gt_path(spec: str | None, default: str) -> Path:
    """A shipped table name (nb201, nb101-val500, nb101-records30) or a path to a converted .npz."""
    name = SHIPPED.get(spec or default)
    if name is not None:  # the package is installed as files (setuptools package-data), not zipped
        return Path(str(resources.files("supernet.groundtruth") / "tables" / name))
    path = Path(spec or "")
    if not path.is_file():
        raise SupernetError(
            f"space.ground_truth '{spec}' is neither a shipped table ({', '.join(SHIPPED)}) nor an existing "
            ".npz file (convert official files with `supernet convert SPACE SOURCE OUT.npz`)"
        )
    return path


def _column(cfg: Config, gt: GroundTruth, default: str) -> tuple[str, str]:
    name = cfg.evaluation.ground_truth or (default if default in gt.columns else gt.columns[0])
    dataset, _, split = name.partition("/")
    gt.accuracy(gt.keys()[0], split=split, dataset=dataset)  # fail now, with the table's own message
    return dataset, split


def _cell_supernet(cls: Callable[..., nn.Module], cfg: Config, **extra: Any) -> Callable[[], nn.Module]:
    """NB201 and DARTS-NDS super-nets take the same f_ws options (plus ``extra`` of one space)."""
    s = cfg.supernet
    bn = BNSpec(affine=s.bn_affine, track=s.bn_track_stats)
    return lambda: cls(
        s.channels, s.layers, s.num_classes, placement=cfg.placement(), bn=bn, path_dropout=s.path_dropout,
        global_dropout=s.global_dropout, generator=torch.Generator(), **extra,
    )


def _kit_nasbench201(cfg: Config) -> SpaceKit:
    from supernet.spaces.nasbench201 import NB201Space
    from supernet.supernets.nasbench201 import NB201SuperNet, nb201_param_count

    gt = GroundTruth.load(gt_path(cfg.space.ground_truth, "nb201"))
    dataset, split = _column(cfg, gt, "cifar10/test")
    space = NB201Space()
    return SpaceKit(
        space=space,
        gt=gt,
        gt_dataset=dataset,
        gt_split=split,
        build_supernet=_cell_supernet(NB201SuperNet, cfg),
        param_count=lambda a: nb201_param_count(a, 16, 5),  # NB201 trains C=16, N=5
        arch_of=space.parse,
    )


def _kit_nasbench101(cfg: Config) -> SpaceKit:
    from supernet.spaces.nasbench101 import NB101Space
    from supernet.supernets.nasbench101 import NB101SuperNet, nb101_param_count

    s = cfg.supernet
    path = gt_path(cfg.space.ground_truth, "nb101-val500")
    gt = GroundTruth.load(path)
    dataset, split = _column(cfg, gt, "cifar10/test")
    bn = BNSpec(affine=s.bn_affine, track=s.bn_track_stats)
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
        arch_of=_nb101_cells(path),
        subspace_of=lambda c: c.output_inputs,
        row_subspaces=lambda: _nb101_output_inputs(path, gt.keys()),
    )


def _nb101_output_inputs(path: Path, keys: list[str]) -> np.ndarray:
    from supernet.groundtruth.nb101_convert import load_nb101_details

    d = load_nb101_details(path)
    if d.keys.tolist() != keys:
        raise SupernetError(f"{path}: its cell arrays are not in the order of its keys")
    rows = np.arange(len(d.keys))
    last = d.num_vertices.astype(np.int64) - 1  # the output vertex of each (padded) matrix
    # Interior vertices feeding the output: column `last`, rows 1 .. last-1 (rows beyond are padding zeros).
    column = d.matrix[rows[:, None], np.arange(d.matrix.shape[1])[None, :], last[:, None]]
    return column[:, 1:].sum(axis=1)


def _nb101_cells(path: Path) -> Callable[[str], Any]:
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


def _kit_darts_nds(cfg: Config) -> SpaceKit:
    from supernet.groundtruth.nds_convert import load_nds_details
    from supernet.spaces.darts import DartsSpace
    from supernet.supernets.darts import DartsSuperNet

    if cfg.space.ground_truth is None:
        raise SupernetError(
            "darts_nds needs space.ground_truth: NDS data is not shipped. Download the NDS release (data.zip), "
            "run `supernet convert darts_nds DARTS.json nds-darts.npz` and set space.ground_truth=nds-darts.npz"
        )
    path = gt_path(cfg.space.ground_truth, "")
    gt = GroundTruth.load(path)
    dataset, split = _column(cfg, gt, "cifar10/test")
    params = load_nds_details(path).param_counts()
    space = DartsSpace(gt.keys())  # the authors train on the benchmarked architectures only (SPEC 6.4)
    return SpaceKit(
        space=space,
        gt=gt,
        gt_dataset=dataset,
        gt_split=split,
        build_supernet=_cell_supernet(DartsSuperNet, cfg, ofa_kernel=cfg.supernet.ofa_kernel, wsbn=cfg.supernet.wsbn),
        param_count=lambda a: params[space.key(a)],  # NDS trained each network at its own width and depth
        arch_of=space.parse,
    )


KITS: dict[str, Callable[[Config], SpaceKit]] = {
    "nasbench201": _kit_nasbench201, "nasbench101": _kit_nasbench101, "darts_nds": _kit_darts_nds,
}


def build_kit(cfg: Config) -> SpaceKit:
    return KITS[cfg.space.name](cfg)
