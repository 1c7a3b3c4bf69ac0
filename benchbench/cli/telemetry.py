"""``bench telemetry tegrastats LOG``: parse a saved telemetry log."""
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


def run(args) -> int:
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
