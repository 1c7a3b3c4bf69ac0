"""GPU speed normalisation (FASSD-Net journal Sec. IV-F, after SwiftNet) and the seed papers'
published results as data.

    fps_norm = fps / factor(gpu) / (1.65 if measured with TensorRT else 1)

Factors are relative to a GTX 1080 Ti (``data/devices.csv``): published (1080 Ti 1.0, Titan X
Maxwell 0.61, Titan X Pascal 1.03, Titan Xp 1.12), empirical, or a spec-based estimate (FP32 peak
ratio), which is flagged ``estimate`` wherever it is used.
"""
from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path

from .devices import match_name, profile

TENSORRT_FACTOR = 1.65
DATA = Path(__file__).parent / "data"

# printed GPU names -> device profile keys; None = ambiguous as printed
GPU_ALIASES = {
    "gtx 1080ti": "gtx1080ti", "gtx 1080 ti": "gtx1080ti", "geforce gtx 1080 ti": "gtx1080ti",
    "titan x (p)": "titan-x-pascal", "titan x (pascal)": "titan-x-pascal",
    "titan x (m)": "titan-x-maxwell", "titan x m": "titan-x-maxwell",
    "titan x (maxwell)": "titan-x-maxwell", "titan xp": "titan-xp",
    "jetson tx2": "jetson-tx2", "titan x": None, "titan": None,
}


@dataclass(frozen=True)
class NormalizedFPS:
    value: float | None
    factor: float | None
    factor_kind: str | None
    estimate: bool
    reason: str | None = None


def gpu_key(printed: str | None) -> str | None:
    if not printed or _missing(printed):
        return None
    key = printed.strip().lower()
    if key in GPU_ALIASES:
        return GPU_ALIASES[key]
    found = match_name(printed)
    return found["key"] if found else None


def normalize_fps(fps: float | None, device_key: str | None, tensorrt: bool = False) -> NormalizedFPS:
    if _missing(fps):
        return NormalizedFPS(None, None, None, False, "no FPS")
    prof = profile(device_key) if device_key else None
    if prof is None:
        return NormalizedFPS(None, None, None, False, "GPU unknown or ambiguous")
    factor = prof["factor_vs_1080ti"]
    if factor is None:
        return NormalizedFPS(None, None, None, False,
                             f"no speed factor for {prof['name']} ({prof['factor_source']})")
    trt = TENSORRT_FACTOR if tensorrt else 1.0
    kind = prof["factor_kind"]
    return NormalizedFPS(fps / factor / trt, factor, kind, kind == "spec estimate")


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _bool(v) -> bool:
    return str(v).strip().lower() == "true"


_INT_COLUMNS = ("input_h", "input_w")
_FLOAT_COLUMNS = ("params_m", "gflops", "fps", "miou_val", "miou_test")


def _typed(row: dict) -> dict:
    for key in _INT_COLUMNS:
        row[key] = int(row[key]) if row[key] else None
    for key in _FLOAT_COLUMNS:
        row[key] = float(row[key]) if row[key] else None
    for key, value in row.items():
        if value == "":
            row[key] = None
    row["tensorrt"] = _bool(row["tensorrt"])
    return row


@functools.lru_cache(maxsize=1)
def _literature_rows() -> tuple[dict, ...]:
    """Every row of ``data/literature.csv`` with its GPU key and normalised FPS (plain Python:
    ``bench literature`` needs no pandas)."""
    rows = []
    with open(DATA / "literature.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            row = _typed(row)
            row["gpu"] = row.pop("gpu_resolved") or gpu_key(row["gpu_printed"])
            norm = normalize_fps(row["fps"], row["gpu"], row["tensorrt"])
            row.update(fps_norm=norm.value, fps_norm_estimate=norm.estimate,
                       fps_norm_reason=norm.reason, source=f"{row['paper']}, {row['table']}")
            rows.append(row)
    return tuple(rows)


def literature_rows(dataset: str | None = None) -> list[dict]:
    return [dict(r) for r in _literature_rows() if not dataset or r["dataset"] == dataset]


def literature(dataset: str | None = None):
    """The published results as a pandas DataFrame (one row per method, size and GPU)."""
    import pandas as pd

    return pd.DataFrame(literature_rows(dataset)).reset_index(drop=True)


def literature_per_class():
    import pandas as pd

    return pd.read_csv(DATA / "literature_per_class.csv")


def device_key_for(device_name: str | None, device: str | None, target: str | None) -> str | None:
    """The profile a measured record normalises against: the device it actually ran on, matched by
    name, never the suite's ``target`` (a TX2 suite run on a desktop GPU is a desktop number, and a
    GPU missing from the profiles gets no factor rather than a wrong one)."""
    if device == "cpu":
        return "cpu"
    if not isinstance(device_name, str) or not device_name:     # a skipped cell: NaN / None
        return None
    found = match_name(device_name, "gpu") or match_name(device_name)
    return found["key"] if found else None
