"""The state of the device around a cell: clocks, temperatures, throttling (NVML on CUDA), CPU
frequency, load and process memory (psutil) on the host. A throttled cell is flagged."""
from __future__ import annotations

import os
import time

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


def throttle_summary(before: dict, after: dict, *during: list[str] | None) -> dict:
    """Throttle reasons seen before/after and during each monitored pass (timing, power);
    ``throttled`` is None when nothing could tell (no NVML, or reasons unsupported)."""
    from .power.nvml import THROTTLE_BITS

    bad = set(THROTTLE_BITS.values())
    seen, known = set(), False
    for reasons in during:
        if reasons is not None:
            known = True
            seen |= set(reasons)
    for state in (before or {}, after or {}):
        gpu = state.get("gpu") or {}
        if gpu.get("source") == "nvml" and gpu.get("clock_event_reasons") is not None:
            known = True
            seen |= set(gpu["clock_event_reasons"])
    reasons = sorted(seen & bad)
    return {"throttle_reasons": reasons, "throttled": bool(reasons) if known else None,
            "thermal_throttled": any("Thermal" in r for r in reasons) if known else None,
            "power_throttled": any("Power" in r for r in reasons) if known else None}


BUSY_CPU_PCT = 25.0        # other processes using more than this share of all cores: busy
BUSY_GPU_PCT = 10.0        # a GPU this busy before our cell starts is shared
# NVML's utilisation is the share of its last sample period (1/6 s to 1 s, by product) in which
# a kernel ran: right after our own previous cell it reads our kernels (up to 100% on an H100
# between the repeats of a gate run), so it is read again until that period has passed.
GPU_UTIL_SETTLE_S = 1.2


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
            torch.cuda.synchronize(device)
            util = settled_gpu_util(lambda: snapshot(device.index).get("utilization_gpu_pct"))
            out["gpu_util_pct_before"] = util
            if util is not None and util > BUSY_GPU_PCT:
                reasons.append(f"the GPU was {util}% busy before the cell")
        except Exception:  # noqa: BLE001 - no NVML: nothing to say about the GPU
            out["gpu_util_pct_before"] = None
    out["busy"] = bool(reasons)
    out["busy_reasons"] = reasons
    return out


def settled_gpu_util(read_util, settle_s: float = GPU_UTIL_SETTLE_S,
                     poll_s: float = 0.1) -> int | None:
    """The GPU's utilisation once our own last kernels have left NVML's sample period: the lowest
    reading, polled until it is at most BUSY_GPU_PCT (at once on an idle GPU) or ``settle_s``
    has passed (another process keeps it busy). None when NVML cannot tell."""
    start = time.perf_counter()
    lowest = None
    while True:
        util = read_util()
        if util is None:
            return lowest
        lowest = util if lowest is None else min(lowest, util)
        if lowest <= BUSY_GPU_PCT or time.perf_counter() - start >= settle_s:
            return lowest
        time.sleep(poll_s)


def cool_down(device: torch.device, limit_s: float, poll_s: float = 0.5,
              settle_window_s: float = 3.0, settle_delta_c: float = 1.0) -> dict:
    """Wait (at most ``limit_s``) after a timing pass until the device has settled: its
    temperature has not fallen by more than ``settle_delta_c`` over ``settle_window_s`` and (on
    a GPU) it reports idle clocks. The idle power baseline then reads a rested device, not one
    still hot from the timed loop. Returns what happened, for the record."""
    read = _temperature_reader(device)
    start = time.perf_counter()
    out = {"cooldown_limit_s": limit_s}
    if read is None:       # nothing to watch: rest for the whole limit, and say so
        time.sleep(limit_s)
        return {**out, "cooldown_waited_s": round(time.perf_counter() - start, 2),
                "cooldown_settled": None,
                "cooldown_note": "no temperature sensor readable: waited the full limit"}
    history = []
    first = None
    while True:
        now = time.perf_counter() - start
        temp, idle = read()
        first = temp if first is None else first
        history.append((now, temp))
        window = [t for (at, t) in history if at >= now - settle_window_s]
        settled = (now >= settle_window_s and temp is not None and
                   max(window) - temp <= settle_delta_c and idle is not False)
        if settled or now >= limit_s:
            return {**out, "cooldown_waited_s": round(now, 2), "cooldown_settled": settled,
                    "cooldown_temperature_start_c": first, "cooldown_temperature_end_c": temp}
        time.sleep(poll_s)


def _temperature_reader(device: torch.device):
    """A function returning (temperature C, idle clocks?) for ``device``, or None."""
    if device.type == "cuda":
        try:
            from .power.nvml import snapshot
            snapshot(device.index)
        except Exception:  # noqa: BLE001 - no NVML: nothing to watch
            return None

        def gpu():
            state = snapshot(device.index)
            reasons = state.get("clock_event_reasons")
            return state.get("temperature_c"), None if reasons is None else "GpuIdle" in reasons
        return gpu
    if host_state().get("cpu_temperature_c") is None:
        return None
    return lambda: (host_state()["cpu_temperature_c"], None)
