"""``bench run SUITE`` / ``bench run --resume RUN_DIR``."""
from __future__ import annotations

import sys
import time

from ..errors import BenchError, UsageError
from ..executors import EXECUTORS
from ..records import FPS_DEFINITIONS, fps_label
from ._common import (EXIT_CELLS_FAILED, EXIT_OK, add_plugin_flag, emit,
                      load_cli_plugins, writable_dir, writable_file)


def add_parser(sub) -> None:
    run = sub.add_parser("run", help="run a suite (or resume a run)")
    run.add_argument("suite", nargs="?", help="suite YAML file")
    run.add_argument("--out", default="results", help="results directory (default: results/)")
    run.add_argument("--resume", metavar="RUN_DIR", help="run only the cells RUN_DIR is missing")
    run.add_argument("--retry-failed", action="store_true",
                     help="with --resume: also re-run failed and skipped cells (old records are "
                          "kept, marked superseded)")
    run.add_argument("--allow-env-change", action="store_true",
                     help="with --resume: continue on a machine whose environment differs "
                          "(both are recorded)")
    run.add_argument("--dry-run", action="store_true",
                     help="list the cells with an estimated run time, and stop")
    run.add_argument("--no-progress", action="store_true", help="no progress output")
    run.add_argument("--report", metavar="FILE.html", help="render the run's HTML report when done")
    run.add_argument("--json", action="store_true")
    run.add_argument("--remote", action="append", metavar="[ssh://]USER@HOST[:PORT]",
                     help="run the suite's trtexec cells on this board over SSH (repeatable: "
                          "cells are spread over the boards); overrides the suite's remote:")
    run.add_argument("--executor", choices=tuple(EXECUTORS), metavar="NAME",
                     help=f"where the cells run: {', '.join(EXECUTORS)} (default: the "
                          f"suite's executor:, else local); overrides the suite's")
    run.add_argument("--executor-opt", action="append", default=[], metavar="KEY=VALUE",
                     help="an option of the executor (repeatable), e.g. partition=gpu; the "
                          "value is read as YAML (8, true, [a, b])")
    add_plugin_flag(run)


class TTYProgress:
    """A tqdm bar on a terminal."""

    def __init__(self):
        self.bar = None

    def start(self, total, done):
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=done, unit="cell", dynamic_ncols=True,
                        file=sys.stderr,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")

    def cell_started(self, cell):
        self.bar.set_description(cell.id)

    def cell_done(self, record):
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class LineProgress:
    """One line per finished cell, for CI logs (no carriage returns)."""

    def start(self, total, done):
        self.total, self.n = total, done
        self.said = {}              # skip reason -> the cell line that said it in full

    def cell_started(self, cell):
        self.t0 = time.perf_counter()

    def cell_done(self, record):
        self.n += 1
        text = _status_text(record)
        reason = record.get("error") if record["status"] == "skipped" else None
        if reason in self.said:
            text = f"skipped (the reason given at [{self.said[reason]}])"
        elif reason:
            self.said[reason] = self.n
        print(f"[{self.n}/{self.total}] {record['cell_id']}: {text} "
              f"({time.perf_counter() - self.t0:.1f} s)", file=sys.stderr, flush=True)

    def close(self):
        pass


def _status_text(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('error') or ''}"
    name = (r.get("protocol") or {}).get("name")
    speed = f"{fps_label([name])} {r['fps']:.1f}" if r.get("fps") else "ok"
    if r.get("latency_ms_p50"):
        speed += f", p50 {r['latency_ms_p50']:.2f} ms"
    if r.get("miou") is not None:
        speed += f", mIoU {r['miou']:.1f}"
    if r.get("busy"):
        speed += f", BUSY ({'; '.join(r.get('busy_reasons') or [])})"
    return "ok " + speed


def _progress(args):
    if args.no_progress:
        return None
    return TTYProgress() if sys.stderr.isatty() else LineProgress()


def run(args) -> int:
    from ..runner import run_suite
    from ..suite import load_suite

    if bool(args.suite) == bool(args.resume):
        raise UsageError("give a suite file or --resume RUN_DIR (exactly one)")
    if (args.retry_failed or args.allow_env_change) and not args.resume:
        raise UsageError("--retry-failed and --allow-env-change go with --resume RUN_DIR")
    if args.report:
        writable_file(args.report, "--report")
    plugins = load_cli_plugins(args)
    if args.resume:
        summary = run_suite(resume=args.resume, progress=_progress(args),
                            retry_failed=args.retry_failed,
                            allow_env_change=args.allow_env_change)
    else:
        suite = load_suite(args.suite)
        if args.remote:
            suite = _with_remote(suite, args.remote)
        if args.executor or args.executor_opt:
            if args.remote and args.executor not in (None, "boards"):
                raise UsageError(f"--remote runs the boards executor, not --executor "
                                 f"{args.executor}")
            suite = _with_executor(suite, args.executor, args.executor_opt)
        if args.dry_run:
            return _dry_run(suite, args)
        writable_dir(args.out, "--out")
        summary = run_suite(suite, out_dir=args.out, progress=_progress(args), plugins=plugins)
    return _finish(summary, args)


def _with_remote(suite, remotes: list[str]):
    """The suite with ``remote:`` from the command line (recorded in run.json like the rest)."""
    from ..suite import suite_from_dict
    raw = dict(suite.raw, remote=remotes if len(remotes) > 1 else remotes[0])
    raw.pop("executor", None)        # --remote means --executor boards
    return suite_from_dict(raw, suite.path)


def _with_executor(suite, name: str | None, pairs: list[str]):
    """The suite with ``executor:`` from the command line (recorded in run.json)."""
    import yaml

    from ..errors import SuiteError
    from ..suite import suite_from_dict

    current = suite.executor
    options = dict(current.options) if name in (None, current.name) else {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--executor-opt {pair!r}: give KEY=VALUE, e.g. partition=gpu")
        try:
            options[key.strip()] = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            options[key.strip()] = text
    raw = dict(suite.raw, executor={"name": name or current.name, "options": options})
    try:
        return suite_from_dict(raw, suite.path)
    except SuiteError as exc:
        raise UsageError(f"--executor: {exc}") from None


def _finish(summary, args) -> int:
    from ..store import current_records

    records = current_records(_records(summary.run_dir))
    result = {"run_dir": str(summary.run_dir), "cells": summary.total, "ran": summary.ran,
              "ok": summary.ok, "failed": summary.failed, "skipped": summary.skipped,
              "already_done": summary.already_done, "summary": [_row(r) for r in records]}
    report_error = None
    if args.report:
        from ..report.html import render
        try:
            result["report"] = str(render([summary.run_dir], args.report))
        except (BenchError, OSError) as exc:
            report_error = exc
    if args.json:
        emit(result)
    else:
        _print_table(result["summary"])
        print(f"{summary.run_dir}: {summary.ok} ok, {summary.failed} failed, "
              f"{summary.skipped} skipped ({summary.ran} run now, {summary.already_done} "
              f"already done)")
        if "report" in result:
            print(f"report: {result['report']}")
        busy = busy_warning(result["summary"])
        if busy:
            print(f"bench: warning: {busy}", file=sys.stderr)
        mismatched = [r["cell_id"] for r in records if r.get("equivalence") == "mismatch"]
        if mismatched:
            print(f"bench: warning: {len(mismatched)} cell(s) produce output that differs from "
                  f"eager fp32 beyond the suite's tolerance: {', '.join(mismatched[:3])}"
                  f"{' ...' if len(mismatched) > 3 else ''}", file=sys.stderr)
    if report_error is not None:
        raise UsageError(f"--report {args.report}: the run is complete in {summary.run_dir}, but "
                         f"the report could not be written ({report_error})")
    skips = _skip_reasons(records)
    if summary.total and summary.skipped == summary.total:
        print(f"bench: warning: nothing was measured: all {summary.total} cells were skipped",
              file=sys.stderr)
    for reason, count in skips.items():
        print(f"bench: {count} cell(s) skipped: {reason}", file=sys.stderr)
    if summary.total and summary.skipped == summary.total:
        return EXIT_CELLS_FAILED
    return EXIT_CELLS_FAILED if summary.failed else EXIT_OK


def _skip_reasons(records: list[dict]) -> dict:
    """Each reason cells were skipped for, said once, with how many cells it skipped."""
    out = {}
    for r in records:
        if r.get("status") == "skipped":
            out[str(r.get("error"))] = out.get(str(r.get("error")), 0) + 1
    return dict(sorted(out.items(), key=lambda item: (-item[1], item[0])))


def _records(run_dir):
    from ..store import read_records
    return read_records(run_dir / "records.jsonl")


def _row(r: dict) -> dict:
    return {"cell_id": r.get("cell_id"), "model": r.get("model"),
            "size": f"{r.get('height')}x{r.get('width')}",
            "backend": f"{r.get('backend_label') or r.get('backend')}-{r.get('precision')}",
            "status": r.get("status"), "equivalence": r.get("equivalence"),
            "argmax_agreement": r.get("argmax_agreement"),
            "fps": r.get("fps"), "latency_ms_p50": r.get("latency_ms_p50"),
            "protocol": (r.get("protocol") or {}).get("name"), "busy": bool(r.get("busy")),
            "busy_reasons": r.get("busy_reasons") or [],
            "params": r.get("params"), "gflops": r.get("gflops"), "miou": r.get("miou")}


def _print_table(rows: list[dict]) -> None:
    if not rows:
        return
    show_miou = any(r["miou"] is not None for r in rows)
    show_agree = any(r.get("equivalence") not in (None, "reference") for r in rows)
    fps_head = fps_label(r["protocol"] for r in rows if r["status"] == "ok")
    head = f"{'model':24s} {'size':>9s} {'backend':28s} {fps_head:>15s} {'p50 ms':>8s} " \
           f"{'params':>11s} {'GFLOPs':>7s}" + (f" {'mIoU':>6s}" if show_miou else "") + \
           (f" {'argmax':>7s}" if show_agree else "") + " status"
    print(head)

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in rows:
        print(f"{(r['model'] or '')[:24]:24s} {r['size']:>9s} {r['backend'][:28]:28s} "
              f"{num(r['fps'], '.1f') + ('!' if r['busy'] else ' '):>15s} "
              f"{num(r['latency_ms_p50'], '8.2f'):>8s} "
              f"{num(r['params'], ',d'):>11s} {num(r['gflops'], '7.1f'):>7s}"
              + (f" {num(r['miou'], '6.1f'):>6s}" if show_miou else "")
              + (f" {_agreement(r):>7s}" if show_agree else "") + f" {_status(r)}")
    print(f"FPS: {_fps_definitions(rows)}")


def _fps_definitions(rows: list[dict]) -> str:
    names = sorted({r["protocol"] for r in rows if r["protocol"]})
    return "; ".join(f"{n}: {FPS_DEFINITIONS.get(n, n)}" for n in names) or "none measured"


def busy_warning(rows: list[dict]) -> str | None:
    """One line saying how many cells were timed on a busy machine, and why (or None)."""
    ok = [r for r in rows if r["status"] == "ok"]
    busy = [r for r in ok if r["busy"]]
    if not busy:
        return None
    reasons = sorted({x for r in busy for x in r["busy_reasons"]})
    return (f"{len(busy)} of {len(ok)} measured cell(s) (marked '!') were timed while the "
            f"machine was busy ({'; '.join(reasons[:2])}{' ...' if len(reasons) > 2 else ''}): "
            f"their FPS carry that noise; rerun them on a quiet machine")


def _agreement(r) -> str:
    share = r.get("argmax_agreement")
    return "-" if share is None else f"{share:.2%}"


def _status(r) -> str:
    status = r["status"] + (", busy" if r["busy"] else "")
    return f"{status}, output MISMATCH" if r.get("equivalence") == "mismatch" else status


def _dry_run(suite, args) -> int:
    from ..cells import expand, resolve_device
    from ..estimate import estimate_cells

    cells = expand(suite, resolve_device(suite.device))
    est = estimate_cells(suite, cells)
    if args.json:
        emit({"cells": [c.id for c in cells], "estimate": est.as_dict()})
        return EXIT_OK
    notes = []
    for i, (c, secs, reason) in enumerate(zip(cells, est.per_cell_s, est.skip_reasons), 1):
        if secs is not None:
            print(f"{i:4d}  {c.id:60s} ~{secs:7.1f} s")
            continue
        if reason not in notes:
            notes.append(reason)
        tag = "board" if reason.startswith("runs on a board") else "skipped"
        print(f"{i:4d}  {c.id:60s}  {tag} [{notes.index(reason) + 1}]")
    for n, reason in enumerate(notes, 1):
        count = sum(r == reason for r in est.skip_reasons)
        print(f"[{n}] {count} cell(s): {reason}")
    print(_estimate_line(cells, est))
    return EXIT_OK


def _estimate_line(cells, est) -> str:
    timed = sum(s is not None for s in est.per_cell_s)
    if not timed:
        return (f"{len(cells)} cells; no run-time estimate: none of them runs on this machine "
                f"(see the reasons above)")
    rest = len(cells) - timed
    where = f" for the {timed} that run here ({rest} do not, see above)" if rest else ""
    return (f"{len(cells)} cells; estimated run time ~{est.total_s / 60:.1f} min{where} "
            f"(an estimate: {est.basis})")
