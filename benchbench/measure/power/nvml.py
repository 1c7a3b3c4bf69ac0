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

# Clock-event reason bits that mean "throttled" during a timed region (NVML.md §1); the
# throttle family's newest header adds BoardLimit and Reliability, which also cap clocks.
THROTTLE_BITS = {0x4: "SwPowerCap", 0x8: "HwSlowdown", 0x20: "SwThermalSlowdown",
                 0x40: "HwThermalSlowdown", 0x80: "HwPowerBrakeSlowdown",
                 0x200: "BoardLimit", 0x400: "Reliability"}
OTHER_BITS = {0x1: "GpuIdle", 0x2: "ApplicationsClocksSetting", 0x10: "SyncBoost",
              0x100: "DisplayClockSetting"}
THERMAL_BITS = 0x20 | 0x40
POWER_BITS = 0x4 | 0x80

# nvmlValueType_t: which member of nvmlValue_t a field value fills
_VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal",
                  6: "usVal"}


def decode_reasons(mask: int | None) -> list[str] | None:
    """Names of the set bits; None when the GPU cannot report reasons (not "none seen")."""
    if mask is None:
        return None
    names = {**THROTTLE_BITS, **OTHER_BITS}
    known = [name for bit, name in sorted(names.items()) if mask & bit]
    unknown = mask & ~sum(names)
    return known + ([f"0x{unknown:x}"] if unknown else [])


def _nvml():
    import pynvml
    pynvml.nvmlInit()
    return pynvml


def torch_pci_bus_id(cuda_index: int | None) -> str | None:
    """``DDDDDDDD:BB:DD.0`` of torch's CUDA device (honours CUDA_VISIBLE_DEVICES)."""
    import torch
    props = torch.cuda.get_device_properties(cuda_index or 0)
    if not hasattr(props, "pci_bus_id"):
        return None
    return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"


def _handle(pynvml, cuda_index: int | None):
    """The NVML handle of torch's ``cuda:<index>``. NVML numbers GPUs in PCI order and ignores
    CUDA_VISIBLE_DEVICES, so the index alone may name another GPU: match by PCI bus id, then by
    UUID; without either, refuse rather than read the wrong board."""
    import torch
    errors = []
    try:
        bus = torch_pci_bus_id(cuda_index)
        if bus is not None:
            return pynvml.nvmlDeviceGetHandleByPciBusId(bus)
    except Exception as exc:  # noqa: BLE001 - try the UUID next
        errors.append(f"PCI bus id: {exc}")
    try:
        uuid = getattr(torch.cuda.get_device_properties(cuda_index or 0), "uuid", None)
        if uuid is not None:
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"UUID: {exc}")
    raise RuntimeError(f"cannot tell which NVML device is cuda:{cuda_index or 0} "
                       f"({'; '.join(errors) or 'torch reports neither PCI bus id nor UUID'})")


def _clock_reasons(pynvml, h) -> int | None:
    for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        if hasattr(pynvml, fn):
            try:
                return int(getattr(pynvml, fn)(h))
            except pynvml.NVMLError:
                continue
    return None


def field_value(pynvml, h, field_id: int, scope: int | None = None):
    """One NVML field value as a number, read through the member its ``valueType`` names;
    None when the field is not supported."""
    request = (field_id, scope) if scope is not None else field_id
    value = pynvml.nvmlDeviceGetFieldValues(h, [request])[0]
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        return None
    member = _VALUE_MEMBERS.get(int(value.valueType))
    if member is None:
        return None
    return getattr(value.value, member)


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
        self.read_errors = 0
        self.last_error = None

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
        self._t, self._p, self._mask, self._mask_known = [], [], 0, False
        self.read_errors, self.last_error = 0, None
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
            mw = field_value(p, self.h, getattr(p, "NVML_FI_DEV_POWER_INSTANT", 186),
                             getattr(p, "NVML_POWER_SCOPE_GPU", 0))
            return mw / 1000 if mw is not None else None
        except Exception:  # noqa: BLE001 - not supported here: fall back to the average
            return None

    def _read_w(self):
        if self.method != "average_power":
            w = self._instant_w()
            if w is not None:
                return w
        return self.pynvml.nvmlDeviceGetPowerUsage(self.h) / 1000

    def _poll(self) -> None:
        """Never dies on a read error: a failed read is counted and skipped, and a time is
        appended only together with its power value, so the trace stays consistent."""
        while not self._stop.is_set():
            try:
                t = time.perf_counter() - self._t0
                watts = self._read_w()
                self._t.append(t)
                self._p.append(watts)
            except Exception as exc:  # noqa: BLE001 - NVMLError, a driver hiccup: keep polling
                self.read_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            try:
                mask = _clock_reasons(self.pynvml, self.h)
            except Exception:  # noqa: BLE001
                mask = None
            if mask is not None:
                self._mask |= mask
                self._mask_known = True
            self._stop.wait(self.interval_ms / 1000)

    def stop(self) -> PowerTrace:
        self._stop.set()
        self._thread.join()
        elapsed = time.perf_counter() - self._t0
        trace = PowerTrace.from_polled(self._t, self._p)
        energy1 = self._energy_mj() if self._energy0 is not None else None
        self.counter_energy_j = (energy1 - self._energy0) / 1000 if energy1 is not None else None
        self.elapsed_s = elapsed
        self.reasons_during = decode_reasons(self._mask if self._mask_known else None)
        self.mask_during = self._mask if self._mask_known else None
        return trace


class ClockEventMonitor:
    """Polls the clock-event reasons (and temperature, SM clock) of one GPU in a thread, for
    as long as a ``with`` block runs -- e.g. the timing pass, where a throttled GPU makes the
    latency wrong. ``summary()`` ORs the reasons seen; None where NVML cannot tell."""

    def __init__(self, cuda_index: int | None, interval_s: float = 0.1):
        self.cuda_index, self.interval_s = cuda_index, interval_s
        self.mask, self.samples, self.error = None, 0, None
        self.temps, self.sm_clocks = [], []

    def __enter__(self):
        try:
            self.pynvml = _nvml()
            self.h = _handle(self.pynvml, self.cuda_index)
        except Exception as exc:  # noqa: BLE001 - no NVML (Jetson, no driver): say so
            self.error = f"{type(exc).__name__}: {exc}"
            return self
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        p = self.pynvml
        while not self._stop.is_set():
            try:
                mask = _clock_reasons(p, self.h)
                if mask is not None:
                    self.mask = (self.mask or 0) | mask
                self.temps.append(p.nvmlDeviceGetTemperature(self.h, p.NVML_TEMPERATURE_GPU))
                self.sm_clocks.append(p.nvmlDeviceGetClockInfo(self.h, p.NVML_CLOCK_SM))
                self.samples += 1
            except Exception as exc:  # noqa: BLE001 - keep polling; the summary says it
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc):
        if getattr(self, "_thread", None) is not None:
            self._stop.set()
            self._thread.join()
        return False

    def summary(self) -> dict:
        out = {"clock_event_reasons": decode_reasons(self.mask), "samples": self.samples,
               "temperature_c_max": max(self.temps, default=None),
               "sm_clock_mhz_min": min(self.sm_clocks, default=None),
               "sm_clock_mhz_max": max(self.sm_clocks, default=None)}
        if self.error:
            out["error"] = self.error
        return out
