"""TensorBoard event files of a run (``logging.tensorboard=true``), next to the store, never instead of it.

The store stays the record every report reads; the events are a view for the tool researchers already
have open: per epoch the training statistics, per evaluation every stored metric (the super-net's and each
training-free baseline's, under ``eval/``) and the histogram of the pool's super-net accuracies (Fig. 6).
Written to ``RUN_DIR/tensorboard``; ``tensorboard`` is an optional extra, checked before training starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from supernet.errors import SupernetError


class TensorBoardLog:
    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SupernetError("logging.tensorboard=true needs the tensorboard package: "
                                "pip install 'supernet[tensorboard]' (or set logging.tensorboard=false)") from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def epoch(self, epoch: int, stats: Mapping[str, Any]) -> None:
        """Training statistics of 0-based ``epoch``, logged at step epoch + 1 (epochs done, as evaluations count)."""
        for name, value in stats.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"train/{name}", value, epoch + 1)

    def evaluation(self, epoch: int, metrics: Mapping[str, float], accuracy: np.ndarray) -> None:
        for name, value in metrics.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(f"eval/{name}", value, epoch)
        if len(accuracy):
            self.writer.add_histogram("eval/supernet_accuracy", np.asarray(accuracy, dtype=np.float64), epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
