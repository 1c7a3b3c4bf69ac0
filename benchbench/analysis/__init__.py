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
    aten_ops: dict = field(default_factory=dict)     # op name -> calls in one forward
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
    return _analyze_named(*_request_key(model, size, batch, model_args))


def analyze_many(requests, processes: int | None = None) -> list[AnalysisRecord]:
    """``analyze(name, size, batch, **model_args)`` for each request tuple, in order. What is
    not cached yet is grouped by model (one meta build serves all its sizes) and the groups are
    spread over ``processes`` forked workers (default: the CPUs this process may use, at most
    4; 1, or a platform without fork, analyses here one after the other)."""
    keys = prefetch(requests, processes)
    return [_analyze_named(*k) for k in keys]


def prefetch(requests, processes: int | None = None) -> list[tuple]:
    """The worker half of ``analyze_many``: fill the cache, raise nothing (a request that fails
    raises when it is analysed); returns the requests' cache keys."""
    keys = [_request_key(name, size, batch, dict(args)) for name, size, batch, args in requests]
    groups: dict[str, list] = {}
    for key in dict.fromkeys(keys):
        if key not in _CACHE:
            groups.setdefault(key[0], []).append(key)
    workers = min(_usable_processes() if processes is None else processes, len(groups))
    if workers > 1:
        _analyze_in_workers(list(groups.values()), workers)
    return keys


def clear_cache() -> None:
    _CACHE.clear()
    _meta_model.cache_clear()
    _meta_params.cache_clear()


def _request_key(name: str, size, batch: int, model_args: dict) -> tuple:
    from ..zoo import model_card
    if model_card(name).builds_per_size and "input_size" not in model_args:
        model_args["input_size"] = [int(s) for s in size]   # architecture follows the input
    key = json.dumps(model_args, sort_keys=True, default=str)
    return name, key, tuple(int(s) for s in size), int(batch)


_CACHE: dict[tuple, AnalysisRecord] = {}
_CACHE_MAX = 4096


def _analyze_named(name: str, args_key: str, size: tuple[int, int], batch: int) -> AnalysisRecord:
    key = (name, args_key, size, batch)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = _analyze_uncached(*key)
    return _CACHE[key]


def _analyze_uncached(name: str, args_key: str, size, batch: int) -> AnalysisRecord:
    try:
        return _analyze_module(_meta_model(name, args_key), name, size, batch,
                               params=_meta_params(name, args_key))
    except _DATA_DEPENDENT as exc:
        if not _reads_values(exc):
            raise
        real = create_model(name, **json.loads(args_key)).eval()
        return _analyze_module(real, name, size, batch, device="cpu")


def _usable_processes() -> int:
    import multiprocessing
    import os

    if "fork" not in multiprocessing.get_all_start_methods() or \
            multiprocessing.current_process().daemon:
        return 1
    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def _analyze_in_workers(groups: list[list[tuple]], workers: int) -> None:
    """Fill the cache from forked workers (they inherit the registry, plugins included). A
    group that fails there is left out: the caller analyses it here, where its error is
    raised as it would be without workers."""
    import multiprocessing

    groups = sorted(groups, key=len, reverse=True)
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_worker)
    try:
        for done in pool.imap_unordered(_analyze_group, groups):
            _CACHE.update(done)
        pool.close()
    finally:
        pool.terminate()        # at once on Ctrl-C / SIGTERM of the caller
        pool.join()


def _quiet_worker() -> None:
    import signal

    # the caller handles Ctrl-C and SIGTERM; a worker just ends (no inherited handler's
    # traceback), and must not start the parent's CPU thread pool after the fork
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)


def _analyze_group(keys: list[tuple]) -> dict:
    try:
        return {key: _analyze_uncached(*key) for key in keys}
    except Exception:  # noqa: BLE001 - re-raised by the caller, in its own process
        return {}


# a forward that reads a tensor's value (``if x.sum() > 0``) cannot run on the meta device
_DATA_DEPENDENT = (RuntimeError, NotImplementedError)


def _reads_values(exc: BaseException) -> bool:
    text = str(exc)
    return "meta tensor" in text or "data-dependent" in text or "'meta'" in text


@functools.lru_cache(maxsize=64)
def _meta_model(name: str, args_key: str) -> nn.Module:
    """One meta-device instance per (model, arguments), reused across sizes."""
    return build_on_meta(create_model, name, **json.loads(args_key)).eval()


@functools.lru_cache(maxsize=64)
def _meta_params(name: str, args_key: str) -> int:
    return sum(p.numel() for p in _meta_model(name, args_key).parameters())


def _analyze_module(model: nn.Module, name: str, size, batch: int, device: str = "meta",
                    params: int | None = None) -> AnalysisRecord:
    if next(model.parameters(), torch.empty(0, device=device)).device.type != device:
        import copy
        model = copy.deepcopy(model).to(device)
    cached = params is not None      # the registry's meta models: cached, eval, kept counted
    if not cached:
        model.eval()
        params = sum(p.numel() for p in model.parameters())
    counts = count_on_meta(model, (batch, 3, *size), device, keep_instrumented=cached)
    return AnalysisRecord(
        model=name, input_hw=tuple(size), batch=batch, params=params, macs=counts["macs"],
        gflops=counts["macs_paper"] / 1e9, macs_paper=counts["macs_paper"],
        macs_jetseg_formula=counts["macs_jetseg_formula"],
        conv_macs=counts["conv_macs"], cio=counts["cio"],
        moc=counts["conv_macs"] / counts["cio"] if counts["cio"] else float("nan"),
        peak_activation_mb=counts["peak_activation_bytes"] / 2**20,
        output_shape=counts["output_shape"], macs_by_op=counts["macs_by_op"],
        unsupported_ops=counts["unsupported_ops"], aten_ops=counts["aten_ops"],
        counted_on=device if device == "meta" else
        f"{device} (the forward reads tensor values, which the meta device does not have)")
