"""Eager PyTorch, in contiguous (NCHW) or channels_last memory format, fp32/fp16/bf16."""
from __future__ import annotations

import torch
from torch import nn

from .base import PRECISIONS, BackendBase, synchronize


def device_reason(device: str, precision: str) -> str | None:
    """What eager PyTorch itself cannot do here (shared by the backends built on it)."""
    if precision not in PRECISIONS:
        return f"precision {precision!r} is not one of {', '.join(PRECISIONS)}"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "CUDA is not available (torch.cuda.is_available() is False)"
    if device == "cpu" and precision == "fp16":
        return "fp16 convolutions are not a supported fast path on CPU; use fp32 or bf16"
    return None


class EagerBackend(BackendBase):
    name = "eager"
    memory_format = torch.contiguous_format

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        return device_reason(device, precision)

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        dtype = PRECISIONS[precision]
        self.device, self.dtype = device, dtype
        self.tf32_in_force = self.set_tf32(device)
        self.model = self._place(model)
        frame = example.to(dtype=dtype).contiguous(memory_format=self.memory_format)
        self.include_transfer = include_transfer and device.type != "cpu"
        if self.include_transfer:
            self.host_frame = frame.pin_memory() if device.type == "cuda" else frame
        else:
            self.frame = frame.to(device)

    def _place(self, model: nn.Module) -> nn.Module:
        return model.eval().to(device=self.device, dtype=self.dtype,
                               memory_format=self.memory_format)

    def _input(self) -> torch.Tensor:
        if self.include_transfer:
            return self.host_frame.to(self.device, non_blocking=True)
        return self.frame

    def run(self):
        return self.model(self._input())

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            return self.model(x)

    def sync(self) -> None:
        synchronize(self.device)

    def close(self) -> None:
        self.model = self.frame = self.host_frame = None
        self.restore_tf32()

    def info(self) -> dict:
        out = {"memory_format": "channels_last" if self.memory_format is torch.channels_last
               else "contiguous"}
        if getattr(self, "tf32_in_force", None) is not None:
            out["tf32"] = self.tf32_in_force
        return out


class ChannelsLastBackend(EagerBackend):
    name = "channels_last"
    memory_format = torch.channels_last
