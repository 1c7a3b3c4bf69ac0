"""Static analysis of one (model, input size): params, MACs under named conventions, CIO, MoC,
peak activation memory. Counted on the meta device, so a 1024x2048 analysis costs a forward's
worth of Python dispatch, not of arithmetic; cached per (model, arguments, size, batch)."""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..zoo import create_model
from .counters import build_on_meta, count_on_meta

CONVENTIONS = {
    "macs": "fvcore FlopCountAnalysis.total() convention: one multiply-accumulate = 1",
    "gflops": "papers' GFLOPs = MACs/1e9 by 2020 ptflops module hooks (conv+bias, BN, "
              "activations, pooling; functional interpolate not counted)",
    "cio": "FASSD eq. (2) over nn.Conv2d layers, elements (not bytes)",
    "moc": "FASSD eq. (1): conv MACs / CIO",
    "macs_jetseg_formula": "JetSeg eq. (2) / official config/hooks.py: conv Cin*Cout*kh*kw*Hin*Win"
                           "/(s^2*g), 4 per BN element, 1 per REU element, no interpolation",
    "peak_activation_mb": "most MiB of tensors alive at once in one forward (input included, "
                          "weights excluded), float32",
}


@dataclass(frozen=True)
class AnalysisRecord:
    model: str
    input_hw: tuple[int, int]
    batch: int
    params: int
    macs: int
    gflops: float
    macs_paper: int
    macs_jetseg_formula: int
    conv_macs: int
    cio: int
    moc: float
    peak_activation_mb: float
    output_shape: tuple[int, ...]
    macs_by_op: dict = field(default_factory=dict)
    unsupported_ops: dict = field(default_factory=dict)
    conventions: dict = field(default_factory=lambda: dict(CONVENTIONS))
    counted_on: str = "meta"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["input_hw"] = list(self.input_hw)
        d["output_shape"] = list(self.output_shape)
        return d


def analyze(model: str | nn.Module, size: tuple[int, int], batch: int = 1,
            **model_args) -> AnalysisRecord:
    """Analyse a registered model by name (built on the meta device) or a module you pass."""
    if isinstance(model, nn.Module):
        return _analyze_module(model, type(model).__name__, tuple(size), batch)
    from ..zoo import model_card
    if model_card(model).builds_per_size and "input_size" not in model_args:
        model_args["input_size"] = [int(s) for s in size]   # architecture follows the input
    key = json.dumps(model_args, sort_keys=True, default=str)
    return _analyze_named(model, key, tuple(int(s) for s in size), int(batch))


@functools.lru_cache(maxsize=1024)
def _analyze_named(name: str, args_key: str, size: tuple[int, int], batch: int) -> AnalysisRecord:
    try:
        return _analyze_module(_meta_model(name, args_key), name, size, batch)
    except _DATA_DEPENDENT as exc:
        if not _reads_values(exc):
            raise
        real = create_model(name, **json.loads(args_key)).eval()
        return _analyze_module(real, name, size, batch, device="cpu")


# a forward that reads a tensor's value (``if x.sum() > 0``) cannot run on the meta device
_DATA_DEPENDENT = (RuntimeError, NotImplementedError)


def _reads_values(exc: BaseException) -> bool:
    text = str(exc)
    return "meta tensor" in text or "data-dependent" in text or "'meta'" in text


@functools.lru_cache(maxsize=64)
def _meta_model(name: str, args_key: str) -> nn.Module:
    """One meta-device instance per (model, arguments), reused across sizes."""
    return build_on_meta(create_model, name, **json.loads(args_key)).eval()


def _analyze_module(model: nn.Module, name: str, size, batch: int,
                    device: str = "meta") -> AnalysisRecord:
    if next(model.parameters(), torch.empty(0, device=device)).device.type != device:
        import copy
        model = copy.deepcopy(model).to(device)
    model.eval()
    counts = count_on_meta(model, (batch, 3, *size), device)
    params = sum(p.numel() for p in model.parameters())
    return AnalysisRecord(
        model=name, input_hw=tuple(size), batch=batch, params=params, macs=counts["macs"],
        gflops=counts["macs_paper"] / 1e9, macs_paper=counts["macs_paper"],
        macs_jetseg_formula=counts["macs_jetseg_formula"],
        conv_macs=counts["conv_macs"], cio=counts["cio"],
        moc=counts["conv_macs"] / counts["cio"] if counts["cio"] else float("nan"),
        peak_activation_mb=counts["peak_activation_bytes"] / 2**20,
        output_shape=counts["output_shape"], macs_by_op=counts["macs_by_op"],
        unsupported_ops=counts["unsupported_ops"],
        counted_on=device if device == "meta" else
        f"{device} (the forward reads tensor values, which the meta device does not have)")
