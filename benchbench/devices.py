"""Device profiles (``data/devices.csv``): peak FP32/FP16 (FP16 = tensor-core dense where the
device has them), memory bandwidth, the power rail benchbench reads, and the speed factor relative
to a GTX 1080 Ti with its kind (published / empirical / spec estimate). Sources: shared reference
data ``device_specs.csv`` and ``gpu_factors.csv``."""
from __future__ import annotations

import csv
import functools
import re
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
    """Which profile this machine is: the CUDA device name (NVML/torch), else the Jetson
    device-tree model, else the CPU."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
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
