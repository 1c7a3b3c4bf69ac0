"""``bench``: the only place that prints or exits (pip's shape: one module per command, one error
boundary). Library errors become one stderr line and a named exit code; ``--debug`` shows the
traceback instead. Output piped into a program that stops reading (``| head``) ends quietly."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import BenchError
from ..signals import interrupts_unwind
from . import (analyze, baseline, check, compare, devices, export, history, literature, models,
               report, run, telemetry)
from . import eval as eval_
from ._common import (EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_TERMINATED,  # noqa: F401
                      parse_size)

COMMANDS = {"run": run, "report": report, "export": export, "eval": eval_, "analyze": analyze,
            "baseline": baseline, "check": check, "compare": compare, "history": history,
            "models": models,
            "literature": literature, "devices": devices, "telemetry": telemetry}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark real-time semantic "
                                "segmentation networks: speed, cost and accuracy.")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one line")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


def _silence_stdout() -> None:
    # Python would report the failed flush of a closed pipe at exit; point stdout at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts_unwind():
            code = COMMANDS[args.command].run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except BenchError as exc:
        if args.debug:
            raise
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:      # Ctrl-C, or SIGTERM (exit 143)
        if args.debug:
            raise
        code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
        print(f"bench: {'terminated (SIGTERM)' if code == EXIT_TERMINATED else 'interrupted'}",
              file=sys.stderr)
        return code
