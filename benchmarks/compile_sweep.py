"""A torch.compile sweep of one model over 12 sizes, as a suite runs it: every cell must have
compiled its own graph (Dynamo's per-code-object cache would run the 9th size on eager under a
compile label; issue 21). Prints each cell's graphs and compile time, and the count.

    python benchmarks/compile_sweep.py [--device cpu|cuda] [--sizes 12]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", type=int, default=12)
    args = p.parse_args()
    import _fixtures  # noqa: F401 - registers tiny_seg

    import benchbench
    from benchbench.suite import suite_from_dict

    sizes = [[32 + 16 * i, 64 + 32 * i] for i in range(args.sizes)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        suite = suite_from_dict({"name": "compile_sweep", "device": args.device,
                                 "models": ["tiny_seg"], "resolutions": sizes,
                                 "backends": ["compile"], "equivalence": False,
                                 "timing": {"warmup": 2, "min_iterations": 5, "max_time_s": 0.2,
                                            "threads": 1}}, f"{tmp}/s.yaml")
        run = benchbench.run_suite(suite, out_dir=tmp, progress=False)
        records = [json.loads(line) for line in (run.run_dir / "records.jsonl").open()]
    for r in records:
        info = r.get("backend_info") or {}
        print(f"{r['cell_id']}: {r['status']}, graphs_compiled {info.get('graphs_compiled')}, "
              f"compile_s {info.get('compile_s')}")
    compiled = sum(r["status"] == "ok" and (r.get("backend_info") or {}).get(
        "graphs_compiled", 0) >= 1 for r in records)
    print(f"compiled cells: {compiled} of {len(records)} ({time.perf_counter() - start:.0f} s)")
    return 0 if compiled == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
