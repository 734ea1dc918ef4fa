"""The ground-truth tables that ship with the package, and how a ``space.ground_truth`` value resolves."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from supernet.errors import SupernetError

SHIPPED = {"nb201": "nb201.npz", "nb101-val500": "nb101-val500.npz", "nb101-records30": "nb101-records30.npz"}


OFFICIAL = "official"  # space.ground_truth=official: the table `supernet download SPACE` converted into the cache


def is_shipped(spec: str | None) -> bool:
    """A name rather than a path (a shipped table, or ``official``): never resolved against the working directory."""
    return spec in SHIPPED or spec == OFFICIAL


def official_table(space: str, cache: Path) -> Path:
    return cache / "tables" / f"{space}.npz"


def resolve_official(spec: str | None, space: str, cache: Path) -> str | None:
    """``spec``, with ``official`` replaced by the converted table's path (which must exist)."""
    if spec != OFFICIAL:
        return spec
    path = official_table(space, cache)
    if not path.is_file():
        raise SupernetError(f"space.ground_truth=official: no converted table at {path}; run "
                            f"`supernet download {space}` first")
    return str(path)


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
