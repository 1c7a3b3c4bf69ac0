"""Repeated, interleaved timing (``timing.repeats``) and the reference workload.

A within-run confidence interval says nothing about the next run: the machine itself drifts.
So each cell is timed N times in interleaved rounds, every repeat keeps its own summary, and the
record gains the spread between repeats (CoV of the repeat medians). A reference workload timed
at the start of every round measures the machine's speed in that round; ``bench check`` divides
by it to tell "the machine is slower today" from "the model is slower".
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .cells import Cell
from .records import robust_fps
from .stats import LatencyStats
from .suite import ModelSpec

# benchbench's fixed reference: FASSD-Net-L2 (the zoo's lightest full model) at 128x256, eager
# fp32, batch 1, on the suite's device -- the same op mix as the cells, a fraction of a second.
BUILTIN = ("fassd_net_l2", 128, 256)


def _centre(result: dict) -> float | None:
    """The per-repeat statistic: median latency (robust), else mean latency (paper)."""
    return result.get("latency_ms_p50") or result.get("latency_ms_mean")


def cell_key(cell_id: str) -> str:
    """A cell id without its device suffix (suites name cells before the device is resolved):
    ``model@HxW/bN/backend-precision``."""
    return cell_id.rsplit("/", 1)[0] if cell_id.count("/") == 3 else cell_id


def reference_cell(ref: str, cells: list[Cell], device: str) -> Cell | None:
    """The cell ``timing.reference`` names: the builtin network on ``device``, or the one of
    ``cells`` with that id (None if it is not among them)."""
    if ref == "builtin":
        name, h, w = BUILTIN
        return Cell(ModelSpec(name), h, w, 1, "eager", "fp32", device, 19)
    return next((c for c in cells if cell_key(c.id) == cell_key(ref)), None)


@dataclass
class ReferenceWorkload:
    workload: str
    cell: Cell | None                    # the suite cell used as reference, or None (builtin)
    builtin: Cell | None
    per_round_ms: list = field(default_factory=list)

    @property
    def cell_id(self) -> str | None:
        return self.cell.id if self.cell is not None else None

    @classmethod
    def for_suite(cls, suite, cells: list[Cell]) -> "ReferenceWorkload | None":
        ref = suite.timing.reference
        if not ref:
            return None
        device = cells[0].device if cells else "cpu"
        cell = reference_cell(ref, cells, device)
        if ref == "builtin":
            name, h, w = BUILTIN
            return cls(f"builtin: {name}@{h}x{w} eager-fp32 b1 on {device}", None, cell)
        if cell is None:
            return None      # the reference cell is already done (resumed run): none this time
        return cls(f"cell: {cell.id}", cell, None)

    def time_round(self, round_no: int, order, suite, run_id: str) -> None:
        if self.builtin is None:
            return
        from .executors.stages import run_cell

        result = run_cell(self.builtin, suite, run_id, only=("build", "time"))
        if result["status"] != "ok":
            raise RuntimeError(f"the reference workload failed: {result.get('error')}")
        self.per_round_ms.append(_centre(result))

    def record_cell_round(self, round_no: int, result: dict) -> None:
        self.per_round_ms.append(_centre(result) if result.get("status") == "ok" else None)

    def as_dict(self) -> dict:
        return {"workload": self.workload, "per_round_ms": list(self.per_round_ms)}


def repeat_summary(result: dict, round_no: int, position: int, busy: dict,
                   keep_samples: int) -> dict:
    return {"round": round_no, "position": position,
            "latency_ms_p50": result.get("latency_ms_p50"),
            "latency_ms_mean": result.get("latency_ms_mean"), "fps": result.get("fps"),
            "iterations": result.get("iterations"), "centre_ms": _centre(result),
            "latency_rel_p50": result.get("latency_rel_p50"),
            "rel_samples": (result.get("latency_rel_samples") or [])[:keep_samples],
            "samples_ms": (result.get("latency_samples_ms") or [])[:keep_samples],
            "busy": busy.get("busy"), "busy_reasons": busy.get("busy_reasons", []),
            "host_cpu_pct_before": busy.get("host_cpu_pct_before"),
            "gpu_util_pct_before": busy.get("gpu_util_pct_before")}


def finalize(record: dict, repeats: list[dict], timing, reference) -> dict:
    """The cell's record with its repeats: per-repeat summaries, the medians' spread, the
    machine's speed in each round, and the busy flag."""
    record = dict(record)
    record["busy"] = any(r["busy"] for r in repeats) if repeats else None
    record["busy_reasons"] = sorted({x for r in repeats for x in r["busy_reasons"]})
    if reference is not None and reference.per_round_ms:
        record["reference"] = reference.as_dict()
        for r in repeats:
            ref = reference.per_round_ms[r["round"]] \
                if r["round"] < len(reference.per_round_ms) else None
            r["reference_ms"] = ref
            r["drift_normalised"] = r["centre_ms"] / ref if ref and r["centre_ms"] else None
    processes = timing.processes
    record["repeats_requested"] = timing.repeats * processes
    if processes > 1:
        record["processes"] = processes
    record["round_order_seed"] = timing.seed
    if record.get("status") != "ok" or timing.repeats * processes == 1:
        if repeats:
            record["repeats"] = [{k: v for k, v in r.items()
                                  if k not in ("samples_ms", "rel_samples")} for r in repeats]
        return record
    centres = [r["centre_ms"] for r in repeats]
    pooled = [s for r in repeats for s in r["samples_ms"]]
    record["repeats"] = repeats
    record["repeat_centres_ms"] = centres
    record["repeat_cov"] = (statistics.stdev(centres) / statistics.mean(centres)
                            if len(centres) > 1 else None)
    record["latency_ms_mean"] = statistics.mean(r["latency_ms_mean"] for r in repeats)
    if record.get("latency_ms_p50") is not None:   # robust: FPS follows the median it reports
        record["latency_ms_p50"] = statistics.median(centres)
        record["fps"] = robust_fps(record["latency_ms_p50"], record.get("batch") or 1)
    else:
        record["fps"] = statistics.median(r["fps"] for r in repeats)
    if pooled:
        s = LatencyStats.from_samples(pooled)
        record.update(latency_ms_p90=s.p90_ms, latency_ms_p99=s.p99_ms, latency_ms_std=s.std_ms,
                      latency_ci95_ms=list(s.ci95_p50_ms), latency_samples_ms=pooled)
    record["iterations"] = sum(r["iterations"] or 0 for r in repeats)
    rel = [r["latency_rel_p50"] for r in repeats if r.get("latency_rel_p50") is not None]
    if rel:
        record["latency_rel_p50"] = statistics.median(rel)
        record["latency_rel_samples"] = [s for r in repeats for s in r["rel_samples"]]
    return record
