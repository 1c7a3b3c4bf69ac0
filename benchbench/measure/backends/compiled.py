"""``torch.compile``: the eager model compiled with one of its modes (``default``,
``reduce-overhead``, ``max-autotune``, ...) for the cell's static shape.

Compilation happens in ``prepare`` (the first calls), is recorded as ``compile_s`` and never
lands in the timed loop. Dynamo's own counters are read around the timed loop: a graph
compiled there (a recompilation, e.g. a guard that failed) flags the cell.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn

from .base import Capabilities, Option, TF32_OPTION
from .eager import EagerBackend

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")   # inductor's triton.cudagraphs on


def cudagraph_skips() -> int | None:
    """Times inductor declined CUDA graphs for a graph so far (it logs why), or None."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return None
    return int(counters["inductor"]["cudagraph_skips"])


def compiled_graphs() -> int | None:
    """Graphs Dynamo compiled so far in this process (None if this torch does not say)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return None
    return int(counters["stats"]["unique_graphs"])


class CompileBackend(EagerBackend):
    name = "compile"
    _live = 0                        # prepared, not yet closed, in this process
    CAPABILITIES = Capabilities(timing_hooks=True)
    used_cuda_graphs = False         # inductor captured CUDA graphs (known once prepared)

    @property
    def capabilities(self) -> Capabilities:
        return replace(self.CAPABILITIES, cuda_graphs=self.used_cuda_graphs)
    OPTIONS = {
        "mode": Option("default", MODES),
        "fullgraph": Option(False, (False, True), help="fail instead of splitting the graph"),
        "warmup_calls": Option(3, kind=int, help="calls after the first, inside prepare"),
        "tf32": TF32_OPTION,
    }

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        reason = super().unavailable_reason(device, precision)
        if reason:
            return reason
        if not hasattr(torch, "compile"):
            return f"torch {torch.__version__} has no torch.compile (needs torch >= 2.0)"
        return None

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        super().prepare(model, example, device, precision, include_transfer)
        self.eager_model = self.model
        if not CompileBackend._live:
            # Dynamo caches per code object, shared by every instance of a model class: after
            # recompile_limit (8) sizes of one model it silently runs eager. Each cell starts
            # from a fresh Dynamo (unless another compiled model, a paired reference, is live).
            torch._dynamo.reset()
        CompileBackend._live += 1
        self._counted_live = True
        self.model = torch.compile(self.eager_model, mode=self.mode, fullgraph=self.fullgraph,
                                   dynamic=False)
        graphs0, skips0 = compiled_graphs(), cudagraph_skips()
        with torch.inference_mode():
            start = time.perf_counter()
            self.run()
            self.sync()
            self.compile_s = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(self.warmup_calls):
                self.run()
            self.sync()
            self.post_compile_calls_s = time.perf_counter() - start
        graphs1 = compiled_graphs()
        self.graphs_compiled = None if graphs0 is None else graphs1 - graphs0
        self.cudagraph_skips = None if skips0 is None else cudagraph_skips() - skips0
        # the protocol's cuda_graphs: inductor captured the forward in CUDA graphs (its mode
        # asks for them, on a CUDA device, and it skipped none of the graphs)
        self.used_cuda_graphs = (self.mode in CUDAGRAPH_MODES and device.type == "cuda"
                                 and not self.cudagraph_skips)
        self.recompiles_during_timing = None
        if self.graphs_compiled == 0:
            raise RuntimeError("torch.compile compiled no graph for this cell (Dynamo fell back "
                               "to eager); it would be timed as eager under a compile label")

    def timed_start(self) -> None:
        self._graphs_before_timing = compiled_graphs()

    def timed_end(self) -> None:
        after = compiled_graphs()
        if after is not None and self._graphs_before_timing is not None:
            self.recompiles_during_timing = after - self._graphs_before_timing

    def close(self) -> None:
        if getattr(self, "_counted_live", False):
            CompileBackend._live -= 1
            self._counted_live = False
        self.eager_model = None
        super().close()

    def info(self) -> dict:
        out = dict(super().info(), compile_mode=self.mode, fullgraph=self.fullgraph,
                   dynamic=False, compile_s=round(self.compile_s, 3),
                   graphs_compiled=self.graphs_compiled, cuda_graphs=self.used_cuda_graphs,
                   cudagraph_skips=self.cudagraph_skips,
                   recompiles_during_timing=self.recompiles_during_timing)
        if self.recompiles_during_timing:
            out["warning"] = (f"{self.recompiles_during_timing} graph(s) compiled inside the "
                              f"timed loop: timing includes compilation")
        return out
