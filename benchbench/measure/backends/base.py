"""The backend seam: a backend turns (model, example input) into a callable forward.

The timing engine owns the loop and the clock; a backend only prepares the model, runs one
forward on the prepared input, and synchronises its device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class BackendSpec:
    name: str
    precision: str = "fp32"

    @property
    def label(self) -> str:
        return f"{self.name}-{self.precision}"


class Backend(Protocol):
    name: str

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        """Why this backend cannot run here (library missing, no CUDA, precision), or None."""

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None: ...

    def run(self) -> object:
        """One forward on the prepared input."""

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        """Logits for host frames (N, 3, H, W) float32, through the prepared model in its
        precision; the accuracy stage scores exactly what is timed. Backends with a static
        input shape (``dynamic_shapes = False``) take only the prepared shape."""

    def sync(self) -> None: ...

    def close(self) -> None: ...

    def info(self) -> dict:
        """What the record should say about how this backend ran (versions, formats)."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
