"""suite -> cells -> (build, analyse, measure) -> records. A failing cell becomes a ``failed``
record and the run goes on; an interrupted run keeps every finished cell and can resume."""
from __future__ import annotations

import gc
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from . import env
from .analysis import CONVENTIONS, analyze
from .cells import Cell, expand, resolve_device
from .errors import BenchError
from .measure.backends import create_backend
from .measure.energy import measure_energy
from .measure.engine import measure
from .measure.power import resolve_sampler
from .measure.telemetry import device_state, throttle_summary
from .store import SCHEMA_VERSION, RunStore, new_run_id
from .suite import Suite, suite_from_dict
from .zoo import create_model, model_card


class Interrupted(BenchError):
    exit_code = 130


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


def _protocol(cfg, result, device: torch.device) -> dict:
    return {
        "name": result.protocol, "sync": result.sync,
        "warmup_iterations": result.warmup_iterations, "warmup_s": round(result.warmup_s, 4),
        "stop_reason": result.stop_reason, "iterations": result.iterations,
        "cudnn_benchmark": cfg.cudnn_benchmark if device.type == "cuda" else None,
        "autograd": cfg.autograd, "cuda_graphs": False,
        "include_transfer": cfg.include_transfer and device.type == "cuda",
        "threads": torch.get_num_threads(), "target_ci_rel": cfg.target_ci_rel,
        "max_time_s": cfg.max_time_s, "min_iterations": cfg.min_iterations,
    }


def run_cell(cell: Cell, suite: Suite, run_id: str) -> dict:
    record = _base_record(cell, suite, run_id)
    record["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    backend = create_backend(cell.backend)
    reason = backend.unavailable_reason(cell.device, cell.precision)
    if reason:
        return {**record, "status": "skipped", "error": reason}
    device = torch.device(cell.device)
    try:
        kwargs = _model_kwargs(cell)
        static = analyze(cell.model.name, cell.input_hw, cell.batch, **kwargs)
        record.update(params=static.params, macs=static.macs, gflops=static.gflops,
                      macs_paper=static.macs_paper, conv_macs=static.conv_macs, cio=static.cio,
                      moc=static.moc, peak_activation_mb=static.peak_activation_mb,
                      macs_by_op=static.macs_by_op, unsupported_ops=static.unsupported_ops,
                      conventions=CONVENTIONS)
        model = create_model(cell.model.name, **kwargs)
        example = torch.randn(cell.batch, 3, cell.height, cell.width,
                              generator=torch.Generator().manual_seed(0))
        backend.prepare(model, example, device, cell.precision, suite.timing.include_transfer)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        before = device_state(device)
        result = measure(backend, device, suite.timing)
        record.update(result.metrics())
        record.update(_memory(device), device_name=_device_name(device),
                      backend_info=backend.info(), protocol=_protocol(suite.timing, result, device),
                      latency_samples_ms=[round(s, 5) for s in result.samples_ms])
        record.update(_power_pass(backend, device, suite))
        after = device_state(device)
        record.update(telemetry_before=before, telemetry_after=after,
                      **throttle_summary(before, after, record.pop("_reasons_during", None)))
        record["status"], record["error"] = "ok", None
    except Exception as exc:  # a failing cell (OOM, unsupported op) is recorded, the run goes on
        record["status"] = "failed"
        record["error"] = _one_line(exc)
        record["traceback"] = traceback.format_exc(limit=-6)
    finally:
        backend.close()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return record


_NO_POWER = {"power_w_mean": None, "idle_power_w": None, "energy_mj_per_frame": None,
             "fps_per_watt": None}


def _power_pass(backend, device: torch.device, suite: Suite) -> dict:
    """Energy per frame in its own pass after the latency pass (or why there is none)."""
    cfg = suite.power
    sampler, reason = resolve_sampler(cfg.sampler, device.type, cfg.interval_ms)
    if sampler is None:
        return {"power_sampler": "none", "power_unavailable": reason, **_NO_POWER}
    out = {**_NO_POWER, **measure_energy(backend, sampler, cfg.idle_s, cfg.duration_s,
                                         suite.timing.autograd)}
    if hasattr(sampler, "reasons_during"):
        out["_reasons_during"] = sampler.reasons_during
    return out


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


def run_suite(suite: Suite | str | Path | None = None, out_dir: str | Path = "results",
              resume: str | Path | None = None, progress: bool = True,
              run_id: str | None = None) -> RunSummary:
    """Run every cell of ``suite`` (a Suite or a YAML path), or the missing cells of the run
    directory ``resume``."""
    if isinstance(suite, (str, Path)):
        from .suite import load_suite
        suite = load_suite(suite)
    if resume is not None:
        store = RunStore.open_for_resume(resume)
        info = store.run_info()
        suite = suite_from_dict(info["suite"], info.get("suite_path", "<resumed>"))
        device = info["device"]
        run_id = info["run_id"]
    else:
        device = resolve_device(suite.device)
        run_id = run_id or new_run_id(suite.name)
        store = RunStore.create(out_dir, run_id, {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "suite_path": suite.path,
            "suite_sha256": suite.sha256, "suite": suite.raw, "device": device,
            "timing": suite.timing.as_dict(), "environment": env.collect()})
    cells = expand(suite, device)
    done = {r["cell_id"] for r in store.records()}
    todo = [c for c in cells if c.id not in done]
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    bar = _progress(len(cells), len(done), progress)
    try:
        for cell in todo:
            bar.set_description(cell.id)
            record = run_cell(cell, suite, run_id)
            store.append(record)
            counts[record["status"]] += 1
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        finished = len(done) + sum(counts.values())
        raise Interrupted(f"interrupted after {finished} of {len(cells)} cells; finished cells "
                          f"are kept. Resume with: bench run --resume {store.run_dir}") from None
    bar.close()
    store.update_info(completed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return RunSummary(store.run_dir, len(cells), len(todo), counts["ok"], counts["failed"],
                      counts["skipped"], len(done))


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="cell", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
