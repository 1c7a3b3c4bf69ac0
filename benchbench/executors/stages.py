"""The stages of one cell, in the process that runs it: analyse -> build -> equivalence ->
time -> power -> accuracy, each a small function returning record fields; and the cell's
repeats run one after the other (``run_cell_rounds``) for an executor that runs a cell by
itself, in a worker process, a SLURM job or a Ray task."""
from __future__ import annotations

import contextlib
import gc
import os
import traceback
from dataclasses import dataclass

import torch

from .. import env, records
from ..analysis import CONVENTIONS, analyze
from ..cells import Cell, expand
from ..measure.backends import create_backend
from ..measure.backends.base import capabilities
from ..measure.contract import check_logits
from ..measure.energy import measure_energy
from ..measure.engine import measure
from ..measure.equivalence import (compare_to_reference, eager_fp32_forward, is_reference_cell,
                                   reference_from)
from ..measure.power import resolve_sampler
from ..measure.power.nvml import ClockEventMonitor
from ..measure.telemetry import busy_check, device_state, throttle_summary, cool_down
from ..suite import Suite
from ..zoo import create_model, model_card


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return env.cpu_model()


def model_kwargs(cell: Cell) -> dict:
    kwargs = dict(cell.model.kwargs, num_classes=cell.num_classes)
    if model_card(cell.model.name).builds_per_size:
        kwargs["input_size"] = cell.input_hw
    return kwargs


def _protocol(cfg, result, device: torch.device, backend) -> dict:
    return {
        "name": result.protocol, "fps_definition": records.FPS_DEFINITIONS[result.protocol],
        "sync": result.sync,
        "warmup_iterations": result.warmup_iterations, "warmup_s": round(result.warmup_s, 4),
        "stop_reason": result.stop_reason, "iterations": result.iterations,
        "cudnn_benchmark": cfg.cudnn_benchmark if device.type == "cuda" else None,
        "autograd": cfg.autograd, "cuda_graphs": capabilities(backend).cuda_graphs,
        "backend_capabilities": capabilities(backend).as_dict(),
        "include_transfer": cfg.include_transfer and device.type == "cuda",
        "threads": torch.get_num_threads(), "target_ci_rel": cfg.target_ci_rel,
        "max_time_s": cfg.max_time_s, "min_iterations": cfg.min_iterations,
    }


@dataclass
class CellContext:
    """What the stages of one cell share: the cell, and what earlier stages prepared."""

    cell: Cell
    suite: Suite
    device: torch.device
    backend: object
    kwargs: dict
    model: torch.nn.Module | None = None
    timing: object = None
    stages: tuple[str, ...] = ()
    example: torch.Tensor | None = None
    reference: object = None         # equivalence.Reference, computed before the backend
    gpu_free_before: int | None = None   # the driver's free device memory before the build


def _stage_analyse(ctx: CellContext) -> dict:
    static = analyze(ctx.cell.model.name, ctx.cell.input_hw, ctx.cell.batch, **ctx.kwargs)
    return dict(params=static.params, macs=static.macs, gflops=static.gflops,
                macs_paper=static.macs_paper, conv_macs=static.conv_macs, cio=static.cio,
                moc=static.moc, peak_activation_mb=static.peak_activation_mb,
                macs_by_op=static.macs_by_op, unsupported_ops=static.unsupported_ops,
                aten_ops=static.aten_ops,
                conventions=CONVENTIONS, analysis_counted_on=static.counted_on)


def _stage_build(ctx: CellContext) -> dict:
    """Build the model (with the suite's weights, if any) and prepare the backend."""
    cell = ctx.cell
    if ctx.device.type == "cuda":
        ctx.gpu_free_before = torch.cuda.mem_get_info(ctx.device)[0]
    weights = ctx.suite.accuracy.weights_for(cell.model) if ctx.suite.accuracy else None
    ctx.model = create_model(cell.model.name, weights=weights, **ctx.kwargs)
    example = torch.randn(cell.batch, 3, cell.height, cell.width,
                          generator=torch.Generator().manual_seed(0))
    ctx.example = example
    if "equivalence" in ctx.stages:     # a cell's first round (later repeats rebuild the same)
        first = eager_fp32_forward(ctx.model, example, ctx.device)
        check_logits(first, cell.batch, cell.num_classes, cell.height, cell.width,
                     model_card(cell.model.name).logits_stride)
        if ctx.suite.equivalence.enabled:
            ctx.reference = reference_from(first, ctx.device, is_reference_cell(cell))
        del first
    _apply_runtime(ctx.suite.timing)
    ctx.backend.prepare(ctx.model, example, ctx.device, cell.precision,
                        ctx.suite.timing.include_transfer)
    return {"weights": weights, "weights_sha256": _sha256(weights) if weights else None}


def _apply_runtime(cfg) -> None:
    """Threads and cuDNN autotuning as the timing pass will have them, before the backend is
    prepared: a backend that builds or captures in ``prepare`` (ONNX Runtime's thread pool,
    CUDA graphs) gets the same settings as the timed loop."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark


def _stage_equivalence(ctx: CellContext) -> dict:
    """The backend's logits for the fixed input against eager fp32's (see equivalence.py)."""
    if ctx.reference is None:
        return {}
    try:
        return compare_to_reference(ctx.reference, ctx.backend.infer, ctx.example,
                                    ctx.suite.equivalence.min_argmax_agreement)
    finally:
        ctx.reference = None


def _stage_time(ctx: CellContext) -> dict:
    device = ctx.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = device_state(device)
    monitor = ClockEventMonitor(device.index) if device.type == "cuda" else None
    reference = _interleaved_reference(ctx) if ctx.suite.timing.reference_interleave else None
    try:
        with monitor or contextlib.nullcontext():
            result = measure(ctx.backend, device, ctx.suite.timing, reference=reference)
    finally:
        if reference is not None:
            reference.close()
    out = dict(result.metrics(ctx.cell.batch), **_memory(device, ctx.gpu_free_before),
               device_name=_device_name(device),
               backend_info=ctx.backend.info(),
               protocol=_protocol(ctx.suite.timing, result, device, ctx.backend),
               latency_samples_ms=[round(s, 5) for s in result.samples_ms],
               telemetry_before=before)
    if monitor is not None:   # throttling across the timed loop itself, not only the power pass
        out["telemetry_during_timing"] = monitor.summary()
    return out


def _interleaved_reference(ctx: CellContext):
    """The reference workload of ``timing.reference_interleave`` (one reference forward before
    each timed forward), prepared beside the cell's backend on the same device: the builtin
    network, or the suite cell named by ``timing.reference`` -- its model, size, backend and
    precision (for CI: the main branch's version of the model, the same op mix)."""
    from ..rounds import reference_cell

    ref = ctx.suite.timing.reference
    cell = reference_cell(ref, expand(ctx.suite, ctx.cell.device), ctx.cell.device)
    weights = ctx.suite.accuracy.weights_for(cell.model) \
        if ctx.suite.accuracy and ref != "builtin" else None
    backend = create_backend(cell.backend, cell.backend_options)
    example = torch.randn(cell.batch, 3, cell.height, cell.width,
                          generator=torch.Generator().manual_seed(0))
    backend.prepare(create_model(cell.model.name, weights=weights, **model_kwargs(cell)),
                    example, ctx.device, cell.precision, ctx.suite.timing.include_transfer)
    return backend


def _stage_power(ctx: CellContext) -> dict:
    """Energy per frame in its own pass after the latency pass (or why there is none)."""
    cfg, device = ctx.suite.power, ctx.device
    sampler, reason = resolve_sampler(cfg.sampler, device.type, cfg.interval_ms, device.index)
    if sampler is None:
        return {"power_sampler": "none", "power_unavailable": reason, **_NO_POWER}
    rested = cool_down(device, cfg.cooldown_s) if cfg.cooldown_s > 0 else {}
    out = {**_NO_POWER, **rested, **measure_energy(ctx.backend, sampler, cfg.idle_s,
                                                   cfg.duration_s, ctx.suite.timing.autograd,
                                                   ctx.cell.batch)}
    if hasattr(sampler, "reasons_during"):
        out["_reasons_during"] = sampler.reasons_during
    return out


def _stage_accuracy(ctx: CellContext) -> dict:
    """mIoU of the model that was just timed, through the same backend and precision."""
    spec = ctx.suite.accuracy
    if spec is None:
        return {}
    cell = ctx.cell
    if spec.weights_for(cell.model) is None:
        return {"miou": None, "accuracy_unavailable": (
            f"no weights for {cell.model.label} in accuracy.weights: a randomly initialised "
            f"model's mIoU means nothing")}
    if spec.config.multi_scale and not capabilities(ctx.backend).dynamic_shapes:
        raise ValueError(f"{cell.backend} runs one static input shape; multi-scale / flip "
                         f"evaluation needs a backend with dynamic shapes (eager)")
    from ..accuracy import evaluate, open_dataset
    from ..zoo._preprocess import PREPROCESSING

    card = model_card(cell.model.name)
    cfg = spec.config
    result = evaluate(ctx.backend.infer, open_dataset(cfg.dataset, cfg.root, cfg.split),
                      cell.input_hw, PREPROCESSING[card.preprocess], cfg, batch=cell.batch,
                      size_divisor=card.size_divisor, device=ctx.device)
    return result.record_fields()


# (name, stage, fatal): a fatal stage that raises fails the cell; any other records
# ``<name>_error`` and keeps what the earlier stages measured.
STAGES = (("analyse", _stage_analyse, True), ("build", _stage_build, True),
          ("equivalence", _stage_equivalence, False), ("time", _stage_time, True),
          ("power", _stage_power, False), ("accuracy", _stage_accuracy, False))


def run_cell(cell: Cell, suite: Suite, run_id: str, only: tuple[str, ...] | None = None) -> dict:
    """All stages of one cell (or ``only`` the named ones, e.g. a later repeat's build + time)."""
    record = records.started(cell, suite, run_id)
    backend = create_backend(cell.backend, cell.backend_options)
    reason = backend.unavailable_reason(cell.device, cell.precision)
    device = torch.device(cell.device) if not reason else torch.device("cpu")
    stages = tuple(name for name, _, _ in STAGES if only is None or name in only)
    ctx = CellContext(cell, suite, device, backend, model_kwargs(cell), stages=stages)
    if reason:   # params and GFLOPs do not depend on the device: analyse skipped cells too
        try:
            record.update(_stage_analyse(ctx))
        except Exception as exc:  # noqa: BLE001 - the skip reason stays the cell's story
            record["analyse_error"] = records.one_line(exc)
        return {**record, "status": "skipped", "error": reason, "finished_at": records.now()}
    with current_device(device), runtime_restored():
        return _run_stages(ctx, record)


@contextlib.contextmanager
def frozen_heap():
    """What is alive when cells start running (torch, the suite, the caller's objects) is
    frozen (``gc.freeze``) until they are done, so the collection after every cell walks only
    what the cells made: about 90 ms a cell with torch imported, microseconds frozen. Nothing
    is frozen where someone else already froze (``gc.unfreeze`` would thaw theirs too). A
    context manager, or a decorator: ``@frozen_heap()``."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def runtime_restored():
    """The process's CPU threads and cuDNN autotuning as they were before the cell: a suite's
    ``timing.threads`` is the cell's, not the next run's in the same process (a notebook's, a
    test's), which would otherwise time with it and record it as "torch default"."""
    threads, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = benchmark


@contextlib.contextmanager
def current_device(device: torch.device):
    """``device`` (``cuda:N``) is the current CUDA device for the block, the previous one after:
    CUDA events record on the current device's stream, ``torch.cuda.graph`` captures on one,
    and ``torch.cuda.synchronize()`` without an argument waits for it."""
    if device.type != "cuda" or device.index is None:
        yield
        return
    previous = torch.cuda.current_device()
    torch.cuda.set_device(device.index)
    try:
        yield
    finally:
        torch.cuda.set_device(previous)


def _run_stages(ctx: CellContext, record: dict) -> dict:
    backend, device = ctx.backend, ctx.device
    try:
        for name, stage, fatal in STAGES:
            if name not in ctx.stages:
                continue
            try:
                record.update(stage(ctx))
            except Exception as exc:  # noqa: PERF203 - one stage's failure is recorded
                if fatal:
                    raise
                record[f"{name}_error"] = records.one_line(exc)
        after = device_state(device)
        during_timing = (record.get("telemetry_during_timing") or {}).get("clock_event_reasons")
        record.update(telemetry_after=after, **throttle_summary(
            record.get("telemetry_before"), after, during_timing,
            record.pop("_reasons_during", None)))
        record["status"], record["error"] = "ok", None
    except KeyboardInterrupt:        # Ctrl-C or SIGTERM (signals.Terminated): the run's to end
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing cell (OOM, unsupported op, a
        # plugin's sys.exit) is recorded, the run goes on
        record.pop("_reasons_during", None)
        record["status"] = "failed"
        record["error"] = records.one_line(exc)
        record["traceback"] = traceback.format_exc(limit=-6)
    finally:
        backend.close()
        ctx.model = ctx.reference = ctx.example = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    record["finished_at"] = records.now()
    return record


def cell_available(cell: Cell) -> bool:
    return create_backend(cell.backend, cell.backend_options).unavailable_reason(
        cell.device, cell.precision) is None


def run_round(cell: Cell, suite: Suite, run_id: str, round_no: int, position: int):
    """One round of a cell: every stage in the first round, build + time in later ones.
    Returns the record and, when it is ok, the round's summary."""
    from ..rounds import repeat_summary

    busy = busy_check(torch.device(cell.device)) if cell_available(cell) else {}
    result = run_cell(cell, suite, run_id, only=None if round_no == 0 else ("build", "time"))
    if result["status"] != "ok":
        return result, None
    return result, repeat_summary(result, round_no, position, busy, suite.timing.keep_samples)


@frozen_heap()
def run_cell_rounds(cell: Cell, suite: Suite, run_id: str) -> dict:
    """The cell's ``timing.repeats`` rounds one after the other, in this process (an executor
    that runs one cell by itself), each opened by the builtin reference workload when the suite
    has one. Returns the cell's final record."""
    from ..rounds import ReferenceWorkload, finalize

    reference = ReferenceWorkload.for_suite(suite, [cell])
    n = suite.timing.repeats
    record, repeats = None, []
    for round_no in range(n):
        if reference is not None:
            reference.time_round(round_no, [cell], suite, run_id)
        result, summary = run_round(cell, suite, run_id, round_no, 0)
        if reference is not None and reference.cell_id == cell.id:
            reference.record_cell_round(round_no, result)
        if round_no == 0:
            record = result
        if summary is None:
            if round_no:
                record = records.fail(record, f"round {round_no + 1} of {n}: "
                                              f"{result.get('error')}")
            break
        repeats.append(summary)
    return finalize(record, repeats, suite.timing, reference)


def payload_suite(payload: dict):
    """The suite of a worker's payload (``RunContext.payload``), after the run's plugins, and
    its cells on the run's device."""
    from ..plugins import load_plugin
    from ..suite import suite_from_dict

    for plugin in payload.get("plugins", []):
        load_plugin(plugin["source"], prefix=plugin.get("prefix", ""))
    suite = suite_from_dict(payload["suite"], payload.get("suite_path", "<payload>"))
    return suite, expand(suite, payload["device"])


def run_payload(payload: dict, executor: str) -> dict:
    """A worker's cell (``RunContext.payload``): import the run's plugins, rebuild the suite,
    run the cell with its repeats, say where it ran."""
    from .base import Where

    where = Where(executor, payload["device"])
    suite, cells = payload_suite(payload)
    cell = next((c for c in cells if c.id == payload["cell_id"]), None)
    if cell is None:
        raise LookupError(f"{payload['cell_id']} is not a cell of suite {suite.name!r}")
    record = run_cell_rounds(cell, suite, payload["run_id"])
    record["executor"] = where.as_dict()
    return record


_NO_POWER = {"power_w_mean": None, "idle_power_w": None, "energy_mj_per_frame": None,
             "fps_per_watt": None}


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MEMORY_SOURCES = {
    "peak_mem_allocated_mib": "torch's caching allocator, peak of its tensors during the timed "
                              "loop (misses TensorRT's, ONNX Runtime's and cuDNN's own memory)",
    "peak_mem_reserved_mib": "torch's caching allocator, peak reserved from the driver",
    "gpu_mem_process_mib": "NVML: this process's device memory after the timed loop (its CUDA "
                           "context, torch's cache, TensorRT / ONNX Runtime allocations)",
    "gpu_mem_used_delta_mib": "the driver (cudaMemGetInfo): device memory in use after the timed "
                              "loop minus before the model was built (other processes' changes "
                              "count too)",
}


def _memory(device: torch.device, free_before: int | None = None) -> dict:
    import psutil

    out = {"rss_mib": round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)}
    if device.type == "cuda":
        out["peak_mem_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["peak_mem_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
        if free_before is not None:
            free_after = torch.cuda.mem_get_info(device)[0]
            out["gpu_mem_used_delta_mib"] = round((free_before - free_after) / 2**20, 1)
        out["gpu_mem_process_mib"] = process_gpu_memory_mib(device)
        out["memory_sources"] = {k: v for k, v in MEMORY_SOURCES.items() if k in out}
    return out


def process_gpu_memory_mib(device: torch.device) -> float | None:
    """This process's memory on ``device`` as the driver sees it (NVML's running compute
    processes), or None where NVML cannot say (no NVML, another PID namespace, MIG)."""
    try:
        import pynvml

        from ..executors.base import gpu_uuid

        pynvml.nvmlInit()
        uuid = gpu_uuid(str(device))
        handle = (pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else
                  pynvml.nvmlDeviceGetHandleByIndex(device.index or 0))
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return round(proc.usedGpuMemory / 2**20, 1)
    except Exception:  # noqa: BLE001 - NVML missing or refusing: the figure is absent, said so
        return None
    return None
