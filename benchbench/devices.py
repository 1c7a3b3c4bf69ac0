"""Device profiles (``data/devices.csv``): peak FP32/FP16 (FP16 = tensor-core dense where the
device has them), memory bandwidth, the power rail benchbench reads, and the speed factor relative
to a GTX 1080 Ti with its kind (published / empirical / spec estimate). Sources: shared reference
data ``device_specs.csv`` and ``gpu_factors.csv``."""
from __future__ import annotations

import csv
import functools
import os
import re
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data" / "devices.csv"
_NUMERIC = ("fp32_tflops", "fp16_tflops", "mem_bw_gbs", "factor_vs_1080ti")


@functools.lru_cache(maxsize=1)
def _load() -> tuple[dict, ...]:
    rows = []
    with open(DATA, newline="") as f:
        for row in csv.DictReader(f):
            for key in _NUMERIC:
                row[key] = float(row[key]) if row[key] else None
            rows.append(row)
    return tuple(rows)


def load_profiles() -> list[dict]:
    return [dict(r) for r in _load()]


def profile(key: str) -> dict | None:
    return next((dict(r) for r in _load() if r["key"] == key), None)


def match_name(name: str, kind: str | None = None) -> dict | None:
    """The profile whose ``match`` pattern (regex alternatives) occurs in a device name."""
    for row in _load():
        if row["match"] and (kind is None or row["kind"] == kind) and \
                re.search(row["match"], name, re.IGNORECASE):
            return dict(row)
    return None


def detect_current(profiles=None, devicetree: Path = Path("/proc/device-tree/model")) -> dict:
    """Which profile this machine is: the first visible CUDA device's name, else the Jetson
    device-tree model, else the CPU."""
    name = _cuda_device_name()
    if name:
        found = match_name(name, "gpu") or match_name(name)
        if found:
            return {**found, "detected_as": f"CUDA device '{name}'"}
    if devicetree.exists():
        model = devicetree.read_text(errors="replace").strip("\x00\n ")
        found = match_name(model, "jetson")
        if found:
            return {**found, "detected_as": f"device-tree model '{model}'"}
    from .env import cpu_model
    return {**profile("cpu"), "detected_as": f"CPU '{cpu_model()}'"}


def _cuda_device_name() -> str | None:
    """torch's device 0 where torch is already imported; otherwise NVML's first device that
    CUDA_VISIBLE_DEVICES leaves visible (so a command that needs no model does not import
    torch). None without an NVIDIA driver."""
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:  # no driver, no NVML (CPU machines, Jetson boards)
        return None
    try:
        handle = _first_visible(pynvml)
        if handle is None:
            return None
        name = pynvml.nvmlDeviceGetName(handle)
        return name.decode() if isinstance(name, bytes) else name
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def _first_visible(pynvml):
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return pynvml.nvmlDeviceGetHandleByIndex(0) if pynvml.nvmlDeviceGetCount() else None
    first = visible.split(",")[0].strip()
    if not first or first.startswith("-"):
        return None                       # "" or "-1": CUDA sees no device
    if first.isdigit():
        return pynvml.nvmlDeviceGetHandleByIndex(int(first))
    return pynvml.nvmlDeviceGetHandleByUUID(first if first.startswith(("GPU-", "MIG-"))
                                            else f"GPU-{first}")
