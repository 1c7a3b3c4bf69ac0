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
    rep.add_argument("--json", action="store_true")

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
    ev = sub.add_parser("eval", help="mIoU of a model on Cityscapes or CamVid")
    ev.add_argument("model")
    ev.add_argument("--data", metavar="ROOT",
                    help="dataset root (Cityscapes: default $CITYSCAPES_DATASET)")
    ev.add_argument("--dataset", choices=["cityscapes", "camvid"], default="cityscapes")
    ev.add_argument("--split", default="val")
    ev.add_argument("--size", metavar="HxW", help="network input size (default: the images')")
    ev.add_argument("--weights", metavar="PATH", help="checkpoint (official layout or state dict)")
    ev.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE")
    ev.add_argument("--limit", type=int, metavar="N", help="first N images only")
    ev.add_argument("--eval-at", choices=["full", "input"], default="full",
                    help="compare at the label's full size (default) or at the input size")
    ev.add_argument("--scales", metavar="S,S,...", help="multi-scale evaluation, e.g. 0.75,1,1.25")
    ev.add_argument("--flip", action="store_true", help="add horizontally flipped inputs")
    ev.add_argument("--backend", default="eager")
    ev.add_argument("--precision", default="fp32")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument("--save-predictions", metavar="DIR",
                    help="one PNG per image: Cityscapes label ids / CamVid class indices")
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--json", action="store_true")

    tel = sub.add_parser("telemetry", help="parse saved telemetry logs")
    tel_sub = tel.add_subparsers(dest="source", required=True)
    teg = tel_sub.add_parser("tegrastats", help="parse a saved tegrastats log")
    teg.add_argument("logfile")
    teg.add_argument("--interval-ms", type=float, default=1000.0,
                     help="the --interval the log was taken with (default 1000)")
    teg.add_argument("--json", action="store_true")

    lit = sub.add_parser("literature", help="the seed papers' published results")
    lit.add_argument("--dataset", choices=["cityscapes", "camvid"])
    lit.add_argument("--json", action="store_true")

    dev = sub.add_parser("devices", help="device profiles, and which one this machine is")
    dev.add_argument("--json", action="store_true")
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
    output = render(args.runs, args.output or f"reports/{Path(args.runs[0]).name}.html")
    if args.json:
        figures = sorted(str(p) for p in output.parent.glob(f"{output.stem}_figures/*"))
        _emit({"report": str(output), "figures": figures})
    else:
        print(output)
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
        print(f"{n:22s} {card.family:16s} official params {exact:>10s}  {card.paper}")
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
        if model_card(args.model).family == "jetseg":
            print(f"  JetSeg's own formula {r.macs_jetseg_formula / 1e9:.4f} G (its eq. 2)")
        unsupported = ", ".join(f"{k} x{v}" for k, v in sorted(r.unsupported_ops.items()))
        print(f"  not counted by fvcore: {unsupported or 'none'}")
    return EXIT_OK


def _parse_scales(text: str | None) -> tuple[float, ...]:
    if not text:
        return (1.0,)
    try:
        scales = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--scales {text!r}: expected numbers separated by commas") from None
    if not all(s > 0 for s in scales):
        raise UsageError(f"--scales {text!r}: scales must be positive")
    return scales


def cmd_eval(args) -> int:
    from .accuracy.evaluate import EvalConfig
    from .accuracy.standalone import EvalRequest, run_eval
    from .zoo import model_card

    model_card(args.model)
    cfg = EvalConfig(dataset=args.dataset, root=args.data, split=args.split, limit=args.limit,
                     eval_at=args.eval_at, scales=_parse_scales(args.scales), flip=args.flip)
    request = EvalRequest(
        model=args.model, config=cfg, size=parse_size(args.size) if args.size else None,
        weights=args.weights, model_args=tuple(_parse_model_args(args.arg).items()),
        backend=args.backend, precision=args.precision, device=args.device,
        save_predictions=args.save_predictions)
    if not args.weights:
        print(f"bench: warning: no --weights; {args.model} is randomly initialised, its mIoU "
              f"means nothing", file=sys.stderr)
    bar = {}

    def start(n):
        from tqdm import tqdm
        bar["bar"] = tqdm(total=n, unit="img", disable=args.no_progress, file=sys.stderr)

    def step(n):
        bar["bar"].update(n)

    try:
        result, ran = run_eval(request, on_image=step, on_start=start)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    if args.json:
        _emit({**ran, **result.as_dict()})
        return EXIT_OK
    _print_eval(result, ran)
    return EXIT_OK


def _print_eval(result, ran) -> None:
    p = result.protocol
    h, w = result.size
    print(f"{ran['model']} on {p['dataset']} {p['split']} ({result.n_images} of "
          f"{p['images_in_split']} images, {result.n_pixels:,} pixels), input {h}x{w}, "
          f"{ran['backend']}-{ran['precision']} on {ran['device']}")
    print(f"  protocol: eval_at={result.eval_at} ({p['compare_at']}); preprocess "
          f"{p['preprocess']['name']}" + (f"; multi-scale {p['scales']} flip={p['flip']}"
                                           if result.multi_scale else ""))
    for name, iou in result.iou_per_class.items():
        print(f"  {name:16s} {'-' if iou is None else f'{iou:6.2f}':>6}")
    miou = "-" if result.miou is None else f"{result.miou:.2f}"
    acc = "-" if result.pixel_acc is None else f"{result.pixel_acc:.2f}"
    print(f"  mIoU {miou} %   pixel accuracy {acc} %"
          + ("   (multi-scale)" if result.multi_scale else ""))
    if result.nonfinite_images:
        print(f"  warning: {result.nonfinite_images} image(s) had non-finite logits "
              f"({ran['precision']} overflow?)")


def cmd_telemetry(args) -> int:
    from .measure.power.tegrastats import parse_log, summarize

    try:
        text = Path(args.logfile).read_text(errors="replace")
    except OSError as exc:
        raise UsageError(f"{args.logfile}: cannot read ({exc.strerror})") from None
    parsed = parse_log(text)
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


def cmd_devices(args) -> int:
    from .devices import detect_current, load_profiles

    profiles = load_profiles()
    current = detect_current(profiles)
    if args.json:
        _emit({"current": current, "profiles": profiles})
        return EXIT_OK
    for p in profiles:
        mark = "*" if current and p["key"] == current.get("key") else " "
        factor = p["factor_vs_1080ti"] if p["factor_vs_1080ti"] is not None else "-"
        print(f"{mark} {p['key']:16s} {p['name'][:34]:34s} fp32 {p['fp32_tflops'] or '-':>7} TFLOPS"
              f"  fp16 {p['fp16_tflops'] or '-':>7}  {p['mem_bw_gbs'] or '-':>6} GB/s  "
              f"factor {factor}")
    print(f"this machine: {current['key']} ({current['detected_as']})" if current else
          "this machine: not in the profiles")
    return EXIT_OK


def cmd_literature(args) -> int:
    from .normalize import literature

    df = literature(args.dataset)
    cols = ["method", "dataset", "split", "input_h", "input_w", "gpu_printed", "tensorrt",
            "params_m", "gflops", "fps", "fps_norm", "fps_norm_estimate", "miou_val", "miou_test",
            "source", "note"]
    if args.json:
        print(df[cols + ["fps_text", "fps_norm_printed", "precision", "gpu"]].to_json(
            orient="records", indent=2))
        return EXIT_OK
    view = df[cols[:-1]].copy()
    view["fps_norm"] = [f"{v:.1f}{'~' if e else ''}" if v == v and v is not None else "-"
                        for v, e in zip(df["fps_norm"], df["fps_norm_estimate"])]
    print(view.to_string(index=False, na_rep="-"))
    print("fps_norm = fps / GPU factor (1080 Ti = 1) / 1.65 if TensorRT (FASSD-Net Sec. IV-F); "
          "'~' marks a spec-based factor estimate")
    return EXIT_OK


COMMANDS = {"literature": cmd_literature, "run": cmd_run, "report": cmd_report, "models": cmd_models, "analyze": cmd_analyze,
            "telemetry": cmd_telemetry, "devices": cmd_devices, "eval": cmd_eval}


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
