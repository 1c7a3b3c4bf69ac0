"""``bench baseline save RUN_DIR [--name NAME]``: keep a run as the baseline of its device and
suite (a small JSON under results/baselines/<device>/<suite>.json, meant to be committed)."""
from __future__ import annotations

from ._common import EXIT_OK, emit


def add_parser(sub) -> None:
    base = sub.add_parser("baseline", help="save a run as the baseline for `bench check`")
    verbs = base.add_subparsers(dest="verb", required=True)
    save = verbs.add_parser("save", help="save RUN_DIR as a baseline")
    save.add_argument("run", metavar="RUN_DIR")
    save.add_argument("--name", help="file name (default: the suite's name)")
    save.add_argument("--dir", default="results/baselines",
                      help="baselines folder (default: results/baselines)")
    save.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..regress import save_baseline
    from .report import unique_runs

    unique_runs([args.run])
    path = save_baseline(args.run, args.name, args.dir)
    if args.json:
        emit({"baseline": str(path)})
    else:
        print(path)
    return EXIT_OK
