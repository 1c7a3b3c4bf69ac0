"""``bench telemetry tegrastats LOG`` / ``bench telemetry trtexec LOG``: parse saved logs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import UsageError
from ._common import EXIT_OK


def add_parser(sub) -> None:
    tel = sub.add_parser("telemetry", help="parse saved telemetry logs")
    tel_sub = tel.add_subparsers(dest="source", required=True)
    teg = tel_sub.add_parser("tegrastats", help="parse a saved tegrastats log")
    teg.add_argument("logfile")
    teg.add_argument("--interval-ms", type=float, default=1000.0,
                     help="the --interval the log was taken with (default 1000)")
    teg.add_argument("--json", action="store_true")
    trt = tel_sub.add_parser("trtexec", help="parse a saved trtexec output (TensorRT 5.x-11.x)")
    trt.add_argument("logfile")
    trt.add_argument("--times", metavar="FILE", help="the run's --exportTimes JSON")
    trt.add_argument("--json", action="store_true")


def run(args) -> int:
    if args.source == "trtexec":
        return _trtexec(args)
    from ..measure.power.tegrastats import parse_log, summarize

    try:
        text = Path(args.logfile).read_text(errors="replace")
    except OSError as exc:
        raise UsageError(f"{args.logfile}: cannot read ({exc.strerror})") from None
    if not args.interval_ms > 0:
        raise UsageError(f"--interval-ms {args.interval_ms:g}: must be a positive number of "
                         f"milliseconds")
    parsed = parse_log(text)
    if not parsed.samples:
        why = f"; first error: line {parsed.errors[0][0]}: {parsed.errors[0][1]}" \
            if parsed.errors else ""
        raise UsageError(f"{args.logfile}: no tegrastats line in the file{why}")
    summary = summarize(parsed.samples, args.interval_ms)
    summary["unreadable_lines"] = [{"line": n, "error": e} for n, e in parsed.errors]
    for sample in parsed.samples:
        print(json.dumps(sample.as_dict()) if args.json else _tegra_line(sample))
    for n, err in parsed.errors:
        print(f"bench: {args.logfile}:{n}: unreadable tegrastats line ({err})", file=sys.stderr)
    print(json.dumps({"summary": summary}) if args.json else _tegra_summary(summary))
    return EXIT_OK


def _tegra_line(s) -> str:
    power = f"{s.module_power_mw:.0f} mW ({s.module_power_rule})" if s.module_power_mw is not None \
        else "no power rails"
    gpu = f"GPU {s.gpu_util_pct}% @ {s.gpu_freq_mhz} MHz" if s.gpu_util_pct is not None or \
        s.gpu_freq_mhz else "GPU n/a"
    return f"{s.timestamp or '-'}  RAM {s.ram_used_mb}/{s.ram_total_mb} MB  {gpu}  module {power}"


def _tegra_summary(summary: dict) -> str:
    if summary["mean_power_mw"] is None:
        return f"{summary['samples']} samples, no module power in the log"
    return (f"{summary['samples']} samples; mean module power {summary['mean_power_mw']:.0f} mW; "
            f"energy {summary['energy_j']:.2f} J over {summary['duration_s']:.1f} s "
            f"(samples {summary['interval_ms']:g} ms apart)")


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror})") from None


def _trtexec(args) -> int:
    from ..trtexec import parse_export_times, parse_log

    text = _read(args.logfile, "the trtexec log")
    out = parse_log(text)
    if out["format"] is None:
        raise UsageError(f"{args.logfile}: no trtexec performance figures in the file "
                         f"(expected e.g. '=== Performance summary ===' or 'Average on N runs')")
    if args.times:
        times = parse_export_times(_read(args.times, "the --exportTimes file"))
        if not times["records"]:
            raise UsageError(f"{args.times}: no --exportTimes records in the file")
        out["export_times"] = {k: v for k, v in times.items() if k != "samples_ms"}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(_trtexec_text(out))
    for problem in out["problems"]:
        print(f"bench: {args.logfile}: {problem}", file=sys.stderr)
    return EXIT_OK


def _trtexec_text(out: dict) -> str:
    lines = [f"format: {out['format']}" + ("" if out["complete"] else " (partial)")]
    if out.get("tensorrt_version") or out.get("device"):
        lines.append(f"TensorRT {out.get('tensorrt_version') or '?'} on "
                     f"{out.get('device') or 'an unnamed device'}")
    if out.get("throughput_qps") is not None:
        lines.append(f"throughput: {out['throughput_qps']:g} qps")
    for part, label in (("latency", "latency"), ("gpu_compute", "GPU compute"), ("h2d", "H2D"),
                        ("d2h", "D2H"), ("enqueue", "enqueue"), ("end_to_end", "end to end")):
        stats = [f"{k} {out[f'{part}_ms_{k}']:g}" for k in ("mean", "median", "p90", "p95",
                                                              "p99", "min", "max")
                 if f"{part}_ms_{k}" in out]
        if stats:
            lines.append(f"{label} ms: " + ", ".join(stats))
    times = out.get("export_times")
    if times:
        lines.append(f"--exportTimes: {times['records']} inferences, latency median "
                     f"{times.get('latency_ms_median', float('nan')):g} ms, p99 "
                     f"{times.get('latency_ms_p99', float('nan')):g} ms")
    return "\n".join(lines)
