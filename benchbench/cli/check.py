"""``bench check RUN_DIR``: the CI latency gate. Exit 0 no regression, 1 at least one regressed
(or failed) cell, 2 bad input or runs that are not comparable."""
from __future__ import annotations

from ..errors import UsageError
from ..fileio import write_atomic
from ._common import EXIT_OK, emit, writable_file

EXIT_REGRESSED = 1


def parse_threshold(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"--threshold {text!r}: expected a percentage like 5% or a fraction "
                         f"like 0.05") from None
    if not 0 < value < 10:
        raise UsageError(f"--threshold {text!r}: must be above 0")
    return value


def add_verdict_options(parser) -> None:
    """--threshold, --metric, --alpha: the same for ``bench check`` and ``bench compare``."""
    parser.add_argument("--threshold", default="5%", help="slowdown that counts (default 5%%)")
    parser.add_argument("--metric", default="auto",
                        choices=["auto", "latency_ms_p50", "latency_ms_mean", "fps",
                                 "latency_rel_p50"],
                        help="auto (default): latency_rel_p50 where both runs were timed with "
                             "timing.reference_interleave, else latency_ms_p50")
    parser.add_argument("--alpha", type=float, default=0.01, help="significance level (0.01)")
    parser.add_argument("--work-gate", default="fail", choices=["off", "warn", "fail"],
                        help="params, MACs, CIO, peak activations and the aten ops of a forward "
                             "(counted on the meta device, exact): MACs or CIO beyond the "
                             "threshold is 'more work', which fails the gate (default), only "
                             "warns, or is not compared")


def verdict_options(args) -> tuple[str, float, float, str]:
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}: must be between 0 and 1")
    return args.metric, parse_threshold(args.threshold), args.alpha, args.work_gate


def add_parser(sub) -> None:
    chk = sub.add_parser("check", help="compare a run with its baseline (CI gate)")
    chk.add_argument("run", metavar="RUN_DIR")
    chk.add_argument("--baseline", metavar="RUN_DIR|FILE|history",
                     help="default: results/baselines/<device>/<suite>.json; 'history': the "
                          "newest of that baseline's saved history, each cell gated by its own "
                          "noise band over the last runs (bench history)")
    chk.add_argument("--dir", default="results/baselines",
                     help="baselines folder for the default baseline and 'history' "
                          "(default: results/baselines)")
    add_verdict_options(chk)
    chk.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary")
    chk.add_argument("--junit", metavar="FILE", help="also write JUnit XML")
    chk.add_argument("--allow-env-change", action="store_true",
                     help="compare although environment or protocol differ (listed)")
    chk.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..regress import check
    from ..report import gate
    from .report import unique_runs

    unique_runs([args.run])
    metric, threshold, alpha, work_gate = verdict_options(args)
    outputs = [(writable_file(path, flag), fn) for path, flag, fn in
               ((args.markdown, "--markdown", gate.markdown), (args.junit, "--junit", gate.junit))
               if path]
    result = check(args.run, args.baseline, metric, threshold, alpha, args.allow_env_change,
                   root=args.dir, work_gate=work_gate)
    for path, fn in outputs:
        write_atomic(path, fn(result))
    if args.json:
        emit(result.as_dict())
    else:
        print(gate.console(result))
    return EXIT_REGRESSED if result.regressions else EXIT_OK
