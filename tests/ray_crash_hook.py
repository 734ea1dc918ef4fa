"""Imported by Ray workers in tests/test_ray_crash.py (``worker_process_setup_hook``): the worker process
dies without a word when a run starts its second epoch, as one killed by the OOM killer would."""

from __future__ import annotations

import os


def install() -> None:
    from supernet.train.trainer import Trainer

    original = Trainer.train_epoch

    def die_in_second_epoch(self, epoch, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if epoch == 1:
            os._exit(1)
        return original(self, epoch, *args, **kwargs)

    Trainer.train_epoch = die_in_second_epoch
