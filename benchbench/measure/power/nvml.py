"""NVML (nvidia-ml-py, module ``pynvml``): board power beside the timer, and the GPU's state
(clocks, temperature, power limit, clock-event reasons) before, during and after each cell.

Energy source, best first (the record says which): the total-energy counter (Volta+, mJ),
else ``NVML_FI_DEV_POWER_INSTANT``, else ``nvmlDeviceGetPowerUsage`` (a 1 s trailing average on
Ampere and newer). Power is polled in a thread either way so a trace exists for the report.
"""
from __future__ import annotations

import threading
import time

from . import PowerTrace

# Clock-event reason bits that mean "throttled" during a timed region (NVML.md §1)
THROTTLE_BITS = {0x4: "SwPowerCap", 0x8: "HwSlowdown", 0x20: "SwThermalSlowdown",
                 0x40: "HwThermalSlowdown", 0x80: "HwPowerBrakeSlowdown"}
OTHER_BITS = {0x1: "GpuIdle", 0x2: "ApplicationsClocksSetting", 0x10: "SyncBoost",
              0x100: "DisplayClockSetting"}
THERMAL_BITS = 0x20 | 0x40
POWER_BITS = 0x4 | 0x80


def decode_reasons(mask: int) -> list[str]:
    names = {**THROTTLE_BITS, **OTHER_BITS}
    return [name for bit, name in sorted(names.items()) if mask & bit]


def _nvml():
    import pynvml
    pynvml.nvmlInit()
    return pynvml


def _handle(pynvml, cuda_index: int | None):
    """NVML orders by PCI bus; match torch's device by PCI bus id when it can tell."""
    try:
        import torch
        props = torch.cuda.get_device_properties(cuda_index or 0)
        bus = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
        return pynvml.nvmlDeviceGetHandleByPciBusId(bus)
    except Exception:
        return pynvml.nvmlDeviceGetHandleByIndex(cuda_index or 0)


def _clock_reasons(pynvml, h) -> int:
    for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        if hasattr(pynvml, fn):
            try:
                return int(getattr(pynvml, fn)(h))
            except pynvml.NVMLError:
                continue
    return 0


def snapshot(cuda_index: int | None = None) -> dict:
    """Clocks, temperature, power limit and clock-event reasons right now (NVML)."""
    pynvml = _nvml()
    h = _handle(pynvml, cuda_index)
    out = {"source": "nvml"}
    reads = {
        "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
        "mem_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM),
        "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
        "power_limit_w": lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000,
        "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(h) / 1000,
        "pstate": lambda: f"P{pynvml.nvmlDeviceGetPerformanceState(h)}",
        "utilization_gpu_pct": lambda: pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
    }
    for key, read in reads.items():
        try:
            out[key] = read()
        except pynvml.NVMLError as exc:
            out[key] = None
            out.setdefault("unsupported", []).append(f"{key}: {exc}")
    mask = _clock_reasons(pynvml, h)
    out["clock_event_reasons"] = decode_reasons(mask)
    out["clock_event_mask"] = mask
    return out


class NvmlSampler:
    name = "nvml"

    def __init__(self, interval_ms: int = 20, cuda_index: int | None = None):
        self.interval_ms = interval_ms
        self.rate_hz = 1000.0 / interval_ms
        self.cuda_index = cuda_index
        self.method = None

    def unavailable_reason(self) -> str | None:
        try:
            import torch
            if not torch.cuda.is_available():
                return "no CUDA device"
            pynvml = _nvml()
            h = _handle(pynvml, self.cuda_index)
            pynvml.nvmlDeviceGetPowerUsage(h)
        except ImportError:
            return "nvidia-ml-py (pynvml) is not installed"
        except Exception as exc:   # NVMLError_NotSupported on Jetson, no driver, ...
            return f"NVML power reading not supported: {exc}"
        return None

    def start(self) -> None:
        self.pynvml = pynvml = _nvml()
        self.h = _handle(pynvml, self.cuda_index)
        self._energy0 = self._energy_mj()
        self.method = "energy_counter" if self._energy0 is not None else self._power_method()
        self._t, self._p, self._mask = [], [], 0
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _energy_mj(self):
        try:
            if self.pynvml.nvmlDeviceGetArchitecture(self.h) < self.pynvml.NVML_DEVICE_ARCH_VOLTA:
                return None
            return self.pynvml.nvmlDeviceGetTotalEnergyConsumption(self.h)
        except Exception:
            return None

    def _power_method(self) -> str:
        return "instant_power" if self._instant_w() is not None else "average_power"

    def _instant_w(self):
        p = self.pynvml
        try:
            fid = getattr(p, "NVML_FI_DEV_POWER_INSTANT", 186)
            v = p.nvmlDeviceGetFieldValues(self.h, [fid])[0]
            return v.value.uiVal / 1000 if v.nvmlReturn == p.NVML_SUCCESS else None
        except Exception:
            return None

    def _read_w(self):
        if self.method != "average_power":
            w = self._instant_w()
            if w is not None:
                return w
        return self.pynvml.nvmlDeviceGetPowerUsage(self.h) / 1000

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._t.append(time.perf_counter() - self._t0)
            self._p.append(self._read_w())
            self._mask |= _clock_reasons(self.pynvml, self.h)
            self._stop.wait(self.interval_ms / 1000)

    def stop(self) -> PowerTrace:
        self._stop.set()
        self._thread.join()
        elapsed = time.perf_counter() - self._t0
        trace = PowerTrace(list(self._t), list(self._p))
        energy1 = self._energy_mj() if self._energy0 is not None else None
        self.counter_energy_j = (energy1 - self._energy0) / 1000 if energy1 is not None else None
        self.elapsed_s = elapsed
        self.reasons_during = decode_reasons(self._mask)
        self.mask_during = self._mask
        return trace
