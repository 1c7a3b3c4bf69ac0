"""Start-up time of the commands that need no model: each run as a user runs it (a fresh
interpreter calling ``benchbench.cli.main``, as the ``bench`` script does), median of N runs,
and whether torch was imported. Target: <= 0.5 s each.

    python benchmarks/cli_speed.py [--runs 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.5

# prints whether torch was imported, after the command has run (its own output goes to /dev/null)
_PROBE = ("import sys, os; from benchbench.cli import main\n"
          "out = os.dup(1); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n"
          "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
          "os.write(out, str('torch' in sys.modules).encode())")


def commands(workdir: Path) -> dict[str, list[str]]:
    log = workdir / "tegrastats.log"
    lines = [json.loads(line)["line"] for line in
             (ROOT / "tests" / "data" / "tegrastats_samples.jsonl").read_text().splitlines()]
    log.write_text("\n".join(lines) + "\n")
    return {"bench --help": ["--help"], "bench run --help": ["run", "--help"],
            "bench devices": ["devices"], "bench literature": ["literature"],
            "bench telemetry tegrastats LOG": ["telemetry", "tegrastats", str(log)]}


def time_command(argv: list[str], runs: int) -> tuple[float, bool]:
    times, imported = [], False
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout
        times.append(time.perf_counter() - t)
        imported = out.strip().endswith("True")
    return statistics.median(times), imported


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in commands(Path(tmp)).items():
            median, torch_imported = time_command(argv, args.runs)
            worst = max(worst, median)
            print(f"{label:34s} {median:5.2f} s median of {args.runs}"
                  f"{'   (imports torch)' if torch_imported else ''}")
    print(f"slowest {worst:.2f} s; target <= {TARGET_S} s: {'met' if worst <= TARGET_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
