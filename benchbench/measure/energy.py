"""The power pass: an idle baseline, then the model looped for a fixed window beside a power
sampler, with a device sync before start and after stop. Energy is the sampler's hardware
counter where it has one (NVML Volta+, RAPL), else the integral of its power trace."""
from __future__ import annotations

import time

import torch


def _window(sampler, backend, seconds: float, run: bool, batch: int = 1) -> dict:
    backend.sync()
    sampler.start()
    try:        # the sampler's thread / child process ends on an error or Ctrl-C too
        start = time.perf_counter()
        frames = 0
        while time.perf_counter() - start < seconds:
            if run:
                backend.run()
                frames += batch
            else:
                time.sleep(min(0.05, seconds / 10))
        backend.sync()
        elapsed = time.perf_counter() - start
    finally:
        trace = sampler.stop()
    mean_w = trace.mean_w()
    integrated = mean_w * elapsed if mean_w is not None else None
    counter = getattr(sampler, "counter_energy_j", None)
    energy = counter if counter is not None else integrated
    return {"elapsed_s": elapsed, "frames": frames, "energy_j": energy,
            "integrated_j": integrated, "counter_j": counter, "samples": len(trace.t_s)}


def measure_energy(backend, sampler, idle_s: float, duration_s: float, autograd: bool,
                   batch: int = 1) -> dict:
    """Power and energy per frame (an image: a forward of ``batch`` images is ``batch`` frames);
    ``fps_power_pass`` is frames / window, the rate that energy per frame belongs to."""
    idle = _window(sampler, backend, idle_s, run=False)
    grad = torch.enable_grad() if autograd else torch.inference_mode()
    with grad:
        busy = _window(sampler, backend, duration_s, run=True, batch=batch)
    out = {"power_sampler": sampler.name, "power_sampler_rate_hz": sampler.rate_hz,
           "power_method": getattr(sampler, "method", "trace_integral"),
           "power_window_s": round(busy["elapsed_s"], 4), "power_frames": busy["frames"],
           "power_samples": busy["samples"], "idle_window_s": round(idle["elapsed_s"], 4)}
    if getattr(sampler, "read_errors", 0):
        out["power_read_errors"] = sampler.read_errors
        out["power_last_read_error"] = sampler.last_error
    if busy["energy_j"] is None or busy["frames"] == 0:
        out["power_unavailable"] = "unavailable: the sampler returned no readings in the window"
        return out
    power = busy["energy_j"] / busy["elapsed_s"]
    idle_w = idle["energy_j"] / idle["elapsed_s"] if idle["energy_j"] is not None else None
    fps = busy["frames"] / busy["elapsed_s"]
    out.update(
        power_w_mean=power, idle_power_w=idle_w,
        power_w_above_idle=power - idle_w if idle_w is not None else None,
        energy_j=busy["energy_j"],
        energy_mj_per_frame=busy["energy_j"] * 1000 / busy["frames"],
        energy_mj_per_frame_above_idle=((power - idle_w) * busy["elapsed_s"] * 1000 /
                                        busy["frames"]) if idle_w is not None else None,
        fps_power_pass=fps, fps_per_watt=fps / power if power > 0 else None,
        energy_counter_vs_integrated=(busy["counter_j"] / busy["integrated_j"]
                                      if busy["counter_j"] and busy["integrated_j"] else None))
    return out
