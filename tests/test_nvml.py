"""NVML paths without a GPU: a fake ``pynvml`` stands in for the absent driver/hardware (the
module's documented call shapes, nvidia-ml-py 13.615.71, shared/data/NVML.md)."""
import sys
import threading
import time
import types

import pytest
import torch

from benchbench.measure import energy
from benchbench.measure.power import PowerTrace
from benchbench.measure.power import nvml
from benchbench.measure.telemetry import cool_down, throttle_summary


class NVMLError(Exception):
    pass


def fake_pynvml(power_fails_every=0, reasons=0x1, buses=("00000000:41:00.0",),
                reasons_supported=True):
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError
    m.NVML_SUCCESS = 0
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM, m.NVML_TEMPERATURE_GPU = 1, 2, 0
    m.NVML_DEVICE_ARCH_VOLTA = 5
    m.NVML_FI_DEV_POWER_INSTANT, m.NVML_POWER_SCOPE_GPU = 186, 0
    m.calls = []
    state = {"reads": 0}

    m.nvmlInit = lambda: None
    m.nvmlDeviceGetHandleByPciBusId = lambda bus: (m.calls.append(("bus", bus)) or
                                                   ("h", buses.index(bus)))
    m.nvmlDeviceGetHandleByIndex = lambda i: ("h", i)
    m.nvmlDeviceGetArchitecture = lambda h: 4            # Pascal: no energy counter

    def power(h):
        state["reads"] += 1
        if power_fails_every and state["reads"] % power_fails_every == 0:
            raise NVMLError("Unknown Error")
        return 100_000                                   # mW

    m.nvmlDeviceGetPowerUsage = power

    def field_values(h, requests):
        m.calls.append(("fields", requests))
        value = types.SimpleNamespace(nvmlReturn=3, valueType=1,
                                      value=types.SimpleNamespace(uiVal=0))
        return [value]                                   # NOT_SUPPORTED: use average power

    m.nvmlDeviceGetFieldValues = field_values

    def event_reasons(h):
        if not reasons_supported:
            raise NVMLError("Not Supported")
        return reasons

    m.nvmlDeviceGetCurrentClocksEventReasons = event_reasons
    m.nvmlDeviceGetTemperature = lambda h, s: 55
    m.nvmlDeviceGetClockInfo = lambda h, c: 1410
    return m


@pytest.fixture
def gpu_props(monkeypatch):
    props = types.SimpleNamespace(pci_domain_id=0, pci_bus_id=0x41, pci_device_id=0,
                                  uuid="abc")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: props)
    return props


def test_sampler_survives_read_errors_and_keeps_one_value_per_time(monkeypatch, gpu_props):
    fake = fake_pynvml(power_fails_every=3)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = nvml.NvmlSampler(interval_ms=2, cuda_index=0)
    sampler.start()
    time.sleep(0.15)
    trace = sampler.stop()
    assert sampler.read_errors >= 3 and "Unknown Error" in sampler.last_error
    assert len(trace.t_s) == len(trace.power_w) > 10
    assert trace.mean_w() == pytest.approx(100.0)       # energy computes, no IndexError
    assert sampler.method == "average_power"            # instant field unsupported
    assert ("bus", "00000000:41:00.0") in fake.calls    # by PCI bus id, not NVML index 0


def test_field_values_are_read_through_their_value_type(monkeypatch):
    fake = fake_pynvml()

    def fields(h, requests):
        v = types.SimpleNamespace(nvmlReturn=0, valueType=3,
                                  value=types.SimpleNamespace(ullVal=123_456, uiVal=7))
        fake.calls.append(("fields", requests))
        return [v]

    fake.nvmlDeviceGetFieldValues = fields
    assert nvml.field_value(fake, "h", 186, 0) == 123_456        # ullVal, not uiVal
    assert ("fields", [(186, 0)]) in fake.calls                   # (field, scope) tuple


def test_handle_follows_torch_device_by_pci_bus_id(monkeypatch, gpu_props):
    fake = fake_pynvml(buses=("00000000:01:00.0", "00000000:41:00.0"))
    assert nvml._handle(fake, 0) == ("h", 1)    # CUDA_VISIBLE_DEVICES=1: torch's 0 is NVML's 1


def test_unreadable_pci_and_uuid_refuses_instead_of_reading_gpu_0(monkeypatch):
    fake = fake_pynvml(buses=())
    fake.nvmlDeviceGetHandleByUUID = lambda u: (_ for _ in ()).throw(NVMLError("Not Found"))
    props = types.SimpleNamespace(pci_domain_id=0, pci_bus_id=0x41, pci_device_id=0, uuid="x")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: props)
    with pytest.raises(RuntimeError, match="cannot tell which NVML device is cuda:0"):
        nvml._handle(fake, 0)


def test_reason_bits_board_limit_reliability_and_unsupported():
    assert nvml.decode_reasons(0x200 | 0x400) == ["BoardLimit", "Reliability"]
    assert nvml.decode_reasons(0x1000) == ["0x1000"]
    assert nvml.decode_reasons(None) is None
    assert nvml.decode_reasons(0) == []


def test_throttle_unknown_is_null_not_false():
    unsupported = {"gpu": {"source": "nvml", "clock_event_reasons": None}}
    out = throttle_summary(unsupported, unsupported, None, None)
    assert out["throttled"] is None and out["thermal_throttled"] is None
    seen = throttle_summary(unsupported, unsupported, ["GpuIdle"], ["BoardLimit"])
    assert seen["throttled"] is True and seen["throttle_reasons"] == ["BoardLimit"]
    calm = throttle_summary({}, {}, ["GpuIdle"])
    assert calm["throttled"] is False


def test_clock_event_monitor_ors_reasons_across_the_timed_loop(monkeypatch, gpu_props):
    fake = fake_pynvml(reasons=0x4)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with nvml.ClockEventMonitor(0, interval_s=0.005) as monitor:
        time.sleep(0.05)
    summary = monitor.summary()
    assert summary["clock_event_reasons"] == ["SwPowerCap"] and summary["samples"] > 2
    assert summary["temperature_c_max"] == 55 and summary["sm_clock_mhz_min"] == 1410
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(reasons_supported=False))
    with nvml.ClockEventMonitor(0, interval_s=0.005) as monitor:
        time.sleep(0.03)
    assert monitor.summary()["clock_event_reasons"] is None


def test_power_trace_refuses_unmatched_lists():
    with pytest.raises(ValueError, match="one power value per time stamp"):
        PowerTrace([0.0, 1.0], [5.0])
    assert PowerTrace.from_polled([0.0, 1.0, 2.0], [5.0, 5.0]).energy_j() == 5.0


class _Sampler:
    name, rate_hz = "fake", 10.0

    def __init__(self):
        self.running = False

    def start(self):
        self.running = True

    def stop(self):
        self.running = False
        return PowerTrace([0.0, 0.1], [1.0, 1.0])


class _FailingBackend:
    def sync(self):
        pass

    def run(self):
        raise KeyboardInterrupt


def test_sampler_is_stopped_when_the_power_window_is_interrupted():
    sampler = _Sampler()
    with pytest.raises(KeyboardInterrupt):
        energy.measure_energy(_FailingBackend(), sampler, idle_s=0.01, duration_s=1.0,
                              autograd=False)
    assert sampler.running is False
    assert threading.active_count() >= 1


def test_cool_down_without_a_sensor_waits_the_limit_and_says_so(monkeypatch):
    from benchbench.measure import telemetry
    monkeypatch.setattr(telemetry, "_temperature_reader", lambda device: None)
    start = time.perf_counter()
    out = cool_down(torch.device("cpu"), 0.2)
    assert time.perf_counter() - start >= 0.2
    assert out["cooldown_settled"] is None and "waited the full limit" in out["cooldown_note"]


def test_cool_down_stops_once_the_temperature_settles(monkeypatch):
    from benchbench.measure import telemetry
    temps = iter([70, 66, 63, 62, 62, 62, 62, 62, 62, 62, 62, 62, 62])
    monkeypatch.setattr(telemetry, "_temperature_reader",
                        lambda device: (lambda: (next(temps), True)))
    out = cool_down(torch.device("cuda"), limit_s=30, poll_s=0.01, settle_window_s=0.03)
    assert out["cooldown_settled"] is True and out["cooldown_waited_s"] < 5
    assert out["cooldown_temperature_start_c"] == 70 and out["cooldown_temperature_end_c"] == 62


_FAKE_NVML = '''
class NVMLError(Exception):
    pass

_GPUS = {"GPU-aaaa": "NVIDIA GeForce GTX 1080 Ti", "GPU-bbbb": "NVIDIA H100 80GB HBM3"}

def nvmlInit():
    pass

def nvmlShutdown():
    pass

def nvmlDeviceGetCount():
    return len(_GPUS)

def nvmlDeviceGetHandleByIndex(i):
    return list(_GPUS)[i]

def nvmlDeviceGetHandleByUUID(uuid):
    if uuid not in _GPUS:
        raise NVMLError("Not Found")
    return uuid

def nvmlDeviceGetName(handle):
    return _GPUS[handle].encode()      # older nvidia-ml-py returns bytes
'''


@pytest.mark.parametrize("visible, key", [(None, "gtx1080ti"), ("1", "h100"),
                                          ("GPU-bbbb", "h100"), ("", "cpu"), ("-1", "cpu")])
def test_bench_devices_names_the_gpu_cuda_would_use_without_importing_torch(tmp_path, visible,
                                                                            key):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "pynvml.py").write_text(_FAKE_NVML)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    probe = ("import sys, json; from benchbench.cli import main; main(['devices', '--json']);"
             "print(json.dumps({'torch': 'torch' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    devices, imported = out.rsplit("\n{", 1)
    assert json.loads(devices)["current"]["key"] == key
    assert json.loads("{" + imported) == {"torch": False}
