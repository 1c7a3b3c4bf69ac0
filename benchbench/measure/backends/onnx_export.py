"""One ONNX export for every backend that needs a graph (ONNX Runtime, TensorRT, trtexec).

The modern exporter (``torch.onnx.export(..., dynamo=True)``, torch.export + onnxscript) is
tried first; where it cannot capture a model, the TorchScript exporter is the fallback, and the
record says which one ran and why. Shapes are static: one graph per cell.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

EXPORTERS = ("auto", "dynamo", "torchscript")
# torch.onnx keeps global export state: one export at a time (boards run cells in threads)
_EXPORT_LOCK = threading.Lock()
DYNAMO_OPSET = 18          # the dynamo exporter's native opset; older opsets are converted
TORCHSCRIPT_OPSET = 17


@dataclass
class OnnxGraph:
    data: bytes
    exporter: str
    opset: int
    export_s: float
    input_name: str = "input"
    output_name: str = "logits"
    fallback_reason: str | None = None
    notes: list = field(default_factory=list)

    def info(self) -> dict:
        out = {"onnx_exporter": self.exporter, "onnx_opset": self.opset,
               "onnx_export_s": round(self.export_s, 3), "onnx_bytes": len(self.data)}
        if self.fallback_reason:
            out["onnx_export_fallback_reason"] = self.fallback_reason
        ops = self.op_counts()
        if ops is not None:
            out["onnx_ops"] = ops
        return out

    def op_counts(self) -> dict | None:
        """How many nodes of each op type the exported graph has (the work gate compares it);
        None where the ``onnx`` package is not installed to read the graph."""
        try:
            import onnx
        except ImportError:
            return None
        graph = onnx.load_from_string(self.data).graph
        return dict(sorted(Counter(node.op_type for node in graph.node).items()))


def export_onnx(model: nn.Module, example: torch.Tensor, exporter: str = "auto",
                opset: int | None = None) -> OnnxGraph:
    """Export ``model`` at ``example``'s shape and dtype (on ``example``'s device)."""
    with _EXPORT_LOCK:
        return _export(model, example, exporter, opset)


def _export(model, example, exporter, opset) -> OnnxGraph:
    if exporter not in EXPORTERS:
        raise ValueError(f"ONNX exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    model = model.eval()
    fallback = None
    if exporter in ("auto", "dynamo"):
        try:
            return _export_dynamo(model, example, opset or DYNAMO_OPSET)
        except Exception as exc:  # noqa: BLE001 - recorded; the TorchScript exporter is the fallback
            if exporter == "dynamo":
                raise
            fallback = f"dynamo exporter failed: {_first_line(exc)}"
    graph = _export_torchscript(model, example, opset or TORCHSCRIPT_OPSET)
    graph.fallback_reason = fallback
    return graph


@contextlib.contextmanager
def _quiet():
    """The exporters warn on stderr about things that do not concern the user's model (e.g.
    torchvision ops they cannot register); failures still raise."""
    names = ["torch"] + [n for n in logging.root.manager.loggerDict if n.startswith("torch.")]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), torch.no_grad(), \
                contextlib.redirect_stderr(io.StringIO()):    # graph dumps of a failed export
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export_dynamo(model, example, opset) -> OnnxGraph:
    import onnxscript  # noqa: F401 - the dynamo exporter needs it; a clear ImportError if not

    start = time.perf_counter()
    with _quiet():
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                    input_names=["input"], output_names=["logits"],
                                    verbose=False, report=False)
    proto = program.model_proto
    data = proto.SerializeToString()
    return OnnxGraph(data, "dynamo", _opset_of(proto, opset), time.perf_counter() - start)


def _export_torchscript(model, example, opset) -> OnnxGraph:
    start = time.perf_counter()
    buffer = io.BytesIO()
    with _quiet():
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)
    return OnnxGraph(buffer.getvalue(), "torchscript", opset, time.perf_counter() - start)


def _opset_of(proto, default: int) -> int:
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return default


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()     # the exporter colours its text
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {line[:300]}" if line else type(exc).__name__
