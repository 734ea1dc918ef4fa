"""Atomic checkpoints: a crash while writing never leaves a truncated file behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from supernet.errors import SupernetError


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Tensors and plain containers only: a checkpoint never executes code when loaded."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not ours
        raise SupernetError(f"checkpoint {path} cannot be read ({exc}); delete it or train with resume=false") from None
