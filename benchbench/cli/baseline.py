"""``bench baseline save RUN_DIR [--name NAME] [--keep N] [--commit SHA]``: keep a run as the
baseline of its device and suite (a small JSON under results/baselines/<device>/<suite>.json,
meant to be committed), and in that baseline's history (the last N: ``bench history``)."""
from __future__ import annotations

from ..errors import UsageError
from ._common import EXIT_OK, emit


def add_parser(sub) -> None:
    base = sub.add_parser("baseline", help="save a run as the baseline for `bench check`")
    verbs = base.add_subparsers(dest="verb", required=True)
    save = verbs.add_parser("save", help="save RUN_DIR as a baseline")
    save.add_argument("run", metavar="RUN_DIR")
    save.add_argument("--name", help="file name (default: the suite's name)")
    save.add_argument("--dir", default="results/baselines",
                      help="baselines folder (default: results/baselines)")
    save.add_argument("--keep", type=int, default=None, metavar="N",
                      help="baselines kept in the history of this device and suite "
                           "(default 20; older ones are deleted)")
    save.add_argument("--commit", metavar="SHA",
                      help="the commit the run measured (default: the suite file's repository "
                           "at run time, as run.json recorded it)")
    save.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..regress import save_baseline
    from .report import unique_runs

    unique_runs([args.run])
    if args.keep is not None and not 1 <= args.keep <= 10_000:
        raise UsageError(f"--keep {args.keep}: must be 1 to 10000")
    path = save_baseline(args.run, args.name, args.dir, args.keep, args.commit)
    if args.json:
        emit({"baseline": str(path)})
    else:
        print(path)
    return EXIT_OK
