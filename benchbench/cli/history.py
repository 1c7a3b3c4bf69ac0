"""``bench history [--dir results/baselines] [--device D] [--suite S] [-o FILE.html]``: each
cell's latency and work over the saved baselines, with the change points marked."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ._common import EXIT_OK, emit, writable_file
from .check import parse_threshold


def add_parser(sub) -> None:
    hist = sub.add_parser("history", help="latency and work over the saved baselines (HTML)")
    hist.add_argument("--dir", default="results/baselines",
                      help="baselines folder (default: results/baselines)")
    hist.add_argument("--device", help="only this device folder (default: every one)")
    hist.add_argument("--suite", help="only this suite (default: every one)")
    hist.add_argument("-o", "--output", default="reports/history.html",
                      help="HTML file (default: reports/history.html)")
    hist.add_argument("--min-step", default="5%",
                      help="smallest step marked as a change point (default 5%%)")
    hist.add_argument("--json", action="store_true")


def folders(root: str, device: str | None, suite: str | None) -> list[Path]:
    from ..history import find_histories

    found = [f for f in find_histories(root)
             if (device is None or f.parent.parent.name == device)
             and (suite is None or f.name == suite)]
    if not found:
        wanted = " ".join(x for x in (f"--device {device}" if device else "",
                                      f"--suite {suite}" if suite else "") if x)
        raise UsageError(f"--dir {root}: no baseline history{' for ' + wanted if wanted else ''}"
                         f" (`bench baseline save RUN_DIR` keeps one per device and suite)")
    return found


def run(args) -> int:
    from ..report.history import render_history

    output = writable_file(args.output, "-o")
    result = render_history(folders(args.dir, args.device, args.suite), output,
                            parse_threshold(args.min_step))
    if args.json:
        emit(result)
    else:
        print(result["report"])
    return EXIT_OK
