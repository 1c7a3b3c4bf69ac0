"""TensorRT through its Python API (name-based I/O tensors, TensorRT >= 8.5; 10.x tested API).

The model is exported to ONNX in memory, parsed with ``trt.OnnxParser``, built with
``build_serialized_network`` (fp16 via ``BuilderFlag.FP16``), and run with
``execute_async_v3`` on the current torch CUDA stream, reading and writing torch tensors in
place. UNTESTED in benchbench's own environment: TensorRT cannot be installed on the
development machines nor on the lent GPU; without ``tensorrt`` every TensorRT cell is recorded
as skipped with the reason.
"""
from __future__ import annotations

import io

import torch
from torch import nn

from .base import synchronize

_TRT_TO_TORCH = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
                 "INT32": torch.int32, "INT64": torch.int64, "BOOL": torch.bool}


class TensorRTBackend:
    name = "tensorrt"
    workspace_bytes = 1 << 30
    dynamic_shapes = False           # the engine is built for the cell's static input shape

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return ("TensorRT is not installed (python module 'tensorrt'); install NVIDIA's "
                    "TensorRT wheel for this CUDA version to run TensorRT cells")
        if device != "cuda" or not torch.cuda.is_available():
            return "TensorRT needs a CUDA device"
        if precision not in ("fp32", "fp16"):
            return f"TensorRT backend supports fp32 and fp16, not {precision!r}"
        return None

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        import tensorrt as trt

        self.device, self.precision = device, precision
        self.logger = trt.Logger(trt.Logger.WARNING)
        engine_bytes = self._build(trt, model.eval().float(), example.float(), precision)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        self.context = self.engine.create_execution_context()
        self.include_transfer = include_transfer
        self.host_frame = example.float().pin_memory() if include_transfer else None
        self.buffers = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = _TRT_TO_TORCH[self.engine.get_tensor_dtype(name).name]
            buf = torch.empty(shape, dtype=dtype, device=device)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                buf.copy_(example.to(dtype))
                self.input_name = name
            else:
                self.output_name = name
            self.buffers[name] = buf
            self.context.set_tensor_address(name, buf.data_ptr())

    def _build(self, trt, model, example, precision) -> bytes:
        onnx_file = io.BytesIO()
        torch.onnx.export(model.cpu(), example.cpu(), onnx_file, input_names=["input"],
                          output_names=["logits"], opset_version=17, dynamo=False)
        builder = trt.Builder(self.logger)
        explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
        network = builder.create_network(0 if explicit is None else 1 << int(explicit))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_file.getvalue()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse the ONNX export: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build an engine (see its log above)")
        return bytes(serialized)

    def run(self):
        if self.include_transfer:
            self.buffers[self.input_name].copy_(self.host_frame, non_blocking=True)
        self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream)
        return self.buffers

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        dst = self.buffers[self.input_name]
        if tuple(frames.shape) != tuple(dst.shape):
            raise ValueError(f"TensorRT engine takes {tuple(dst.shape)}, got {tuple(frames.shape)}")
        dst.copy_(frames.to(dst.dtype))
        self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream)
        self.sync()
        return self.buffers[self.output_name].clone()

    def sync(self) -> None:
        synchronize(self.device)

    def close(self) -> None:
        self.context = self.engine = self.runtime = None
        self.buffers = {}

    def info(self) -> dict:
        import tensorrt as trt
        return {"tensorrt_version": trt.__version__, "onnx_opset": 17,
                "builder_flags": ["FP16"] if self.precision == "fp16" else []}
