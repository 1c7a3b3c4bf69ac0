"""``bench compare RUN_A RUN_B [-o FILE.html]``: the check's comparison as a page."""
from __future__ import annotations

from pathlib import Path

from ._common import EXIT_OK, emit, writable_file
from .check import add_verdict_options, verdict_options


def add_parser(sub) -> None:
    cmp_ = sub.add_parser("compare", help="compare two runs on one HTML page")
    cmp_.add_argument("run_a", metavar="RUN_A", help="the baseline run")
    cmp_.add_argument("run_b", metavar="RUN_B", help="the run compared with it")
    cmp_.add_argument("-o", "--output", help="HTML file (default: reports/compare-A-vs-B.html)")
    add_verdict_options(cmp_)
    cmp_.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..report.compare import render_comparison
    from .report import unique_runs

    unique_runs([args.run_a, args.run_b])
    metric, threshold, alpha, work_gate = verdict_options(args)
    default = f"reports/compare-{Path(args.run_a).name}-vs-{Path(args.run_b).name}.html"
    output = writable_file(args.output or default, "-o")
    path = render_comparison(args.run_a, args.run_b, output, metric, threshold, alpha,
                             work_gate)
    if args.json:
        emit({"report": str(path)})
    else:
        print(path)
    return EXIT_OK
