"""Convert the official NAS-Bench-201 `.pth` release into a supernet ground-truth table.

The release is a torch.save'd tree of plain dicts (`arch2infos[index]['full']` is an ArchResults
state with `all_results[(dataset, seed)]` ResultsCount states). It is read with
`weights_only=True` so a tampered file cannot execute code on load.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from supernet.errors import SupernetError
from supernet.groundtruth.table import write_table
from supernet.spaces.nasbench201 import parse_arch

# table column -> (official dataset name, eval_acc1es prefix)
COLUMNS: dict[str, tuple[str, str]] = {
    "cifar10/valid": ("cifar10-valid", "x-valid"),
    "cifar10/test": ("cifar10", "ori-test"),
    "cifar100/valid": ("cifar100", "x-valid"),
    "cifar100/test": ("cifar100", "x-test"),
    "imagenet16-120/valid": ("ImageNet16-120", "x-valid"),
    "imagenet16-120/test": ("ImageNet16-120", "x-test"),
}


def _load(path: Path) -> Mapping[str, Any]:
    import torch

    if not path.is_file():
        raise SupernetError(f"NAS-Bench-201 file {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # PyTorch's message suggests weights_only=False, which would run the file's code: never repeat it.
        globals_named = [ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln]
        if globals_named:
            raise SupernetError(
                f"refusing {path}: it names code (classes or functions), not just plain data, and loading it could "
                f"run arbitrary code; use the official plain-dict release ({globals_named[0][:100]})"
            ) from None
        raise SupernetError(f"NAS-Bench-201 file {path} is corrupt or not a torch file") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise SupernetError(f"NAS-Bench-201 file {path} is corrupt or not a torch file: {str(e)[:100]}") from None
    if not isinstance(data, Mapping) or "arch2infos" not in data:
        raise SupernetError(f"{path} is not a NAS-Bench-201 release: no 'arch2infos' dict at the top level")
    return data


def _seed_mean(arch: Mapping[str, Any], dataset: str, prefix: str) -> float:
    """Average over every seed run for `dataset`, as NASBench201API.get_more_info does."""
    seeds = arch["dataset_seed"].get(dataset, [])
    accs = []
    for seed in seeds:
        run = arch["all_results"][(dataset, seed)]
        metric = f"{prefix}@{run.get('epochs', 200) - 1}"
        if metric not in run["eval_acc1es"]:
            raise SupernetError(
                f"arch {arch['arch_index']} ({dataset}, seed {seed}) has no {metric!r} accuracy"
            )
        accs.append(float(run["eval_acc1es"][metric]))
    if not accs:
        raise SupernetError(f"arch {arch['arch_index']} has no 200-epoch results for dataset {dataset!r}")
    return sum(accs) / len(accs)


def convert_official_nb201(pth_path: str | Path, out_npz: str | Path) -> None:
    data = _load(Path(pth_path))
    keys: list[str] = []
    index: list[int] = []
    columns: dict[str, list[float]] = {name: [] for name in COLUMNS}
    try:
        for i, infos in sorted(data["arch2infos"].items()):
            arch = infos["full"]
            keys.append(str(parse_arch(arch["arch_str"])))
            index.append(int(arch.get("arch_index", i)))
            for name, (dataset, prefix) in COLUMNS.items():
                columns[name].append(_seed_mean(arch, dataset, prefix))
    except (KeyError, TypeError, AttributeError) as e:
        raise SupernetError(
            f"{pth_path} does not have the NAS-Bench-201 structure: missing or bad {e}"
        ) from e
    write_table(out_npz, keys, index, columns)
