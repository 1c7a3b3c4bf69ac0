"""GPU speed normalisation (FASSD-Net journal Sec. IV-F, after SwiftNet) and the seed papers'
published results as data.

    fps_norm = fps / factor(gpu) / (1.65 if measured with TensorRT else 1)

Factors are relative to a GTX 1080 Ti (``data/devices.csv``): published (1080 Ti 1.0, Titan X
Maxwell 0.61, Titan X Pascal 1.03, Titan Xp 1.12), empirical, or a spec-based estimate (FP32 peak
ratio), which is flagged ``estimate`` wherever it is used.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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
    if not printed or (isinstance(printed, float) and pd.isna(printed)):
        return None
    key = printed.strip().lower()
    if key in GPU_ALIASES:
        return GPU_ALIASES[key]
    found = match_name(printed)
    return found["key"] if found else None


def normalize_fps(fps: float | None, device_key: str | None, tensorrt: bool = False) -> NormalizedFPS:
    if fps is None or pd.isna(fps):
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


def _bool(v) -> bool:
    return str(v).strip().lower() == "true"


@functools.lru_cache(maxsize=1)
def _literature() -> pd.DataFrame:
    df = pd.read_csv(DATA / "literature.csv", dtype={"gpu_resolved": str})
    df["tensorrt"] = df["tensorrt"].map(_bool)
    keys = [r if isinstance(r, str) and r else gpu_key(g)
            for r, g in zip(df["gpu_resolved"], df["gpu_printed"])]
    df["gpu"] = keys
    norm = [normalize_fps(f, k, t) for f, k, t in zip(df["fps"], keys, df["tensorrt"])]
    df["fps_norm"] = [n.value for n in norm]
    df["fps_norm_estimate"] = [n.estimate for n in norm]
    df["fps_norm_reason"] = [n.reason for n in norm]
    df["source"] = df["paper"] + ", " + df["table"]
    return df


def literature(dataset: str | None = None) -> pd.DataFrame:
    df = _literature().copy()
    return df[df["dataset"] == dataset] if dataset else df


def literature_per_class() -> pd.DataFrame:
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
