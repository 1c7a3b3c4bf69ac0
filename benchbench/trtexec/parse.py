"""Parse trtexec's console output and ``--exportTimes`` files.

Console formats (shared/data/trtexec/FLAGS.md, "Console report formats by version"):

* 5.1 / 6.0: ``Average over N runs is X ms (host walltime is Y ms, 99% percentile time is Z).``
* 7.0 - 7.2: a block per metric -- ``Host Latency`` with ``min: X ms (end to end Y ms)`` ...
  ``percentile: X ms at 99% (...)``, ``throughput: X qps`` (0 for explicit-batch ONNX: a known
  bug, reported as unknown), ``walltime``; ``Enqueue Time`` (no mean); ``GPU Compute``.
* 8.0+: ``=== Performance summary ===`` with one line per metric: ``Throughput: X qps``,
  ``Latency: min = .. ms, max = .., mean = .., median = .., percentile(99%) = .. ms`` (three
  percentiles from 8.5), ``End-to-End Host Latency`` (8.0 / 8.2 only), ``Enqueue Time``,
  ``H2D Latency``, ``GPU Compute Time``, ``D2H Latency``, ``Total Host Walltime``, ``Total GPU
  Compute Time``.
* without any summary: the ``Average on N runs - GPU latency: X ms - Host latency: Y ms`` trace
  lines, averaged (and said so).

The parser searches for these patterns anywhere in a line, so pasted logs whose line prefixes
were stripped, whose lines were joined or re-indented still parse; a value it cannot read
(a line cut at the terminal width) is left out and named in ``problems`` -- a partial result,
never an exception.
"""
from __future__ import annotations

import json
import re
import statistics

NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
# "[05/21/2021-16:35:50] [I] ", "[INFO] [...] [I] ", or a paste that lost the first "["
_PREFIX = re.compile(r"^\s*(?:_?\[?\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\]\s*)?(?:\[[^\]]*\]\s*)*")
_METRICS = {"Latency": "latency", "End-to-End Host Latency": "end_to_end",
            "Enqueue Time": "enqueue", "H2D Latency": "h2d", "GPU Compute Time": "gpu_compute",
            "D2H Latency": "d2h"}
_METRIC_LINE = re.compile(r"(?<![\w-])(?<!Total )(End-to-End Host Latency|Enqueue Time|"
                          r"H2D Latency|GPU Compute Time|D2H Latency|Latency)\s*:")
_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=?\s*" + NUM
                   + r"\s*ms\b")
_STAT_NAME = re.compile(r"\b(min|max|mean|median|percentile\(\d+(?:\.\d+)?%\))")
_THROUGHPUT = re.compile(r"\b[Tt]hroughput:\s*" + NUM + r"\s*qps")
_WALLTIME = re.compile(r"Total Host Walltime:\s*" + NUM + r"\s*s\b")
_GPU_TOTAL = re.compile(r"Total GPU Compute Time:\s*" + NUM + r"\s*s\b")
_COV = re.compile(r"coefficient of variance\s*=\s*" + NUM + r"\s*%")
_BANNER = re.compile(r"&&&& (RUNNING|PASSED|FAILED) TensorRT\.trtexec(?: \[TensorRT v(\d+)\])?"
                     r"(?: \[b\d+\])? # (.*)$")
_VERSION_LINE = re.compile(r"TensorRT version:\s*([\d.]+)")
_DEVICE = re.compile(r"Selected Device:\s*(.+?)\s*$")
_OLD_AVERAGE = re.compile(r"Average over (\d+) runs is " + NUM + r" ms \(host walltime is "
                          + NUM + r" ms, (\d+(?:\.\d+)?)% percentile time is " + NUM + r"\)")
_TRACE = re.compile(r"Average on (\d+) runs - GPU latency: " + NUM + r" ms - Host latency: "
                    + NUM + r" ms(?: \((?:end to end " + NUM + r" ms)?(?:, )?(?:enqueue " + NUM
                    + r" ms)?\))?")
_V7_STAT = re.compile(r"^(min|max|mean|median):\s*" + NUM + r" ms(?: \(end to end " + NUM
                      + r" ms\))?")
_V7_PCT = re.compile(r"^percentile:\s*" + NUM + r" ms at (\d+(?:\.\d+)?)%(?: \(end to end " + NUM
                     + r" ms at \d+(?:\.\d+)?%\))?")
_V7_SECTIONS = {"host latency": "latency", "enqueue time": "enqueue", "gpu compute": "gpu_compute"}


def version_from_banner(number: str) -> str:
    """``8003`` -> ``8.0.3``, ``8401`` -> ``8.4.1``, ``101401`` -> ``10.14.1`` (trtexec prints
    NV_TENSORRT_VERSION: MAJOR*1000+MINOR*100+PATCH before 10, MAJOR*10000+MINOR*100+PATCH
    from 10)."""
    n = int(number)
    if n >= 100000:
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
    return f"{n // 1000}.{n // 100 % 10}.{n % 100}"


def _stat_key(name: str, pct: str | None) -> str:
    if pct is None:
        return name
    return f"p{pct.rstrip('0').rstrip('.') if '.' in pct else pct}"


def parse_log(text: str) -> dict:
    """Everything trtexec's console output says about a timing run, as flat fields:
    ``latency_ms_{min,max,mean,median,p50,p90,p95,p99}``, ``throughput_qps``,
    ``{h2d,gpu_compute,d2h,enqueue,end_to_end}_ms_*``, totals, version, device, command; plus
    ``format``, ``complete`` and ``problems`` (what could not be read)."""
    out: dict = {"format": None, "problems": []}
    lines = [_PREFIX.sub("", raw).rstrip() for raw in text.splitlines()]
    _header(text, out)
    if any(_METRIC_LINE.search(line) for line in lines):
        _summary_v8(lines, out)
    elif any(line.strip().lower() in _V7_SECTIONS for line in lines):
        _blocks_v7(lines, out)
    elif any(_OLD_AVERAGE.search(line) for line in lines):
        _one_line_v5(lines, out)
    elif any(_TRACE.search(line) for line in lines):
        _trace_averages(lines, out)
    else:
        out["problems"].append("no trtexec performance figures found")
    _finish(out)
    return out


def _header(text: str, out: dict) -> None:
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw).rstrip()
        banner = _BANNER.search(raw)
        if banner:
            out["status"] = banner.group(1)
            if banner.group(2):
                out.setdefault("tensorrt_version", version_from_banner(banner.group(2)))
            out.setdefault("command", banner.group(3).strip())
        version = _VERSION_LINE.search(line)
        if version:
            value = version.group(1)
            out["tensorrt_version"] = version_from_banner(value) if "." not in value else value
        device = _DEVICE.search(line)
        if device:
            out.setdefault("device", device.group(1))
        cov = _COV.search(line)
        if cov:
            out["gpu_compute_cov_pct"] = float(cov.group(1))
        if "Throughput may be bound by Enqueue Time" in line:
            out["enqueue_bound"] = True


def _summary_v8(lines: list[str], out: dict) -> None:
    out["format"] = "8.x+ performance summary"
    for line in lines:
        matches = list(_METRIC_LINE.finditer(line))
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
            _read_stats(_METRICS[match.group(1)], match.group(1), line[match.end():end], out)
        for pattern, key in ((_THROUGHPUT, "throughput_qps"), (_WALLTIME, "total_host_walltime_s"),
                             (_GPU_TOTAL, "total_gpu_compute_s")):
            found = pattern.search(line)
            if found:
                out[key] = float(found.group(1))


def _read_stats(prefix: str, label: str, segment: str, out: dict) -> None:
    segment = re.split(r"Total Host Walltime|Total GPU Compute Time", segment)[0]
    read = set()
    for stat in _STAT.finditer(segment):
        key = _stat_key(stat.group(1), stat.group(2))
        out[f"{prefix}_ms_{key}"] = float(stat.group(3))
        read.add(stat.group(1))
        if stat.group(2):
            out.setdefault("percentiles", [])
            if float(stat.group(2)) not in out["percentiles"]:
                out["percentiles"].append(float(stat.group(2)))
    for name in _STAT_NAME.findall(segment):
        if name not in read:
            out["problems"].append(f"{label}: {name} unreadable")


def _blocks_v7(lines: list[str], out: dict) -> None:
    out["format"] = "7.x metric blocks"
    section = None
    for line in lines:
        stripped = line.strip()
        if stripped.lower() in _V7_SECTIONS:
            section = _V7_SECTIONS[stripped.lower()]
            continue
        stat, pct = _V7_STAT.match(stripped), _V7_PCT.match(stripped)
        if section and stat:
            out[f"{section}_ms_{stat.group(1)}"] = float(stat.group(2))
            if stat.group(3) and section == "latency":
                out[f"end_to_end_ms_{stat.group(1)}"] = float(stat.group(3))
        elif section and pct:
            key = _stat_key("percentile", pct.group(2))
            out[f"{section}_ms_{key}"] = float(pct.group(1))
            if pct.group(3) and section == "latency":
                out[f"end_to_end_ms_{key}"] = float(pct.group(3))
            out.setdefault("percentiles", [float(pct.group(2))])
        elif stripped.startswith("throughput:"):
            value = float(re.search(NUM, stripped).group(1))
            if value == 0:      # 7.x bug with explicit-batch ONNX engines (FLAGS.md)
                out["problems"].append("throughput printed as 0 qps (TensorRT 7.x bug with "
                                       "explicit-batch engines): unknown")
            else:
                out["throughput_qps"] = value
        elif stripped.startswith("walltime:"):
            out["total_host_walltime_s"] = float(re.search(NUM, stripped).group(1))
        elif stripped.startswith("total compute time:"):
            out["total_gpu_compute_s"] = float(re.search(NUM, stripped).group(1))
    if "gpu_compute_ms_mean" not in out and any(s == "enqueue time" for s in
                                                (x.strip().lower() for x in lines)):
        if not any(x.strip().lower() == "gpu compute" for x in lines):
            out["problems"].append("the log ends before the GPU Compute block")


def _one_line_v5(lines: list[str], out: dict) -> None:
    out["format"] = "5.x/6.x one-line averages"
    gpu, host, pct = [], [], []
    for line in lines:
        found = _OLD_AVERAGE.search(line)
        if found:
            gpu.append(float(found.group(2)))
            host.append(float(found.group(3)))
            pct.append((float(found.group(4)), float(found.group(5))))
    out["gpu_compute_ms_mean"] = statistics.fmean(gpu)
    out["latency_ms_mean"] = statistics.fmean(host)
    level = pct[0][0]
    out[f"gpu_compute_ms_{_stat_key('percentile', f'{level:g}')}"] = max(p for _, p in pct)
    out["averaged_lines"] = len(gpu)


def _trace_averages(lines: list[str], out: dict) -> None:
    out["format"] = "trace averages only (no summary block): means of the per-N-runs averages"
    gpu, host, e2e, enq, broken = [], [], [], [], 0
    for line in lines:
        found = _TRACE.search(line)
        if found:
            gpu.append(float(found.group(2)))
            host.append(float(found.group(3)))
            if found.group(4):
                e2e.append(float(found.group(4)))
            if found.group(5):
                enq.append(float(found.group(5)))
        elif "Average on" in line:
            broken += 1
    for key, values in (("gpu_compute_ms_mean", gpu), ("latency_ms_mean", host),
                        ("end_to_end_ms_mean", e2e), ("enqueue_ms_mean", enq)):
        if values:
            out[key] = statistics.fmean(values)
    out["averaged_lines"] = len(gpu)
    if broken:
        out["problems"].append(f"{broken} trace line(s) cut short")


def _finish(out: dict) -> None:
    if "latency_ms_median" in out:
        out["latency_ms_p50"] = out["latency_ms_median"]
    latency = out.get("latency_ms_median") or out.get("latency_ms_mean")
    if "throughput_qps" not in out and latency:
        out["fps_from_latency"] = 1000.0 / latency
    if any(out.get(f"{k}_ms_max") == 0 for k in ("h2d", "d2h")):
        out["data_transfers"] = False    # --noDataTransfers, or TensorRT 11's default
    if out["format"] == "8.x+ performance summary":
        missing = [label for label, key in _V8_EXPECTED if key not in out]
        if missing:
            out["problems"].append(f"not in the log: {', '.join(missing)}")
    full = ("8.x+ performance summary", "7.x metric blocks")
    out["complete"] = out["format"] in full and not out["problems"] and all(
        k in out for k in ("latency_ms_mean", "gpu_compute_ms_mean"))


_V8_EXPECTED = (("Throughput", "throughput_qps"), ("Latency", "latency_ms_median"),
                ("Enqueue Time", "enqueue_ms_median"), ("H2D Latency", "h2d_ms_median"),
                ("GPU Compute Time", "gpu_compute_ms_median"), ("D2H Latency", "d2h_ms_median"),
                ("Total Host Walltime", "total_host_walltime_s"),
                ("Total GPU Compute Time", "total_gpu_compute_s"))


# -- --exportTimes --------------------------------------------------------------------------

_RECORD = re.compile(r"\{[^{}]*\}")
_TIME_KEYS = {"latency": ("latencyMs",), "compute": ("computeMs",), "h2d": ("h2dMs", "inMs"),
              "d2h": ("d2hMs", "outMs"), "end_to_end": ("endToEndMs",)}


def parse_export_times(text: str) -> dict:
    """Per-inference times from a ``--exportTimes`` file (all key sets: 7.0 ``inMs``/``outMs``,
    8.0+ ``h2dMs``/``d2hMs``, ``endToEndMs`` until 8.2) -> samples and summaries. A file cut
    short (a crashed run, a pasted prefix) gives the records it has, and says so."""
    problems = []
    try:
        records = json.loads(text)
        if not isinstance(records, list):
            raise ValueError("not a list")
    except ValueError:
        records = []
        for chunk in _RECORD.findall(text):
            try:
                records.append(json.loads(chunk))
            except ValueError:
                problems.append("a damaged record was skipped")
        if records:
            problems.append("not a complete JSON array (cut short?): read record by record")
    if not records:
        return {"records": 0, "problems": problems or ["no timing records found"],
                "samples_ms": {}}
    keys = sorted(records[0])
    samples = {}
    for name, candidates in _TIME_KEYS.items():
        key = next((c for c in candidates if c in records[0]), None)
        if key:
            samples[name] = [float(r[key]) for r in records if key in r]
    out = {"records": len(records), "key_set": keys, "samples_ms": samples, "problems": problems}
    if "inMs" in keys and "startEnqMs" in keys:
        out["note"] = ("TensorRT 7.1/7.2 key set: startEnqMs/endEnqMs and startInMs/endInMs are "
                       "swapped in that version's writer; durations are unaffected")
    for name, values in samples.items():
        out.update(_summary(name, values))
    return out


def _summary(name: str, values: list[float]) -> dict:
    ordered = sorted(values)

    def pct(q):
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]

    return {f"{name}_ms_mean": statistics.fmean(values), f"{name}_ms_median": statistics.median(values),
            f"{name}_ms_min": ordered[0], f"{name}_ms_max": ordered[-1],
            f"{name}_ms_p90": pct(90), f"{name}_ms_p99": pct(99)}
