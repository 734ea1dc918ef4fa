"""Atomic checkpoints: a crash while writing never leaves a truncated file behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from supernet.errors import SupernetError

T = TypeVar("T")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Tensors and plain containers only: a checkpoint never executes code when loaded."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not ours
        raise SupernetError(f"checkpoint {path} cannot be read ({_first_line(exc)}); delete it or train with "
                            "resume=false") from None


def restore(path: Path, apply: Callable[[], T]) -> T:
    """``apply()`` puts a loaded checkpoint's contents into a model or trainer; a checkpoint of another
    structure (another super-net, a foreign file that loads) becomes one clear error instead of a traceback."""
    try:
        return apply()
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError, IndexError) as exc:
        raise SupernetError(f"checkpoint {path} does not fit this run's super-net ({_first_line(exc)}); delete it or "
                            "train with resume=false") from None


def _first_line(exc: BaseException) -> str:
    """The gist of an error, at most ~100 characters; never PyTorch's advice to load with weights_only=False,
    which would execute code from the file."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "weights_only" not in ln]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."
