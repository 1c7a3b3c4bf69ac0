"""Records -> tidy pandas tables. The report reads these only (never the measurement code)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..store import load_run_info, read_records

CELL_COLUMNS = ["model", "height", "width", "batch", "backend", "precision", "device_name",
                "status", "params", "gflops", "macs", "cio", "moc", "peak_activation_mb", "fps",
                "latency_ms_mean", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                "latency_ms_std", "iterations", "protocol_name", "power_w_mean",
                "energy_mj_per_frame", "fps_per_watt", "throttled", "error"]


def load_runs(run_dirs) -> tuple[pd.DataFrame, list[dict]]:
    """All records of the given run directories as one frame, plus each run's run.json."""
    infos, rows = [], []
    for run_dir in run_dirs:
        info = load_run_info(run_dir)
        infos.append(info)
        for rec in read_records(Path(run_dir) / "records.jsonl"):
            rec = dict(rec)
            rec["protocol_name"] = (rec.get("protocol") or {}).get("name")
            rows.append(rec)
    frame = pd.DataFrame(rows)
    for col in CELL_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    if len(frame):
        frame["resolution"] = frame["height"].astype(str) + "x" + frame["width"].astype(str)
    return frame, infos
