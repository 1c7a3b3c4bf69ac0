"""Expand a suite into cells: the cartesian product models x resolutions x batch x backends, in
the suite's own order (deterministic), on one resolved device."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .suite import ModelSpec, Suite


@dataclass(frozen=True)
class Cell:
    model: ModelSpec
    height: int
    width: int
    batch: int
    backend: str
    precision: str
    device: str                      # resolved: "cpu" or "cuda"
    num_classes: int

    @property
    def id(self) -> str:
        return (f"{self.model.label}@{self.height}x{self.width}/b{self.batch}/"
                f"{self.backend}-{self.precision}/{self.device}")

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.height, self.width)


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def expand(suite: Suite, device: str | None = None) -> list[Cell]:
    device = device or resolve_device(suite.device)
    return [Cell(model, h, w, batch, be.name, be.precision, device, suite.num_classes)
            for model in suite.models
            for (h, w) in suite.resolutions
            for batch in suite.batch_sizes
            for be in suite.backends]
