"""suite -> cells -> (build, analyse, measure) -> records. A failing cell becomes a ``failed``
record and the run goes on; an interrupted run keeps every finished cell and can resume."""
from __future__ import annotations

import contextlib
import gc
import os
import random
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from . import env
from .analysis import CONVENTIONS, analyze
from .cells import Cell, expand, resolve_device
from .errors import BenchError, UsageError
from .fileio import WriteFailed
from .signals import Terminated, sigterm_unwinds
from .measure.backends import create_backend
from .measure.energy import measure_energy
from .measure.engine import measure
from .measure.contract import check_logits
from .measure.equivalence import (compare_to_reference, eager_fp32_forward, is_reference_cell,
                                  reference_from)
from .measure.power import resolve_sampler
from .measure.power.nvml import ClockEventMonitor
from .measure.telemetry import busy_check, cool_down, device_state, throttle_summary
from .store import SCHEMA_VERSION, RunStore, current_records, new_run_id
from .suite import Suite, suite_from_dict
from .zoo import create_model, model_card


class Interrupted(BenchError):
    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class RunStopped(BenchError):
    """The run could not go on (its disk is full); what it finished is kept."""


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    total: int
    ran: int
    ok: int
    failed: int
    skipped: int
    already_done: int


def _base_record(cell: Cell, suite: Suite, run_id: str) -> dict:
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "suite": suite.name,
        "cell_id": cell.id, "model": cell.model.name, "model_args": cell.model.kwargs,
        "num_classes": cell.num_classes, "height": cell.height, "width": cell.width,
        "batch": cell.batch, "backend": cell.backend, "precision": cell.precision,
        "backend_options": dict(cell.backend_options), "backend_label": cell.backend_label,
        "device": cell.device, "target": suite.target,
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return env.cpu_model()


def _model_kwargs(cell: Cell) -> dict:
    kwargs = dict(cell.model.kwargs, num_classes=cell.num_classes)
    if model_card(cell.model.name).builds_per_size:
        kwargs["input_size"] = cell.input_hw
    return kwargs


def _protocol(cfg, result, device: torch.device, backend) -> dict:
    return {
        "name": result.protocol, "sync": result.sync,
        "warmup_iterations": result.warmup_iterations, "warmup_s": round(result.warmup_s, 4),
        "stop_reason": result.stop_reason, "iterations": result.iterations,
        "cudnn_benchmark": cfg.cudnn_benchmark if device.type == "cuda" else None,
        "autograd": cfg.autograd, "cuda_graphs": bool(getattr(backend, "cuda_graphs", False)),
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


def _stage_analyse(ctx: CellContext) -> dict:
    static = analyze(ctx.cell.model.name, ctx.cell.input_hw, ctx.cell.batch, **ctx.kwargs)
    return dict(params=static.params, macs=static.macs, gflops=static.gflops,
                macs_paper=static.macs_paper, conv_macs=static.conv_macs, cio=static.cio,
                moc=static.moc, peak_activation_mb=static.peak_activation_mb,
                macs_by_op=static.macs_by_op, unsupported_ops=static.unsupported_ops,
                conventions=CONVENTIONS, analysis_counted_on=static.counted_on)


def _stage_build(ctx: CellContext) -> dict:
    """Build the model (with the suite's weights, if any) and prepare the backend."""
    cell = ctx.cell
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
    out = dict(result.metrics(), **_memory(device), device_name=_device_name(device),
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
    from .rounds import reference_cell

    ref = ctx.suite.timing.reference
    cell = reference_cell(ref, expand(ctx.suite, ctx.cell.device), ctx.cell.device)
    weights = ctx.suite.accuracy.weights_for(cell.model) \
        if ctx.suite.accuracy and ref != "builtin" else None
    backend = create_backend(cell.backend, cell.backend_options)
    example = torch.randn(cell.batch, 3, cell.height, cell.width,
                          generator=torch.Generator().manual_seed(0))
    backend.prepare(create_model(cell.model.name, weights=weights, **_model_kwargs(cell)),
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
                                                   cfg.duration_s, ctx.suite.timing.autograd)}
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
    if spec.config.multi_scale and not getattr(ctx.backend, "dynamic_shapes", True):
        raise ValueError(f"{cell.backend} runs one static input shape; multi-scale / flip "
                         f"evaluation needs a backend with dynamic shapes (eager)")
    from .accuracy import evaluate, open_dataset
    from .zoo._preprocess import PREPROCESSING

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
    record = _base_record(cell, suite, run_id)
    record["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    backend = create_backend(cell.backend, cell.backend_options)
    reason = backend.unavailable_reason(cell.device, cell.precision)
    device = torch.device(cell.device) if not reason else torch.device("cpu")
    stages = tuple(name for name, _, _ in STAGES if only is None or name in only)
    ctx = CellContext(cell, suite, device, backend, _model_kwargs(cell), stages=stages)
    if reason:   # params and GFLOPs do not depend on the device: analyse skipped cells too
        try:
            record.update(_stage_analyse(ctx))
        except Exception as exc:  # noqa: BLE001 - the skip reason stays the cell's story
            record["analyse_error"] = _one_line(exc)
        return {**record, "status": "skipped", "error": reason,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        for name, stage, fatal in STAGES:
            if only is not None and name not in only:
                continue
            try:
                record.update(stage(ctx))
            except Exception as exc:  # noqa: PERF203 - one stage's failure is recorded
                if fatal:
                    raise
                record[f"{name}_error"] = _one_line(exc)
        after = device_state(device)
        during_timing = (record.get("telemetry_during_timing") or {}).get("clock_event_reasons")
        record.update(telemetry_after=after, **throttle_summary(
            record.get("telemetry_before"), after, during_timing,
            record.pop("_reasons_during", None)))
        record["status"], record["error"] = "ok", None
    except KeyboardInterrupt:        # Ctrl-C or SIGTERM (runner.Terminated): the run's to end
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing cell (OOM, unsupported op, a
        # plugin's sys.exit) is recorded, the run goes on
        record.pop("_reasons_during", None)
        record["status"] = "failed"
        record["error"] = _one_line(exc)
        record["traceback"] = traceback.format_exc(limit=-6)
    finally:
        backend.close()
        ctx.model = ctx.reference = ctx.example = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:500]}" if text else type(exc).__name__


def _memory(device: torch.device) -> dict:
    import psutil

    out = {"rss_mib": round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)}
    if device.type == "cuda":
        out["peak_mem_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["peak_mem_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    return out


class Progress:
    """What the runner tells about its progress; the CLI decides how to show it."""

    def start(self, total: int, done: int) -> None: ...

    def cell_started(self, cell: Cell) -> None: ...

    def cell_done(self, record: dict) -> None: ...

    def close(self) -> None: ...


def _summary(store: RunStore, cells: list[Cell], ran: int, done_before: int) -> RunSummary:
    ids = {c.id for c in cells}
    current = [r for r in current_records(store.records()) if r.get("cell_id") in ids]
    count = {k: sum(r.get("status") == k for r in current) for k in ("ok", "failed", "skipped")}
    return RunSummary(store.run_dir, len(cells), ran, count["ok"], count["failed"],
                      count["skipped"], done_before)


def _open_resumed(resume, allow_env_change: bool):
    store = RunStore.open_for_resume(resume)
    try:
        return _check_resumable(store, allow_env_change)
    except BaseException:
        store.close()
        raise


def _check_resumable(store: RunStore, allow_env_change: bool):
    info = store.run_info()
    for key in ("suite", "device", "run_id"):
        if key not in info:
            raise UsageError(f"{store.run_dir / 'run.json'}: not a benchbench run (no {key!r})")
    from .plugins import load_plugin
    for plugin in info.get("plugins", []):      # the run's own models, before its suite
        load_plugin(plugin["source"], prefix=plugin.get("prefix", ""))
    suite = suite_from_dict(info["suite"], info.get("suite_path", "<resumed>"))
    now = env.collect()
    diffs = env.differences(info.get("environment"), now)
    if diffs and not allow_env_change:
        raise UsageError(f"{store.run_dir}: this machine differs from the run's ({'; '.join(diffs)}); "
                         f"resuming would mix environments (--allow-env-change to do it anyway, "
                         f"recorded in run.json)")
    return store, info, suite, now, diffs


def run_suite(suite: Suite | str | Path | None = None, out_dir: str | Path = "results",
              resume: str | Path | None = None, progress: Progress | bool | None = None,
              run_id: str | None = None, retry_failed: bool = False,
              allow_env_change: bool = False, plugins=()) -> RunSummary:
    """Run every cell of ``suite`` (a Suite or a YAML path), or the missing cells of the run
    directory ``resume`` (with ``retry_failed``, also its failed and skipped cells, whose old
    records are kept, marked superseded)."""
    if isinstance(suite, (str, Path)):
        from .suite import load_suite
        suite = load_suite(suite)
    with sigterm_unwinds():
        store, suite, run_id, resumed = _open_store(suite, out_dir, resume, run_id,
                                                    allow_env_change, plugins)
        try:
            return _run_store(store, suite, run_id, resumed, progress, retry_failed)
        finally:
            store.close()


def _open_store(suite, out_dir, resume, run_id, allow_env_change, plugins):
    """A new run directory for ``suite``, or the locked run directory ``resume``."""
    if resume is not None:
        store, info, suite, now, diffs = _open_resumed(resume, allow_env_change)
        resumed = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "info": info,
                   "record": {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "environment_differences": diffs,
                              **({"environment": now} if diffs else {})}}
        return store, suite, info["run_id"], resumed
    run_id = run_id or new_run_id(suite.name)
    store = RunStore.create(out_dir, run_id, {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "suite_path": suite.path,
        "suite_sha256": suite.sha256, "suite": suite.raw,
        "device": resolve_device(suite.device),
        "plugins": [p.as_dict() for p in (*plugins, *suite.plugins)],
        "timing": suite.timing.as_dict(), "environment": env.collect()})
    return store, suite, run_id, None


def _run_store(store: RunStore, suite: Suite, run_id: str, resumed, progress,
               retry_failed: bool) -> RunSummary:
    device = resumed["info"]["device"] if resumed else store.run_info()["device"]
    cells = expand(suite, device)
    current = current_records(store.records())
    if retry_failed:
        again = {r["cell_id"] for r in current if r.get("status") in ("failed", "skipped")}
        if again:
            store.supersede(again)
        current = [r for r in current if r["cell_id"] not in again]
    done = {r["cell_id"] for r in current}
    todo = [c for c in cells if c.id not in done]
    if resumed is not None and todo:
        store.update_info(resumes=store.run_info().get("resumes", []) + [
            dict(resumed["record"], retry_failed=retry_failed)])
    reporter = Progress() if progress in (None, False, True) else progress
    try:
        ran = run_rounds(todo, suite, run_id, store, reporter, total=len(cells))
        if todo or not store.run_info().get("completed_at"):
            store.update_info(completed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    except KeyboardInterrupt as exc:
        reporter.close()
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        raise Interrupted(f"{how} after {_finished(store, cells)} of {len(cells)} cells; "
                          f"finished cells are kept. Resume with: bench run --resume "
                          f"{store.run_dir}", getattr(exc, "exit_code", 130)) from None
    except WriteFailed as exc:
        reporter.close()
        raise RunStopped(f"{exc}; the run stopped after {_finished(store, cells)} of "
                         f"{len(cells)} cells, which are kept. Free space there and resume "
                         f"with: bench run --resume {store.run_dir}") from None
    reporter.close()
    return _summary(store, cells, ran, len(cells) - len(todo))


def _finished(store: RunStore, cells: list[Cell]) -> int:
    ids = {c.id for c in cells}
    return sum(r.get("cell_id") in ids for r in current_records(store.records()))


def run_rounds(todo: list[Cell], suite: Suite, run_id: str, store: RunStore, reporter,
               total: int) -> int:
    """Run ``todo`` ``timing.repeats`` times in interleaved rounds: each round visits every
    cell once in a freshly shuffled order (seeded by ``timing.seed``; a single round keeps the
    suite's order), so drift of the machine hits every cell alike; the reference workload, if any, opens every round. The first round
    runs every stage of a cell, later rounds rebuild and re-time it. A cell's record is appended
    once its last round is done. Returns how many cells were run."""
    from .rounds import ReferenceWorkload, finalize, repeat_summary

    total_todo = len(todo)
    reporter.start(total, total - len(todo))
    trtexec_cells = [c for c in todo if c.backend == "trtexec"]
    if trtexec_cells and (suite.remote or _local_trtexec()):
        run_trtexec_cells(trtexec_cells, suite, run_id, store, reporter)
        todo = [c for c in todo if c.backend != "trtexec"]
    if suite.remote:       # a board runs trtexec only; the rest would run on this workstation
        for cell in [c for c in todo if c.backend != "trtexec"]:
            record = {**_base_record(cell, suite, run_id), "status": "skipped", "error": (
                f"the suite runs on remote boards, which run trtexec cells only; "
                f"{cell.backend_label} would run on this workstation instead")}
            store.append(record)
            reporter.cell_done(record)
        todo = [c for c in todo if c.backend == "trtexec"]
    n = suite.timing.repeats
    rng = random.Random(suite.timing.seed)
    reference = ReferenceWorkload.for_suite(suite, todo)
    records: dict[str, dict] = {}
    repeats: dict[str, list] = {c.id: [] for c in todo}
    for round_no in range(n):
        order = list(todo)
        if n > 1:                 # one round keeps the suite's order
            rng.shuffle(order)
        if reference is not None:
            reference.time_round(round_no, order, suite, run_id)
            order = [c for c in order if c.id != reference.cell_id]
            if reference.cell is not None and reference.cell in todo:
                order.insert(0, reference.cell)       # a suite cell as reference: first too
        for position, cell in enumerate(order):
            first = round_no == 0
            if not first and records[cell.id]["status"] != "ok":
                continue
            available = create_backend(cell.backend, cell.backend_options).unavailable_reason(
                cell.device, cell.precision) is None
            busy = busy_check(torch.device(cell.device)) if available else {}
            reporter.cell_started(cell)
            result = run_cell(cell, suite, run_id, only=None if first else ("build", "time"))
            if first:
                records[cell.id] = result
            if result["status"] == "ok":
                repeats[cell.id].append(repeat_summary(result, round_no, position, busy,
                                                       suite.timing.keep_samples))
            elif not first:
                records[cell.id].update(status="failed", error=f"round {round_no + 1} of {n}: "
                                        f"{result.get('error')}")
            if reference is not None and reference.cell_id == cell.id:
                reference.record_cell_round(round_no, result)
            if round_no == n - 1 or records[cell.id]["status"] != "ok":
                final = finalize(records[cell.id], repeats[cell.id], suite.timing, reference)
                store.append(final)
                reporter.cell_done(final)
    if reference is not None:
        store.update_info(reference=reference.as_dict())
    return total_todo


def _local_trtexec() -> bool:
    from .measure.backends.trtexec import local_trtexec
    return local_trtexec() is not None


def run_trtexec_cells(cells: list[Cell], suite: Suite, run_id: str, store, reporter) -> None:
    """trtexec cells go to the suite's boards (over SSH, in parallel, one cell per board at a
    time) or, without ``remote``, to the trtexec on this machine."""
    from .remote.executor import TrtexecExecutor
    from .remote.scheduler import run_on_boards
    from .remote.transport import BoardUnreachable, LocalTransport, SshTransport

    try:
        transports = [SshTransport(spec) for spec in suite.remote] or [LocalTransport()]
    except BoardUnreachable as exc:
        for cell in cells:
            _append(store, reporter, _failed_record(cell, suite, run_id, str(exc)))
        return
    executors = [TrtexecExecutor(t) for t in transports]
    try:
        leftovers, lost = run_on_boards(
            cells, executors, lambda cell, ex: run_remote_cell(cell, suite, run_id, ex),
            on_record=lambda record: _append(store, reporter, record),
            on_start=lambda cell, ex: reporter.cell_started(cell))
    finally:
        for transport in transports:
            transport.close()
    if lost:       # which boards dropped out, and why (their cells went to the others)
        store.update_info(boards_lost=lost)
    if leftovers:
        why = "; ".join(lost.values())
        for cell in leftovers:
            _append(store, reporter, _failed_record(
                cell, suite, run_id, f"no board could run this cell: {why}"))


def _append(store, reporter, record: dict) -> None:
    store.append(record)
    reporter.cell_done(record)


def _failed_record(cell: Cell, suite: Suite, run_id: str, reason: str) -> dict:
    return {**_base_record(cell, suite, run_id), "status": "failed", "error": reason,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


_HOST_WORK = threading.Lock()


def run_remote_cell(cell: Cell, suite: Suite, run_id: str, executor) -> dict:
    """One trtexec cell: analysed and exported here, built and timed where ``executor`` runs
    trtexec. A board that cannot be reached raises BoardUnreachable (the scheduler gives the
    cell to another board); any other failure is this cell's ``failed`` record."""
    from .remote.transport import BoardUnreachable

    record = _base_record(cell, suite, run_id)
    record["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    ctx = CellContext(cell, suite, torch.device("cpu"), None, _model_kwargs(cell))
    try:
        with _HOST_WORK:        # host-side work one cell at a time; boards work in parallel
            record.update(_stage_analyse(ctx))
            weights = suite.accuracy.weights_for(cell.model) if suite.accuracy else None
            model = create_model(cell.model.name, weights=weights, **ctx.kwargs)
            example = torch.randn(cell.batch, 3, cell.height, cell.width,
                                  generator=torch.Generator().manual_seed(0))
            check_logits(eager_fp32_forward(model, example, ctx.device), cell.batch,
                         cell.num_classes, cell.height, cell.width,
                         model_card(cell.model.name).logits_stride)
        record.update(executor.run_cell(cell, suite, model))
        record["status"], record["error"] = "ok", None
        record["equivalence"] = "unchecked"
        record["equivalence_reason"] = "trtexec reports timings only, not the output tensor"
    except (BoardUnreachable, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - the cell fails, the run goes on
        record.update(status="failed", error=_one_line(exc),
                      traceback=traceback.format_exc(limit=-6))
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return record
