"""The state of the device around a cell: clocks, temperatures, throttling (NVML on CUDA), CPU
frequency, load and process memory (psutil) on the host. A throttled cell is flagged."""
from __future__ import annotations

import os

import torch


def host_state() -> dict:
    import psutil

    out = {"cpu_load_pct": psutil.cpu_percent(interval=None),
           "rss_mib": round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)}
    freq = psutil.cpu_freq()
    out["cpu_freq_mhz"] = round(freq.current, 1) if freq else None
    temps = getattr(psutil, "sensors_temperatures", lambda: {})() or {}
    out["cpu_temperature_c"] = max((t.current for ts in temps.values() for t in ts),
                                   default=None)
    return out


def device_state(device: torch.device) -> dict:
    state = {"host": host_state()}
    if device.type == "cuda":
        try:
            from .power.nvml import snapshot
            state["gpu"] = snapshot(device.index)
        except Exception as exc:   # no NVML (Jetson, missing driver lib): say so
            state["gpu"] = {"source": "unavailable", "reason": f"{type(exc).__name__}: {exc}"}
    return state


def throttle_summary(before: dict, after: dict, during: list[str] | None) -> dict:
    """Throttle reasons seen before/after/during; ``throttled`` is None when nothing can tell."""
    from .power.nvml import THROTTLE_BITS

    bad = set(THROTTLE_BITS.values())
    seen = set(during or [])
    known = during is not None
    for state in (before, after):
        gpu = state.get("gpu") or {}
        if gpu.get("source") == "nvml":
            known = True
            seen |= set(gpu.get("clock_event_reasons", []))
    reasons = sorted(seen & bad)
    return {"throttle_reasons": reasons, "throttled": bool(reasons) if known else None,
            "thermal_throttled": any("Thermal" in r for r in reasons) if known else None,
            "power_throttled": any("Power" in r for r in reasons) if known else None}


BUSY_CPU_PCT = 25.0        # other processes using more than this share of all cores: busy
BUSY_GPU_PCT = 10.0        # a GPU this busy before our cell starts is shared


def busy_check(device: torch.device, window_s: float = 0.1) -> dict:
    """Is someone else using the machine right now? Sampled while benchbench itself is idle
    (between cells), so the system-wide CPU share is other processes' (plus a little of ours)."""
    import psutil

    cpu = psutil.cpu_percent(interval=window_s)
    out = {"host_cpu_pct_before": cpu, "load_avg_1m": os.getloadavg()[0]
           if hasattr(os, "getloadavg") else None}
    reasons = []
    if cpu > BUSY_CPU_PCT:
        reasons.append(f"other processes used {cpu:.0f}% of the CPUs")
    if device.type == "cuda":
        try:
            from .power.nvml import snapshot
            util = snapshot(device.index).get("utilization_gpu_pct")
            out["gpu_util_pct_before"] = util
            if util is not None and util > BUSY_GPU_PCT:
                reasons.append(f"the GPU was {util}% busy before the cell")
        except Exception:  # noqa: BLE001 - no NVML: nothing to say about the GPU
            out["gpu_util_pct_before"] = None
    out["busy"] = bool(reasons)
    out["busy_reasons"] = reasons
    return out
