"""``bench run --dry-run``: how long a suite will take, estimated before anything runs.

Per cell: forward time = 2 x MACs (fvcore count of the static analysis) / the rate this machine's
device reaches on a reference convolution (measured once, a fraction of a second); then the
protocol's iterations, the power pass and the accuracy pass, plus a fixed build overhead. For
``robust`` the timed phase is bounded by ``max_time_s`` (it stops earlier once the CI target is
met), so the estimate is an upper bound there. It is labelled an estimate wherever it appears.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from .analysis import analyze, prefetch
from .measure.backends import create_backend
from .zoo import model_card

BUILD_OVERHEAD_S = 0.5               # model build, analysis, backend preparation per cell


@dataclass(frozen=True)
class Estimate:
    per_cell_s: list                 # seconds, or None for a cell that would be skipped
    skip_reasons: list
    total_s: float
    device_gflops: float             # measured reference rate (2 x MACs per second / 1e9)
    basis: str

    def as_dict(self) -> dict:
        return asdict(self)


def reference_rate(device: str) -> float:
    """FLOP/s (2 x MACs) of a mid-sized 3x3 convolution on ``device``."""
    dev = torch.device(device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(dev).eval()
    x = torch.randn(1, 64, 128, 256, device=dev)
    flops = 2 * 64 * 64 * 9 * 128 * 256
    with torch.inference_mode():
        conv(x)
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < 0.2:
            conv(x)
            n += 1
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    return flops * n / (time.perf_counter() - t0)


def _cell_seconds(suite, forward_s: float, n_images: int) -> float:
    t = suite.timing
    warm = max(t.warmup * forward_s, t.warmup_s)
    if t.protocol == "paper":
        timed = t.iterations * forward_s
    else:
        timed = min(t.max_time_s, t.max_iterations * forward_s)
        timed = max(timed, t.min_iterations * forward_s)
    power = suite.power.idle_s + suite.power.duration_s if suite.power.sampler != "none" else 0.0
    views = 1
    if suite.accuracy is not None:
        cfg = suite.accuracy.config
        views = len(cfg.scales) * (2 if cfg.flip else 1)
    return BUILD_OVERHEAD_S + warm + timed + power + n_images * views * forward_s


def _analysis_request(cell) -> tuple:
    kwargs = dict(cell.model.kwargs, num_classes=cell.num_classes)
    if model_card(cell.model.name).builds_per_size:
        kwargs["input_size"] = cell.input_hw
    return cell.model.name, cell.input_hw, cell.batch, kwargs


def estimate_cells(suite, cells) -> Estimate:
    # every cell's MACs at once, in forked workers, before this process times its reference
    # convolution (so the workers fork from a process whose CPU thread pool never started)
    prefetch([_analysis_request(c) for c in cells])
    device = cells[0].device if cells else "cpu"
    usable = device == "cpu" or torch.cuda.is_available()
    rate = reference_rate(device) if usable else 0.0
    n_images = 0
    if suite.accuracy is not None:
        from .accuracy import open_dataset
        cfg = suite.accuracy.config
        n = len(open_dataset(cfg.dataset, cfg.root, cfg.split).samples)
        n_images = min(n, cfg.limit or n)
    per_cell, reasons = [], []
    for cell in cells:
        backend = create_backend(cell.backend, cell.backend_options)
        if suite.remote:
            per_cell.append(None)
            reasons.append(f"runs on a board ({', '.join(r.label for r in suite.remote)}): no "
                           f"estimate" if not backend.capabilities.in_process else
                           "not run: the suite's boards run trtexec cells only")
            continue
        reason = backend.unavailable_reason(cell.device, cell.precision)
        if reason:
            per_cell.append(None)
            reasons.append(reason)
            continue
        name, size, batch, kwargs = _analysis_request(cell)
        macs = analyze(name, size, batch, **kwargs).macs
        forward_s = 2 * macs / rate
        n_acc = n_images if suite.accuracy and suite.accuracy.weights_for(cell.model) else 0
        per_cell.append(_cell_seconds(suite, forward_s, n_acc))
        reasons.append(None)
    basis = (f"2 x MACs at the {rate / 1e9:.0f} GFLOP/s a reference convolution reaches on this "
             f"{device}; robust cells stop earlier once the CI target is met" if usable else
             f"no {device} on this machine: nothing to time a reference convolution on"
             + ("" if suite.executor.name in ("local", "process") else
                f"; the {suite.executor.name} executor runs them elsewhere, at that "
                f"machine's speed, several at once where it has the GPUs"))
    return Estimate(per_cell, reasons, sum(s for s in per_cell if s), rate / 1e9, basis)
