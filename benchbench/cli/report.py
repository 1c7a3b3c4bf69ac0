"""``bench report RUN [RUN ...]``: one self-contained HTML page."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ._common import EXIT_OK, emit, writable_file


def add_parser(sub) -> None:
    rep = sub.add_parser("report", help="render runs to one HTML file")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("-o", "--output", help="HTML file (default: reports/<run>.html)")
    rep.add_argument("--json", action="store_true")


def unique_runs(runs) -> list[str]:
    """Run directories in the order given, each once (the same run twice would double rows)."""
    seen, out = set(), []
    for run in runs:
        if not (Path(run) / "run.json").is_file():
            raise UsageError(f"{run}: not a run directory (no run.json)")
        key = Path(run).resolve()
        if key not in seen:
            seen.add(key)
            out.append(run)
    return out


def run(args) -> int:
    from ..report.html import render

    runs = unique_runs(args.runs)
    output = writable_file(args.output or f"reports/{Path(runs[0]).name}.html", "-o")
    output = render(runs, output)
    if args.json:
        figures = sorted(str(p) for p in output.parent.glob(f"{output.stem}_figures/*"))
        emit({"report": str(output), "figures": figures})
    else:
        print(output)
    return EXIT_OK
