"""Records -> one flat pandas table (``bench export``): one row per current record (superseded
records left out), nested fields flattened with dotted names, raw samples and tracebacks
dropped, and the run's environment alongside."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .records import TABLE_FIRST as FIRST
from .store import current_records, load_run_info, read_records

DROPPED = ("latency_samples_ms", "traceback", "macs_by_op", "aten_ops", "confusion")


def records_table(run_dirs) -> pd.DataFrame:
    rows = []
    for run_dir in run_dirs:
        info = load_run_info(run_dir)
        envd = info.get("environment") or {}
        for rec in current_records(read_records(Path(run_dir) / "records.jsonl")):
            rec = {k: v for k, v in rec.items() if k not in DROPPED}
            rec["env"] = {"host": envd.get("host"), "cpu": envd.get("cpu"),
                          "gpu_name": envd.get("gpu_name"), "gpu_driver": envd.get("gpu_driver"),
                          "git_commit": envd.get("git_commit"), **(envd.get("versions") or {})}
            rows.append(rec)
    if not rows:
        return pd.DataFrame(columns=list(FIRST))
    flat = pd.json_normalize(rows, sep=".")
    flat = flat[[c for c in flat.columns if not c.startswith("accuracy_protocol.preprocess")]]
    for col in flat.columns:          # lists (CI bounds, ...) as JSON text: CSV- and parquet-safe
        if flat[col].map(lambda v: isinstance(v, (list, dict))).any():
            flat[col] = flat[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict))
                                      else v)
    first = [c for c in FIRST if c in flat.columns]
    return flat[first + [c for c in flat.columns if c not in first]]
