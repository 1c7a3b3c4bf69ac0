"""CUDA graphs: one forward of the eager model captured in a ``torch.cuda.CUDAGraph`` on a
static input buffer, replayed for every timed forward (kernel launches cost nothing more)."""
from __future__ import annotations

import torch
from torch import nn

from .base import Capabilities, Option, TF32_OPTION
from .eager import EagerBackend


class CudaGraphsBackend(EagerBackend):
    name = "cuda_graphs"
    # the captured graph owns one input buffer
    CAPABILITIES = Capabilities(cuda_graphs=True, dynamic_shapes=False)
    OPTIONS = {"warmup_calls": Option(3, kind=int, help="eager calls on a side stream before "
                                                         "capture (cuDNN picks algorithms)"),
               "tf32": TF32_OPTION}

    def unavailable_reason(self, device: str, precision: str) -> str | None:
        if not device.startswith("cuda"):
            return "CUDA graphs need a CUDA device"
        return super().unavailable_reason(device, precision)

    def prepare(self, model: nn.Module, example: torch.Tensor, device: torch.device,
                precision: str, include_transfer: bool) -> None:
        super().prepare(model, example, device, precision, include_transfer=False)
        self.include_transfer = include_transfer
        self.host_frame = self.frame.cpu().pin_memory() if include_transfer else None
        self.static_input = self.frame
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(self.warmup_calls):
                self.model(self.static_input)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.static_output = self.model(self.static_input)

    def run(self):
        if self.include_transfer:
            self.static_input.copy_(self.host_frame, non_blocking=True)
        self.graph.replay()
        return self.static_output

    def infer(self, frames: torch.Tensor) -> torch.Tensor:
        if tuple(frames.shape) != tuple(self.static_input.shape):
            raise ValueError(f"the captured graph takes {tuple(self.static_input.shape)}, "
                             f"got {tuple(frames.shape)}")
        self.static_input.copy_(frames.to(self.static_input.dtype))
        self.graph.replay()
        self.sync()
        return self.static_output.clone()

    def close(self) -> None:
        self.graph = self.static_input = self.static_output = None
        super().close()

    def info(self) -> dict:
        return dict(super().info(), cuda_graph_warmup_calls=self.warmup_calls)
