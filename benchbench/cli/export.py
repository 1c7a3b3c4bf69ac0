"""``bench export RUN``: one flat table of the records, for analysis elsewhere."""
from __future__ import annotations

import sys

from ..errors import UsageError
from ..fileio import write_atomic
from ._common import EXIT_OK, writable_file

FORMATS = ("csv", "parquet", "json")


def add_parser(sub) -> None:
    exp = sub.add_parser("export", help="the records of runs as one flat table")
    exp.add_argument("runs", nargs="+", metavar="RUN_DIR")
    exp.add_argument("--format", choices=FORMATS, default="csv")
    exp.add_argument("-o", "--output", help="file (default: standard output; parquet needs -o)")


def run(args) -> int:
    from ..export import records_table
    from .report import unique_runs

    table = records_table(unique_runs(args.runs))
    if args.format == "parquet":
        if not args.output:
            raise UsageError("--format parquet writes a binary file: give -o FILE.parquet")
        _check_parquet()
    target = writable_file(args.output, "-o") if args.output else None
    if args.format == "csv":
        text = table.to_csv(index=False)
    elif args.format == "json":
        text = table.to_json(orient="records", indent=2)
    else:
        import io
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        write_atomic(target, buf.getvalue())
        print(target)
        return EXIT_OK
    if target is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        write_atomic(target, text)
        print(target)
    return EXIT_OK


def _check_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        try:
            import fastparquet  # noqa: F401
        except ImportError:
            raise UsageError("--format parquet needs pyarrow: pip install 'benchbench[parquet]' "
                             "(or pyarrow)") from None
