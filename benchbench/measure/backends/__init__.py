"""Backend registry: name -> class. Suites name backends by these keys (with options)."""
from __future__ import annotations

from .base import PRECISIONS, Backend, BackendSpec, Option, backend_label
from .compiled import CompileBackend
from .cuda_graphs import CudaGraphsBackend
from .eager import ChannelsLastBackend, EagerBackend
from .onnxruntime import OnnxRuntimeBackend
from .tensorrt import TensorRTBackend
from .trtexec import TrtexecBackend

BACKENDS: dict[str, type] = {
    "eager": EagerBackend,
    "channels_last": ChannelsLastBackend,
    "compile": CompileBackend,
    "cuda_graphs": CudaGraphsBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "tensorrt": TensorRTBackend,
    "trtexec": TrtexecBackend,
}

# the reference every other backend/precision is compared with (output equivalence)
REFERENCE = BackendSpec("eager", "fp32")


def create_backend(name: str, options=None) -> Backend:
    """A backend by name; ``options`` (a dict or (key, value) pairs) are checked against the
    backend's OPTIONS (ValueError naming the option and the allowed values)."""
    return BACKENDS[name](**dict(options or {}))


__all__ = ["BACKENDS", "PRECISIONS", "REFERENCE", "Backend", "BackendSpec", "Option",
           "backend_label", "create_backend"]
