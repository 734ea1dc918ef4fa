"""Where and how tensors run: device, precision, memory format, cuDNN autotuning.

Kept out of the trainer and the evaluator so both apply the same fast paths the same way, and so
the CPU default (fp32, contiguous) stays the bit-reproducible reference the tests compare against.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from supernet.config import RuntimeConfig
from supernet.errors import SupernetError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SupernetError("device=cuda requested but no CUDA device is available; use device=cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    @classmethod
    def from_config(cls, device: str, cfg: RuntimeConfig) -> Runtime:
        dev = resolve_device(device)
        if cfg.precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise SupernetError("runtime.precision=bf16: this GPU has no bfloat16 support; use runtime.precision=fp32")
        if dev.type == "cuda":
            # Per-shape autotuning pays off: a super-net has only a handful of distinct conv shapes.
            torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        channels_last = cfg.channels_last if cfg.channels_last is not None else dev.type == "cuda"
        return cls(dev, cfg.precision == "bf16", channels_last)

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast of forward passes; losses and weights stay fp32, so no gradient scaler is needed."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


CPU = Runtime(torch.device("cpu"))
