"""The test suite's time, as the README's test command runs it: wall-clock seconds and the CPU
seconds of pytest and every process it waited for (user + sys), per run, and the summary line
pytest printed. Target: under 4 minutes on the 2 cores of the project's machine.

    python benchmarks/test_suite_time.py [--runs 1] [-- PYTEST ARGS]

Each run is a fresh ``python3 -m pytest -q`` in the repository root (pytest-xdist workers as
``pyproject.toml`` sets them). SLURM jobs and Ray workers are the children of their daemons, not
of pytest: their CPU is in no rusage here, only in the wall time.
"""
from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 240.0


def one_run(extra: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *extra], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = next((line for line in reversed(proc.stdout.splitlines())
                    if re.search(r"\d+ (passed|failed)", line)), proc.stdout[-200:])
    return {"wall_s": wall, "cpu_s": cpu, "returncode": proc.returncode,
            "summary": summary.strip("= ")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    worst = 0
    for k in range(args.runs):
        r = one_run(args.pytest_args)
        worst = max(worst, r["returncode"])
        verdict = "meets" if r["wall_s"] < TARGET_S else "misses"
        print(f"run {k + 1}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.0f} CPU-s "
              f"({verdict} the {TARGET_S:.0f} s target); pytest: {r['summary']}", flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
