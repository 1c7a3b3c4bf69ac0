"""Records: the field names of a cell's record and the one place records are built.

Every executor (this process, a worker process, a SLURM job, a Ray task, a board) builds its
records with these functions, and every reader (the run table, the report, ``bench export``,
``bench check``) takes its column names from here, so a field means one thing everywhere.
"""
from __future__ import annotations

import time

SCHEMA_VERSION = 1

# what identifies a cell: the same in every record of it, whatever ran it
CELL_FIELDS = ("schema_version", "run_id", "suite", "cell_id", "model", "model_args",
               "num_classes", "height", "width", "batch", "backend", "precision",
               "backend_options", "backend_label", "device", "target")
# machine-independent counts of the static analysis (fvcore conventions: MACs, see analysis/)
WORK_FIELDS = ("params", "macs", "gflops", "macs_paper", "conv_macs", "cio", "moc",
               "peak_activation_mb")
# the fields of ``executor``: where the cell ran
EXECUTOR_FIELDS = ("name", "host", "pid", "device", "gpu_uuid", "cuda_visible_devices",
                   "started_unix", "finished_unix")
# the columns a flat table of records starts with (``bench export``)
TABLE_FIRST = ("run_id", "suite", "cell_id", "model", "height", "width", "batch", "backend",
               "precision", "device", "device_name", "status", "error")


# what ``fps`` is, per timing protocol: one definition each, named wherever an FPS is shown
FPS_DEFINITIONS = {
    "robust": "1000 x batch / latency_ms_p50 (frames/s at the median latency)",
    "paper": "N x batch / elapsed (N forwards between two synchronisations, FASSD eval_fps.py)",
    "trtexec": "trtexec's throughput (qps) x batch",
}
FPS_SHORT = {"robust": "1000/p50", "paper": "N/elapsed", "trtexec": "trtexec qps"}


def fps_label(protocols) -> str:
    """A column header or axis label for FPS values of these protocols, e.g. ``FPS (1000/p50)``
    or ``FPS (robust 1000/p50; paper N/elapsed)`` when a table mixes them."""
    names = sorted({p for p in protocols if isinstance(p, str)})
    if len(names) == 1:
        return f"FPS ({FPS_SHORT.get(names[0], names[0])})"
    if not names:
        return "FPS"
    return "FPS (" + "; ".join(f"{p} {FPS_SHORT.get(p, '?')}" for p in names) + ")"


def robust_fps(latency_ms_p50: float | None, batch: int = 1) -> float | None:
    """The robust protocol's FPS: frames per second at the median latency."""
    return 1000.0 * batch / latency_ms_p50 if latency_ms_p50 else None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def base(cell, suite, run_id: str) -> dict:
    """The cell's identity, the same in every record of it."""
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "suite": suite.name,
        "cell_id": cell.id, "model": cell.model.name, "model_args": cell.model.kwargs,
        "num_classes": cell.num_classes, "height": cell.height, "width": cell.width,
        "batch": cell.batch, "backend": cell.backend, "precision": cell.precision,
        "backend_options": dict(cell.backend_options), "backend_label": cell.backend_label,
        "device": cell.device, "target": suite.target,
    }


def started(cell, suite, run_id: str) -> dict:
    return {**base(cell, suite, run_id), "started_at": now()}


def failed(cell, suite, run_id: str, reason: str, **fields) -> dict:
    """A cell that ran (or was meant to) and did not finish: ``reason`` in one line."""
    return {**base(cell, suite, run_id), **fields, "status": "failed", "error": reason,
            "finished_at": now()}


def skipped(cell, suite, run_id: str, reason: str, **fields) -> dict:
    """A cell that cannot run where the suite runs (no CUDA, no TensorRT, no executor)."""
    return {**base(cell, suite, run_id), **fields, "status": "skipped", "error": reason,
            "finished_at": now()}


def fail(record: dict, reason: str) -> dict:
    """``record`` turned into a failed one, what it measured kept beside the reason."""
    return {**record, "status": "failed", "error": reason}


def latency_fields(stats) -> dict:
    """The latency fields of a ``stats.LatencyStats`` (per-iteration milliseconds of a batch)."""
    return {"latency_ms_mean": stats.mean_ms, "latency_ms_p50": stats.p50_ms,
            "latency_ms_p90": stats.p90_ms, "latency_ms_p99": stats.p99_ms,
            "latency_ms_std": stats.std_ms, "latency_ms_min": stats.min_ms,
            "latency_ms_max": stats.max_ms, "latency_ci95_ms": list(stats.ci95_p50_ms)}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:500]}" if text else type(exc).__name__
