"""Compare a run with a baseline: a verdict per cell and an exit code for CI (``bench check``).

Reads records only (like the report). The statistics are chosen for noisy shared machines:

* with repeats (``timing.repeats`` >= 2 in both runs) the unit is one repeat's median latency,
  so run-to-run variation is in the data; with one repeat the within-run samples are used, and
  the result says that it cannot see drift between runs;
* the ratio current / baseline of medians, with a percentile bootstrap CI (seeded);
* a two-sided Mann-Whitney U p-value (scipy), computed only where the sample sizes make
  ``p < alpha`` possible at all (asv's rule), otherwise the verdict is ``inconclusive`` with the
  number of repeats that would settle it;
* with a reference workload in both runs, the reference's own ratio between the runs is the
  machine's drift, shown with the drift-corrected ratio; when it moved beyond the threshold a
  cell that would have regressed (or improved) is ``inconclusive``, "machine changed", not a
  model regression (on a shared VM different workloads slow down by different factors, so the
  drift cannot simply be divided out). A *cell* of the suite as reference -- the previous
  version of the same model, timed in the same rounds -- has the cells' own op mix: then every
  repeat is divided by the reference of its round, which cancels the drift.

Verdicts: regressed (slower beyond the threshold and significant), improved, unchanged (the
whole 95% CI of the ratio within the threshold: earned, not a point estimate), inconclusive
(with what would settle it), new, missing, failed; the paired reference cell itself is
``reference`` (not gated: its ratio is the machine's drift).
"""
from __future__ import annotations

import json
import math
import random
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import UsageError
from .fileio import WriteFailed, write_atomic
from .limits import SLUG, finite_number
from .store import current_records, load_run_info, read_records

BASELINE_SCHEMA = "benchbench-baseline/1"
METRICS = {   # metric -> (per-repeat key, higher is better)
    "latency_ms_p50": ("latency_ms_p50", False),
    "latency_ms_mean": ("latency_ms_mean", False),
    "fps": ("fps", True),
    # timing.reference_interleave: the cell's latency / the reference's, per iteration pair
    "latency_rel_p50": ("latency_rel_p50", False),
}
AUTO = "auto"   # latency_rel_p50 where both runs have it for every compared cell, else p50
MAX_SAMPLES = 2000                  # per cell in a baseline file, when a run has one repeat
ENV_KEYS = ("device_name", "gpu_driver", "torch", "cuda", "cudnn", "tensorrt")
# the work gate: counts that do not depend on the machine (the static analysis, on the meta
# device); MACs and CIO beyond the threshold are a verdict of their own, any change is listed
WORK_KEYS = ("params", "macs", "cio", "peak_activation_mb", "aten_ops")
WORK_VOLUME = ("macs", "cio")
WORK_GATES = ("off", "warn", "fail")


# --- baselines: a small JSON per (device, suite) ----------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "unknown"


def _thin(samples: list, n: int = MAX_SAMPLES) -> list:
    if len(samples) <= n:
        return list(samples)
    step = len(samples) / n
    return [samples[int(i * step)] for i in range(n)]


def _env_of(info: dict, records: list[dict]) -> dict:
    env = info.get("environment") or {}
    versions = env.get("versions") or {}
    names = sorted({r.get("device_name") for r in records if r.get("device_name")})
    return {"device_name": ", ".join(names) or env.get("gpu_name") or env.get("cpu"),
            "gpu_driver": env.get("gpu_driver"), "host": env.get("host"),
            **{k: versions.get(k) for k in ("torch", "cuda", "cudnn", "tensorrt")}}


def _work_of(record: dict) -> dict | None:
    """A record's machine-independent counts, and its exported graph's ONNX op counts."""
    work = {k: record.get(k) for k in WORK_KEYS if record.get(k) is not None}
    onnx_ops = (record.get("backend_info") or {}).get("onnx_ops")
    if onnx_ops:
        work["onnx_ops"] = onnx_ops
    return work or None


def baseline_from_run(run_dir: str | Path) -> dict:
    info = load_run_info(run_dir)
    if "run_id" not in info or "suite" not in info:
        raise UsageError(f"{run_dir}: not a benchbench run")
    records = current_records(read_records(Path(run_dir) / "records.jsonl"))
    cells = {}
    for r in records:
        cell = {k: r.get(k) for k in ("status", "error", "model", "height", "width", "backend",
                                      "precision", "latency_ms_p50", "latency_ms_mean", "fps",
                                      "latency_rel_p50", "repeat_cov", "busy")}
        cell["protocol"] = (r.get("protocol") or {}).get("name")
        cell["threads"] = (r.get("protocol") or {}).get("threads")
        cell["repeats"] = [{k: rep.get(k) for k in ("round", "process", "latency_ms_p50",
                                                     "latency_ms_mean", "fps", "centre_ms",
                                                     "reference_ms", "latency_rel_p50")}
                           for rep in r.get("repeats") or []]
        cell["work"] = _work_of(r)
        cell["samples_ms"] = _thin(r.get("latency_samples_ms") or [])
        cell["rel_samples"] = _thin(r.get("latency_rel_samples") or [])
        cells[r["cell_id"]] = cell
    return {"schema": BASELINE_SCHEMA, "source_run": info["run_id"],
            "source_dir": str(Path(run_dir).resolve()), "suite": info["suite"].get("name"),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "run_created_at": info.get("created_at"), "commit": info.get("suite_commit"),
            "environment": _env_of(info, records), "reference": info.get("reference"),
            "device_dir": device_dir(records, info), "cells": cells}


def device_dir(records: list[dict], info: dict) -> str:
    from .normalize import device_key_for

    r = next((r for r in records if r.get("device_name")), None)
    if r is None:
        return _slug(info.get("device", "unknown"))
    key = device_key_for(r.get("device_name"), r.get("device"), r.get("target"))
    return key if key and key != "cpu" else _slug(r["device_name"])


def default_baseline_path(baseline: dict, root="results/baselines", name=None) -> Path:
    """Under ``root`` whatever the run's suite or device is called (an older run's name that
    is not a file-name slug is slugged)."""
    if name is not None and not SLUG.fullmatch(name):
        raise UsageError(f"--name {name!r}: a baseline name is 1-64 letters, digits, '.', '_' "
                         f"and '-' (no path)")
    return Path(root) / _safe_name(baseline["device_dir"]) / \
        f"{name or _safe_name(baseline['suite'])}.json"


def _safe_name(text) -> str:
    return text if isinstance(text, str) and SLUG.fullmatch(text) else _slug(text)


def save_baseline(run_dir, name: str | None = None, root="results/baselines",
                  keep: int | None = None, commit: str | None = None) -> Path:
    """The run as the latest baseline of its device and suite, and a copy in that baseline's
    history (the last ``keep``, by default history.KEEP, are kept: ``bench history``)."""
    from . import history

    baseline = baseline_from_run(run_dir)
    if commit is not None:
        baseline["commit"] = commit
    path = default_baseline_path(baseline, root, name)
    folder = history.history_dir(path)
    text = json.dumps(baseline, indent=1, default=str)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteFailed(folder, exc) from None
    write_atomic(path, text)
    write_atomic(folder / history.entry_name(baseline), text)
    history.prune(folder, history.KEEP if keep is None else keep)
    return path


def load_baseline(source: str | Path) -> dict:
    path = Path(source)
    if path.is_dir():
        return baseline_from_run(path)
    if not path.is_file():
        raise UsageError(f"--baseline {source}: no such run directory or baseline file")
    try:
        data = json.loads(path.read_bytes().decode())
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a baseline file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not a baseline file ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        raise UsageError(f"{path}: not a benchbench baseline (schema {BASELINE_SCHEMA})")
    _check_baseline_cells(path, data.get("cells"))
    return data


_POSITIVE = ("latency_ms_p50", "latency_ms_mean", "fps", "latency_rel_p50")


def _check_baseline_cells(path: Path, cells) -> None:
    """A baseline's ``cells``: a mapping of cell id to a mapping whose timings, where given,
    are positive finite numbers (a ratio against 0 or NaN means nothing)."""
    if not isinstance(cells, dict):
        raise UsageError(f"{path}: cells: must be a mapping of cell id to cell, got "
                         f"{type(cells).__name__ if cells is not None else 'nothing'}")
    for cell_id, cell in cells.items():
        if not isinstance(cell, dict):
            raise UsageError(f"{path}: cells.{cell_id}: must be a mapping, got "
                             f"{type(cell).__name__}")
        if not all(isinstance(rep, dict) for rep in cell.get("repeats") or []):
            raise UsageError(f"{path}: cells.{cell_id}.repeats: must be a list of mappings")
        for key, value in _timings(cell):
            if value is not None and not (finite_number(value) and value > 0):
                raise UsageError(f"{path}: cells.{cell_id}.{key}: must be a positive finite "
                                 f"number, got {value!r}")


def _timings(cell: dict):
    """(field path, value) of every timing of a baseline cell, per repeat and sample too."""
    for key in _POSITIVE:
        yield key, cell.get(key)
    for i, rep in enumerate(cell.get("repeats") or []):
        for key in _POSITIVE:
            yield f"repeats[{i}].{key}", rep.get(key)
    for i, value in enumerate(cell.get("samples_ms") or []):
        yield f"samples_ms[{i}]", value


# --- statistics ----------------------------------------------------------------------------------

def min_group_size(alpha: float) -> int:
    """Fewest values per group for which a two-sided Mann-Whitney U can give p < alpha."""
    n = 1
    while 2 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


def mann_whitney_p(a: list[float], b: list[float]) -> float | None:
    if not a or not b:
        return None
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def bootstrap_ratio_ci(cur: list[float], base: list[float], n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap CI of median(cur) / median(base)."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(n_boot):
        c = [cur[rng.randrange(len(cur))] for _ in cur]
        b = [base[rng.randrange(len(base))] for _ in base]
        ratios.append(statistics.median(c) / statistics.median(b))
    return _percentile_ci(sorted(ratios))


def _percentile_ci(ratios: list[float]) -> tuple[float, float]:
    """The 95% percentile interval of sorted bootstrap ratios."""
    n = len(ratios)
    return ratios[int(0.025 * n)], ratios[min(n - 1, int(0.975 * n))]


MIN_PROCESSES = 3     # per side, for a hierarchical bootstrap's p-value to mean anything


def process_groups(cell: dict, key: str, values: list[float], unit: str) -> list[list] | None:
    """``values`` (one per repeat) grouped by the process that timed them, when the run had
    ``timing.processes`` >= 2; None otherwise."""
    reps = [r for r in cell.get("repeats") or [] if r.get(key) is not None]
    if not unit.startswith("repeats") or len(reps) != len(values):
        return None
    procs = [r.get("process") for r in reps]
    if None in procs or len(set(procs)) < 2:
        return None
    groups: dict = {}
    for proc, value in zip(procs, values):
        groups.setdefault(proc, []).append(value)
    return list(groups.values())


def hierarchical_bootstrap(cur: list[list], base: list[list], n_boot: int = 2000,
                           seed: int = 0) -> tuple[tuple[float, float], float]:
    """Kalibera & Jones (2013): resample processes with replacement, then the rounds within
    each chosen process; the statistic is median(cur) / median(base) of the pooled resample.
    Returns the 95% percentile CI and a two-sided bootstrap p-value for ratio == 1."""
    rng = random.Random(seed)

    def resample(groups):
        pooled = []
        for _ in groups:
            g = groups[rng.randrange(len(groups))]
            pooled += [g[rng.randrange(len(g))] for _ in g]
        return statistics.median(pooled)

    ratios = sorted(resample(cur) / resample(base) for _ in range(n_boot))
    below = sum(r <= 1 for r in ratios)
    above = sum(r >= 1 for r in ratios)
    p = min(1.0, 2 * (min(below, above) + 1) / (n_boot + 1))
    return _percentile_ci(ratios), p


# --- the comparison ------------------------------------------------------------------------------

@dataclass
class CellVerdict:
    cell_id: str
    verdict: str
    baseline: float | None = None        # median of the metric (ms or FPS)
    current: float | None = None
    ratio: float | None = None           # current / baseline (drift-corrected when possible)
    ci95: tuple | None = None
    p_value: float | None = None
    raw_ratio: float | None = None       # of the raw values (before per-round division)
    unit: str = ""                       # "repeats" or "samples (one repeat: ...)"
    n: tuple = (0, 0)
    note: str = ""
    busy: bool | None = None
    drift_corrected_ratio: float | None = None   # raw ratio / the reference's own ratio
    work: str | None = None              # same / changed / more work / less work (None: uncounted)
    work_changes: list = field(default_factory=list)
    threshold: float | None = None       # the cell's own (its noise band), if not the global one

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckResult:
    verdicts: list
    metric: str
    threshold: float
    alpha: float
    env_differences: list = field(default_factory=list)
    machine: dict = field(default_factory=dict)      # reference drift
    baseline_source: str = ""
    current_run: str = ""
    work_gate: str = "fail"

    @property
    def regressions(self) -> list:
        return [v for v in self.verdicts if v.verdict in ("regressed", "failed")
                or (self.work_gate == "fail" and v.work == "more work")]

    def work_counts(self) -> dict:
        out = {}
        for v in self.verdicts:
            if v.work not in (None, "same"):
                out[v.work] = out.get(v.work, 0) + 1
        return out

    def counts(self) -> dict:
        out = {}
        for v in self.verdicts:
            out[v.verdict] = out.get(v.verdict, 0) + 1
        return out

    def as_dict(self) -> dict:
        return {"metric": self.metric, "threshold": self.threshold, "alpha": self.alpha,
                "baseline": self.baseline_source, "current": self.current_run,
                "env_differences": self.env_differences, "machine": self.machine,
                "counts": self.counts(), "work_gate": self.work_gate,
                "work_counts": self.work_counts(),
                "regressions": [v.cell_id for v in self.regressions],
                "cells": [v.as_dict() for v in self.verdicts]}


def env_differences(base: dict, cur: dict) -> list[str]:
    diffs = [f"{k}: {base.get(k)} -> {cur.get(k)}" for k in ENV_KEYS
             if base.get(k) != cur.get(k)]
    return diffs


def _cell_differences(cell_id: str, base: dict, cur: dict) -> list[str]:
    return [f"{cell_id}: {k} {base.get(k)} -> {cur.get(k)}" for k in ("protocol", "threads")
            if base.get(k) is not None and cur.get(k) is not None and base.get(k) != cur.get(k)]


def _values(cell: dict, key: str, per_round: bool = False) -> tuple[list[float], str]:
    reps = [r for r in cell.get("repeats") or [] if r.get(key) is not None]
    if key == "latency_rel_p50":        # already relative to the interleaved reference
        if len(reps) >= 2:
            return [r[key] for r in reps], "repeats (latency / interleaved reference)"
        rel = cell.get("rel_samples") or []
        if rel:
            return list(rel), ("iteration pairs (latency / interleaved reference; one repeat: "
                               "blind to run-to-run drift the reference does not share)")
        return ([cell[key]] if cell.get(key) is not None else []), "one value"
    if per_round and len(reps) >= 2 and all(r.get("reference_ms") for r in reps):
        return [r[key] / r["reference_ms"] for r in reps], "repeats / reference of the same round"
    if len(reps) >= 2:
        return [r[key] for r in reps], "repeats"
    samples = cell.get("samples_ms") or []
    one = "samples (one repeat: blind to run-to-run drift)"
    if samples and key != "fps":
        return list(samples), one
    if samples:
        return [1000.0 / s for s in samples if s > 0], one
    value = cell.get(key)
    return ([value] if value is not None else []), "one value"


def _reference_drift(base: dict, cur: dict, threshold: float) -> dict:
    b = [x for x in ((base.get("reference") or {}).get("per_round_ms") or []) if x]
    c = [x for x in ((cur.get("reference") or {}).get("per_round_ms") or []) if x]
    if not b or not c:
        return {}
    ratio = statistics.median(c) / statistics.median(b)
    return {"reference_ratio": ratio, "machine_changed": abs(math.log(ratio)) >
            math.log(1 + threshold), "baseline_rounds": len(b), "current_rounds": len(c)}


def compare(baseline: dict, current: dict, metric: str = "latency_ms_p50",
            threshold: float = 0.05, alpha: float = 0.01, work_gate: str = "fail",
            bands: dict | None = None) -> CheckResult:
    """Every cell of ``current`` against ``baseline``. ``bands``: cell id -> (threshold, why),
    a cell's own threshold (its noise band over the history) in place of ``threshold``."""
    if metric == AUTO:
        metric = resolve_auto_metric(baseline, current)
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: one of {AUTO}, {', '.join(METRICS)}")
    key, higher_better = METRICS[metric]
    machine = _reference_drift(baseline, current, threshold)
    # The machine's speed change between the runs, as the reference saw it; applied to the
    # current run's values only when the reference moved beyond the threshold (per-round
    # division would add the reference's own noise to every repeat).
    per_round = (paired_reference(baseline) and paired_reference(current)
                 or key == "latency_rel_p50") and not higher_better
    if machine:
        machine["correction"] = (
            "per iteration: each timed forward / the reference forward just before it"
            if key == "latency_rel_p50" else
            "per round: each repeat / the reference cell of the same round" if per_round else
            "none: the reference only tells whether the machine changed")
    verdicts = []
    bcells, ccells = baseline["cells"], current["cells"]
    reference = paired_reference_cell(baseline, current)
    for cell_id in list(ccells) + [c for c in bcells if c not in ccells]:
        if cell_id == reference:
            verdicts.append(_reference_row(cell_id, bcells.get(cell_id), ccells.get(cell_id)))
            continue
        own, why = (bands or {}).get(cell_id, (threshold, ""))
        v = _verdict(cell_id, bcells.get(cell_id), ccells.get(cell_id), key, higher_better,
                     own, alpha, machine, per_round)
        if why:
            v.threshold, v.note = own, f"{v.note}; threshold {why}"
        if work_gate != "off":
            _work_verdict(v, bcells.get(cell_id), ccells.get(cell_id), threshold)
        verdicts.append(v)
    return CheckResult(verdicts, metric, threshold, alpha, machine=machine, work_gate=work_gate)


def _work_verdict(v: CellVerdict, base: dict | None, cur: dict | None, threshold: float) -> None:
    """Compare the two runs' machine-independent counts exactly: MACs or CIO beyond the
    threshold is ``more work`` / ``less work``; any other difference is ``changed``, listed."""
    a, b = (base or {}).get("work"), (cur or {}).get("work")
    if not a or not b:
        return
    for key in WORK_KEYS + ("onnx_ops",):
        if key.endswith("_ops"):
            if a.get(key) is not None and b.get(key) is not None:
                v.work_changes += _op_changes(a[key], b[key], key.split("_")[0])
        elif a.get(key) != b.get(key) and a.get(key) is not None and b.get(key) is not None:
            v.work_changes.append(f"{key} {_count(a[key])} -> {_count(b[key])} "
                                  f"({b[key] / a[key] - 1:+.1%})" if a[key] else
                                  f"{key} {_count(a[key])} -> {_count(b[key])}")
    beyond = [k for k in WORK_VOLUME if a.get(k) and b.get(k)
              and abs(math.log(b[k] / a[k])) > math.log(1 + threshold)]
    if beyond:
        v.work = "more work" if b[beyond[0]] > a[beyond[0]] else "less work"
    else:
        v.work = "changed" if v.work_changes else "same"


def _op_changes(a: dict, b: dict, domain: str = "aten") -> list[str]:
    """``aten::add x6 -> x7`` for each op whose number of calls per forward (or of nodes in
    the exported ONNX graph, ``onnx::Conv``) changed."""
    return [f"{domain}::{op} x{a.get(op, 0)} -> x{b.get(op, 0)}"
            for op in sorted(set(a) | set(b)) if a.get(op, 0) != b.get(op, 0)]


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"


def paired_reference_cell(baseline: dict, current: dict) -> str | None:
    """The cell id both runs timed as their paired reference (``timing.reference: CELL``)."""
    ids = {str((run.get("reference") or {}).get("workload", "")).partition("cell:")[2].strip()
           for run in (baseline, current)}
    return ids.pop() if len(ids) == 1 and paired_reference(current) else None


def _reference_row(cell_id: str, base: dict | None, cur: dict | None) -> CellVerdict:
    """The paired reference is not gated against itself: its row says what it measured, the
    machine's drift between the runs, which the other cells' ratios cancel."""
    v = CellVerdict(cell_id, "reference", busy=(cur or {}).get("busy"))
    b = _values(base, "latency_ms_p50")[0] if base and base.get("status") == "ok" else []
    c = _values(cur, "latency_ms_p50")[0] if cur and cur.get("status") == "ok" else []
    if b and c:
        v.baseline, v.current = statistics.median(b), statistics.median(c)
        v.raw_ratio = v.current / v.baseline
        v.note = (f"the paired reference: its latency moved x{v.raw_ratio:.3f} between the "
                  f"runs (the machine, not a model change); every other cell is divided by it")
    else:
        v.note = "the paired reference (not measured in both runs)"
    return v


def resolve_auto_metric(baseline: dict, current: dict) -> str:
    """``latency_rel_p50`` when every cell both runs measured has it (timing.
    reference_interleave in both), else ``latency_ms_p50``."""
    shared = [c for c in current["cells"] if c in baseline["cells"]
              and current["cells"][c].get("status") == "ok"
              and baseline["cells"][c].get("status") == "ok"]
    have = all(current["cells"][c].get("latency_rel_p50") is not None and
               baseline["cells"][c].get("latency_rel_p50") is not None for c in shared)
    return "latency_rel_p50" if shared and have else "latency_ms_p50"


def paired_reference(run: dict) -> bool:
    """A suite cell as reference (e.g. the previous version of the model, timed in the same
    rounds) has the cells' own op mix: dividing each repeat by it cancels the machine's drift."""
    return str((run.get("reference") or {}).get("workload", "")).startswith("cell:")


def _verdict(cell_id, base, cur, key, higher_better, threshold, alpha, machine,
             per_round=False):
    if cur is None:
        return CellVerdict(cell_id, "missing", note="in the baseline, not in this run")
    if cur.get("status") == "failed":
        return CellVerdict(cell_id, "failed", note=cur.get("error") or "")
    if base is None:
        return CellVerdict(cell_id, "new", note="not in the baseline")
    if cur.get("status") != "ok" or base.get("status") != "ok":
        return CellVerdict(cell_id, "inconclusive",
                           note=f"status baseline {base.get('status')}, now {cur.get('status')}")
    b, unit = _values(base, key, per_round)
    c, unit_c = _values(cur, key, per_round)
    if "samples" in unit_c:
        unit = unit_c
    if not b or not c:
        return CellVerdict(cell_id, "inconclusive", note=f"no {key} values to compare")
    raw_b, raw_c = _values(base, key)[0], _values(cur, key)[0]
    slower = (lambda r: r < 1) if higher_better else (lambda r: r > 1)
    ratio = statistics.median(c) / statistics.median(b)
    raw_ratio = statistics.median(raw_c) / statistics.median(raw_b)
    groups_b, groups_c = process_groups(base, key, b, unit), process_groups(cur, key, c, unit_c)
    if groups_b and groups_c:        # timing.processes: processes first, then rounds
        ci, p = hierarchical_bootstrap(groups_c, groups_b)
        fewest = min(len(groups_b), len(groups_c))
        unit = (f"repeats in {len(groups_b)} | {len(groups_c)} processes (hierarchical "
                f"bootstrap: processes, then rounds)")
        need = f"timing.processes >= {MIN_PROCESSES}"
        if fewest < MIN_PROCESSES:
            p = None
    else:
        ci = bootstrap_ratio_ci(c, b) if len(b) > 1 and len(c) > 1 else None
        need = min_group_size(alpha)
        p = mann_whitney_p(c, b) if min(len(b), len(c)) >= need else None
        need = f"timing.repeats >= {need}"
    beyond = abs(math.log(ratio)) > math.log(1 + threshold)
    v = CellVerdict(cell_id, "unchanged", statistics.median(raw_b), statistics.median(raw_c),
                    ratio, ci, p, raw_ratio, unit, (len(b), len(c)), busy=cur.get("busy"))
    if machine and not per_round:
        drift = machine["reference_ratio"]
        v.drift_corrected_ratio = raw_ratio * drift if higher_better else raw_ratio / drift
    how = f"{'slower' if slower(ratio) else 'faster'} by {abs(ratio - 1):.1%}"
    if not beyond:
        _within(v, threshold, need)
    elif p is None:
        v.verdict = "inconclusive"
        v.note = (f"{how}, but {min(len(b), len(c))} value(s) per side cannot reach p < "
                  f"{alpha}: run with {need}")
    elif p >= alpha:
        v.verdict = "inconclusive"
        v.note = (f"{how}, p = {p:.3g} >= {alpha}: too noisy to tell; more repeats (now "
                  f"{min(len(b), len(c))}) or a quieter machine would settle it")
    elif machine.get("machine_changed") and not per_round:
        v.verdict = "inconclusive"
        v.note = (f"{how} (p = {p:.2g}), but the machine changed: the reference workload moved "
                  f"x{machine['reference_ratio']:.3f} (drift-corrected ratio "
                  f"{v.drift_corrected_ratio:.3f}); re-run on a steady machine, or make the "
                  f"reference a cell of the same model (timing.reference: CELL)")
    else:
        v.verdict = "regressed" if slower(ratio) else "improved"
        v.note = f"{how} (p = {p:.2g})"
    if cur.get("busy"):
        v.note += "; measured on a busy machine"
    return v


def _within(v: CellVerdict, threshold: float, need: str) -> None:
    """A median inside the threshold is ``unchanged`` only when its whole 95% CI is too: a
    point estimate of +1% with a CI of +-30% says nothing, and is ``inconclusive``."""
    band = (1 / (1 + threshold), 1 + threshold)
    n = min(v.n)
    if v.ci95 is None:
        v.verdict = "inconclusive"
        v.note = (f"within {threshold:.0%} at the median ({v.ratio:.3f}), but {n} value(s) per "
                  f"side give no confidence interval: run with {need}")
        return
    lo, hi = v.ci95
    if band[0] <= lo and hi <= band[1]:
        v.note = f"within {threshold:.0%}: 95% CI [{lo:.3f}, {hi:.3f}]"
        return
    v.verdict = "inconclusive"
    v.note = (f"within {threshold:.0%} at the median ({v.ratio:.3f}), but the 95% CI "
              f"[{lo:.3f}, {hi:.3f}] reaches beyond it; {_settle(v, band)}")


def _settle(v: CellVerdict, band: tuple[float, float]) -> str:
    """What would narrow the CI into the band: the CI's half-width shrinks about as
    1/sqrt(values), so about n x (half-width / room)^2 values per side."""
    centre = math.log(v.ratio)
    half = max(centre - math.log(v.ci95[0]), math.log(v.ci95[1]) - centre)
    room = min(centre - math.log(band[0]), math.log(band[1]) - centre)
    what = "repeats" if v.unit.startswith("repeats") else "values"
    if room <= 0 or half <= 0:
        return f"more {what} or a quieter machine would settle it"
    needed = math.ceil(min(v.n) * (half / room) ** 2)
    return (f"about {needed} {what} per side (now {min(v.n)}) or a quieter machine would "
            f"settle it")


def check(current_run: str | Path, baseline_source: str | Path | None = None,
          metric: str = AUTO, threshold: float = 0.05, alpha: float = 0.01,
          allow_env_change: bool = False, root="results/baselines",
          work_gate: str = "fail") -> CheckResult:
    current = baseline_from_run(current_run)
    if baseline_source is None:
        baseline_source = default_baseline_path(current, root)
        if not Path(baseline_source).is_file():
            raise UsageError(f"no baseline at {baseline_source}: save one with `bench baseline "
                             f"save RUN_DIR`, or give --baseline RUN_DIR|FILE")
    bands = None
    if str(baseline_source) == HISTORY:
        baseline, bands, baseline_source = _from_history(current, root, threshold)
    else:
        baseline = load_baseline(baseline_source)
    diffs = env_differences(baseline.get("environment") or {}, current["environment"])
    for cell_id in set(baseline["cells"]) & set(current["cells"]):
        diffs += _cell_differences(cell_id, baseline["cells"][cell_id], current["cells"][cell_id])
    if diffs and not allow_env_change:
        raise IncompatibleRuns(diffs)
    result = compare(baseline, current, metric, threshold, alpha, work_gate, bands)
    result.env_differences = diffs
    result.baseline_source = str(baseline_source)
    result.current_run = str(current_run)
    return result


HISTORY = "history"      # --baseline history: the latest saved baseline, per-cell noise bands
BAND_FLOOR = 0.01        # no timing here repeats closer than 1% from run to run


def _from_history(current: dict, root, threshold: float) -> tuple[dict, dict, str]:
    """The newest baseline of the current run's device and suite, and each cell's threshold:
    its noise band over the last runs since its last change point (at least BAND_FLOOR), or
    the global threshold where the history is too short for a band."""
    from . import history

    folder = history.history_dir(default_baseline_path(current, root))
    entries = history.load_history(folder)
    if not entries:
        raise UsageError(f"{folder}: no saved baselines in this history")
    bands = {}
    for cell_id in current["cells"]:
        band, runs = history.noise_band(history.cell_series(entries, cell_id))
        if band is None:
            bands[cell_id] = (threshold, f"{threshold:.0%} (global: {runs} run(s) in the "
                                         f"history since its last change, "
                                         f"{history.MIN_BAND_RUNS} needed for a band)")
        else:
            own = max(band, BAND_FLOOR)
            bands[cell_id] = (own, f"{own:.1%}, the cell's noise band over its last {runs} "
                                   f"runs" + (f" (+-{band:.1%}, raised to the floor)"
                                              if band < BAND_FLOOR else ""))
    return entries[-1], bands, f"history: {entries[-1]['_file']} (latest of {len(entries)})"


class IncompatibleRuns(UsageError):
    def __init__(self, diffs: list[str]):
        self.diffs = diffs
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        super().__init__(f"the runs differ in environment or protocol ({shown}); compare like "
                         f"with like, or pass --allow-env-change")
