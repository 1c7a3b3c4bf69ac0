"""``bench``: the only place that prints or exits. Library errors become one stderr line and a
named exit code; ``--debug`` shows the traceback instead."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import BenchError, UsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CELLS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--size {text!r}: expected HxW with positive integers, e.g. 1024x2048")
    return int(parts[0]), int(parts[1])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark real-time semantic "
                                "segmentation networks: speed, cost and accuracy.")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one line")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite (or resume a run)")
    run.add_argument("suite", nargs="?", help="suite YAML file")
    run.add_argument("--out", default="results", help="results directory (default: results/)")
    run.add_argument("--resume", metavar="RUN_DIR", help="run only the cells RUN_DIR is missing")
    run.add_argument("--dry-run", action="store_true", help="list the cells and stop")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--report", metavar="FILE.html", help="render the run's HTML report when done")
    run.add_argument("--json", action="store_true")

    rep = sub.add_parser("report", help="render runs to one HTML file")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("-o", "--output", help="HTML file (default: reports/<run>.html)")

    mods = sub.add_parser("models", help="list registered models")
    mods.add_argument("pattern", nargs="?", default="*")
    mods.add_argument("--json", action="store_true")

    ana = sub.add_parser("analyze", help="params, GFLOPs, MACs, CIO, MoC of a model")
    ana.add_argument("model")
    ana.add_argument("--size", action="append", required=True, metavar="HxW")
    ana.add_argument("--batch", type=int, default=1)
    ana.add_argument("--num-classes", type=int, default=19)
    ana.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                     help="model argument, e.g. --arg alpha=4")
    ana.add_argument("--json", action="store_true")
    return p


def _emit(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_run(args) -> int:
    from .cells import expand, resolve_device
    from .runner import run_suite
    from .suite import load_suite

    if bool(args.suite) == bool(args.resume):
        raise UsageError("give a suite file or --resume RUN_DIR (exactly one)")
    if args.resume:
        summary = run_suite(resume=args.resume, progress=not args.no_progress)
    else:
        suite = load_suite(args.suite)
        if args.dry_run:
            cells = expand(suite, resolve_device(suite.device))
            if args.json:
                _emit([c.id for c in cells])
            else:
                for i, c in enumerate(cells, 1):
                    print(f"{i:4d}  {c.id}")
                print(f"{len(cells)} cells")
            return EXIT_OK
        summary = run_suite(suite, out_dir=args.out, progress=not args.no_progress)
    result = {"run_dir": str(summary.run_dir), "cells": summary.total, "ran": summary.ran,
              "ok": summary.ok, "failed": summary.failed, "skipped": summary.skipped,
              "already_done": summary.already_done}
    if args.report:
        from .report.html import render
        result["report"] = str(render([summary.run_dir], args.report))
    if args.json:
        _emit(result)
    else:
        print(f"{summary.run_dir}: {summary.ok} ok, {summary.failed} failed, "
              f"{summary.skipped} skipped ({summary.already_done} already done)")
        if args.report:
            print(f"report: {result['report']}")
    return EXIT_CELLS_FAILED if summary.failed else EXIT_OK


def cmd_report(args) -> int:
    from .report.html import render

    for run in args.runs:
        if not (Path(run) / "run.json").is_file():
            raise UsageError(f"{run}: not a run directory (no run.json)")
    output = args.output or f"reports/{Path(args.runs[0]).name}.html"
    print(render(args.runs, output))
    return EXIT_OK


def cmd_models(args) -> int:
    from .zoo import list_models, model_card

    names = list_models(args.pattern)
    if args.json:
        _emit([model_card(n).as_dict() for n in names])
        return EXIT_OK
    for n in names:
        card = model_card(n)
        exact = f"{card.official_params:,}" if card.official_params else "-"
        print(f"{n:22s} {card.family:8s} official params {exact:>10s}  {card.paper}")
    return EXIT_OK


def _parse_model_args(pairs) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--arg {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_analyze(args) -> int:
    from .analysis import analyze
    from .zoo import model_card

    model_card(args.model)  # unknown name -> one clear line
    kwargs = dict(_parse_model_args(args.arg), num_classes=args.num_classes)
    results = [analyze(args.model, parse_size(s), args.batch, **kwargs) for s in args.size]
    if args.json:
        _emit([r.as_dict() for r in results])
        return EXIT_OK
    for r in results:
        h, w = r.input_hw
        print(f"{r.model} @ {h}x{w} (batch {r.batch})")
        print(f"  params              {r.params:,}")
        print(f"  GFLOPs (papers')    {r.gflops:.1f}  ({r.gflops:.3f}; MACs by 2020 ptflops hooks)")
        print(f"  MACs (fvcore)       {r.macs:,}  ({r.macs / 1e9:.3f} G)")
        print(f"  conv MACs           {r.conv_macs:,}")
        print(f"  CIO                 {r.cio:,}  (FASSD eq. 2, elements)")
        print(f"  MoC                 {r.moc:.2f}  (conv MACs / CIO, FASSD eq. 1)")
        print(f"  peak activations    {r.peak_activation_mb:,.1f} MiB (fp32)")
        unsupported = ", ".join(f"{k} x{v}" for k, v in sorted(r.unsupported_ops.items()))
        print(f"  not counted by fvcore: {unsupported or 'none'}")
    return EXIT_OK


COMMANDS = {"run": cmd_run, "report": cmd_report, "models": cmd_models, "analyze": cmd_analyze}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        if args.debug:
            raise
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
