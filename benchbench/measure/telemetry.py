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
