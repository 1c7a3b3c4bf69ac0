"""Backend registry: name -> class. Suites name backends by these keys."""
from __future__ import annotations

from .base import PRECISIONS, Backend, BackendSpec
from .eager import ChannelsLastBackend, EagerBackend
from .tensorrt import TensorRTBackend

BACKENDS: dict[str, type] = {
    "eager": EagerBackend,
    "channels_last": ChannelsLastBackend,
    "tensorrt": TensorRTBackend,
}


def create_backend(name: str) -> Backend:
    return BACKENDS[name]()


__all__ = ["BACKENDS", "PRECISIONS", "Backend", "BackendSpec", "create_backend"]
