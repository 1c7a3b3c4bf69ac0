"""Baselines over commits (``bench baseline save`` keeps the last N per device and suite),
each cell's latency and work along them, the change points, and the per-cell noise band that
``bench check --baseline history`` gates with.

Change points: PELT (Killick, Fearnhead & Eckley 2012, the exact optimum of a penalised cost,
computed by ``ruptures``) on the log of each saved run's median latency, squared-error cost in
units of the noise sigma, penalty 2 ln n per change. Sigma is the larger of the within-run
spread of the median (from the run's repeats) and the run-to-run spread (the robust spread of
successive differences, once there are >= 4 of them), and at least 0.2%. A step smaller than
``min_step`` (the gate's threshold, 5% by default) is not marked: on a shared machine a
significant 1% step is seldom the model's.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError

KEEP = 20                  # baselines kept per device and suite
SIGMA_FLOOR = 0.002        # log units: no run is more precise than 0.2%
BAND_RUNS = 10             # the noise band reads at most this many of the last runs
MIN_BAND_RUNS = 3          # ... and needs at least this many since the last change point
BAND_SIGMAS = 3.0          # half-width of the band, in run-to-run sigmas


def history_dir(latest_path: Path) -> Path:
    """``<root>/<device>/<suite>.json`` keeps its history in ``<root>/<device>/history/<suite>/``."""
    return latest_path.parent / "history" / latest_path.stem


def when(baseline: dict) -> str:
    """When the baseline's run was made (its save time for a baseline of an older version)."""
    return baseline.get("run_created_at") or baseline.get("created_at") or ""


def entry_name(baseline: dict) -> str:
    stamp = "".join(ch for ch in when(baseline)[:19] if ch.isdigit())
    commit = (baseline.get("commit") or "nocommit")[:12]
    return f"{stamp}-{commit}.json"


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest entries of ``folder``; returns the deleted."""
    entries = sorted(folder.glob("*.json"))
    gone = entries[:-keep] if keep else entries
    for path in gone:
        path.unlink()
    return gone


def load_history(folder: str | Path) -> list[dict]:
    """The saved baselines of one device and suite, oldest first."""
    from .regress import load_baseline

    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no baseline history here (save runs with `bench baseline "
                         f"save RUN_DIR`, which keeps the last {KEEP})")
    entries = [dict(load_baseline(p), _file=str(p)) for p in sorted(folder.glob("*.json"))]
    return sorted(entries, key=lambda e: (when(e), e["_file"]))


def find_histories(root: str | Path) -> list[Path]:
    """Every ``<device>/history/<suite>`` folder under a baselines root."""
    root = Path(root)
    return sorted(p for p in root.glob("*/history/*") if p.is_dir() and any(p.glob("*.json")))


# --- one cell along the commits ----------------------------------------------------------------

@dataclass
class Point:
    commit: str | None
    created_at: str
    latency_ms: float | None          # the run's latency_ms_p50 (median of its repeat medians)
    repeats_ms: list = field(default_factory=list)
    macs: int | None = None
    cio: int | None = None
    params: int | None = None
    status: str | None = None


@dataclass
class Step:
    index: int                        # the first point after the change
    commit: str | None
    ratio: float                      # mean level after / before (geometric)

    @property
    def label(self) -> str:
        return f"{self.ratio - 1:+.1%} at {(self.commit or '?')[:10]}"


def cell_series(history: list[dict], cell_id: str) -> list[Point]:
    points = []
    for entry in history:
        cell = entry["cells"].get(cell_id) or {}
        work = cell.get("work") or {}
        reps = [r.get("latency_ms_p50") or r.get("centre_ms") for r in cell.get("repeats") or []]
        points.append(Point(entry.get("commit"), when(entry),
                            cell.get("latency_ms_p50") if cell.get("status") == "ok" else None,
                            [r for r in reps if r], work.get("macs"), work.get("cio"),
                            work.get("params"), cell.get("status")))
    return points


def noise_sigma(points: list[Point]) -> float:
    """The noise of one run's median, in log units (see the module's docstring)."""
    within = []
    for p in points:
        if len(p.repeats_ms) >= 2:
            logs = [math.log(r) for r in p.repeats_ms]
            within.append(statistics.stdev(logs) * 1.2533 / math.sqrt(len(logs)))
    sigma = statistics.median(within) if within else 0.0
    levels = [math.log(p.latency_ms) for p in points if p.latency_ms]
    diffs = [b - a for a, b in zip(levels, levels[1:])]
    if len(diffs) >= 4:
        centre = statistics.median(diffs)
        mad = statistics.median(abs(d - centre) for d in diffs)
        sigma = max(sigma, 1.4826 * mad / math.sqrt(2))
    return max(sigma, SIGMA_FLOOR)


def change_points(points: list[Point], min_step: float = 0.05) -> list[Step]:
    """The steps in a cell's latency along the commits (PELT, see the module's docstring)."""
    import numpy as np
    import ruptures

    index = [i for i, p in enumerate(points) if p.latency_ms]
    if len(index) < 2:
        return []
    levels = np.array([math.log(points[i].latency_ms) for i in index])
    sigma = noise_sigma(points)
    ends = ruptures.Pelt(model="l2", min_size=1, jump=1).fit(
        (levels / sigma).reshape(-1, 1)).predict(pen=2 * math.log(len(levels)))
    steps, bounds = [], [0] + ends
    for k in range(1, len(bounds) - 1):
        before = levels[bounds[k - 1]:bounds[k]].mean()
        after = levels[bounds[k]:bounds[k + 1]].mean()
        ratio = math.exp(after - before)
        if abs(math.log(ratio)) >= math.log(1 + min_step):
            at = index[bounds[k]]
            steps.append(Step(at, points[at].commit, ratio))
    return steps


def noise_band(points: list[Point]) -> tuple[float | None, int]:
    """The relative half-width of a cell's run-to-run noise over its last runs since its last
    change point (BAND_SIGMAS robust sigmas of their log medians), and how many runs it read;
    None where fewer than MIN_BAND_RUNS runs are there to read."""
    steps = change_points(points, min_step=0.0)
    since = steps[-1].index if steps else 0
    recent = [p.latency_ms for p in points[since:] if p.latency_ms][-BAND_RUNS:]
    if len(recent) < MIN_BAND_RUNS:
        return None, len(recent)
    logs = [math.log(v) for v in recent]
    centre = statistics.median(logs)
    sigma = max(1.4826 * statistics.median(abs(x - centre) for x in logs),
                statistics.stdev(logs) if len(logs) > 2 else 0.0, SIGMA_FLOOR)
    return math.exp(BAND_SIGMAS * sigma) - 1, len(recent)


def cells_of(history: list[dict]) -> list[str]:
    seen: dict = {}
    for entry in history:
        for cell_id in entry["cells"]:
            seen.setdefault(cell_id, None)
    return list(seen)


def history_json(history: list[dict], min_step: float) -> dict:
    out = {"runs": [{"commit": e.get("commit"), "created_at": when(e),
                     "source_run": e.get("source_run"), "file": e["_file"]} for e in history],
           "cells": {}}
    for cell_id in cells_of(history):
        points = cell_series(history, cell_id)
        band, n = noise_band(points)
        out["cells"][cell_id] = {
            "latency_ms_p50": [p.latency_ms for p in points],
            "macs": [p.macs for p in points], "cio": [p.cio for p in points],
            "noise_sigma_log": noise_sigma(points),
            "steps": [{"index": s.index, "commit": s.commit, "ratio": s.ratio}
                      for s in change_points(points, min_step)],
            "noise_band": band, "noise_band_runs": n}
    return out


def dump(history: list[dict], min_step: float) -> str:
    return json.dumps(history_json(history, min_step), indent=1, default=str)
