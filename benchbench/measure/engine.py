"""The timing engine: warm-up, synchronisation, the clock, and the stopping rule.

Two protocols, recorded with every result:

* ``paper`` -- what the official FASSD-Net ``eval_fps.py`` does: cudnn.benchmark on, warm-up,
  then N forwards between two device synchronisations; FPS = N x batch / elapsed. One number, no
  distribution (per-iteration timing would add syncs the papers did not have).
* ``robust`` -- every iteration timed on the device (CUDA events; ``perf_counter`` on CPU, where
  a forward is synchronous), summarised as mean / p50 / p90 / p99 / std with a 95% CI of the
  median; stops once the CI half-width is under ``target_ci_rel`` of the median (after at least
  ``min_iterations``), or when ``max_time_s`` or ``max_iterations`` is reached -- the record says
  which. FPS = 1000 x batch / median latency (``records.FPS_DEFINITIONS``).
"""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from ..records import latency_fields, robust_fps
from .backends.base import capabilities
from ..stats import LatencyStats

PROTOCOLS = ("paper", "robust")


@dataclass(frozen=True)
class TimingConfig:
    protocol: str = "robust"
    warmup: int = 10                 # warm-up forwards (at least this many) ...
    warmup_s: float = 0.0            # ... and at least this long
    iterations: int = 1000           # paper: the N timed forwards
    min_iterations: int = 20         # robust: never stop before
    max_iterations: int = 100_000    # robust: never run more
    max_time_s: float = 30.0         # robust: time budget of the timed phase
    target_ci_rel: float = 0.01      # robust: stop when CI95(median) half-width <= this * median
    threads: int | None = None       # CPU threads (torch.set_num_threads); None = torch default
    include_transfer: bool = False   # copy the frame host->device inside every timed forward
    cudnn_benchmark: bool = True
    autograd: bool = False           # True = forward with autograd on, as the official FASSD
                                     # eval_fps.py does (no torch.no_grad); default inference_mode
    keep_samples: int = 10_000       # raw per-iteration samples kept in the record
    repeats: int = 1                 # each cell timed this many times, in interleaved rounds
    processes: int = 1               # ... in each of this many fresh processes (local executor)
    reference: str | None = None     # "builtin" or a cell id: the machine's speed per round
    seed: int = 0                    # shuffles the cell order of every round (recorded)
    reference_interleave: bool = False  # robust: the builtin reference runs before every timed
                                        # forward, each one timed: latency_rel_p50 = median of
                                        # cell / reference per iteration (cancels machine drift)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TimingResult:
    protocol: str
    iterations: int
    elapsed_s: float
    fps: float
    latency_ms_mean: float
    stats: LatencyStats | None       # robust only
    samples_ms: list[float]
    stop_reason: str
    warmup_iterations: int
    warmup_s: float
    sync: str
    reference_samples_ms: list = None   # with reference_interleave: the reference's, paired

    def metrics(self, batch: int = 1) -> dict:
        """The record's timing fields; ``fps`` is frames per second (forwards x ``batch``)."""
        m = {"fps": self.fps * batch, "latency_ms_mean": self.latency_ms_mean,
             "iterations": self.iterations, "timed_s": self.elapsed_s}
        if self.stats is not None:      # per forward
            m.update({k: v for k, v in latency_fields(self.stats).items()
                      if k != "latency_ms_mean"})
        if self.reference_samples_ms:
            ratios = self.relative_samples()
            m.update(latency_rel_p50=statistics.median(ratios),
                     reference_latency_ms_p50=statistics.median(self.reference_samples_ms),
                     latency_rel_samples=[round(r, 6) for r in ratios])
        return m

    def relative_samples(self) -> list[float]:
        return [c / r for c, r in zip(self.samples_ms, self.reference_samples_ms) if r > 0]


def _sync_method(device: torch.device, protocol: str, backend=None) -> str:
    if device.type == "cuda" and capabilities(backend).host_synchronous:
        return "perf_counter (the backend's forward returns when the device is done)"
    if device.type == "cuda":
        return "cuda_events" if protocol == "robust" else "cuda_synchronize"
    return "perf_counter (CPU forward is synchronous)"


def warm_up(backend, cfg: TimingConfig) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    while n < cfg.warmup or time.perf_counter() - start < cfg.warmup_s:
        backend.run()
        n += 1
    backend.sync()
    return n, time.perf_counter() - start


def time_paper(backend, n: int) -> float:
    """N forwards between two synchronisations; returns elapsed seconds."""
    backend.sync()
    start = time.perf_counter()
    for _ in range(n):
        backend.run()
    backend.sync()
    return time.perf_counter() - start


def _time_chunk_cpu(backend, n: int) -> list[float]:
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        backend.run()
        out.append((clock() - t0) * 1000.0)
    return out


def _time_chunk_cuda(backend, n: int) -> list[float]:
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(n)]
    for start, end in events:
        start.record()
        backend.run()
        end.record()
    backend.sync()
    return [start.elapsed_time(end) for start, end in events]


def clock_for(backend, device: torch.device) -> str:
    """How one forward of ``backend`` is timed: ``events`` (CUDA events around an asynchronous
    launch) or ``host`` (perf_counter: the forward returns when the work is done -- the CPU,
    or a host-synchronous backend such as ONNX Runtime, which runs on its own stream)."""
    if device.type == "cuda" and not capabilities(backend).host_synchronous:
        return "events"
    return "host"


def _time_chunk_paired(backend, reference, n: int, device: torch.device) -> tuple[list, list]:
    """n pairs: the reference forward, then the cell's, each timed -- a few milliseconds apart,
    so both see the same machine (its regime changes over seconds, ~2x on shared runners).
    Each side is timed the way its backend needs; before a host-timed side the device is
    synchronised, so the other side's queued work neither overlaps it nor lands in its time."""
    clocks = (clock_for(reference, device), clock_for(backend, device))
    if clocks == ("host", "host") and device.type != "cuda":
        return _pairs_on_host(backend, reference, n)
    times: list = []            # per pair, per side: milliseconds or an (start, end) event pair
    for _ in range(n):
        times.append([_time_side(side, clock, device) for side, clock in
                      zip((reference, backend), clocks)])
    torch.cuda.synchronize(device)
    ms = [[t if isinstance(t, float) else t[0].elapsed_time(t[1]) for t in pair]
          for pair in times]
    return [pair[1] for pair in ms], [pair[0] for pair in ms]


def _time_side(backend, clock: str, device: torch.device):
    if clock == "events":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        backend.run()
        end.record()
        return start, end
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    backend.run()
    return (time.perf_counter() - t0) * 1000.0


def _pairs_on_host(backend, reference, n: int) -> tuple[list, list]:
    cell, ref = [], []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        reference.run()
        t1 = clock()
        backend.run()
        t2 = clock()
        ref.append((t1 - t0) * 1000.0)
        cell.append((t2 - t1) * 1000.0)
    return cell, ref


def time_robust(backend, device: torch.device, cfg: TimingConfig,
                reference=None) -> tuple[list[float], str, list[float]]:
    events = clock_for(backend, device) == "events"
    chunk_fn = _time_chunk_cuda if events else _time_chunk_cpu
    samples: list[float] = []
    ref_samples: list[float] = []
    start = time.perf_counter()
    chunk = max(1, min(cfg.min_iterations, 50))
    while True:
        n = min(chunk, cfg.max_iterations - len(samples))
        if reference is None:
            samples += chunk_fn(backend, n)
        else:
            cell, ref = _time_chunk_paired(backend, reference, n, device)
            samples += cell
            ref_samples += ref
        spent = time.perf_counter() - start
        if len(samples) >= cfg.max_iterations:
            return samples, "max_iterations", ref_samples
        if len(samples) >= cfg.min_iterations:
            rule = samples if reference is None else \
                [c / r for c, r in zip(samples, ref_samples) if r > 0]
            if LatencyStats.from_samples(rule).ci95_half_width_rel <= cfg.target_ci_rel:
                return samples, "ci_target", ref_samples
            if spent >= cfg.max_time_s:
                return samples, "time_budget", ref_samples
        chunk = _next_chunk(spent / len(samples), cfg.max_time_s - spent,
                            cfg.min_iterations - len(samples))


def _next_chunk(per_iter_s: float, budget_left_s: float, still_needed: int) -> int:
    """About a quarter second of work, so the stopping rule is checked often, and no more than
    the time budget has left (a fixed quarter second overshot a 0.1 s budget 2.7-fold), but never
    fewer forwards than ``min_iterations`` still asks for."""
    work_s = min(0.25, max(budget_left_s, 0.0))
    chunk = min(1000, work_s / per_iter_s) if per_iter_s > 0 else 1000
    return int(max(1, still_needed, chunk))


def _stream_context(backend):
    """A backend with its own CUDA stream (TensorRT) is timed with that stream current, so the
    CUDA events bracket its work."""
    stream = backend.stream if capabilities(backend).own_stream else None
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


def _hook(backend, name: str) -> None:
    if capabilities(backend).timing_hooks:   # e.g. torch.compile counts recompilations
        getattr(backend, name)()


def measure(backend, device: torch.device, cfg: TimingConfig, reference=None) -> TimingResult:
    """Warm up and time ``backend`` (already prepared) under ``cfg``; with ``reference`` (a
    prepared backend), every timed forward is paired with one of the reference's."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    prev_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    try:
        grad_mode = torch.enable_grad() if cfg.autograd else torch.inference_mode()
        with grad_mode, _stream_context(backend):
            n_warm, warm_s = warm_up(backend, cfg)
            if reference is not None:
                warm_up(reference, cfg)
            sync = _sync_method(device, cfg.protocol, backend)
            if reference is not None and device.type == "cuda":
                sync = (f"cell: {sync}; reference: "
                        f"{_sync_method(device, cfg.protocol, reference)}, the device "
                        f"synchronised before each host-timed forward")
            _hook(backend, "timed_start")
            try:
                if cfg.protocol == "paper":
                    elapsed = time_paper(backend, cfg.iterations)
                    return TimingResult("paper", cfg.iterations, elapsed,
                                        cfg.iterations / elapsed, elapsed / cfg.iterations * 1000.0,
                                        None, [], "fixed_iterations", n_warm, warm_s, sync)
                samples, reason, ref_samples = time_robust(backend, device, cfg, reference)
            finally:
                _hook(backend, "timed_end")
    finally:
        torch.backends.cudnn.benchmark = prev_benchmark
    stats = LatencyStats.from_samples(samples)
    elapsed = sum(samples) / 1000.0
    return TimingResult("robust", len(samples), elapsed, robust_fps(stats.p50_ms), stats.mean_ms,
                        stats, samples[: cfg.keep_samples], reason, n_warm, warm_s, sync,
                        ref_samples[: cfg.keep_samples] or None)
