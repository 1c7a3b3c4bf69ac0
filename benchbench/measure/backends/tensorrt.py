"""TensorRT through its Python API, for the versions users have: 8.2 (JetPack 4.6: TX2, Nano)
to 10.x (JetPack 5/6, desktops) and 11.x (PyPI).

What differs between them, and how each is chosen -- by what the installed module offers, not
by version string alone:

* I/O: name-based tensors (``num_io_tensors`` / ``set_tensor_address`` / ``execute_async_v3``,
  TensorRT >= 8.5) where the engine has them; else the binding-index API of 8.2
  (``num_bindings`` / ``get_binding_*`` / ``execute_async_v2(bindings, stream_handle)``).
* Workspace: ``config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)`` where it exists,
  else ``config.max_workspace_size = n`` (8.2).
* fp16: ``BuilderFlag.FP16`` where it exists (<= 10.x); TensorRT 11 builds strongly typed
  networks only and has no FP16 flag, so the ONNX graph itself is exported in fp16 and the
  network is created strongly typed -- the record says which route was taken.
* Explicit batch: the ``EXPLICIT_BATCH`` creation flag where it exists (needed before 10.0).

The engine runs on a dedicated non-default CUDA stream (TensorRT documents that the default
stream adds synchronisations); the timing engine records its CUDA events on that stream.
UNTESTED against a real TensorRT in benchbench's own environment (it cannot be installed on
the development machines nor on the lent GPU): tests drive this module through fake
``tensorrt`` modules with the API shapes of 8.2, 10.x and 11.x.
"""
from __future__ import annotations

import re
import time

import torch
from torch import nn

from .base import BackendBase, Capabilities, Option, TF32_OPTION, missing_library, synchronize
from .onnx_export import export_onnx

SUPPORTED = ((8, 2), (12, 0))          # [8.2, 12.0)
SUPPORTED_TEXT = "8.2 to 11.x"
_TRT_TO_TORCH = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
                 "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool,
                 "INT8": torch.int8, "UINT8": torch.uint8}


def trt_version(trt) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", getattr(trt, "__version__", ""))
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class TensorRTBackend(BackendBase):
    name = "tensorrt"
    # the engine is built for the cell's static input shape, and runs on its own stream
    CAPABILITIES = Capabilities(own_stream=True, dynamic_shapes=False, tensorrt_engine=True)
    OPTIONS = {
        "workspace_mib": Option(1024, kind=int, help="builder workspace memory pool cap"),
        "builder_optimization_level": Option(None, (None, 0, 1, 2, 3, 4, 5),
                                             help="TensorRT >= 8.6; default: TensorRT's (3)"),
        "exporter": Option("torchscript", ("auto", "dynamo", "torchscript")),
        "opset": Option(17, kind=int),
        "tf32": TF32_OPTION,
    }

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        missing = missing_library("tensorrt", "tensorrt", "TensorRT")
        if missing:
            return (missing.split(";")[0] + "; install NVIDIA's TensorRT wheel for this CUDA "
                    "version (pip install tensorrt) or use JetPack's on a Jetson")
        import tensorrt as trt
        version = trt_version(trt)
        if not SUPPORTED[0] <= version < SUPPORTED[1]:
            return (f"TensorRT {getattr(trt, '__version__', '?')} is not supported: "
                    f"benchbench drives TensorRT {SUPPORTED_TEXT}")
        if not device.startswith("cuda") or not torch.cuda.is_available():
            return "TensorRT needs a CUDA device"
        if precision not in ("fp32", "fp16"):
            return f"TensorRT backend supports fp32 and fp16, not {precision!r}"
        return None

    # -- build -------------------------------------------------------------------------
    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        import tensorrt as trt

        self.trt, self.device, self.precision = trt, device, precision
        self.tf32_in_force = self.set_tf32(device)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.build_info: dict = {}
        engine_bytes = self._build(model.eval(), example, precision)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise RuntimeError("TensorRT could not deserialize the engine it just built")
        self.context = self.engine.create_execution_context()
        # a dedicated stream on CUDA; tests drive the fake modules on the CPU with stream 0
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.io = (_NamedTensors if hasattr(self.engine, "num_io_tensors") else
                   _BindingIndices)(trt, self.engine, self.context, device)
        self.io.input.copy_(example.to(self.io.input.dtype))
        self.include_transfer = include_transfer
        self.host_frame = (example.to(self.io.input.dtype).pin_memory()
                           if include_transfer else None)

    def _fp16_route(self) -> str:
        return "builder_flag" if hasattr(self.trt.BuilderFlag, "FP16") else "fp16_onnx_strongly_typed"

    def _build(self, model, example, precision) -> bytes:
        trt = self.trt
        route = self._fp16_route() if precision == "fp16" else None
        graph_dtype = torch.float16 if route == "fp16_onnx_strongly_typed" else torch.float32
        on = self.device if graph_dtype == torch.float16 else torch.device("cpu")
        start = time.perf_counter()
        graph = export_onnx(model.to(on, graph_dtype), example.to(on, graph_dtype),
                            self.exporter, self.opset)
        self.build_info["onnx_export_s"] = round(time.perf_counter() - start, 3)
        self.graph_info = graph.info()
        builder = trt.Builder(self.logger)
        network, flags = self._network(builder, strongly_typed=route == "fp16_onnx_strongly_typed")
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(graph.data):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse the ONNX export: {errors}")
        config = builder.create_builder_config()
        self._configure(config, precision, route)
        self.build_info.update(network_flags=flags, fp16_route=route,
                               **self._config_record(config))
        start = time.perf_counter()          # parse done: the engine build alone
        serialized = builder.build_serialized_network(network, config)
        self.build_info["engine_build_s"] = round(time.perf_counter() - start, 3)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build an engine (see its log above)")
        return bytes(serialized)

    def _network(self, builder, strongly_typed: bool):
        flags, names = 0, []
        creation = self.trt.NetworkDefinitionCreationFlag
        if trt_version(self.trt) < (10, 0) and hasattr(creation, "EXPLICIT_BATCH"):
            flags |= 1 << int(creation.EXPLICIT_BATCH)
            names.append("EXPLICIT_BATCH")
        if trt_version(self.trt) >= (11, 0):
            # every 11.x network is strongly typed; its STRONGLY_TYPED (0) is deprecated and
            # the bits were renumbered (bit 1 is PREFER_JIT_PYTHON_PLUGINS): set nothing
            names.append("STRONGLY_TYPED (implicit: every TensorRT 11 network)")
        elif strongly_typed and hasattr(creation, "STRONGLY_TYPED"):
            flags |= 1 << int(creation.STRONGLY_TYPED)
            names.append("STRONGLY_TYPED")
        return builder.create_network(flags), names

    def _configure(self, config, precision: str, route: str | None) -> None:
        trt = self.trt
        workspace = self.workspace_mib << 20
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        else:                                                       # TensorRT 8.2
            config.max_workspace_size = workspace
        if route == "builder_flag":
            config.set_flag(trt.BuilderFlag.FP16)
        if self.tf32 is False and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)
        if self.builder_optimization_level is not None:
            if not hasattr(config, "builder_optimization_level"):
                raise RuntimeError(f"TensorRT {trt.__version__} has no builder optimisation "
                                   f"level (TensorRT >= 8.6)")
            config.builder_optimization_level = self.builder_optimization_level

    def _config_record(self, config) -> dict:
        trt = self.trt
        flags = {name: bool(config.get_flag(getattr(trt.BuilderFlag, name)))
                 for name in ("FP16", "TF32", "INT8", "STRICT_TYPES")
                 if hasattr(trt.BuilderFlag, name)}
        out = {"workspace_mib": self.workspace_mib, "builder_flags": flags,
               "tf32_allowed": flags.get("TF32")}
        for attr in ("builder_optimization_level", "avg_timing_iterations"):
            if hasattr(config, attr):
                out[attr] = getattr(config, attr)
        if hasattr(config, "get_tactic_sources"):
            out["tactic_sources_mask"] = int(config.get_tactic_sources())
        return out

    # -- run ---------------------------------------------------------------------------
    def run(self):
        if self.include_transfer:
            # on the engine's own stream, whatever stream is current (the power pass does not
            # make it current): the copy is ordered before the engine reads the input
            with _on_stream(self.stream):
                self.io.input.copy_(self.host_frame, non_blocking=True)
        self.io.execute(self._stream_handle())
        return self.io.output

    def _stream_handle(self) -> int:
        return self.stream.cuda_stream if self.stream is not None else 0

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        dst = self.io.input
        if tuple(frames.shape) != tuple(dst.shape):
            raise ValueError(f"TensorRT engine takes {tuple(dst.shape)}, got {tuple(frames.shape)}")
        self.sync()
        dst.copy_(frames.to(dst.dtype))
        self.sync()
        self.io.execute(self._stream_handle())
        self.sync()
        return self.io.output.clone()

    def sync(self) -> None:
        synchronize(self.device)

    def close(self) -> None:
        self.context = self.engine = self.runtime = self.io = None
        self.restore_tf32()

    def info(self) -> dict:
        return {"tensorrt_version": self.trt.__version__,
                "io_api": self.io.api if self.io else None, "stream": "dedicated non-default",
                **self.graph_info, **self.build_info}


def _on_stream(stream):
    import contextlib
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


class _NamedTensors:
    """TensorRT >= 8.5: I/O tensors by name, addresses set once, ``execute_async_v3``."""

    api = "named_tensors/execute_async_v3"

    def __init__(self, trt, engine, context, device):
        self.context, self.buffers = context, {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            buf = torch.empty(tuple(engine.get_tensor_shape(name)),
                              dtype=_TRT_TO_TORCH[engine.get_tensor_dtype(name).name], device=device)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.input = buf
            elif not hasattr(self, "output"):    # the graph's first output, as ONNX Runtime
                self.output = buf
            self.buffers[name] = buf
            context.set_tensor_address(name, buf.data_ptr())

    def execute(self, stream_handle: int) -> None:
        if not self.context.execute_async_v3(stream_handle):
            raise RuntimeError("TensorRT execute_async_v3 failed")


class _BindingIndices:
    """TensorRT 8.2 (JetPack 4.6): bindings by index, ``execute_async_v2(bindings, stream)``."""

    api = "binding_indices/execute_async_v2"

    def __init__(self, trt, engine, context, device):
        self.context, self.pointers, self.buffers = context, [], []
        for i in range(engine.num_bindings):
            buf = torch.empty(tuple(engine.get_binding_shape(i)),
                              dtype=_TRT_TO_TORCH[engine.get_binding_dtype(i).name], device=device)
            if engine.binding_is_input(i):
                self.input = buf
            elif not hasattr(self, "output"):    # the graph's first output, as ONNX Runtime
                self.output = buf
            self.buffers.append(buf)         # every binding's memory lives as long as we do
            self.pointers.append(buf.data_ptr())

    def execute(self, stream_handle: int) -> None:
        if not self.context.execute_async_v2(bindings=self.pointers, stream_handle=stream_handle):
            raise RuntimeError("TensorRT execute_async_v2 failed")
