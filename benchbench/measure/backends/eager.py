"""Eager PyTorch, in contiguous (NCHW) or channels_last memory format, fp32/fp16/bf16."""
from __future__ import annotations

import torch
from torch import nn

from .base import PRECISIONS, synchronize


class EagerBackend:
    name = "eager"
    memory_format = torch.contiguous_format
    dynamic_shapes = True

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        if precision not in PRECISIONS:
            return f"precision {precision!r} is not one of {', '.join(PRECISIONS)}"
        if device == "cuda" and not torch.cuda.is_available():
            return "CUDA is not available (torch.cuda.is_available() is False)"
        if device == "cpu" and precision == "fp16":
            return "fp16 convolutions are not a supported fast path on CPU; use fp32 or bf16"
        return None

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        dtype = PRECISIONS[precision]
        self.device, self.dtype = device, dtype
        self.model = model.eval().to(device=device, dtype=dtype, memory_format=self.memory_format)
        frame = example.to(dtype=dtype).contiguous(memory_format=self.memory_format)
        self.include_transfer = include_transfer and device.type != "cpu"
        if self.include_transfer:
            self.host_frame = frame.pin_memory() if device.type == "cuda" else frame
        else:
            self.frame = frame.to(device)

    def run(self):
        if self.include_transfer:
            return self.model(self.host_frame.to(self.device, non_blocking=True))
        return self.model(self.frame)

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            return self.model(x)

    def sync(self) -> None:
        synchronize(self.device)

    def close(self) -> None:
        self.model = self.frame = self.host_frame = None

    def info(self) -> dict:
        return {"memory_format": "channels_last" if self.memory_format is torch.channels_last
                else "contiguous"}


class ChannelsLastBackend(EagerBackend):
    name = "channels_last"
    memory_format = torch.channels_last
