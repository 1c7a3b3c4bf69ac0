"""Expand a suite into cells: the cartesian product models x resolutions x batch x backends, in
the suite's own order (deterministic), on one resolved device."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .measure.backends import backend_label
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
    backend_options: tuple = ()      # sorted (key, value) pairs the suite gave the backend

    @property
    def backend_label(self) -> str:
        return backend_label(self.backend, self.backend_options)

    @property
    def id(self) -> str:
        return (f"{self.model.label}@{self.height}x{self.width}/b{self.batch}/"
                f"{self.backend_label}-{self.precision}/{self.device}")

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.height, self.width)


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def expand(suite: Suite, device: str | None = None) -> list[Cell]:
    device = device or resolve_device(suite.device)
    return [Cell(model, h, w, batch, be.name, be.precision, device, suite.num_classes,
                 be.options)
            for model in suite.models
            for (h, w) in suite.resolutions
            for batch in suite.batch_sizes
            for be in suite.backends]
