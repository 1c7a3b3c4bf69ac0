"""ONNX Runtime: the cell's model exported once to ONNX (``onnx_export``), run by an
``InferenceSession`` whose execution provider follows the device (CPU here; CUDA or
TensorRT EP where the installed ``onnxruntime-gpu`` offers them).

The provider is checked, not trusted: ``get_available_providers()`` lists what this build was
compiled with, and when the CUDA, cuDNN or TensorRT libraries fail to load ORT logs it and
builds a CPU session. The session's ``get_providers()`` must lead with the requested provider,
or the cell fails with ORT's own message. The TensorRT EP is registered with the CUDA EP as its
fallback (ORT's documented order), with ``trt_fp16_enable`` for fp16 cells and an engine cache;
its engine build is part of ``session_create_s`` (the session and its first run), not warm-up.

Input and output are bound to preallocated torch tensors through IOBinding, on the device, so
a timed forward is inference, not copies (with ``include_transfer`` the host->device copy is
inside the forward, as for the other backends). ``run_with_iobinding`` returns once the
execution provider has finished, so the clock is the host's on every device.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from .base import (PRECISIONS, BackendBase, Capabilities, Option, TF32_OPTION, missing_library,
                   synchronize)
from .onnx_export import EXPORTERS, export_onnx

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
              "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_NUMPY_DTYPES = {torch.float32: "float32", torch.float16: "float16"}


class OnnxRuntimeBackend(BackendBase):
    name = "onnxruntime"
    # one static-shape graph per cell; run_with_iobinding waits for the provider
    CAPABILITIES = Capabilities(host_synchronous=True, dynamic_shapes=False)
    OPTIONS = {
        "provider": Option("auto", ("auto", *PROVIDERS),
                           help="execution provider; auto = cuda on a CUDA cell, else cpu"),
        "graph_optimization": Option("all", tuple(OPT_LEVELS)),
        "exporter": Option("auto", EXPORTERS),
        "opset": Option(None, kind=int),
        "trt_engine_cache": Option(None, kind=str,
                                   help="TensorRT EP engine cache folder (default: "
                                        "~/.cache/benchbench/ort_trt_engines)"),
        "tf32": TF32_OPTION,
    }

    def _provider(self, device: str) -> str:
        if self.provider != "auto":
            return self.provider
        return "cuda" if device.startswith("cuda") else "cpu"

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        missing = (missing_library("onnxruntime", "onnx", "ONNX Runtime")
                   or missing_library("onnx", "onnx", "onnx"))
        if missing:
            return missing
        if device.startswith("cuda") and not torch.cuda.is_available():
            return "CUDA is not available (torch.cuda.is_available() is False)"
        provider = self._provider(device)
        if (provider == "cpu") != (device == "cpu"):
            return f"provider {provider!r} does not run on device {device!r}"
        if precision == "bf16":
            return "onnxruntime backend supports fp32 and fp16, not bf16"
        if precision == "fp16" and device == "cpu":
            return ("fp16 ONNX graphs run on CPU through casts, not as a fast path; "
                    "use fp32 on CPU, fp16 with the CUDA or TensorRT provider")
        import onnxruntime as ort
        offered = ort.get_available_providers()
        if PROVIDERS[provider] not in offered:
            hint = "pip install onnxruntime-gpu" if provider != "cpu" else "pip install onnxruntime"
            return (f"this onnxruntime ({ort.__version__}) offers {', '.join(offered)}, not "
                    f"{PROVIDERS[provider]} ({hint})")
        return None

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        import onnxruntime as ort

        self.device, self.dtype = device, PRECISIONS[precision]
        self.tf32_in_force = self.set_tf32(device)
        model = model.eval().to(device=device, dtype=self.dtype)
        frame = example.to(device=device, dtype=self.dtype)
        self.graph = export_onnx(model, frame, self.exporter, self.opset)
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                   OPT_LEVELS[self.graph_optimization])
        options.intra_op_num_threads = torch.get_num_threads() if device.type == "cpu" else 0
        self.precision = precision
        requested = self._providers(device)
        start = time.perf_counter()
        with captured_stderr() as log:
            self.session = ort.InferenceSession(self.graph.data, sess_options=options,
                                                providers=requested)
        self.session_s = time.perf_counter() - start
        check_providers(self.session.get_providers(), requested, log.text())
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.input = frame.contiguous()
        self.include_transfer = include_transfer and device.type == "cuda"
        self.host_frame = example.to(self.dtype).pin_memory() if self.include_transfer else None
        out_shape = self._output_shape()
        self.output = torch.empty(out_shape, dtype=self.dtype, device=device)
        self.binding = self._bind(self.input, self.output)
        self.first_run_s = None
        if self._provider(device.type) == "tensorrt":   # a lazily built engine: built here
            start = time.perf_counter()
            self.session.run_with_iobinding(self.binding)
            self.first_run_s = time.perf_counter() - start
            self.session_s += self.first_run_s

    def _providers(self, device: torch.device) -> list:
        """What the session is asked for: the provider with its options, and ORT's fallbacks
        (TensorRT -> CUDA; CPU always last, for the nodes a GPU provider does not take)."""
        name = PROVIDERS[self._provider(device.type)]
        if name == "CPUExecutionProvider":
            return [name]
        cuda = ("CUDAExecutionProvider", {
            "device_id": device.index or 0,
            "use_tf32": int(bool((self.tf32_in_force or {}).get("cudnn_conv_tf32", True)))})
        if name == "CUDAExecutionProvider":
            return [cuda, "CPUExecutionProvider"]
        cache = Path(self.trt_engine_cache or Path.home() / ".cache/benchbench/ort_trt_engines")
        trt = {"device_id": device.index or 0,
               "trt_fp16_enable": self.precision == "fp16",
               "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
               "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
        return [(name, trt), cuda, "CPUExecutionProvider"]

    def _output_shape(self) -> tuple:
        shape = self.session.get_outputs()[0].shape
        if all(isinstance(d, int) for d in shape):
            return tuple(shape)
        with torch.no_grad():   # a symbolic dimension: ask the graph once
            out = self.session.run([self.output_name], {self.input_name: self.input.cpu().numpy()})
        return tuple(out[0].shape)

    def _bind(self, inp: torch.Tensor, out: torch.Tensor):
        binding = self.session.io_binding()
        kind = "cuda" if self.device.type == "cuda" else "cpu"
        index = self.device.index or 0
        binding.bind_input(self.input_name, kind, index, _NUMPY_DTYPES[inp.dtype],
                           tuple(inp.shape), inp.data_ptr())
        binding.bind_output(self.output_name, kind, index, _NUMPY_DTYPES[out.dtype],
                            tuple(out.shape), out.data_ptr())
        return binding

    def run(self):
        if self.include_transfer:
            self.input.copy_(self.host_frame)     # blocking: ORT runs on its own stream
        self.session.run_with_iobinding(self.binding)
        return self.output

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        if tuple(frames.shape) != tuple(self.input.shape):
            raise ValueError(f"the ONNX graph takes {tuple(self.input.shape)}, "
                             f"got {tuple(frames.shape)}")
        synchronize(self.device)
        self.input.copy_(frames.to(self.dtype))
        synchronize(self.device)
        self.session.run_with_iobinding(self.binding)
        return self.output.clone()

    def sync(self) -> None:
        synchronize(self.device)

    def close(self) -> None:
        self.session = self.binding = self.input = self.output = self.host_frame = None
        self.restore_tf32()

    def info(self) -> dict:
        import onnxruntime as ort
        out = {"onnxruntime_version": ort.__version__, **self.graph.info(),
               "providers_used": list(self.session.get_providers()) if self.session else None,
               "graph_optimization_level": OPT_LEVELS[self.graph_optimization],
               "providers_requested": [p if isinstance(p, str) else p[0]
                                       for p in self._providers(self.device)],
               "session_create_s": round(self.session_s, 3), "io_binding": True,
               "intra_op_threads": torch.get_num_threads() if self.device.type == "cpu" else None}
        if self.first_run_s is not None:
            out["session_create_s_includes"] = (f"the first run, {self.first_run_s:.3f} s "
                                                f"(the TensorRT EP builds its engine there)")
        if self.tf32_in_force is not None:
            out["tf32"] = self.tf32_in_force
        return out


def check_providers(used: list, requested: list, log: str = "") -> None:
    """The session leads with the requested provider, or the cell fails: ORT builds a CPU (or
    CUDA) session when a GPU provider's libraries do not load, and only logs it."""
    wanted = requested[0] if isinstance(requested[0], str) else requested[0][0]
    if used and used[0] == wanted:
        return
    said = [line.strip() for line in log.splitlines() if line.strip()]
    why = said[-1] if said else "ONNX Runtime said nothing on stderr"
    raise RuntimeError(f"ONNX Runtime built a session on {', '.join(used) or 'no provider'}, "
                       f"not the requested {wanted} (its libraries did not load?); it said: "
                       f"{why[:400]}")


class _Captured:
    def __init__(self, path: str):
        self.path = path
        self._text = None

    def text(self) -> str:
        if self._text is None:
            with contextlib.suppress(OSError):
                self._text = Path(self.path).read_text(errors="replace")
        return self._text or ""


@contextlib.contextmanager
def captured_stderr():
    """File descriptor 2 into a file for the block (ORT's C++ logger writes there, not to
    ``sys.stderr``), replayed to the real stderr afterwards; ``.text()`` is what was written."""
    import sys

    sys.stderr.flush()
    fd, path = tempfile.mkstemp(prefix="bench-ort-", suffix=".log")
    saved = os.dup(2)
    captured = _Captured(path)
    try:
        os.dup2(fd, 2)
        yield captured
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
        text = captured.text()
        if text:
            sys.stderr.write(text)
        with contextlib.suppress(OSError):
            os.unlink(path)
